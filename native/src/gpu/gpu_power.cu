// gpu_power.cu - the power burner: register-resident loops that keep the FMA units (fp64, fp32) or
// the tensor/matrix cores (bf16, fp16) busy for duration_ms, in launches of about 50 ms so a cancel
// stops soon. Every loop is made of exact pairs that return each register to where it started
// (x + a*b - a*b for the FMA units, acc + A*B + (-A)*B for the tensor cores, all sums exact by
// construction, kiln_patterns.h); then each launch ends on one unpaired step (x + a*b, acc + A*B)
// whose result is known from integers alone. A unit that errs the same way for both signs cancels
// in the pairs but not there, and one that returns 0 or leaves its input misses it too. Each
// register that does not end on the known value is a data error. The rate reached is reported.
#include "gpu_backend.h"
#include "../common/kiln_names.h"
#include "../common/kiln_patterns.h"

#include <algorithm>
#include <chrono>
#include <cmath>


namespace kiln::gpu {
namespace {

constexpr int k_chains = 8;               // independent accumulators per thread
constexpr int k_block = 256;
constexpr double k_launch_seconds = 0.05; // target length of one launch
constexpr int k_tc_accumulators = 4;      // independent tensor accumulators per warp

__device__ __forceinline__ uint64_t bits_of(double v) { return static_cast<uint64_t>(__double_as_longlong(v)); }
__device__ __forceinline__ uint64_t bits_of(float v) { return static_cast<uint32_t>(__float_as_int(v)); }

template <typename T>
__device__ __forceinline__ T operand(uint64_t seed, uint32_t j, uint32_t which);
template <>
__device__ __forceinline__ double operand<double>(uint64_t seed, uint32_t j, uint32_t which) { return kiln_power_fp64_operand(seed, j, which); }
template <>
__device__ __forceinline__ float operand<float>(uint64_t seed, uint32_t j, uint32_t which) { return kiln_power_fp32_operand(seed, j, which); }

__device__ __forceinline__ uint64_t closing_bits(double x, double a, double b) {
    return kiln_power_fp64_final_bits(bits_of(x), bits_of(a), bits_of(b));
}
__device__ __forceinline__ uint64_t closing_bits(float x, float a, float b) {
    return kiln_power_fp32_final_bits(static_cast<uint32_t>(bits_of(x)), static_cast<uint32_t>(bits_of(a)), static_cast<uint32_t>(bits_of(b)));
}

// Injected corruption (power:corrupt=N): register words whose value is read with bit `bit` flipped
// before the check, in the first launch only, so exactly N errors appear.
struct corruption {
    const uint64_t* words;
    const uint32_t* bits;
    int count;
};
__device__ __forceinline__ uint64_t corrupted(uint64_t value, uint64_t word, const corruption& c, uint32_t width_bits) {
    for (int k = 0; k < c.count; ++k)
        if (c.words[k] == word) value ^= 1ull << (c.bits[k] % width_bits);
    return value;
}

// Each thread: chains x[c] with operands (a, b) of its lane; `pairs` pairs of FMAs per chain, then
// the closing x -> x + a*b, whose result the integer formula of kiln_patterns.h knows. Register
// words are numbered (thread x k_chains + chain); offsets are word x sizeof(T).
template <typename T>
__global__ void __launch_bounds__(k_block) power_fma_kernel(uint64_t pairs, uint64_t seed, error_log_ref log, corruption inject) {
    const uint64_t thread = static_cast<uint64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
    const uint32_t lane = threadIdx.x % 64;
    const T a = operand<T>(seed, lane, 0), b = operand<T>(seed, lane, 1), na = -a;
    T x[k_chains], x0[k_chains];
#pragma unroll
    for (int c = 0; c < k_chains; ++c) x[c] = x0[c] = operand<T>(seed, lane * k_chains + c, 2);
    for (uint64_t i = 0; i < pairs; ++i) {
#pragma unroll
        for (int c = 0; c < k_chains; ++c) x[c] = fma(a, b, x[c]);
#pragma unroll
        for (int c = 0; c < k_chains; ++c) x[c] = fma(na, b, x[c]);
    }
#pragma unroll
    for (int c = 0; c < k_chains; ++c) x[c] = fma(a, b, x[c]);
#pragma unroll
    for (int c = 0; c < k_chains; ++c) {
        const uint64_t word = thread * k_chains + c, want = closing_bits(x0[c], a, b);
        const uint64_t got = inject.count ? corrupted(bits_of(x[c]), word, inject, 8 * sizeof(T)) : bits_of(x[c]);
        if (got != want) record_error(log, word * sizeof(T), want, got);
    }
}

// A and B hold integers in -255..255 (exact in bf16 and fp16); one A x B has |sum| <= 16 x 255^2
// (or 8 x 255^2 on AMD) < 2^24, so acc = 0 -> A B -> A B + (-A) B = 0 is exact in fp32. The closing
// mma makes acc = A B, which the integer sums of tc_int know without a floating-point unit.
__device__ __forceinline__ int tc_int(uint64_t seed, uint32_t matrix, uint32_t index) {
    return static_cast<int>(kiln_mix64(seed ^ (uint64_t{matrix} << 32) ^ index) % 511u) - 255;
}
__device__ __forceinline__ float tc_value(uint64_t seed, uint32_t matrix, uint32_t index) { return static_cast<float>(tc_int(seed, matrix, index)); }

#if defined(KILN_GPU_WMMA)
namespace wmma = nvcuda::wmma;

template <typename E>
__device__ __forceinline__ E to_element(float v);
template <>
__device__ __forceinline__ __nv_bfloat16 to_element<__nv_bfloat16>(float v) { return __float2bfloat16(v); }
template <>
__device__ __forceinline__ __half to_element<__half>(float v) { return __float2half_rn(v); }

// Per warp: fragments A, -A, B from shared memory, k_tc_accumulators accumulators, `pairs` pairs
// of mma (A then -A). Register words are (warp x accumulators x 256 + element) x 4 bytes.
template <typename E>
__global__ void __launch_bounds__(k_block) power_tc_kernel(uint64_t pairs, uint64_t seed, error_log_ref log, corruption inject) {
    __shared__ __align__(128) E tiles[3][16 * 16];
    __shared__ __align__(128) float out[k_block / 32][16 * 16];
    for (int e = threadIdx.x; e < 256; e += blockDim.x) {
        const float av = tc_value(seed, 0, e), bv = tc_value(seed, 1, e);
        tiles[0][e] = to_element<E>(av);
        tiles[1][e] = to_element<E>(-av);
        tiles[2][e] = to_element<E>(bv);
    }
    __syncthreads();
    wmma::fragment<wmma::matrix_a, 16, 16, 16, E, wmma::row_major> fa, fna;
    wmma::fragment<wmma::matrix_b, 16, 16, 16, E, wmma::col_major> fb;
    wmma::load_matrix_sync(fa, tiles[0], 16);
    wmma::load_matrix_sync(fna, tiles[1], 16);
    wmma::load_matrix_sync(fb, tiles[2], 16);
    wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc[k_tc_accumulators];
#pragma unroll
    for (int k = 0; k < k_tc_accumulators; ++k) wmma::fill_fragment(acc[k], 0.0f);
    for (uint64_t i = 0; i < pairs; ++i) {
#pragma unroll
        for (int k = 0; k < k_tc_accumulators; ++k) wmma::mma_sync(acc[k], fa, fb, acc[k]);
#pragma unroll
        for (int k = 0; k < k_tc_accumulators; ++k) wmma::mma_sync(acc[k], fna, fb, acc[k]);
    }
#pragma unroll
    for (int k = 0; k < k_tc_accumulators; ++k) wmma::mma_sync(acc[k], fa, fb, acc[k]);
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    const uint64_t global_warp = static_cast<uint64_t>(blockIdx.x) * (blockDim.x / 32) + warp;
    for (int k = 0; k < k_tc_accumulators; ++k) {
        wmma::store_matrix_sync(out[warp], acc[k], 16, wmma::mem_row_major);
        __syncwarp();
        for (int e = lane; e < 256; e += 32) {
            // (A B)[i][j] with A row-major (i*16+k) and B column-major (j*16+k), as the tiles were loaded.
            const int i = e / 16, j = e % 16;
            int sum = 0;
            for (int kk = 0; kk < 16; ++kk) sum += tc_int(seed, 0, static_cast<uint32_t>(i * 16 + kk)) * tc_int(seed, 1, static_cast<uint32_t>(j * 16 + kk));
            const uint64_t word = (global_warp * k_tc_accumulators + k) * 256 + e;
            const uint64_t want = bits_of(static_cast<float>(sum));
            const uint64_t got = inject.count ? corrupted(bits_of(out[warp][e]), word, inject, 32) : bits_of(out[warp][e]);
            if (got != want) record_error(log, word * 4u, want, got);
        }
        __syncwarp();
    }
}
constexpr double k_tc_flops_per_pair = 2 * 2.0 * 16 * 16 * 16 * k_tc_accumulators;  // per warp
constexpr int k_tc_threads_per_group = 32;
#else
typedef float mfma_acc __attribute__((ext_vector_type(16)));
typedef short mfma_bf16x4 __attribute__((ext_vector_type(4)));
typedef _Float16 mfma_fp16x4 __attribute__((ext_vector_type(4)));

// Per wavefront: operands of v_mfma_f32_32x32x8 (4 values per lane), k_tc_accumulators
// accumulators, `pairs` pairs (A then -A). Register words: (wave x accumulators x 1024 + lane x 16 + v) x 4.
template <uint32_t DTYPE>
__global__ void __launch_bounds__(k_block) power_tc_kernel(uint64_t pairs, uint64_t seed, error_log_ref log, corruption inject) {
    const int lane = threadIdx.x % 64;
    mfma_bf16x4 ab, nab, bb;
    mfma_fp16x4 ah, nah, bh;
    for (int e = 0; e < 4; ++e) {
        const float av = tc_value(seed, 0, lane * 4 + e), bv = tc_value(seed, 1, lane * 4 + e);
        ab[e] = static_cast<short>(__float_as_int(av) >> 16);
        nab[e] = static_cast<short>(__float_as_int(-av) >> 16);
        bb[e] = static_cast<short>(__float_as_int(bv) >> 16);
        ah[e] = static_cast<_Float16>(av);
        nah[e] = static_cast<_Float16>(-av);
        bh[e] = static_cast<_Float16>(bv);
    }
    mfma_acc acc[k_tc_accumulators];
#pragma unroll
    for (int k = 0; k < k_tc_accumulators; ++k)
#pragma unroll
        for (int v = 0; v < 16; ++v) acc[k][v] = 0.0f;
    for (uint64_t i = 0; i < pairs; ++i) {
#pragma unroll
        for (int k = 0; k < k_tc_accumulators; ++k) {
            if constexpr (DTYPE == KILN_DTYPE_BF16) acc[k] = __builtin_amdgcn_mfma_f32_32x32x8bf16_1k(ab, bb, acc[k], 0, 0, 0);
            else acc[k] = __builtin_amdgcn_mfma_f32_32x32x8f16(ah, bh, acc[k], 0, 0, 0);
        }
#pragma unroll
        for (int k = 0; k < k_tc_accumulators; ++k) {
            if constexpr (DTYPE == KILN_DTYPE_BF16) acc[k] = __builtin_amdgcn_mfma_f32_32x32x8bf16_1k(nab, bb, acc[k], 0, 0, 0);
            else acc[k] = __builtin_amdgcn_mfma_f32_32x32x8f16(nah, bh, acc[k], 0, 0, 0);
        }
    }
    // The closing mfma makes acc = A B. Which lane holds which element is the instruction's layout;
    // the check needs none of it: the sum of all 1024 elements of A B is sum over k of (column sum
    // of A) x (row sum of B), which every lane computes from the integers (lanes 32h..32h+31 hold
    // k = 4h..4h+3), and the wave's elements are summed in shared memory.
#pragma unroll
    for (int k = 0; k < k_tc_accumulators; ++k) {
        if constexpr (DTYPE == KILN_DTYPE_BF16) acc[k] = __builtin_amdgcn_mfma_f32_32x32x8bf16_1k(ab, bb, acc[k], 0, 0, 0);
        else acc[k] = __builtin_amdgcn_mfma_f32_32x32x8f16(ah, bh, acc[k], 0, 0, 0);
    }
    long long want = 0;
    for (int h = 0; h < 2; ++h)
        for (int e = 0; e < 4; ++e) {
            long long col_a = 0, row_b = 0;
            for (int l = 32 * h; l < 32 * h + 32; ++l) {
                col_a += tc_int(seed, 0, static_cast<uint32_t>(l * 4 + e));
                row_b += tc_int(seed, 1, static_cast<uint32_t>(l * 4 + e));
            }
            want += col_a * row_b;
        }
    __shared__ unsigned long long wave_sum[k_block / 64][k_tc_accumulators];
    const int wave_in_block = threadIdx.x / 64;
    if (lane < k_tc_accumulators) wave_sum[wave_in_block][lane] = 0;
    __syncthreads();
    for (int k = 0; k < k_tc_accumulators; ++k) {
        long long mine = 0;
        for (int v = 0; v < 16; ++v) mine += static_cast<long long>(acc[k][v]);
        atomicAdd(&wave_sum[wave_in_block][k], static_cast<unsigned long long>(mine));
    }
    __syncthreads();
    const uint64_t wave = (static_cast<uint64_t>(blockIdx.x) * blockDim.x + threadIdx.x) / 64;
    if (lane == 0)
        for (int k = 0; k < k_tc_accumulators; ++k) {
            const uint64_t word = wave * k_tc_accumulators + k;
            const uint64_t got = inject.count ? corrupted(wave_sum[wave_in_block][k], word, inject, 32) : wave_sum[wave_in_block][k];
            // Offsets: one 8-byte sum per (wave, accumulator).
            if (got != static_cast<uint64_t>(want)) record_error(log, word * 8u, static_cast<uint64_t>(want), got);
        }
}
constexpr double k_tc_flops_per_pair = 2 * 2.0 * 32 * 32 * 8 * k_tc_accumulators;  // per wavefront
constexpr int k_tc_threads_per_group = 64;
#endif

// Launches `pairs` of format dtype on grid blocks.
kiln_status launch_burn(uint32_t dtype, int grid, uint64_t pairs, uint64_t seed, error_log_ref log, corruption c, cudaStream_t stream) {
    switch (dtype) {
    case KILN_DTYPE_FP64: return launch("power_fma_kernel<fp64>", power_fma_kernel<double>, grid, k_block, stream, pairs, seed, log, c);
    case KILN_DTYPE_FP32: return launch("power_fma_kernel<fp32>", power_fma_kernel<float>, grid, k_block, stream, pairs, seed, log, c);
#if defined(KILN_GPU_WMMA)
    case KILN_DTYPE_BF16: return launch("power_tc_kernel<bf16>", power_tc_kernel<__nv_bfloat16>, grid, k_block, stream, pairs, seed, log, c);
    default: return launch("power_tc_kernel<fp16>", power_tc_kernel<__half>, grid, k_block, stream, pairs, seed, log, c);
#else
    case KILN_DTYPE_BF16: return launch("power_tc_kernel<bf16>", power_tc_kernel<KILN_DTYPE_BF16>, grid, k_block, stream, pairs, seed, log, c);
    default: return launch("power_tc_kernel<fp16>", power_tc_kernel<KILN_DTYPE_FP16>, grid, k_block, stream, pairs, seed, log, c);
#endif
    }
}

double flops_per_pair_per_thread(uint32_t dtype) {
    if (dtype == KILN_DTYPE_FP64 || dtype == KILN_DTYPE_FP32) return 4.0 * k_chains;  // 2 FMAs x 2 flops per chain
    return k_tc_flops_per_pair / k_tc_threads_per_group;
}

#if defined(KILN_GPU_WMMA)
constexpr bool kiln_power_tc_word_is_float = true;   // a checked word is one fp32 element of A B
#else
constexpr bool kiln_power_tc_word_is_float = false;  // a checked word is a wave's 8-byte sum of A B
#endif

kiln_status burn_dtype(const run_context& ctx, const kiln_test_params* p, uint32_t dtype, double seconds, sink_writer& out,
                       const volatile int32_t* cancel, bool* cancelled) {
    const char* key = kiln_dtype_key(dtype);
    timed_stream stream;
    KILN_GPU_CHECK(stream.create());
    error_log log;
    KILN_GPU_CHECK(log.allocate(std::max(1u, std::min(p->max_error_reports, 4096u))));
    const int grid = launch_grid(p, *ctx.props, k_block);
    const double threads = static_cast<double>(grid) * k_block;
    // Calibrate: a launch of about 1 ms at the device's peak (1024 pairs when the peak is unknown),
    // then launches sized to about k_launch_seconds each.
    const double peak_flops = peak_tflops(*ctx.props, dtype) * 1e12;
    uint64_t pairs = peak_flops > 0
                         ? std::clamp<uint64_t>(static_cast<uint64_t>(1e-3 * peak_flops / (flops_per_pair_per_thread(dtype) * threads)), 1, 1024)
                         : 1024;
    // power:corrupt=N: N register words of the first launch read wrong (positions as
    // kiln_injection_positions predicts over the launch's words).
    const uint64_t words = dtype == KILN_DTYPE_FP64 || dtype == KILN_DTYPE_FP32
                               ? static_cast<uint64_t>(threads) * k_chains
#if defined(KILN_GPU_WMMA)
                               : static_cast<uint64_t>(threads) / 32 * k_tc_accumulators * 256;
#else
                               : static_cast<uint64_t>(threads) / 64 * k_tc_accumulators;
#endif
    std::vector<uint64_t> corrupt_words(static_cast<size_t>(std::max(0, p->inject_corrupt)));
    std::vector<uint32_t> corrupt_bits(corrupt_words.size());
    const int corrupt = kiln_injection_positions_fill(p->inject_seed, p->inject_corrupt, words, corrupt_words.data(), corrupt_bits.data());
    device_buffer corrupt_w, corrupt_b;
    corruption inject{nullptr, nullptr, 0};
    if (corrupt > 0) {
        KILN_GPU_CHECK(corrupt_w.allocate(static_cast<uint64_t>(corrupt) * 8, "power corruption list"));
        KILN_GPU_CHECK(corrupt_b.allocate(static_cast<uint64_t>(corrupt) * 4, "power corruption list"));
        KILN_GPU_TRY(cudaMemcpy(corrupt_w.as<void>(), corrupt_words.data(), static_cast<size_t>(corrupt) * 8, cudaMemcpyHostToDevice));
        KILN_GPU_TRY(cudaMemcpy(corrupt_b.as<void>(), corrupt_bits.data(), static_cast<size_t>(corrupt) * 4, cudaMemcpyHostToDevice));
        inject = corruption{corrupt_w.as<const uint64_t>(), corrupt_b.as<const uint32_t>(), corrupt};
    }
    const uint32_t word_bytes = dtype == KILN_DTYPE_FP64 ? 8 : dtype == KILN_DTYPE_FP32 ? 4 : kiln_power_tc_word_is_float ? 4 : 8;
    double total_flops = 0, total_seconds = 0;
    const auto start = std::chrono::steady_clock::now();
    for (bool first = true;; first = false) {
        if (was_cancelled(cancel)) {
            *cancelled = true;
            break;
        }
        KILN_GPU_CHECK(stream.start());
        KILN_GPU_CHECK(launch_burn(dtype, grid, pairs, p->seed, log.ref(), first ? inject : corruption{nullptr, nullptr, 0}, stream.get()));
        double launch_seconds = 0;
        KILN_GPU_CHECK(stream.stop(&launch_seconds));
        total_flops += flops_per_pair_per_thread(dtype) * threads * static_cast<double>(pairs);
        total_seconds += launch_seconds;
        uint64_t found = 0;
        KILN_GPU_CHECK(log.drain(stream.get(), key, out, &found, word_bytes));
        if (std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() >= seconds) break;
        const double scale = launch_seconds > 0 ? k_launch_seconds / launch_seconds : 2.0;
        pairs = std::max<uint64_t>(1, static_cast<uint64_t>(static_cast<double>(pairs) * std::min(scale, 16.0)));
    }
    if (total_seconds > 0) out.metric(std::string(key) + "_tflops", total_flops / total_seconds / 1e12, "TFLOP/s");
    const double peak = peak_tflops(*ctx.props, dtype);
    if (peak > 0) out.metric(std::string("peak_") + key + "_tflops", peak, "TFLOP/s");
    return KILN_OK;
}

}  // namespace

uint32_t power_dtypes_available(const device_props&) {
    return KILN_DTYPE_FP64 | KILN_DTYPE_FP32 | KILN_DTYPE_BF16 | KILN_DTYPE_FP16;
}

kiln_status run_power(const run_context& ctx, const kiln_test_params* p, sink_writer& out, const volatile int32_t* cancel) {
    // Default: bf16 on the tensor/matrix cores, the format that draws the most power.
    const uint32_t bf16 = KILN_DTYPE_BF16, mask = p->dtype_mask ? p->dtype_mask : bf16;
    int count = 0;
    for (uint32_t bit = 1; bit <= KILN_DTYPE_FP16; bit <<= 1) count += (mask & bit) != 0;
    const double seconds = (p->duration_ms ? p->duration_ms : 10000) / 1000.0 / count;
    bool cancelled = false;
    int done = 0;
    for (uint32_t bit = 1; bit <= KILN_DTYPE_FP16 && !cancelled; bit <<= 1) {
        if (!(mask & bit)) continue;
        KILN_GPU_CHECK(burn_dtype(ctx, p, bit, seconds, out, cancel, &cancelled));
        out.progress(static_cast<double>(++done) / count);
    }
    out.metric("errors_total", static_cast<double>(out.errors_counted()), "count");
    if (cancelled) return fail(KILN_CANCELLED, "power: cancelled");
    return KILN_OK;
}

}  // namespace kiln::gpu
