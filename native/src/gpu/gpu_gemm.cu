// gpu_gemm.cu - verified compute stress: C = A x B (n x n) for every number format the device has.
// fp64 and fp32 run on the FMA units (register-blocked shared-memory tiles, one source for CUDA and
// HIP); tf32, bf16 and fp16 run on the tensor cores through WMMA (CUDA, sm_80+) or on the matrix
// cores through MFMA builtins (HIP, gfx90a: bf16 and fp16; gfx90a has no tf32). The inputs are the
// small integers of kiln_patterns.h, so every element of C has one exact value in every format and
// accumulation order; a verify kernel compares all n^2 elements bit for bit after every product.
// Every other product is on random full-mantissa inputs instead (every multiplier bit driven): it
// must repeat bit for bit on the device, and its digest must match the node's other devices.
// Products are split into launches of about 25 ms at the device's peak, so a cancel stops soon.
#include "gpu_backend.h"
#include "../common/kiln_names.h"
#include "../common/kiln_patterns.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <type_traits>


namespace kiln::gpu {
namespace {

constexpr int k_threads = 256;
constexpr int k_pad_mn = 128;  // rows/columns padded to the largest block tile
constexpr int k_pad_k = 32;    // depth padded to the largest K tile
constexpr int k_default_n = 8192;

struct gemm_tables {
    int8_t a[KILN_GEMM_PERIOD];
    int8_t b[KILN_GEMM_PERIOD];
};

uint64_t round_up(uint64_t x, uint64_t m) { return (x + m - 1) / m * m; }

uint32_t input_bytes(uint32_t dtype) {
    switch (dtype) {
    case KILN_DTYPE_FP64: return 8;
    case KILN_DTYPE_FP32:
    case KILN_DTYPE_TF32: return 4;
    default: return 2;
    }
}
uint32_t output_bytes(uint32_t dtype) { return dtype == KILN_DTYPE_FP64 ? 8 : 4; }

// ---- inputs ----------------------------------------------------------------------------------

// An input in its storage format. The integers are exact in every format; the random inputs lose
// what the format cannot hold, the same way on every device: bf16 keeps the top half of the float
// (truncation), fp16 rounds to nearest, tf32 is fp32 storage (the kernel rounds).
template <typename S>
__device__ __forceinline__ S to_storage(double v, uint32_t dtype);
template <>
__device__ __forceinline__ double to_storage<double>(double v, uint32_t) { return v; }
template <>
__device__ __forceinline__ float to_storage<float>(double v, uint32_t) { return static_cast<float>(v); }
template <>
__device__ __forceinline__ uint16_t to_storage<uint16_t>(double v, uint32_t dtype) {
    const float f = static_cast<float>(v);
    if (dtype == KILN_DTYPE_BF16) return static_cast<uint16_t>(static_cast<uint32_t>(__float_as_int(f)) >> 16);
    return __half_as_ushort(__float2half_rn(f));
}

// x[r][k] for r < rows_pad, k < k_pad: A (matrix 0: x[i][k] = A[i][k]) or B transposed
// (matrix 1: x[j][k] = B[k][j]); zero outside n x n. The inputs are the small integers of the
// tables or, with random, uniform in [-1, 1) with every fraction bit driven (kiln_gemm_random_unit).
template <typename S>
__global__ void gemm_fill_kernel(S* x, uint64_t rows_pad, uint64_t k_pad, uint64_t n, int matrix, uint32_t dtype, gemm_tables tables,
                                 int random, uint64_t seed) {
    __shared__ gemm_tables t;  // indexed by every thread: shared memory, not a local copy of the argument
    if (threadIdx.x == 0) t = tables;
    __syncthreads();
    const uint64_t total = rows_pad * k_pad;
    const uint64_t stride = static_cast<uint64_t>(gridDim.x) * blockDim.x;
    for (uint64_t idx = static_cast<uint64_t>(blockIdx.x) * blockDim.x + threadIdx.x; idx < total; idx += stride) {
        const uint64_t r = idx / k_pad, k = idx % k_pad;
        double v = 0;
        if (r < n && k < n)
            v = random ? kiln_gemm_random_unit(seed, matrix, r, k) : (matrix == 0 ? kiln_gemm_a(t.a, r, k) : kiln_gemm_b(t.b, k, r));
        x[idx] = to_storage<S>(v, dtype);
    }
}

// Which SM computed each block tile of C (tile (row block, column block), row-major over the
// padded product): a wrong element found by the verify is reported with the SM that made it.
__device__ __forceinline__ void note_tile_sm(int* tile_sm, int row_block0) {
    if (threadIdx.x == 0) tile_sm[(blockIdx.y + row_block0) * gridDim.x + blockIdx.x] = current_sm();
}

// ---- fp64 / fp32 on the FMA units -------------------------------------------------------------

template <typename T, int N>
struct alignas(16) pack {
    T v[N];
};

// Block tile BM x BN, depth step 8, 256 threads each owning TM x TN accumulators. A tile and a
// B^T tile are loaded with 16-byte accesses into registers one step ahead, then stored transposed
// (k-major) into shared memory.
template <typename T, int BM, int BN, int TM, int TN>
__global__ void __launch_bounds__(k_threads) gemm_fma_kernel(const T* __restrict__ a, const T* __restrict__ bt, T* __restrict__ c,
                                                             int k_pad, int ldc, int row_block0, int* __restrict__ tile_sm) {
    constexpr int BK = 8;
    constexpr int LA = BM * BK / k_threads, LB = BN * BK / k_threads;  // elements each thread loads
    static_assert((BM / TM) * (BN / TN) == k_threads, "one thread per TM x TN tile");
    __shared__ T as[BK][BM];
    __shared__ T bs[BK][BN];
    const int tid = threadIdx.x;
    const int tx = tid % (BN / TN), ty = tid / (BN / TN);
    const int64_t bm = static_cast<int64_t>(blockIdx.y + row_block0) * BM, bn = static_cast<int64_t>(blockIdx.x) * BN;
    note_tile_sm(tile_sm, row_block0);
    const int a_row = tid / (BK / LA), a_col = (tid % (BK / LA)) * LA;
    const int b_row = tid / (BK / LB), b_col = (tid % (BK / LB)) * LB;
    const T* a_src = a + (bm + a_row) * k_pad + a_col;
    const T* b_src = bt + (bn + b_row) * k_pad + b_col;

    T acc[TM][TN];
#pragma unroll
    for (int i = 0; i < TM; ++i)
#pragma unroll
        for (int j = 0; j < TN; ++j) acc[i][j] = T(0);
    pack<T, LA> ra = *reinterpret_cast<const pack<T, LA>*>(a_src);
    pack<T, LB> rb = *reinterpret_cast<const pack<T, LB>*>(b_src);
    for (int k0 = 0; k0 < k_pad; k0 += BK) {
#pragma unroll
        for (int e = 0; e < LA; ++e) as[a_col + e][a_row] = ra.v[e];
#pragma unroll
        for (int e = 0; e < LB; ++e) bs[b_col + e][b_row] = rb.v[e];
        __syncthreads();
        if (k0 + BK < k_pad) {
            ra = *reinterpret_cast<const pack<T, LA>*>(a_src + k0 + BK);
            rb = *reinterpret_cast<const pack<T, LB>*>(b_src + k0 + BK);
        }
#pragma unroll
        for (int kk = 0; kk < BK; ++kk) {
            T av[TM], bv[TN];
#pragma unroll
            for (int i = 0; i < TM; ++i) av[i] = as[kk][ty * TM + i];
#pragma unroll
            for (int j = 0; j < TN; ++j) bv[j] = bs[kk][tx * TN + j];
#pragma unroll
            for (int i = 0; i < TM; ++i)
#pragma unroll
                for (int j = 0; j < TN; ++j) acc[i][j] = fma(av[i], bv[j], acc[i][j]);
        }
        __syncthreads();
    }
#pragma unroll
    for (int i = 0; i < TM; ++i)
#pragma unroll
        for (int j = 0; j < TN; ++j) c[(bm + ty * TM + i) * ldc + bn + tx * TN + j] = acc[i][j];
}

// ---- tensor / matrix cores ----------------------------------------------------------------------

constexpr int k_tc_bm = 128, k_tc_bn = 128;

// Loads one 128-row tile of 64 bytes per row (K-contiguous) from global memory: 512 16-byte
// pieces, two per thread; stores them into shared memory rows of `lds` elements.
template <typename S>
struct tile_loader {
    static constexpr int per_row = 64 / 16;  // 16-byte pieces per row
    uint4 regs[2];
    __device__ __forceinline__ void load(const S* src, int64_t row0, int64_t k0, int k_pad) {
#pragma unroll
        for (int r = 0; r < 2; ++r) {
            const int piece = threadIdx.x + r * k_threads;
            const int row = piece / per_row, col = (piece % per_row) * (16 / static_cast<int>(sizeof(S)));
            regs[r] = *reinterpret_cast<const uint4*>(src + (row0 + row) * k_pad + k0 + col);
        }
    }
    __device__ __forceinline__ void store(S* dst, int lds) const {
#pragma unroll
        for (int r = 0; r < 2; ++r) {
            const int piece = threadIdx.x + r * k_threads;
            const int row = piece / per_row, col = (piece % per_row) * (16 / static_cast<int>(sizeof(S)));
            *reinterpret_cast<uint4*>(dst + row * lds + col) = regs[r];
        }
    }
};

// The K loop of a 128 x 128 block tile through two shared-memory stages: the next A and B^T tiles
// are loaded into registers while step(a_tile, b_tile) multiplies the current ones. One barrier per
// step: a stage is rewritten only after every thread passed the barrier that ended its last reads.
template <int BK, int LDS, typename S, typename Step>
__device__ __forceinline__ void tile_pipeline(const S* a, const S* bt, int64_t bm, int64_t bn, int k_pad, S (*as)[k_tc_bm * LDS],
                                              S (*bs)[k_tc_bn * LDS], Step step) {
    tile_loader<S> la, lb;
    la.load(a, bm, 0, k_pad);
    lb.load(bt, bn, 0, k_pad);
    la.store(as[0], LDS);
    lb.store(bs[0], LDS);
    __syncthreads();
    for (int k0 = 0, stage = 0; k0 < k_pad; k0 += BK, stage ^= 1) {
        const bool more = k0 + BK < k_pad;
        if (more) {
            la.load(a, bm, k0 + BK, k_pad);
            lb.load(bt, bn, k0 + BK, k_pad);
        }
        step(as[stage], bs[stage]);
        if (more) {
            la.store(as[stage ^ 1], LDS);
            lb.store(bs[stage ^ 1], LDS);
        }
        __syncthreads();
    }
}

#if defined(KILN_GPU_WMMA)
namespace wmma = nvcuda::wmma;

// WMMA formats: storage type in memory, fragment element type, K of one mma, K of a tile step.
struct bf16_format {
    using storage = uint16_t;
    using element = __nv_bfloat16;
    static constexpr int wk = 16, bk = 32;
};
struct fp16_format {
    using storage = uint16_t;
    using element = __half;
    static constexpr int wk = 16, bk = 32;
};
struct tf32_format {
    using storage = float;
    using element = wmma::precision::tf32;
    static constexpr int wk = 8, bk = 16;
};
template <typename F>
struct fragment_pointer {
    using type = const typename F::element*;
};
template <>
struct fragment_pointer<tf32_format> {
    using type = const float*;
};

// 128 x 128 block tile, 8 warps as 2 x 4, each warp 64 x 32 = 4 x 2 fragments of 16 x 16; two
// shared-memory stages, the next tile loaded into registers while this one is multiplied.
template <typename F>
__global__ void __launch_bounds__(k_threads) gemm_tc_kernel(const typename F::storage* __restrict__ a,
                                                            const typename F::storage* __restrict__ bt, float* __restrict__ c,
                                                            int k_pad, int ldc, int row_block0, int* __restrict__ tile_sm) {
    using S = typename F::storage;
    constexpr int BK = F::bk, LDS = BK + 16 / static_cast<int>(sizeof(S));  // rows padded by 16 bytes
    __shared__ __align__(128) S as[2][k_tc_bm * LDS];
    __shared__ __align__(128) S bs[2][k_tc_bn * LDS];
    const int warp = threadIdx.x / 32, wm = warp / 4, wn = warp % 4;
    const int64_t bm = static_cast<int64_t>(blockIdx.y + row_block0) * k_tc_bm, bn = static_cast<int64_t>(blockIdx.x) * k_tc_bn;
    note_tile_sm(tile_sm, row_block0);

    wmma::fragment<wmma::accumulator, 16, 16, F::wk, float> acc[4][2];
#pragma unroll
    for (int i = 0; i < 4; ++i)
#pragma unroll
        for (int j = 0; j < 2; ++j) wmma::fill_fragment(acc[i][j], 0.0f);
    tile_pipeline<BK, LDS>(a, bt, bm, bn, k_pad, as, bs, [&](const S* a_tile, const S* b_tile) {
#pragma unroll
        for (int kk = 0; kk < BK; kk += F::wk) {
            wmma::fragment<wmma::matrix_a, 16, 16, F::wk, typename F::element, wmma::row_major> fa[4];
            wmma::fragment<wmma::matrix_b, 16, 16, F::wk, typename F::element, wmma::col_major> fb[2];
#pragma unroll
            for (int i = 0; i < 4; ++i) {
                wmma::load_matrix_sync(fa[i], reinterpret_cast<typename fragment_pointer<F>::type>(a_tile + (wm * 64 + i * 16) * LDS + kk), LDS);
                if constexpr (sizeof(S) == 4)
                    for (int t = 0; t < fa[i].num_elements; ++t) fa[i].x[t] = wmma::__float_to_tf32(fa[i].x[t]);
            }
#pragma unroll
            for (int j = 0; j < 2; ++j) {
                wmma::load_matrix_sync(fb[j], reinterpret_cast<typename fragment_pointer<F>::type>(b_tile + (wn * 32 + j * 16) * LDS + kk), LDS);
                if constexpr (sizeof(S) == 4)
                    for (int t = 0; t < fb[j].num_elements; ++t) fb[j].x[t] = wmma::__float_to_tf32(fb[j].x[t]);
            }
#pragma unroll
            for (int i = 0; i < 4; ++i)
#pragma unroll
                for (int j = 0; j < 2; ++j) wmma::mma_sync(acc[i][j], fa[i], fb[j], acc[i][j]);
        }
    });
#pragma unroll
    for (int i = 0; i < 4; ++i)
#pragma unroll
        for (int j = 0; j < 2; ++j)
            wmma::store_matrix_sync(c + (bm + wm * 64 + i * 16) * ldc + bn + wn * 32 + j * 16, acc[i][j], ldc, wmma::mem_row_major);
}
#else
typedef float mfma_acc __attribute__((ext_vector_type(16)));
typedef short mfma_bf16x4 __attribute__((ext_vector_type(4)));
typedef _Float16 mfma_fp16x4 __attribute__((ext_vector_type(4)));

// 128 x 128 block tile, 4 wavefronts of 64 as 2 x 2, each wave 64 x 64 = 2 x 2 blocks of
// v_mfma_f32_32x32x8 (bf16_1k or f16). Operand layout of that instruction (AMD matrix instruction
// calculator): lane l holds A[l % 32][4 (l / 32) + 0..3] and B[4 (l / 32) + 0..3][l % 32];
// accumulator element v of lane l is D[8 (v / 4) + 4 (l / 32) + v % 4][l % 32].
template <uint32_t DTYPE>
__global__ void __launch_bounds__(k_threads) gemm_tc_kernel(const uint16_t* __restrict__ a, const uint16_t* __restrict__ bt,
                                                            float* __restrict__ c, int k_pad, int ldc, int row_block0, int* __restrict__ tile_sm) {
    constexpr int BK = 32, LDS = BK + 8;
    // The 4 inputs of a lane for one instruction, as its builtin takes them.
    using operand = std::conditional_t<DTYPE == KILN_DTYPE_BF16, mfma_bf16x4, mfma_fp16x4>;
    __shared__ __align__(128) uint16_t as[2][k_tc_bm * LDS];
    __shared__ __align__(128) uint16_t bs[2][k_tc_bn * LDS];
    const int wave = threadIdx.x / 64, lane = threadIdx.x % 64, wm = wave / 2, wn = wave % 2;
    const int64_t bm = static_cast<int64_t>(blockIdx.y + row_block0) * k_tc_bm, bn = static_cast<int64_t>(blockIdx.x) * k_tc_bn;
    note_tile_sm(tile_sm, row_block0);
    mfma_acc acc[2][2];
#pragma unroll
    for (int i = 0; i < 2; ++i)
#pragma unroll
        for (int j = 0; j < 2; ++j)
#pragma unroll
            for (int v = 0; v < 16; ++v) acc[i][j][v] = 0.0f;
    tile_pipeline<BK, LDS>(a, bt, bm, bn, k_pad, as, bs, [&](const uint16_t* a_tile, const uint16_t* b_tile) {
#pragma unroll
        for (int kk = 0; kk < BK; kk += 8) {
            const int k_lane = kk + (lane / 32) * 4;
            operand fa[2], fb[2];
#pragma unroll
            for (int i = 0; i < 2; ++i) fa[i] = *reinterpret_cast<const operand*>(a_tile + (wm * 64 + i * 32 + lane % 32) * LDS + k_lane);
#pragma unroll
            for (int j = 0; j < 2; ++j) fb[j] = *reinterpret_cast<const operand*>(b_tile + (wn * 64 + j * 32 + lane % 32) * LDS + k_lane);
#pragma unroll
            for (int i = 0; i < 2; ++i)
#pragma unroll
                for (int j = 0; j < 2; ++j) {
                    if constexpr (DTYPE == KILN_DTYPE_BF16)
                        acc[i][j] = __builtin_amdgcn_mfma_f32_32x32x8bf16_1k(fa[i], fb[j], acc[i][j], 0, 0, 0);
                    else
                        acc[i][j] = __builtin_amdgcn_mfma_f32_32x32x8f16(fa[i], fb[j], acc[i][j], 0, 0, 0);
                }
        }
    });
#pragma unroll
    for (int i = 0; i < 2; ++i)
#pragma unroll
        for (int j = 0; j < 2; ++j)
#pragma unroll
            for (int v = 0; v < 16; ++v) {
                const int64_t row = bm + wm * 64 + i * 32 + (v / 4) * 8 + (lane / 32) * 4 + v % 4;
                const int64_t col = bn + wn * 64 + j * 32 + lane % 32;
                c[row * ldc + col] = acc[i][j][v];
            }
}
#endif

// ---- verification ------------------------------------------------------------------------------

__device__ __forceinline__ uint64_t bits_of(double v) { return static_cast<uint64_t>(__double_as_longlong(v)); }
__device__ __forceinline__ uint64_t bits_of(float v) { return static_cast<uint32_t>(__float_as_int(v)); }

// Row i of C against E; blocks stride over rows (y) and columns (x). Offsets are of the n x n
// row-major product: (i n + j) x element bytes.
// The SM that computed element (i, j), from the product's tile table.
struct tile_map {
    const int* sm;
    int bm, bn, per_row;
    __device__ __forceinline__ int at(int i, int j) const { return sm[(i / bm) * per_row + j / bn]; }
};

template <typename O>
__global__ void gemm_verify_kernel(const O* __restrict__ c, int n, int ldc, const int64_t* __restrict__ expected, tile_map tiles,
                                   error_log_ref log) {
    for (int i = blockIdx.y; i < n; i += gridDim.y) {
        const uint32_t rp = kiln_gemm_row_phase(static_cast<uint64_t>(i));
        for (int j = blockIdx.x * blockDim.x + threadIdx.x; j < n; j += gridDim.x * blockDim.x) {
            const O want = static_cast<O>(expected[rp * KILN_GEMM_PERIOD + kiln_gemm_col_phase(static_cast<uint64_t>(j))]);
            const O got = c[static_cast<int64_t>(i) * ldc + j];
            if (bits_of(got) != bits_of(want))
                record_error(log, (static_cast<uint64_t>(i) * n + j) * sizeof(O), bits_of(want), bits_of(got), tiles.at(i, j));
        }
    }
}

// The random product against the first one computed on this device: any bit that differs is an error
// (pattern <dtype>_repeat), with the SM that computed the element now.
template <typename O>
__global__ void gemm_repeat_kernel(const O* __restrict__ c, const O* __restrict__ first, int n, int ldc, tile_map tiles, error_log_ref log) {
    for (int i = blockIdx.y; i < n; i += gridDim.y)
        for (int j = blockIdx.x * blockDim.x + threadIdx.x; j < n; j += gridDim.x * blockDim.x) {
            const int64_t at = static_cast<int64_t>(i) * ldc + j;
            if (bits_of(c[at]) != bits_of(first[at]))
                record_error(log, (static_cast<uint64_t>(i) * n + j) * sizeof(O), bits_of(first[at]), bits_of(c[at]), tiles.at(i, j));
        }
}

// An order-free digest of the n x n product's bits: the sum mod 2^64 of a mix of (element, bits),
// one atomic per thread. Equal on every healthy device of one model for one seed and size.
template <typename O>
__global__ void gemm_digest_kernel(const O* __restrict__ c, int n, int ldc, unsigned long long* digest) {
    unsigned long long sum = 0;
    for (int i = blockIdx.y; i < n; i += gridDim.y)
        for (int j = blockIdx.x * blockDim.x + threadIdx.x; j < n; j += gridDim.x * blockDim.x)
            sum += kiln_mix64(bits_of(c[static_cast<int64_t>(i) * ldc + j]) ^ ((static_cast<uint64_t>(i) * n + j) * 0x9E3779B97F4A7C15ull));
    atomicAdd(digest, sum);
}

// One product's launches: which kernel, its block tile, and launches of at most `rows` rows.
struct gemm_plan {
    uint32_t dtype;
    int n, m_pad, k_pad;
    int bm, bn;
    int rows_per_launch;
};

kiln_status launch_product(const gemm_plan& g, const void* a, const void* bt, void* c, int* tile_sm, cudaStream_t stream,
                           const volatile int32_t* cancel, bool* cancelled) {
    for (int row0 = 0; row0 < g.m_pad; row0 += g.rows_per_launch) {
        if (was_cancelled(cancel)) {
            *cancelled = true;
            return KILN_OK;
        }
        const dim3 grid(static_cast<unsigned>(g.m_pad / g.bn), static_cast<unsigned>(std::min(g.rows_per_launch, g.m_pad - row0) / g.bm));
        const int block0 = row0 / g.bm;
        const dim3 block(k_threads);
        switch (g.dtype) {
        case KILN_DTYPE_FP64:
            KILN_GPU_CHECK(launch("gemm_fma_kernel<fp64>", gemm_fma_kernel<double, 128, 64, 8, 4>, grid, block, stream,
                                  static_cast<const double*>(a), static_cast<const double*>(bt), static_cast<double*>(c), g.k_pad, g.m_pad, block0, tile_sm));
            break;
        case KILN_DTYPE_FP32:
            KILN_GPU_CHECK(launch("gemm_fma_kernel<fp32>", gemm_fma_kernel<float, 128, 128, 8, 8>, grid, block, stream,
                                  static_cast<const float*>(a), static_cast<const float*>(bt), static_cast<float*>(c), g.k_pad, g.m_pad, block0, tile_sm));
            break;
#if defined(KILN_GPU_WMMA)
        case KILN_DTYPE_TF32:
            KILN_GPU_CHECK(launch("gemm_tc_kernel<tf32>", gemm_tc_kernel<tf32_format>, grid, block, stream, static_cast<const float*>(a),
                                  static_cast<const float*>(bt), static_cast<float*>(c), g.k_pad, g.m_pad, block0, tile_sm));
            break;
        case KILN_DTYPE_BF16:
            KILN_GPU_CHECK(launch("gemm_tc_kernel<bf16>", gemm_tc_kernel<bf16_format>, grid, block, stream, static_cast<const uint16_t*>(a),
                                  static_cast<const uint16_t*>(bt), static_cast<float*>(c), g.k_pad, g.m_pad, block0, tile_sm));
            break;
        default:
            KILN_GPU_CHECK(launch("gemm_tc_kernel<fp16>", gemm_tc_kernel<fp16_format>, grid, block, stream, static_cast<const uint16_t*>(a),
                                  static_cast<const uint16_t*>(bt), static_cast<float*>(c), g.k_pad, g.m_pad, block0, tile_sm));
            break;
#else
        case KILN_DTYPE_BF16:
            KILN_GPU_CHECK(launch("gemm_tc_kernel<bf16>", gemm_tc_kernel<KILN_DTYPE_BF16>, grid, block, stream, static_cast<const uint16_t*>(a),
                                  static_cast<const uint16_t*>(bt), static_cast<float*>(c), g.k_pad, g.m_pad, block0, tile_sm));
            break;
        default:
            KILN_GPU_CHECK(launch("gemm_tc_kernel<fp16>", gemm_tc_kernel<KILN_DTYPE_FP16>, grid, block, stream, static_cast<const uint16_t*>(a),
                                  static_cast<const uint16_t*>(bt), static_cast<float*>(c), g.k_pad, g.m_pad, block0, tile_sm));
            break;
#endif
        }
        // One launch at a time, so a cancel waits for at most one launch.
        KILN_GPU_TRY(cudaStreamSynchronize(stream));
    }
    return KILN_OK;
}

// Fills x (A, or B transposed) with the integer inputs or, with random, full-mantissa ones.
kiln_status fill_input(void* x, uint32_t dtype, const gemm_plan& g, int matrix, bool random, uint64_t seed, const gemm_tables& tables,
                       int grid, cudaStream_t stream) {
    const uint64_t rows_pad = static_cast<uint64_t>(g.m_pad), kp = static_cast<uint64_t>(g.k_pad), n = static_cast<uint64_t>(g.n);
    const int r = random ? 1 : 0;
    switch (input_bytes(dtype)) {
    case 8:
        return launch("gemm_fill_kernel", gemm_fill_kernel<double>, grid, k_threads, stream, static_cast<double*>(x), rows_pad, kp, n, matrix,
                      dtype, tables, r, seed);
    case 4:
        return launch("gemm_fill_kernel", gemm_fill_kernel<float>, grid, k_threads, stream, static_cast<float*>(x), rows_pad, kp, n, matrix,
                      dtype, tables, r, seed);
    default:
        return launch("gemm_fill_kernel", gemm_fill_kernel<uint16_t>, grid, k_threads, stream, static_cast<uint16_t*>(x), rows_pad, kp, n,
                      matrix, dtype, tables, r, seed);
    }
}

// The low 48 bits of a digest: exact in a double, so the metric carries it without rounding.
double digest_value(unsigned long long d) { return static_cast<double>(d & ((1ull << 48) - 1)); }

// Runs one format: products alternate between the integer inputs, each verified against its exact
// value, and random full-mantissa inputs, each compared bit for bit with the first random product
// of this device (at least two of those, so every run checks a repeat); then metrics, with the
// random product's digest for the comparison across the node's devices. *cancelled when stopped.
kiln_status run_dtype(const run_context& ctx, const kiln_test_params* p, uint32_t dtype, double seconds_budget, sink_writer& out,
                      const volatile int32_t* cancel, bool* cancelled) {
    const char* key = kiln_dtype_key(dtype);
    gemm_plan g{};
    g.dtype = dtype;
    g.n = gemm_matrix_n(p, *ctx.props);
    g.m_pad = static_cast<int>(round_up(static_cast<uint64_t>(g.n), k_pad_mn));
    g.k_pad = static_cast<int>(round_up(static_cast<uint64_t>(g.n), k_pad_k));
    g.bm = 128;
    g.bn = dtype == KILN_DTYPE_FP64 ? 64 : 128;
    // Launches of about 25 ms at the device's peak rate for this format (5 TFLOP/s when unknown).
    const double peak = peak_tflops(*ctx.props, dtype);
    const double flops_per_row = 2.0 * g.m_pad * static_cast<double>(g.k_pad);
    const double rows = 0.025 * (peak > 0 ? peak : 5.0) * 1e12 / flops_per_row;
    g.rows_per_launch = static_cast<int>(std::clamp<double>(rows / g.bm, 1, g.m_pad / g.bm)) * g.bm;

    timed_stream stream;
    KILN_GPU_CHECK(stream.create());
    error_log log;
    KILN_GPU_CHECK(log.allocate(std::max(1u, std::min(p->max_error_reports, 4096u))));
    device_buffer a, bt, ra, rbt, c, first, expected, tile_sm, digest;
    const uint64_t in_bytes = input_bytes(dtype), out_bytes = output_bytes(dtype);
    const uint64_t input_size = uint64_t{static_cast<uint64_t>(g.m_pad)} * g.k_pad * in_bytes;
    const uint64_t output_size = uint64_t{static_cast<uint64_t>(g.m_pad)} * g.m_pad * out_bytes;
    KILN_GPU_CHECK(a.allocate(input_size, "gemm matrix A"));
    KILN_GPU_CHECK(bt.allocate(input_size, "gemm matrix B"));
    KILN_GPU_CHECK(c.allocate(output_size, "gemm matrix C"));
    KILN_GPU_CHECK(ra.allocate(input_size, "gemm random matrix A"));
    KILN_GPU_CHECK(rbt.allocate(input_size, "gemm random matrix B"));
    KILN_GPU_CHECK(first.allocate(output_size, "gemm first random product"));
    KILN_GPU_CHECK(expected.allocate(KILN_GEMM_PERIOD * KILN_GEMM_PERIOD * sizeof(int64_t), "gemm expected table"));
    const int tiles_per_row = g.m_pad / g.bn;
    KILN_GPU_CHECK(tile_sm.allocate(static_cast<uint64_t>(g.m_pad / g.bm) * tiles_per_row * sizeof(int), "gemm tile table"));
    KILN_GPU_CHECK(digest.allocate(sizeof(unsigned long long), "gemm digest"));
    const tile_map tiles{tile_sm.as<int>(), g.bm, g.bn, tiles_per_row};

    gemm_tables tables;
    kiln_gemm_tables(p->seed, tables.a, tables.b);
    std::vector<int64_t> table(KILN_GEMM_PERIOD * KILN_GEMM_PERIOD);
    kiln_gemm_expected_table(tables.a, tables.b, static_cast<uint64_t>(g.n), table.data());
    KILN_GPU_TRY(cudaMemcpyAsync(expected.as<void>(), table.data(), table.size() * sizeof(int64_t), cudaMemcpyHostToDevice, stream.get()));
    const int fill_grid = ctx.props->sms * 4;
    for (int m = 0; m < 2; ++m) {
        KILN_GPU_CHECK(fill_input(m == 0 ? a.as<void>() : bt.as<void>(), dtype, g, m, false, p->seed, tables, fill_grid, stream.get()));
        KILN_GPU_CHECK(fill_input(m == 0 ? ra.as<void>() : rbt.as<void>(), dtype, g, m, true, p->seed, tables, fill_grid, stream.get()));
    }
    KILN_GPU_CHECK(stream.sync());

    // Corrupted after the first product, before its verify (kiln_injection_positions predicts them;
    // the bit is taken modulo the element width).
    const uint64_t elements = static_cast<uint64_t>(g.n) * static_cast<uint64_t>(g.n);
    std::vector<uint64_t> corrupt_words(static_cast<size_t>(std::max(0, p->inject_corrupt)));
    std::vector<uint32_t> corrupt_bits(corrupt_words.size());
    corrupt_words.resize(static_cast<size_t>(
        kiln_injection_positions_fill(p->inject_seed, p->inject_corrupt, elements, corrupt_words.data(), corrupt_bits.data())));
    for (uint32_t& bit : corrupt_bits) bit %= 8 * out_bytes;

    const int iterations = std::max(1, p->iterations);
    const double slowdown = (p->inject_slowdown > 0 && p->inject_slowdown < 1) ? p->inject_slowdown : 1.0;
    const dim3 check_grid(static_cast<unsigned>(std::min<int>((g.n + k_threads - 1) / k_threads, 64)),
                          static_cast<unsigned>(std::min(g.n, 4096)));
    const double flops = 2.0 * g.n * static_cast<double>(g.n) * g.n;
    double best = 0;
    uint64_t errors = 0;
    int exact_done = 0, random_done = 0;
    unsigned long long first_digest = 0;
    const auto start = std::chrono::steady_clock::now();
    for (int product = 0;; ++product) {
        // Odd products are the random ones; the first product is always an exact one (the injection's).
        const bool random = product % 2 == 1;
        // Poisoned before every product (all bits set: NaN in every format, never an expected
        // value), so a block that stores nothing cannot leave the last product's correct values.
        KILN_GPU_TRY(cudaMemsetAsync(c.as<void>(), 0xFF, c.bytes(), stream.get()));
        KILN_GPU_CHECK(stream.start());
        KILN_GPU_CHECK(launch_product(g, random ? ra.as<void>() : a.as<void>(), random ? rbt.as<void>() : bt.as<void>(), c.as<void>(),
                                      tile_sm.as<int>(), stream.get(), cancel, cancelled));
        double seconds = 0;
        KILN_GPU_CHECK(stream.stop(&seconds));
        if (*cancelled) break;
        if (slowdown < 1.0) seconds /= slowdown;  // reported as if run at that fraction of the speed
        const double tflops = flops / seconds / 1e12;
        best = std::max(best, tflops);
        out.metric(std::string(key) + "_tflops", tflops, "TFLOP/s");
        if (product == 0)
            for (size_t k = 0; k < corrupt_words.size(); ++k) {
                const uint64_t i = corrupt_words[k] / static_cast<uint64_t>(g.n), j = corrupt_words[k] % static_cast<uint64_t>(g.n);
                char* addr = c.as<char>() + (i * static_cast<uint64_t>(g.m_pad) + j) * out_bytes;
                uint64_t value = 0;
                KILN_GPU_TRY(cudaMemcpy(&value, addr, out_bytes, cudaMemcpyDeviceToHost));
                value ^= 1ull << corrupt_bits[k];
                KILN_GPU_TRY(cudaMemcpy(addr, &value, out_bytes, cudaMemcpyHostToDevice));
            }
        std::string pattern = key;
        if (!random) {
            if (out_bytes == 8)
                KILN_GPU_CHECK(launch("gemm_verify_kernel", gemm_verify_kernel<double>, check_grid, k_threads, stream.get(), c.as<double>(), g.n,
                                      g.m_pad, expected.as<int64_t>(), tiles, log.ref()));
            else
                KILN_GPU_CHECK(launch("gemm_verify_kernel", gemm_verify_kernel<float>, check_grid, k_threads, stream.get(), c.as<float>(), g.n,
                                      g.m_pad, expected.as<int64_t>(), tiles, log.ref()));
            ++exact_done;
        } else if (random_done == 0) {
            // The device's own reference for the repeats, and its digest for the node's comparison.
            KILN_GPU_TRY(cudaMemcpyAsync(first.as<void>(), c.as<void>(), c.bytes(), cudaMemcpyDeviceToDevice, stream.get()));
            KILN_GPU_TRY(cudaMemsetAsync(digest.as<void>(), 0, sizeof(unsigned long long), stream.get()));
            if (out_bytes == 8)
                KILN_GPU_CHECK(launch("gemm_digest_kernel", gemm_digest_kernel<double>, check_grid, k_threads, stream.get(), c.as<double>(), g.n,
                                      g.m_pad, digest.as<unsigned long long>()));
            else
                KILN_GPU_CHECK(launch("gemm_digest_kernel", gemm_digest_kernel<float>, check_grid, k_threads, stream.get(), c.as<float>(), g.n,
                                      g.m_pad, digest.as<unsigned long long>()));
            KILN_GPU_TRY(cudaMemcpyAsync(&first_digest, digest.as<void>(), sizeof first_digest, cudaMemcpyDeviceToHost, stream.get()));
            ++random_done;
        } else {
            pattern += "_repeat";
            if (out_bytes == 8)
                KILN_GPU_CHECK(launch("gemm_repeat_kernel", gemm_repeat_kernel<double>, check_grid, k_threads, stream.get(), c.as<double>(),
                                      first.as<double>(), g.n, g.m_pad, tiles, log.ref()));
            else
                KILN_GPU_CHECK(launch("gemm_repeat_kernel", gemm_repeat_kernel<float>, check_grid, k_threads, stream.get(), c.as<float>(),
                                      first.as<float>(), g.n, g.m_pad, tiles, log.ref()));
            ++random_done;
        }
        uint64_t found = 0;
        KILN_GPU_CHECK(log.drain(stream.get(), pattern.c_str(), out, &found, out_bytes));
        errors += found;
        const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        if (exact_done >= iterations && random_done >= 2 && (seconds_budget <= 0 || elapsed >= seconds_budget)) break;
        if (was_cancelled(cancel)) {
            *cancelled = true;
            break;
        }
    }
    if (peak > 0) out.metric(std::string("peak_") + key + "_tflops", peak, "TFLOP/s");
    // Zero errors only where a product was computed and verified: no row is evidence of nothing.
    if (exact_done > 0) {
        out.metric(std::string(key) + "_tflops_best", best, "TFLOP/s");
        out.metric(std::string("errors_") + key, static_cast<double>(errors), "count");
        out.metric(std::string("products_") + key, exact_done + random_done, "count");
    }
    if (random_done > 0) {
        out.metric(std::string("random_products_") + key, random_done, "count");
        out.metric(std::string("digest_") + key, digest_value(first_digest), "digest");
    }
    return KILN_OK;
}

}  // namespace

int gemm_matrix_n(const kiln_test_params* p, const device_props& props) {
    if (p->matrix_n > 0) return p->matrix_n;
    // Default: 8192, or less on a device so slow that one product in its slowest format would
    // take over 0.2 s at that format's peak (the emulator): the largest multiple of 128 that fits,
    // at least 256. Every real GPU gets 8192.
    double peak = 0;
    for (uint32_t bit = 1; bit <= KILN_DTYPE_FP16; bit <<= 1) {
        const double r = peak_tflops(props, bit) * 1e12;
        if (r > 0 && (peak == 0 || r < peak)) peak = r;
    }
    if (peak <= 0) return k_default_n;
    const double n = std::cbrt(0.2 * peak / 2.0);
    return static_cast<int>(std::clamp<double>(std::floor(n / 128) * 128, 256, k_default_n));
}

uint32_t gemm_dtypes_available(const device_props&) {
#if defined(KILN_GPU_WMMA)
    return KILN_DTYPE_FP64 | KILN_DTYPE_FP32 | KILN_DTYPE_TF32 | KILN_DTYPE_BF16 | KILN_DTYPE_FP16;
#else
    return KILN_DTYPE_FP64 | KILN_DTYPE_FP32 | KILN_DTYPE_BF16 | KILN_DTYPE_FP16;  // no tf32 on gfx90a
#endif
}

uint64_t gemm_bytes_needed(int n, uint32_t dtype) {
    const uint64_t m = round_up(static_cast<uint64_t>(n), k_pad_mn), k = round_up(static_cast<uint64_t>(n), k_pad_k);
    // A and B twice (integer and random inputs), C and the first random product, + log, tables and slack.
    return 4 * m * k * input_bytes(dtype) + 2 * m * m * output_bytes(dtype) + (64u << 20);
}

kiln_status run_gemm(const run_context& ctx, const kiln_test_params* p, sink_writer& out, const volatile int32_t* cancel) {
    const uint32_t mask = p->dtype_mask ? p->dtype_mask : gemm_dtypes_available(*ctx.props);
    int count = 0;
    for (uint32_t bit = 1; bit <= KILN_DTYPE_FP16; bit <<= 1) count += (mask & bit) != 0;
    out.metric("matrix_n", gemm_matrix_n(p, *ctx.props), "count");
    bool cancelled = false;
    int done = 0;
    for (uint32_t bit = 1; bit <= KILN_DTYPE_FP16 && !cancelled; bit <<= 1) {
        if (!(mask & bit)) continue;
        KILN_GPU_CHECK(run_dtype(ctx, p, bit, p->duration_ms / 1000.0 / count, out, cancel, &cancelled));
        out.progress(static_cast<double>(++done) / count);
    }
    out.metric("errors_total", static_cast<double>(out.errors_counted()), "count");
    if (cancelled) return fail(KILN_CANCELLED, "gemm: cancelled");
    return KILN_OK;
}

}  // namespace kiln::gpu
