// gpu_common.cu - the plugin's plumbing: error text through the host, RAII
// buffers and streams, the device error log's host side, and launch-shape defaults.
#include "gpu_backend.h"

#include <algorithm>
#include <cstdarg>
#include <cstdio>

namespace kiln::gpu {

extern const kiln_host_services* g_host;

kiln_status fail(kiln_status status, const char* format, ...) {
    va_list args;
    va_start(args, format);
    fail_through(g_host, status, format, args);
    va_end(args);
    return status;
}

kiln_status fail_call(cudaError_t error, const char* call) {
    (void)cudaGetLastError();  // clear a non-sticky error so the next call starts clean
    const kiln_status st = (error == cudaErrorMemoryAllocation) ? KILN_OUT_OF_MEMORY : KILN_BACKEND_ERROR;
    return fail(st, "%s: %s: %s", call, cudaGetErrorName(error), cudaGetErrorString(error));
}

kiln_status device_buffer::allocate(uint64_t bytes, const char* what) {
    release();
    void* p = nullptr;
    const cudaError_t e = cudaMalloc(&p, bytes ? bytes : 1);
    if (e != cudaSuccess) {
        (void)cudaGetLastError();
        return fail(KILN_OUT_OF_MEMORY, "%s: cudaMalloc of %llu bytes failed: %s", what, static_cast<unsigned long long>(bytes),
                    cudaGetErrorString(e));
    }
    ptr_ = p;
    bytes_ = bytes;
    return KILN_OK;
}

void device_buffer::release() {
    if (ptr_) (void)cudaFree(ptr_);
    ptr_ = nullptr;
    bytes_ = 0;
}

kiln_status pinned_buffer::allocate(uint64_t bytes, const char* what) {
    void* p = nullptr;
    const cudaError_t e = cudaHostAlloc(&p, bytes ? bytes : 1, cudaHostAllocDefault);
    if (e != cudaSuccess) {
        (void)cudaGetLastError();
        return fail(KILN_OUT_OF_MEMORY, "%s: pinned host allocation of %llu bytes failed: %s", what,
                    static_cast<unsigned long long>(bytes), cudaGetErrorString(e));
    }
    ptr_ = p;
    return KILN_OK;
}

pinned_buffer::~pinned_buffer() {
    if (ptr_) (void)cudaFreeHost(ptr_);
}

kiln_status timed_stream::create() {
    KILN_GPU_TRY(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
    KILN_GPU_TRY(cudaEventCreate(&begin_));
    KILN_GPU_TRY(cudaEventCreate(&end_));
    return KILN_OK;
}

timed_stream::~timed_stream() {
    if (begin_) (void)cudaEventDestroy(begin_);
    if (end_) (void)cudaEventDestroy(end_);
    if (stream_) (void)cudaStreamDestroy(stream_);
}

kiln_status timed_stream::start() {
    KILN_GPU_TRY(cudaEventRecord(begin_, stream_));
    return KILN_OK;
}

kiln_status timed_stream::stop(double* seconds) {
    KILN_GPU_TRY(cudaEventRecord(end_, stream_));
    KILN_GPU_TRY(cudaEventSynchronize(end_));
    float ms = 0;
    KILN_GPU_TRY(cudaEventElapsedTime(&ms, begin_, end_));
    *seconds = ms / 1000.0;
    return KILN_OK;
}

kiln_status timed_stream::sync() {
    KILN_GPU_TRY(cudaStreamSynchronize(stream_));
    return KILN_OK;
}

kiln_status error_log::allocate(unsigned int capacity) {
    capacity_ = capacity ? capacity : 1;
    KILN_GPU_CHECK(count_.allocate(sizeof(unsigned long long), "error log"));
    KILN_GPU_CHECK(records_.allocate(uint64_t{capacity_} * sizeof(error_record), "error log"));
    KILN_GPU_TRY(cudaMemsetAsync(count_.as<void>(), 0, sizeof(unsigned long long), nullptr));
    KILN_GPU_TRY(cudaStreamSynchronize(nullptr));
    return KILN_OK;
}

kiln_status error_log::reset(cudaStream_t stream) {
    KILN_GPU_TRY(cudaMemsetAsync(count_.as<void>(), 0, sizeof(unsigned long long), stream));
    return KILN_OK;
}

kiln_status error_log::drain(cudaStream_t stream, const char* pattern, sink_writer& out, uint64_t* found,
                             uint32_t word_bytes) {
    unsigned long long count = 0;
    KILN_GPU_TRY(cudaMemcpyAsync(&count, count_.as<void>(), sizeof count, cudaMemcpyDeviceToHost, stream));
    KILN_GPU_TRY(cudaStreamSynchronize(stream));
    *found = count;
    if (count == 0) return KILN_OK;
    // Copy only the records the sink will still take; the rest are counted.
    const uint64_t reported = out.errors_counted();
    const uint64_t room = reported < out.max_reports() ? out.max_reports() - reported : 0;
    const uint64_t keep = std::min<uint64_t>(std::min<uint64_t>(count, capacity_), room);
    std::vector<error_record> records(keep);
    if (keep) {
        KILN_GPU_TRY(cudaMemcpyAsync(records.data(), records_.as<void>(), keep * sizeof(error_record), cudaMemcpyDeviceToHost, stream));
        KILN_GPU_TRY(cudaStreamSynchronize(stream));
    }
    for (const error_record& r : records) out.data_error(pattern, r.offset_bytes, r.expected, r.actual, word_bytes, r.sm);
    out.count_unreported(count - keep);  // counted, past the device log's or the sink's cap
    return reset(stream);
}

kiln_status check_launch(const char* kernel) {
    const cudaError_t e = cudaGetLastError();
    if (e != cudaSuccess) return fail(KILN_BACKEND_ERROR, "launch of %s: %s: %s", kernel, cudaGetErrorName(e), cudaGetErrorString(e));
    return KILN_OK;
}

int launch_block(const kiln_test_params* p, int fallback) { return p->block > 0 ? p->block : fallback; }

int launch_grid(const kiln_test_params* p, const device_props& props, int block) {
    if (p->grid > 0) return p->grid;
    // Enough resident threads to fill every SM, so the memory system sees many requests in flight.
    const int per_sm = props.max_threads_per_sm > 0 ? std::max(1, props.max_threads_per_sm / block) : 4;
    return std::max(1, props.sms * per_sm);
}

bool was_cancelled(const volatile int32_t* cancel) { return *cancel != 0; }

}  // namespace kiln::gpu
