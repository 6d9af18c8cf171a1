// gpu_direct.cu - device memory an HCA can reach, for GPUDirect RDMA (kiln_rdma_use_gpu): allocated on
// the device, and on CUDA exported as a dma-buf through the driver (cuMemGetHandleForAddressRange from
// libcuda.so.1, looked up at run time: CUDA 11.7+, Linux 5.12+, the open kernel modules), which the
// RDMA plugin registers with ibv_reg_dmabuf_mr. Where there is no dma-buf (an older driver, HIP) the
// RDMA plugin registers the device address itself, which peer memory (nvidia-peermem, amdgpu's) serves.
// The emulated device's memory is host memory: its backend has no such table entry.
#include "gpu_backend.h"

#if defined(KILN_GPU_CUDA)
#include <cuda.h>
#endif

#include <dlfcn.h>
#include <unistd.h>

#include <cstdio>

namespace kiln::gpu {

#if !defined(KILN_GPU_EMU)
namespace {
constexpr uint64_t k_page = 2ull << 20;  // GPU pages: a dma-buf range is page aligned

#if defined(KILN_GPU_CUDA)
using get_handle_fn = CUresult (*)(void*, CUdeviceptr, size_t, CUmemRangeHandleType, unsigned long long);

get_handle_fn dmabuf_export() {
    static get_handle_fn fn = [] {
        void* driver = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
        return driver ? reinterpret_cast<get_handle_fn>(dlsym(driver, "cuMemGetHandleForAddressRange")) : nullptr;
    }();
    return fn;
}
#endif
}  // namespace

kiln_status export_memory(int32_t index, uint64_t bytes, kiln_gpu_memory* out) {
    out->dmabuf_fd = -1;
    KILN_GPU_TRY(cudaSetDevice(index));
    const uint64_t size = (bytes + k_page - 1) / k_page * k_page;
    void* p = nullptr;
    if (cudaError_t e = cudaMalloc(&p, size); e != cudaSuccess) {
        snprintf(out->via, sizeof out->via, "cudaMalloc of %s: %s", format_bytes(static_cast<double>(size)).c_str(), cudaGetErrorString(e));
        return fail_call(e, "cudaMalloc");
    }
    out->pointer = p;
    out->bytes = size;
#if defined(KILN_GPU_CUDA)
    int fd = -1;
    const get_handle_fn get = dmabuf_export();
    const CUresult rc = get ? get(&fd, reinterpret_cast<CUdeviceptr>(p), size, CU_MEM_RANGE_HANDLE_TYPE_DMA_BUF_FD, 0) : CUDA_ERROR_NOT_SUPPORTED;
    if (rc == CUDA_SUCCESS && fd >= 0) {
        out->dmabuf_fd = fd;
        snprintf(out->via, sizeof out->via, "dma-buf");
    } else {
        snprintf(out->via, sizeof out->via, "no dma-buf (cuMemGetHandleForAddressRange: %s), so peer memory",
                 get ? "refused" : "not in this driver");
    }
#else
    snprintf(out->via, sizeof out->via, "peer memory (amdgpu's)");
#endif
    return KILN_OK;
}

void release_memory(int32_t index, kiln_gpu_memory* memory) {
    if (memory->dmabuf_fd >= 0) close(memory->dmabuf_fd);
    if (memory->pointer) {
        (void)cudaSetDevice(index);
        (void)cudaFree(memory->pointer);
    }
    memory->pointer = nullptr;
    memory->dmabuf_fd = -1;
}
#endif

}  // namespace kiln::gpu
