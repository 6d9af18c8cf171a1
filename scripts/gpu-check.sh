#!/usr/bin/env bash
# gpu-check.sh - on a machine with an NVIDIA GPU: builds the native tree with this machine's own
# nvcc (CUDA 12/13; sm_90, or KILN_CUDA_ARCHS), runs the native GPU tests (they must run here, not
# skip), then the GPU benchmarks side by side with their yardsticks (cuBLAS, cudaMemcpy) on the same
# card, and prints the rows for docs/PERFORMANCE.md. Usage: scripts/gpu-check.sh [DEVICE]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
device=${1:-0}
build="$root/build/gpu-check"
out="$build/out"

command -v nvcc >/dev/null || { echo "gpu-check: nvcc is not on PATH (export PATH=/usr/local/cuda/bin:\$PATH)" >&2; exit 2; }
command -v nvidia-smi >/dev/null && nvidia-smi -L >/dev/null || { echo "gpu-check: no NVIDIA GPU is visible" >&2; exit 2; }

cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DKILN_OUT_DIR="$out" -DKILN_CUDA=ON -DKILN_HIP=OFF \
      -DCMAKE_CUDA_ARCHITECTURES="${KILN_CUDA_ARCHS:-90}" >/dev/null
cmake --build "$build" -j "$(nproc)"

# 1. Native tests: the CPU twins and every CUDA test; a skipped GPU test is a failure here.
tests_log="$build/gpu-tests.log"
(cd "$build/tests/native" && ./kiln_native_tests --gtest_filter='-*/hip') | tee "$tests_log"
if grep -q '^\[  SKIPPED \]' "$tests_log"; then
  echo "gpu-check: GPU tests were skipped on a GPU machine (reason above)" >&2
  exit 1
fi

# 2. Benchmarks on device $device, Kiln and yardstick in the same run.
bench() { "$out/bin/kiln-native-bench" "$@" --backend cuda --device "$device"; }
metric() { awk -v m="$1" '$2 == m {print $3}' | tail -1; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", (b > 0) ? a / b : 0 }'; }

stream=$(bench stream --iterations 10)
memtest=$(bench memtest --patterns 1)                 # walking ones over >= 95% of free memory
gemm=$(bench gemm --n 8192 --iterations 5)
clock_log="$build/sm-clock.log"
nvidia-smi -i "$device" --query-gpu=clocks.sm --format=csv,noheader,nounits -lms 500 > "$clock_log" &
clock_pid=$!
power=$(bench power --dtypes 3 --duration 20000)     # fp64 then fp32 FMA, 10 s each
kill "$clock_pid"
copy=$(bench copy --size $((1 << 30)))
launch=$(bench launch)
peer=$("$out/bin/kiln-peer-cuda" "$device" 8192 $((1 << 30)))
printf '%s\n' "$stream" "$memtest" "$gemm" "$power" "$copy" "$launch" "$peer"
# 3. Collectives over every GPU, where libnccl.so.2 is found (exit 2 and the reason otherwise), and
#    nccl-tests' all_reduce_perf at the same size when it is on PATH.
coll=$("$out/bin/kiln-native-bench" allreduce --backend cuda --size $((1 << 34)) --iterations 20 || true)
printf '%s\n' "$coll"
nccl_busbw=""
if command -v all_reduce_perf >/dev/null; then
  # column 8: the out-of-place busbw (Kiln's op is out of place too)
  nccl_busbw=$(all_reduce_perf -b 16G -e 16G -g "$(nvidia-smi -L | wc -l)" -n 20 | awk '$1 ~ /^[0-9]+$/ {print $8}' | tail -1)
fi

card=$(nvidia-smi -i "$device" --query-gpu=name --format=csv,noheader)
max_clock=$(nvidia-smi -i "$device" --query-gpu=clocks.max.sm --format=csv,noheader,nounits)
observed_clock=$(sort -n "$clock_log" | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}')  # median over the burn
copy_gbps=$(metric copy_gbps_best <<< "$stream")
memcpy_gbps=$(metric memcpy_d2d_gbps <<< "$stream")
walk_gbps=$(metric walking_ones_gbps <<< "$memtest")
bf16=$(metric bf16_tflops_best <<< "$gemm")
cublas=$(metric cublas_bf16_tflops <<< "$peer")
fp64=$(metric fp64_tflops <<< "$power")
fp32=$(metric fp32_tflops <<< "$power")
fp64_peak=$(awk -v p="$(metric peak_fp64_tflops <<< "$power")" -v o="$observed_clock" -v m="$max_clock" 'BEGIN {print p * o / m}')
fp32_peak=$(awk -v p="$(metric peak_fp32_tflops <<< "$power")" -v o="$observed_clock" -v m="$max_clock" 'BEGIN {print p * o / m}')

echo
echo "## GPU: $card (device $device, $(nvcc --version | grep -o 'release [0-9.]*'), SM clock $observed_clock of $max_clock MHz during power)"
echo
echo "| target | Kiln | yardstick | ratio | goal |"
echo "| --- | --- | --- | --- | --- |"
echo "| stream copy vs cudaMemcpy D2D (GB/s, read+write) | $copy_gbps | $memcpy_gbps | $(ratio "$copy_gbps" "$memcpy_gbps") | >= 1.0 |"
echo "| memtest walking ones ($(metric fraction_of_free <<< "$memtest") of free) vs stream copy (GB/s) | $walk_gbps | $copy_gbps | $(ratio "$walk_gbps" "$copy_gbps") | >= 0.85 |"
echo "| gemm bf16 8192^3 vs cuBLAS (TFLOP/s) | $bf16 | $cublas | $(ratio "$bf16" "$cublas") | >= 0.5 |"
echo "| power fp64 FMA vs peak at observed clock (TFLOP/s) | $fp64 | $fp64_peak | $(ratio "$fp64" "$fp64_peak") | >= 0.9 |"
echo "| power fp32 FMA vs peak at observed clock (TFLOP/s) | $fp32 | $fp32_peak | $(ratio "$fp32" "$fp32_peak") | >= 0.9 |"
echo "| copy H2D pinned vs cudaMemcpy (GB/s) | $(metric h2d_gbps_best <<< "$copy") | $(metric memcpy_h2d_gbps <<< "$peer") | $(ratio "$(metric h2d_gbps_best <<< "$copy")" "$(metric memcpy_h2d_gbps <<< "$peer")") | >= 0.95 |"
echo "| copy D2H pinned vs cudaMemcpy (GB/s) | $(metric d2h_gbps_best <<< "$copy") | $(metric memcpy_d2h_gbps <<< "$peer") | $(ratio "$(metric d2h_gbps_best <<< "$copy")" "$(metric memcpy_d2h_gbps <<< "$peer")") | >= 0.95 |"
echo "| all-reduce busbw, 16 GiB, every GPU, vs nccl-tests all_reduce_perf (GB/s) | $(metric allreduce_busbw_gbps <<< "$coll") | ${nccl_busbw:-not run} | $(ratio "$(metric allreduce_busbw_gbps <<< "$coll")" "${nccl_busbw:-0}") | >= 0.95 |"
echo
echo "Other gemm formats (TFLOP/s, best of 5): fp64 $(metric fp64_tflops_best <<< "$gemm"), fp32 $(metric fp32_tflops_best <<< "$gemm"), tf32 $(metric tf32_tflops_best <<< "$gemm"), fp16 $(metric fp16_tflops_best <<< "$gemm")."
echo "Launch latency (us): min $(metric launch_latency_us_min <<< "$launch"), median $(metric launch_latency_us_median <<< "$launch"), p99 $(metric launch_latency_us_p99 <<< "$launch")."
echo "Reproduce: scripts/gpu-check.sh $device"
