// kiln_emu_runtime.h - the emulated device: the CUDA names native/src/gpu uses, implemented on the
// host so the same sources build as libkiln-emu.so with a plain C++ compiler (kiln_gpu_compat.h's
// third branch). Only the names the sources use are here. A launch runs every block of the grid on
// a pool of host threads; inside a block each GPU thread is a fiber, and __syncthreads/__syncwarp
// switch fibers until all have arrived. Device memory is one arena per device, so a fault can name
// a device address (an offset into it); faults (KILN_EMU_FAULTS, docs/EMULATOR.md) are applied by
// the runtime below the kernels, which are never told. Streams are synchronous; event times come
// from the device's emulated clock (see emu_runtime.cpp for the time model).
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <tuple>
#include <type_traits>
#include <utility>

// ---- language ---------------------------------------------------------------------------------
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline __attribute__((always_inline))
#define __launch_bounds__(...)
#define __align__(n) __attribute__((aligned(n)))
// One copy per host thread: a host thread runs one block at a time, all of its fibers, so this is
// per-block shared memory (uninitialised between blocks, as on a GPU).
#define __shared__ static thread_local

typedef int cudaError_t;
enum : int {
    cudaSuccess = 0,
    cudaErrorInvalidValue = 1,
    cudaErrorMemoryAllocation = 2,
    cudaErrorInsufficientDriver = 35,
    cudaErrorNoDevice = 100,
    cudaErrorInvalidDevice = 101,
    cudaErrorNotReady = 600,
    cudaErrorPeerAccessAlreadyEnabled = 704,
    cudaErrorLaunchFailure = 719,
    cudaErrorInvalidConfiguration = 9,
};
enum cudaMemcpyKind { cudaMemcpyHostToHost = 0, cudaMemcpyHostToDevice = 1, cudaMemcpyDeviceToHost = 2, cudaMemcpyDeviceToDevice = 3 };
enum cudaDeviceAttr { cudaDevAttrClockRate = 13, cudaDevAttrMemoryClockRate = 36, cudaDevAttrGlobalMemoryBusWidth = 37 };
#define cudaStreamNonBlocking 0x01u
#define cudaHostAllocDefault 0x00u

namespace kiln::emu {
struct stream;
struct event;
}  // namespace kiln::emu
typedef kiln::emu::stream* cudaStream_t;
typedef kiln::emu::event* cudaEvent_t;

struct cudaUUID_t {
    char bytes[16];
};
struct cudaDeviceProp {
    char name[256];
    cudaUUID_t uuid;
    size_t totalGlobalMem;
    int warpSize;
    int maxThreadsPerBlock;
    int maxGridSize[3];
    int major, minor;
    int multiProcessorCount;
    int l2CacheSize;
    int maxThreadsPerMultiProcessor;
};

struct uint3 {
    unsigned int x, y, z;
};
struct dim3 {
    unsigned int x, y, z;
    constexpr dim3(unsigned int vx = 1, unsigned int vy = 1, unsigned int vz = 1) : x(vx), y(vy), z(vz) {}
};
struct __attribute__((aligned(16))) double2 {
    double x, y;
};
struct __attribute__((aligned(16))) ulonglong2 {
    unsigned long long x, y;
};
struct __attribute__((aligned(16))) uint4 {
    unsigned int x, y, z, w;
};
inline double2 make_double2(double x, double y) { return {x, y}; }

inline long long __double_as_longlong(double v) {
    long long r;
    memcpy(&r, &v, sizeof r);
    return r;
}
inline int __float_as_int(float v) {
    int r;
    memcpy(&r, &v, sizeof r);
    return r;
}
inline float __int_as_float(int v) {
    float r;
    memcpy(&r, &v, sizeof r);
    return r;
}

// 16-bit formats as their bits; conversions round to nearest even, as the hardware's do.
struct __half {
    uint16_t bits;
};
struct __nv_bfloat16 {
    uint16_t bits;
};
__half __float2half_rn(float v);
float __half2float(__half h);
inline unsigned short __half_as_ushort(__half h) { return h.bits; }
__nv_bfloat16 __float2bfloat16(float v);
float __bfloat162float(__nv_bfloat16 b);

namespace kiln::emu {

// Where the calling fiber is: what threadIdx and friends read.
struct thread_place {
    uint3 thread, block;
    dim3 block_dim, grid_dim;
    int device;
    int sm;  // the emulated SM the block runs on (linear block index modulo the SM count)
};
extern thread_local thread_place tl_place;

void sync_block();  // __syncthreads
void sync_warp();   // __syncwarp
unsigned long long atomic_add(unsigned long long* address, unsigned long long value);

// The FMA units: the exact fused result, unless a planted fault says this SM gets these operands wrong.
extern bool g_unit_faults;  // any fma/mma fault planted: the slow path below is taken
double fma_faulty(double a, double b, double c);
float fma_faulty(float a, float b, float c);
inline double fma_unit(double a, double b, double c) { return g_unit_faults ? fma_faulty(a, b, c) : std::fma(a, b, c); }
inline float fma_unit(float a, float b, float c) { return g_unit_faults ? fma_faulty(a, b, c) : std::fma(a, b, c); }
// One product of the matrix unit (inputs already in their format, exact in fp32): a * b, or the
// planted fault's wrong product. fraction_bits: the input format's (bf16 7, fp16 10, tf32 10).
float mma_product(float a, float b, int fraction_bits);

// Runs body(block) for every block of the grid on device `device` (the stream's). Returns a
// cudaError_t: a planted launch failure, an invalid configuration, or a device that already failed.
cudaError_t launch(cudaStream_t stream, dim3 grid, dim3 block, const char* kernel, const std::function<void()>& body);

}  // namespace kiln::emu

#define threadIdx (::kiln::emu::tl_place.thread)
#define blockIdx (::kiln::emu::tl_place.block)
#define blockDim (::kiln::emu::tl_place.block_dim)
#define gridDim (::kiln::emu::tl_place.grid_dim)

inline void __syncthreads() { kiln::emu::sync_block(); }
inline void __syncwarp() { kiln::emu::sync_warp(); }
inline unsigned long long atomicAdd(unsigned long long* address, unsigned long long value) { return kiln::emu::atomic_add(address, value); }

// Unqualified fma() in the kernels (all inside namespace kiln::gpu) finds these before ::fma.
namespace kiln::gpu {
inline double fma(double a, double b, double c) { return ::kiln::emu::fma_unit(a, b, c); }
inline float fma(float a, float b, float c) { return ::kiln::emu::fma_unit(a, b, c); }
}  // namespace kiln::gpu

// ---- WMMA -------------------------------------------------------------------------------------
// The emulated matrix unit is WMMA, not the MFMA builtins: a WMMA fragment's lane layout is opaque
// to the kernel (any layout is a legal implementation), so emulating it is faithful; MFMA code
// hard-codes AMD's per-lane operand layout and 64-wide wavefronts, which would have to be copied
// exactly. WMMA also covers all three tensor formats (tf32, bf16, fp16). Here lane l of a warp
// holds elements l, l + 32, l + 64 ... of its fragment (row-major over the fragment's own shape);
// load and store move only the lane's own elements, and mma_sync gathers the operands through a
// per-warp scratch between two warp barriers, as the hardware's operand network does.
namespace nvcuda::wmma {
struct matrix_a {};
struct matrix_b {};
struct accumulator {};
struct row_major {};
struct col_major {};
namespace precision {
struct tf32 {};
}  // namespace precision
enum layout_t { mem_row_major, mem_col_major };

template <typename Use, int M, int N, int K>
struct shape_of;
template <int M, int N, int K>
struct shape_of<matrix_a, M, N, K> {
    static constexpr int rows = M, cols = K;
};
template <int M, int N, int K>
struct shape_of<matrix_b, M, N, K> {
    static constexpr int rows = K, cols = N;
};
template <int M, int N, int K>
struct shape_of<accumulator, M, N, K> {
    static constexpr int rows = M, cols = N;
};

template <typename T>
struct storage_of {
    using type = T;
};
template <>
struct storage_of<precision::tf32> {
    using type = float;
};
template <typename T>
constexpr int fraction_bits_of() {
    if constexpr (std::is_same_v<T, __nv_bfloat16>) return 7;
    else return 10;  // fp16 and tf32
}

template <typename Use, int M, int N, int K, typename T, typename Layout = void>
struct fragment {
    using shape = shape_of<Use, M, N, K>;
    using element_type = typename storage_of<T>::type;
    static constexpr int elements = shape::rows * shape::cols;
    static constexpr int num_elements = elements / 32;
    element_type x[num_elements];
};

inline float to_float(float v) { return v; }
inline float to_float(__half v) { return __half2float(v); }
inline float to_float(__nv_bfloat16 v) { return __bfloat162float(v); }
inline float __float_to_tf32(float v) {
    // Round to nearest even at 10 fraction bits, as cvt.rna.tf32 would for these finite values.
    uint32_t u = static_cast<uint32_t>(__float_as_int(v));
    u = (u + 0xFFFu + ((u >> 13) & 1u)) & ~0x1FFFu;
    return __int_as_float(static_cast<int>(u));
}

inline int lane() { return static_cast<int>(threadIdx.x % 32u); }
// This warp's operand scratch: A then B as floats.
float* warp_scratch();

template <typename Use, int M, int N, int K, typename T, typename Layout, typename P>
void load_matrix_sync(fragment<Use, M, N, K, T, Layout>& f, const P* p, unsigned ldm) {
    using F = fragment<Use, M, N, K, T, Layout>;
    for (int t = 0; t < F::num_elements; ++t) {
        const int e = lane() + 32 * t, r = e / F::shape::cols, c = e % F::shape::cols;
        const size_t at = std::is_same_v<Layout, col_major> ? static_cast<size_t>(c) * ldm + r : static_cast<size_t>(r) * ldm + c;
        f.x[t] = p[at];
    }
}

template <int M, int N, int K, typename T>
void store_matrix_sync(T* p, const fragment<accumulator, M, N, K, T>& f, unsigned ldm, layout_t layout) {
    using F = fragment<accumulator, M, N, K, T>;
    for (int t = 0; t < F::num_elements; ++t) {
        const int e = lane() + 32 * t, r = e / N, c = e % N;
        p[layout == mem_col_major ? static_cast<size_t>(c) * ldm + r : static_cast<size_t>(r) * ldm + c] = f.x[t];
    }
}

template <int M, int N, int K, typename T>
void fill_fragment(fragment<accumulator, M, N, K, T>& f, T v) {
    for (auto& x : f.x) x = v;
}

template <int M, int N, int K, typename TA, typename LA, typename TB, typename LB>
void mma_sync(fragment<accumulator, M, N, K, float>& d, const fragment<matrix_a, M, N, K, TA, LA>& a,
              const fragment<matrix_b, M, N, K, TB, LB>& b, const fragment<accumulator, M, N, K, float>& c) {
    float* sa = warp_scratch();
    float* sb = sa + M * K;
    for (int t = 0; t < a.num_elements; ++t) sa[lane() + 32 * t] = to_float(a.x[t]);
    for (int t = 0; t < b.num_elements; ++t) sb[lane() + 32 * t] = to_float(b.x[t]);
    __syncwarp();
    constexpr int bits = fraction_bits_of<TA>();
    for (int t = 0; t < d.num_elements; ++t) {
        const int e = lane() + 32 * t, i = e / N, j = e % N;
        // Products of exact inputs are exact in fp32; summed in k order onto the accumulator.
        float sum = c.x[t];
        for (int k = 0; k < K; ++k) sum += ::kiln::emu::mma_product(sa[i * K + k], sb[k * N + j], bits);
        d.x[t] = sum;
    }
    __syncwarp();
}
}  // namespace nvcuda::wmma

// ---- runtime API --------------------------------------------------------------------------------
cudaError_t cudaGetDeviceCount(int* count);
cudaError_t cudaGetDeviceProperties(cudaDeviceProp* prop, int device);
cudaError_t cudaDeviceGetAttribute(int* value, cudaDeviceAttr attr, int device);
cudaError_t cudaDeviceGetPCIBusId(char* bus, int len, int device);
cudaError_t cudaDeviceCanAccessPeer(int* can, int device, int peer);
cudaError_t cudaDeviceEnablePeerAccess(int peer, unsigned flags);
cudaError_t cudaDriverGetVersion(int* version);
cudaError_t cudaRuntimeGetVersion(int* version);
const char* cudaGetErrorName(cudaError_t e);
const char* cudaGetErrorString(cudaError_t e);
cudaError_t cudaGetLastError();
cudaError_t cudaSetDevice(int device);
cudaError_t cudaMemGetInfo(size_t* free_bytes, size_t* total_bytes);
cudaError_t cudaMalloc(void** p, size_t bytes);
cudaError_t cudaFree(void* p);
cudaError_t cudaHostAlloc(void** p, size_t bytes, unsigned flags);
cudaError_t cudaFreeHost(void* p);
cudaError_t cudaMemcpy(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind);
cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind, cudaStream_t stream);
cudaError_t cudaMemcpyPeerAsync(void* dst, int dst_device, const void* src, int src_device, size_t bytes, cudaStream_t stream);
cudaError_t cudaMemsetAsync(void* p, int value, size_t bytes, cudaStream_t stream);
cudaError_t cudaStreamCreateWithFlags(cudaStream_t* s, unsigned flags);
cudaError_t cudaStreamDestroy(cudaStream_t s);
cudaError_t cudaStreamSynchronize(cudaStream_t s);
cudaError_t cudaStreamQuery(cudaStream_t s);
cudaError_t cudaEventCreate(cudaEvent_t* e);
cudaError_t cudaEventDestroy(cudaEvent_t e);
cudaError_t cudaEventRecord(cudaEvent_t e, cudaStream_t s);
cudaError_t cudaEventSynchronize(cudaEvent_t e);
cudaError_t cudaEventElapsedTime(float* ms, cudaEvent_t begin, cudaEvent_t end);
