// gpu_power.cu - the power burner: register-resident loops that keep the FMA units (fp64, fp32) or
// the tensor/matrix cores (bf16, fp16) busy for duration_ms, in launches of about 50 ms so a cancel
// stops soon. Every loop is made of exact pairs that return each register to where it started
// (x + a*b - a*b for the FMA units, acc + A*B + (-A)*B for the tensor cores, all sums exact by
// construction, kiln_patterns.h), so at the end every register must hold its first value; each
// one that does not is a data error. The rate reached is reported per format.
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

// Each thread: chains x[c] with operands (a, b) of its lane; `pairs` pairs of FMAs per chain.
// Register words are numbered (thread x k_chains + chain); offsets are word x sizeof(T).
template <typename T>
__global__ void __launch_bounds__(k_block) power_fma_kernel(uint64_t pairs, uint64_t seed, error_log_ref log) {
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
    for (int c = 0; c < k_chains; ++c)
        if (bits_of(x[c]) != bits_of(x0[c])) record_error(log, (thread * k_chains + c) * sizeof(T), bits_of(x0[c]), bits_of(x[c]));
}

// A and B hold integers in -255..255 (exact in bf16 and fp16); one A x B has |sum| <= 16 x 255^2
// (or 8 x 255^2 on AMD) < 2^24, so acc = 0 -> A B -> A B + (-A) B = 0 is exact in fp32.
__device__ __forceinline__ float tc_value(uint64_t seed, uint32_t matrix, uint32_t index) {
    return static_cast<float>(static_cast<int>(kiln_mix64(seed ^ (uint64_t{matrix} << 32) ^ index) % 511u) - 255);
}

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
__global__ void __launch_bounds__(k_block) power_tc_kernel(uint64_t pairs, uint64_t seed, error_log_ref log) {
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
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    const uint64_t global_warp = static_cast<uint64_t>(blockIdx.x) * (blockDim.x / 32) + warp;
    for (int k = 0; k < k_tc_accumulators; ++k) {
        wmma::store_matrix_sync(out[warp], acc[k], 16, wmma::mem_row_major);
        __syncwarp();
        for (int e = lane; e < 256; e += 32)
            if (out[warp][e] != 0.0f)
                record_error(log, ((global_warp * k_tc_accumulators + k) * 256 + e) * 4u, 0, bits_of(out[warp][e]));
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
__global__ void __launch_bounds__(k_block) power_tc_kernel(uint64_t pairs, uint64_t seed, error_log_ref log) {
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
    const uint64_t wave = (static_cast<uint64_t>(blockIdx.x) * blockDim.x + threadIdx.x) / 64;
    for (int k = 0; k < k_tc_accumulators; ++k)
        for (int v = 0; v < 16; ++v)
            if (acc[k][v] != 0.0f) record_error(log, ((wave * k_tc_accumulators + k) * 1024 + lane * 16 + v) * 4u, 0, bits_of(acc[k][v]));
}
constexpr double k_tc_flops_per_pair = 2 * 2.0 * 32 * 32 * 8 * k_tc_accumulators;  // per wavefront
constexpr int k_tc_threads_per_group = 64;
#endif

// Launches `pairs` of format dtype on grid blocks.
kiln_status launch_burn(uint32_t dtype, int grid, uint64_t pairs, uint64_t seed, error_log_ref log, cudaStream_t stream) {
    switch (dtype) {
    case KILN_DTYPE_FP64: return launch("power_fma_kernel<fp64>", power_fma_kernel<double>, grid, k_block, stream, pairs, seed, log);
    case KILN_DTYPE_FP32: return launch("power_fma_kernel<fp32>", power_fma_kernel<float>, grid, k_block, stream, pairs, seed, log);
#if defined(KILN_GPU_WMMA)
    case KILN_DTYPE_BF16: return launch("power_tc_kernel<bf16>", power_tc_kernel<__nv_bfloat16>, grid, k_block, stream, pairs, seed, log);
    default: return launch("power_tc_kernel<fp16>", power_tc_kernel<__half>, grid, k_block, stream, pairs, seed, log);
#else
    case KILN_DTYPE_BF16: return launch("power_tc_kernel<bf16>", power_tc_kernel<KILN_DTYPE_BF16>, grid, k_block, stream, pairs, seed, log);
    default: return launch("power_tc_kernel<fp16>", power_tc_kernel<KILN_DTYPE_FP16>, grid, k_block, stream, pairs, seed, log);
#endif
    }
}

double flops_per_pair_per_thread(uint32_t dtype) {
    if (dtype == KILN_DTYPE_FP64 || dtype == KILN_DTYPE_FP32) return 4.0 * k_chains;  // 2 FMAs x 2 flops per chain
    return k_tc_flops_per_pair / k_tc_threads_per_group;
}

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
    double total_flops = 0, total_seconds = 0;
    const auto start = std::chrono::steady_clock::now();
    for (;;) {
        if (was_cancelled(cancel)) {
            *cancelled = true;
            break;
        }
        KILN_GPU_CHECK(stream.start());
        KILN_GPU_CHECK(launch_burn(dtype, grid, pairs, p->seed, log.ref(), stream.get()));
        double launch_seconds = 0;
        KILN_GPU_CHECK(stream.stop(&launch_seconds));
        total_flops += flops_per_pair_per_thread(dtype) * threads * static_cast<double>(pairs);
        total_seconds += launch_seconds;
        uint64_t found = 0;
        KILN_GPU_CHECK(log.drain(stream.get(), key, out, &found, dtype == KILN_DTYPE_FP64 ? 8 : 4));
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
    const uint32_t mask = p->dtype_mask ? p->dtype_mask : KILN_DTYPE_BF16;
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
