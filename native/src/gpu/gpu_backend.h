// gpu_backend.h - what the GPU plugin's sources share: device properties and peaks, error text
// through the host's set_error, RAII device/host buffers and streams, the bounded device error log
// every verify kernel writes into, and the test entry points. One source for CUDA and HIP
// (kiln_gpu_compat.h); every entry point returns a status and never exits or prints.
#pragma once

#include "kiln_gpu_compat.h"
#include "../common/kiln_host_util.h"

#include <kiln/kiln_plugin.h>

#include <cstdint>
#include <string>
#include <vector>

namespace kiln::gpu {

// Sets the calling thread's last error (printf-style) through the host and returns status.
kiln_status fail(kiln_status status, const char* format, ...) __attribute__((format(printf, 2, 3)));
// A failed runtime call: "<call>: <error name>: <error text>" and KILN_BACKEND_ERROR (or
// KILN_OUT_OF_MEMORY for an allocation).
kiln_status fail_call(cudaError_t error, const char* call);

// Evaluates a runtime call; on failure returns its status from the enclosing function.
#define KILN_GPU_TRY(call)                                                    \
    do {                                                                      \
        const cudaError_t kiln_gpu_err_ = (call);                             \
        if (kiln_gpu_err_ != cudaSuccess) return ::kiln::gpu::fail_call(kiln_gpu_err_, #call); \
    } while (0)
// Evaluates an expression returning kiln_status; returns it unless KILN_OK.
#define KILN_GPU_CHECK(expr)                                  \
    do {                                                      \
        const kiln_status kiln_gpu_st_ = (expr);              \
        if (kiln_gpu_st_ != KILN_OK) return kiln_gpu_st_;     \
    } while (0)

// What Kiln needs to know about one device, read once at init.
struct device_props {
    std::string name, uuid, pci_bus_id, arch;  // arch: "sm_90", "gfx90a"
    int major = 0, minor = 0;
    int sms = 0;                     // multiprocessors (CUDA) or compute units (HIP)
    int warp_size = 32;
    int max_threads_per_block = 0;
    int max_threads_per_sm = 0;
    int max_grid_x = 0;
    uint64_t total_memory_bytes = 0;
    uint64_t l2_bytes = 0;
    double clock_mhz = 0;            // peak SM clock
    double memory_clock_mhz = 0;
    int memory_bus_bits = 0;
    double peak_memory_gbps = 0;
    double peak_fp64_tflops = 0, peak_fp32_tflops = 0;
    double peak_tensor_tflops[5] = {0, 0, 0, 0, 0};  // by dtype bit index: fp64, fp32, tf32, bf16, fp16
};

// Fills the peaks of props from its arch, SM count and clocks (the table is in gpu_backend.cu).
void compute_peaks(device_props& props);
// The peak rate of one kiln_dtype bit on this device (FMA units for fp32/fp64, tensor/matrix
// units for the others); 0 when unknown.
double peak_tflops(const device_props& props, uint32_t dtype_bit);

// Device memory, freed on every path.
class device_buffer {
public:
    device_buffer() = default;
    ~device_buffer() { release(); }
    device_buffer(const device_buffer&) = delete;
    device_buffer& operator=(const device_buffer&) = delete;
    device_buffer(device_buffer&& o) noexcept : ptr_(o.ptr_), bytes_(o.bytes_) { o.ptr_ = nullptr; o.bytes_ = 0; }
    // Allocates bytes; on failure returns KILN_OUT_OF_MEMORY naming what (and leaves it empty).
    kiln_status allocate(uint64_t bytes, const char* what);
    void release();
    template <typename T>
    T* as() const { return static_cast<T*>(ptr_); }
    uint64_t bytes() const { return bytes_; }

private:
    void* ptr_ = nullptr;
    uint64_t bytes_ = 0;
};

// Pinned host memory, freed on every path.
class pinned_buffer {
public:
    pinned_buffer() = default;
    ~pinned_buffer();
    pinned_buffer(const pinned_buffer&) = delete;
    pinned_buffer& operator=(const pinned_buffer&) = delete;
    kiln_status allocate(uint64_t bytes, const char* what);
    template <typename T>
    T* as() const { return static_cast<T*>(ptr_); }

private:
    void* ptr_ = nullptr;
};

// A stream and timing events for one run, destroyed on every path.
class timed_stream {
public:
    timed_stream() = default;
    ~timed_stream();
    timed_stream(const timed_stream&) = delete;
    timed_stream& operator=(const timed_stream&) = delete;
    kiln_status create();
    cudaStream_t get() const { return stream_; }
    // Marks the start of a timed section on the stream.
    kiln_status start();
    // Marks the end, waits for it, and returns the seconds since start().
    kiln_status stop(double* seconds);
    kiln_status sync();

private:
    cudaStream_t stream_ = nullptr;
    cudaEvent_t begin_ = nullptr, end_ = nullptr;
};

// One wrong word a verify kernel found; offset in bytes from the start of the tested region.
struct error_record {
    unsigned long long offset_bytes, expected, actual;
    int sm;  // the SM (or CU) whose thread found it
    int reserved;
};

// Device side of the error log: every error is counted, the first `capacity` are kept.
struct error_log_ref {
    unsigned long long* count;
    error_record* records;
    unsigned int capacity;
};

#if defined(__CUDACC__) || defined(__HIPCC__) || defined(KILN_GPU_EMU)
// The multiprocessor the calling thread runs on: %smid on NVIDIA, the hardware id (shader engine
// and CU) on AMD, the emulated SM on emu. Recorded with every error, so a bad SM is named.
__device__ __forceinline__ int current_sm() {
#if defined(KILN_GPU_EMU)
    return ::kiln::emu::tl_place.sm;
#elif defined(__HIPCC__)
    return static_cast<int>(__smid());
#else
    unsigned int id;
    asm volatile("mov.u32 %0, %%smid;" : "=r"(id));
    return static_cast<int>(id);
#endif
}

// sm: the SM that made the wrong value, where the check knows it (gemm's tiles); else the checker's.
__device__ __forceinline__ void record_error(const error_log_ref& log, uint64_t offset_bytes, uint64_t expected, uint64_t actual,
                                             int sm) {
    const unsigned long long slot = atomicAdd(log.count, 1ull);
    if (slot < log.capacity) log.records[slot] = {offset_bytes, expected, actual, sm, 0};
}
__device__ __forceinline__ void record_error(const error_log_ref& log, uint64_t offset_bytes, uint64_t expected,
                                             uint64_t actual) {
    record_error(log, offset_bytes, expected, actual, current_sm());
}
#endif

// Host side of the error log.
class error_log {
public:
    kiln_status allocate(unsigned int capacity);
    error_log_ref ref() const { return {count_.as<unsigned long long>(), records_.as<error_record>(), capacity_}; }
    // Sets the count to zero (on the stream).
    kiln_status reset(cudaStream_t stream);
    // Waits for the stream, reports the errors found since reset() to out under pattern (all
    // counted, the first ones reported), resets, and returns how many there were in *found.
    kiln_status drain(cudaStream_t stream, const char* pattern, sink_writer& out, uint64_t* found, uint32_t word_bytes = 8);

private:
    device_buffer count_, records_;
    unsigned int capacity_ = 0;
};

// Checks for a launch error right after a kernel launch.
kiln_status check_launch(const char* kernel);

// Every kernel launch goes through here: <<<>>> on CUDA and HIP, the emulator's launch on the
// host; then the launch error is checked. The arguments convert to the kernel's parameter types.
template <typename... P, typename... A>
kiln_status launch(const char* name, void (*kernel)(P...), dim3 grid, dim3 block, cudaStream_t stream, A&&... args) {
    static_assert(sizeof...(P) == sizeof...(A), "one argument per kernel parameter");
#if defined(KILN_GPU_EMU)
    (void)::kiln::emu::launch(stream, grid, block, name, [&] { kernel(static_cast<P>(args)...); });
#else
    kernel<<<grid, block, 0, stream>>>(static_cast<P>(args)...);
#endif
    return check_launch(name);
}

// Everything a test needs about where it runs.
struct run_context {
    int device;
    const device_props* props;
    int device_count;  // devices of this backend, for peer copies
};

// Launch shape: the block and grid knobs when set; else `fallback` threads per block and enough
// blocks to fill every SM's thread slots.
int launch_block(const kiln_test_params* p, int fallback);
int launch_grid(const kiln_test_params* p, const device_props& props, int block);
bool was_cancelled(const volatile int32_t* cancel);

// Bytes a test takes, after defaults (for validate and run).
uint64_t stream_array_bytes(const kiln_test_params* p, uint64_t free_bytes);
uint64_t memtest_region_bytes(const kiln_test_params* p, uint64_t free_bytes);
uint64_t copy_buffer_bytes(const kiln_test_params* p, uint64_t free_bytes);
int gemm_matrix_n(const kiln_test_params* p, const device_props& props);
// The kiln_dtype bits gemm and power have kernels for on this device; gemm's default is all of
// them, power's is bf16. Device memory one gemm format needs at n.
uint32_t gemm_dtypes_available(const device_props& props);
uint32_t power_dtypes_available(const device_props& props);
uint64_t gemm_bytes_needed(int n, uint32_t dtype_bit);

kiln_status run_stream(const run_context& ctx, const kiln_test_params* p, sink_writer& out, const volatile int32_t* cancel);
kiln_status run_memtest(const run_context& ctx, const kiln_test_params* p, sink_writer& out, const volatile int32_t* cancel);
kiln_status run_gemm(const run_context& ctx, const kiln_test_params* p, sink_writer& out, const volatile int32_t* cancel);
kiln_status run_power(const run_context& ctx, const kiln_test_params* p, sink_writer& out, const volatile int32_t* cancel);
kiln_status run_copy(const run_context& ctx, const kiln_test_params* p, sink_writer& out, const volatile int32_t* cancel);
kiln_status run_launch(const run_context& ctx, const kiln_test_params* p, sink_writer& out, const volatile int32_t* cancel);

// Collectives (gpu_coll.cu): the library this backend loads (KILN_UNSUPPORTED with the reason when it
// cannot be used), a new communicator id, and a run over devices indices[0..count) with their props.
kiln_status coll_library(kiln_coll_library_info* out);
kiln_status coll_unique_id(uint8_t* out_id);
kiln_status run_coll(const std::vector<const device_props*>& props, const int32_t* indices, int32_t count,
                     const kiln_coll_params* p, const kiln_sink* sink, const volatile int32_t* cancel);

// GPUDirect RDMA (gpu_direct.cu; not on the emulated device): device memory of at least bytes, with its
// dma-buf where the driver makes one; and its release.
kiln_status export_memory(int32_t index, uint64_t bytes, kiln_gpu_memory* out);
void release_memory(int32_t index, kiln_gpu_memory* memory);

}  // namespace kiln::gpu
