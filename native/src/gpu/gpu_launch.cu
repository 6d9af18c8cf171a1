// gpu_launch.cu - kernel launch latency: launches of a one-thread kernel, each timed on the host
// from the launch call until the stream is seen idle (min, median, p99, max), then the cost of
// back-to-back asynchronous launches. Launches go in batches under a deadline: `iterations`
// launches are timed (default 10000), or as many as fit in duration_ms (default 5 s), whichever
// comes first, so the test's length is bounded whatever a launch costs. Every launch's error is
// checked, and every launch bumps a device counter that must equal the launches made: a launch
// that did not run is a data error.
#include "gpu_backend.h"

#include <algorithm>
#include <chrono>
#include <thread>
#include <vector>

namespace kiln::gpu {
namespace {

__global__ void launch_count_kernel(unsigned long long* counter) {
    if (threadIdx.x == 0) atomicAdd(counter, 1ull);
}

constexpr int k_default_launches = 10000;
constexpr uint64_t k_default_budget_ms = 5000;
constexpr int k_batch = 256;             // launches between checks of the cancel flag and the deadline
constexpr int k_async_launches = 1000;

}  // namespace

int launch_count(const kiln_test_params* p) { return p->iterations >= 1 ? p->iterations : k_default_launches; }

kiln_status run_launch(const run_context&, const kiln_test_params* p, sink_writer& out, const volatile int32_t* cancel) {
    timed_stream stream;
    KILN_GPU_CHECK(stream.create());
    device_buffer counter;
    KILN_GPU_CHECK(counter.allocate(sizeof(unsigned long long), "launch counter"));
    KILN_GPU_TRY(cudaMemsetAsync(counter.as<void>(), 0, sizeof(unsigned long long), stream.get()));
    unsigned long long* count = counter.as<unsigned long long>();
    // Warm up: the first launches load the module and fill caches.
    for (int i = 0; i < 100; ++i) KILN_GPU_CHECK(launch("launch_count_kernel", launch_count_kernel, 1, 1, stream.get(), count));
    KILN_GPU_CHECK(stream.sync());
    unsigned long long launched = 100;

    const int samples = launch_count(p);
    const double slowdown = (p->inject_slowdown > 0 && p->inject_slowdown < 1) ? p->inject_slowdown : 1.0;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(p->duration_ms ? p->duration_ms : k_default_budget_ms);
    std::vector<double> latency_us;
    latency_us.reserve(static_cast<size_t>(samples));
    bool cancelled = false, out_of_time = false;
    while (static_cast<int>(latency_us.size()) < samples) {
        if ((cancelled = was_cancelled(cancel))) break;
        if ((out_of_time = std::chrono::steady_clock::now() >= deadline)) break;
        out.progress(0.9 * static_cast<double>(latency_us.size()) / samples);
        const int batch = std::min(k_batch, samples - static_cast<int>(latency_us.size()));
        for (int i = 0; i < batch; ++i) {
            const auto t0 = std::chrono::steady_clock::now();
            KILN_GPU_CHECK(launch("launch_count_kernel", launch_count_kernel, 1, 1, stream.get(), count));
            const cudaError_t e = cudaStreamSynchronize(stream.get());
            auto t1 = std::chrono::steady_clock::now();
            if (e != cudaSuccess) return fail_call(e, "cudaStreamSynchronize after launch_count_kernel");
            ++launched;
            if (slowdown < 1.0) {  // injected: each launch takes 1/slowdown as long
                std::this_thread::sleep_until(t0 + (t1 - t0) / slowdown);
                t1 = std::chrono::steady_clock::now();
            }
            latency_us.push_back(std::chrono::duration<double, std::micro>(t1 - t0).count());
        }
    }

    double async_us = 0;
    if (!cancelled) {
        // Back to back: the host-side cost of one launch when nothing waits for it.
        const auto t0 = std::chrono::steady_clock::now();
        for (int i = 0; i < k_async_launches; ++i) KILN_GPU_CHECK(launch("launch_count_kernel", launch_count_kernel, 1, 1, stream.get(), count));
        KILN_GPU_CHECK(stream.sync());
        async_us = std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count() / k_async_launches / slowdown;
        launched += k_async_launches;
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
    out.metric("launches_timed", static_cast<double>(latency_us.size()), "count");
    // Out of time before the planned count: said so, not hidden (the rest is judged as measured).
    out.metric("launch_deadline_reached", out_of_time ? 1 : 0, "flag");
    out.metric("errors_total", static_cast<double>(out.errors_counted()), "count");
    if (cancelled) return fail(KILN_CANCELLED, "launch: cancelled after %zu launches", latency_us.size());
    out.progress(1.0);
    return KILN_OK;
}

}  // namespace kiln::gpu
