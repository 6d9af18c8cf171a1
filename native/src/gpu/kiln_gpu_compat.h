/* kiln_gpu_compat.h - the one place where the GPU sources meet CUDA, HIP or the emulated device. The
 * sources are written against the CUDA runtime names; compiled by hipcc, each name used is mapped
 * to its HIP twin here; compiled for the host with KILN_GPU_EMU (libkiln-emu.so), they are
 * implemented by the emulator (emu/kiln_emu_runtime.h). Only the names the sources use are listed:
 * a new call needs a line here (and in the emulator), not an #ifdef there.
 * KILN_GPU_WMMA: the tensor-core path is nvcuda::wmma (CUDA, and the emulator); else MFMA (HIP). */
#ifndef KILN_GPU_COMPAT_H
#define KILN_GPU_COMPAT_H

#if defined(KILN_GPU_EMU)
#include "emu/kiln_emu_runtime.h"

#define KILN_GPU_WMMA 1
#define KILN_GPU_BACKEND_NAME "emu"
#define KILN_GPU_RUNTIME_NAME "emulated"

#elif defined(__HIPCC__) || defined(__HIP_PLATFORM_AMD__)
#define KILN_GPU_HIP 1
#include <hip/hip_runtime.h>
#include <hip/hip_fp16.h>

#define KILN_GPU_BACKEND_NAME "hip"
#define KILN_GPU_RUNTIME_NAME "HIP"

typedef hipError_t cudaError_t;
typedef hipStream_t cudaStream_t;
typedef hipEvent_t cudaEvent_t;
typedef hipDeviceProp_t cudaDeviceProp;
typedef hipDeviceAttribute_t cudaDeviceAttr;

#define cudaSuccess hipSuccess
#define cudaErrorNoDevice hipErrorNoDevice
#define cudaErrorMemoryAllocation hipErrorOutOfMemory
#define cudaErrorInsufficientDriver hipErrorInsufficientDriver
#define cudaErrorPeerAccessAlreadyEnabled hipErrorPeerAccessAlreadyEnabled
#define cudaErrorNotReady hipErrorNotReady
#define cudaStreamNonBlocking hipStreamNonBlocking
#define cudaHostAllocDefault hipHostMallocDefault
#define cudaMemcpyHostToDevice hipMemcpyHostToDevice
#define cudaMemcpyDeviceToHost hipMemcpyDeviceToHost
#define cudaMemcpyDeviceToDevice hipMemcpyDeviceToDevice
#define cudaDevAttrClockRate hipDeviceAttributeClockRate
#define cudaDevAttrMemoryClockRate hipDeviceAttributeMemoryClockRate
#define cudaDevAttrGlobalMemoryBusWidth hipDeviceAttributeMemoryBusWidth

#define cudaGetDeviceCount hipGetDeviceCount
#define cudaGetDeviceProperties hipGetDeviceProperties
#define cudaDeviceGetAttribute hipDeviceGetAttribute
#define cudaDeviceGetPCIBusId hipDeviceGetPCIBusId
#define cudaDeviceCanAccessPeer hipDeviceCanAccessPeer
#define cudaDeviceEnablePeerAccess hipDeviceEnablePeerAccess
#define cudaDriverGetVersion hipDriverGetVersion
#define cudaRuntimeGetVersion hipRuntimeGetVersion
#define cudaGetErrorName hipGetErrorName
#define cudaGetErrorString hipGetErrorString
#define cudaGetLastError hipGetLastError
#define cudaSetDevice hipSetDevice
#define cudaMemGetInfo hipMemGetInfo
#define cudaMalloc hipMalloc
#define cudaFree hipFree
#define cudaHostAlloc hipHostMalloc
#define cudaFreeHost hipHostFree
#define cudaMemcpy hipMemcpy
#define cudaMemcpyAsync hipMemcpyAsync
#define cudaMemcpyPeerAsync hipMemcpyPeerAsync
#define cudaMemsetAsync hipMemsetAsync
#define cudaStreamCreateWithFlags hipStreamCreateWithFlags
#define cudaStreamDestroy hipStreamDestroy
#define cudaStreamSynchronize hipStreamSynchronize
#define cudaStreamQuery hipStreamQuery
#define cudaEventCreate hipEventCreate
#define cudaEventDestroy hipEventDestroy
#define cudaEventRecord hipEventRecord
#define cudaEventSynchronize hipEventSynchronize
#define cudaEventElapsedTime hipEventElapsedTime

#else
#define KILN_GPU_CUDA 1
#define KILN_GPU_WMMA 1
#include <cuda_runtime.h>
#include <cuda_fp16.h>
#include <cuda_bf16.h>
#include <mma.h>

#define KILN_GPU_BACKEND_NAME "cuda"
#define KILN_GPU_RUNTIME_NAME "CUDA"
#endif

#endif /* KILN_GPU_COMPAT_H */
