// gpu_launch.cu - kernel launch latency: many launches of a one-thread kernel, each timed on the
// host from the launch call until the stream is seen idle (min, median, p99), then the cost of
// back-to-back asynchronous launches. Every launch bumps a device counter, and the counter must
// equal the launches made: a launch that did not run is a data error.
#include "gpu_backend.h"

#include <algorithm>
#include <chrono>
#include <vector>

namespace kiln::gpu {
namespace {

__global__ void launch_count_kernel(unsigned long long* counter) {
    if (threadIdx.x == 0) atomicAdd(counter, 1ull);
}

constexpr int k_launches_per_iteration = 10000;
constexpr int k_cancel_check_every = 256;

}  // namespace

kiln_status run_launch(const run_context&, const kiln_test_params* p, sink_writer& out, const volatile int32_t* cancel) {
    timed_stream stream;
    KILN_GPU_CHECK(stream.create());
    device_buffer counter;
    KILN_GPU_CHECK(counter.allocate(sizeof(unsigned long long), "launch counter"));
    KILN_GPU_TRY(cudaMemsetAsync(counter.as<void>(), 0, sizeof(unsigned long long), stream.get()));
    // Warm up: the first launches load the module and fill caches.
    for (int i = 0; i < 100; ++i) launch_count_kernel<<<1, 1, 0, stream.get()>>>(counter.as<unsigned long long>());
    KILN_GPU_CHECK(check_launch("launch_count_kernel"));
    KILN_GPU_CHECK(stream.sync());
    unsigned long long launched = 100;

    const int samples = k_launches_per_iteration * std::max(1, p->iterations);
    std::vector<double> latency_us;
    latency_us.reserve(static_cast<size_t>(samples));
    bool cancelled = false;
    for (int i = 0; i < samples; ++i) {
        if (i % k_cancel_check_every == 0) {
            if ((cancelled = was_cancelled(cancel))) break;
            out.progress(0.9 * i / samples);
        }
        const auto t0 = std::chrono::steady_clock::now();
        launch_count_kernel<<<1, 1, 0, stream.get()>>>(counter.as<unsigned long long>());
        const cudaError_t e = cudaStreamSynchronize(stream.get());
        const auto t1 = std::chrono::steady_clock::now();
        if (e != cudaSuccess) return fail_call(e, "cudaStreamSynchronize after launch_count_kernel");
        ++launched;
        latency_us.push_back(std::chrono::duration<double, std::micro>(t1 - t0).count());
    }
    KILN_GPU_CHECK(check_launch("launch_count_kernel"));

    double async_us = 0;
    if (!cancelled) {
        // Back to back: the host-side cost of one launch when nothing waits for it.
        const auto t0 = std::chrono::steady_clock::now();
        for (int i = 0; i < k_launches_per_iteration; ++i) launch_count_kernel<<<1, 1, 0, stream.get()>>>(counter.as<unsigned long long>());
        KILN_GPU_CHECK(check_launch("launch_count_kernel"));
        KILN_GPU_CHECK(stream.sync());
        async_us = std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count() / k_launches_per_iteration;
        launched += k_launches_per_iteration;
    }

    unsigned long long ran = 0;
    KILN_GPU_TRY(cudaMemcpyAsync(&ran, counter.as<void>(), sizeof ran, cudaMemcpyDeviceToHost, stream.get()));
    KILN_GPU_CHECK(stream.sync());
    if (ran != launched) out.data_error("launch_count", 0, launched, ran);

    if (!latency_us.empty()) {
        std::sort(latency_us.begin(), latency_us.end());
        const size_t n = latency_us.size();
        out.metric("launch_latency_us_min", latency_us.front(), "us");
        out.metric("launch_latency_us_median", latency_us[n / 2], "us");
        out.metric("launch_latency_us_p99", latency_us[std::min(n - 1, n * 99 / 100)], "us");
        out.metric("launch_latency_us_max", latency_us.back(), "us");
    }
    if (async_us > 0) out.metric("launch_async_us", async_us, "us");
    out.metric("launches", static_cast<double>(launched), "count");
    out.metric("errors_total", static_cast<double>(out.errors_counted()), "count");
    if (cancelled) return fail(KILN_CANCELLED, "launch: cancelled after %zu launches", latency_us.size());
    out.progress(1.0);
    return KILN_OK;
}

}  // namespace kiln::gpu
