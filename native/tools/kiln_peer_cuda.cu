// kiln_peer_cuda.cu - the yardsticks of the GPU targets, measured on the same card in the same run
// as Kiln (scripts/gpu-check.sh): cuBLAS BF16 GEMM (n^3, fp32 accumulate), cudaMemcpy
// device-to-device (bytes read + written, as Kiln's stream copy counts them) and host<->device
// copies from pinned memory. Prints "name value unit" lines. Usage: kiln-peer-cuda [DEVICE] [N] [BYTES]
#include <cublas_v2.h>
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdio>
#include <cstdlib>

#define CHECK(call)                                                                            \
    do {                                                                                       \
        cudaError_t e_ = (call);                                                               \
        if (e_ != cudaSuccess) {                                                               \
            fprintf(stderr, "kiln-peer-cuda: %s: %s\n", #call, cudaGetErrorString(e_));        \
            return 3;                                                                          \
        }                                                                                      \
    } while (0)
#define CHECK_BLAS(call)                                                                       \
    do {                                                                                       \
        cublasStatus_t s_ = (call);                                                            \
        if (s_ != CUBLAS_STATUS_SUCCESS) {                                                     \
            fprintf(stderr, "kiln-peer-cuda: %s: cuBLAS status %d\n", #call, static_cast<int>(s_)); \
            return 3;                                                                          \
        }                                                                                      \
    } while (0)

__global__ void fill_bf16(__nv_bfloat16* x, size_t n) {
    for (size_t i = blockIdx.x * size_t{blockDim.x} + threadIdx.x; i < n; i += size_t{gridDim.x} * blockDim.x)
        x[i] = __float2bfloat16(static_cast<float>(static_cast<int>(i % 9) - 4));
}

// Best of runs of fn, in seconds, timed with events on the default stream.
template <typename F>
int best_seconds(int runs, F fn, float* best) {
    cudaEvent_t a, b;
    CHECK(cudaEventCreate(&a));
    CHECK(cudaEventCreate(&b));
    *best = 1e30f;
    for (int r = 0; r < runs; ++r) {
        CHECK(cudaEventRecord(a));
        if (fn() != 0) return 3;
        CHECK(cudaEventRecord(b));
        CHECK(cudaEventSynchronize(b));
        float ms = 0;
        CHECK(cudaEventElapsedTime(&ms, a, b));
        if (ms / 1000.0f < *best) *best = ms / 1000.0f;
    }
    CHECK(cudaEventDestroy(a));
    CHECK(cudaEventDestroy(b));
    return 0;
}

int main(int argc, char** argv) {
    const int device = argc > 1 ? atoi(argv[1]) : 0;
    const int n = argc > 2 ? atoi(argv[2]) : 8192;
    const size_t bytes = argc > 3 ? strtoull(argv[3], nullptr, 0) : (size_t{1} << 30);
    CHECK(cudaSetDevice(device));
    cudaDeviceProp prop;
    CHECK(cudaGetDeviceProperties(&prop, device));
    printf("# device %d: %s\n", device, prop.name);

    // cuBLAS BF16 x BF16 -> FP32, n^3.
    __nv_bfloat16 *a = nullptr, *b = nullptr;
    float* c = nullptr;
    const size_t elems = size_t{static_cast<size_t>(n)} * n;
    CHECK(cudaMalloc(&a, elems * 2));
    CHECK(cudaMalloc(&b, elems * 2));
    CHECK(cudaMalloc(&c, elems * 4));
    fill_bf16<<<1024, 256>>>(a, elems);
    fill_bf16<<<1024, 256>>>(b, elems);
    CHECK(cudaDeviceSynchronize());
    cublasHandle_t handle;
    CHECK_BLAS(cublasCreate(&handle));
    const float one = 1.0f, zero = 0.0f;
    auto gemm = [&]() -> int {
        CHECK_BLAS(cublasGemmEx(handle, CUBLAS_OP_N, CUBLAS_OP_N, n, n, n, &one, a, CUDA_R_16BF, n, b, CUDA_R_16BF, n, &zero, c,
                                CUDA_R_32F, n, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
        return 0;
    };
    float seconds = 0;
    if (gemm() != 0 || best_seconds(5, gemm, &seconds) != 0) return 3;
    printf("cublas_bf16_tflops %.3f TFLOP/s\n", 2.0 * n * double(n) * n / seconds / 1e12);
    cublasDestroy(handle);
    CHECK(cudaFree(a));
    CHECK(cudaFree(b));
    CHECK(cudaFree(c));

    // cudaMemcpy device to device and host <-> device (pinned).
    void *d0 = nullptr, *d1 = nullptr, *h = nullptr;
    CHECK(cudaMalloc(&d0, bytes));
    CHECK(cudaMalloc(&d1, bytes));
    CHECK(cudaMallocHost(&h, bytes));
    CHECK(cudaMemset(d0, 1, bytes));
    auto d2d = [&]() -> int { CHECK(cudaMemcpyAsync(d1, d0, bytes, cudaMemcpyDeviceToDevice)); return 0; };
    auto h2d = [&]() -> int { CHECK(cudaMemcpyAsync(d0, h, bytes, cudaMemcpyHostToDevice)); return 0; };
    auto d2h = [&]() -> int { CHECK(cudaMemcpyAsync(h, d0, bytes, cudaMemcpyDeviceToHost)); return 0; };
    if (best_seconds(10, d2d, &seconds) != 0) return 3;
    printf("memcpy_d2d_gbps %.1f GB/s\n", 2.0 * bytes / seconds / 1e9);
    if (best_seconds(5, h2d, &seconds) != 0) return 3;
    printf("memcpy_h2d_gbps %.2f GB/s\n", bytes / seconds / 1e9);
    if (best_seconds(5, d2h, &seconds) != 0) return 3;
    printf("memcpy_d2h_gbps %.2f GB/s\n", bytes / seconds / 1e9);
    CHECK(cudaFree(d0));
    CHECK(cudaFree(d1));
    CHECK(cudaFreeHost(h));
    return 0;
}
