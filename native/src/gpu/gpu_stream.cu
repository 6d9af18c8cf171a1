// gpu_stream.cu - STREAM on device memory: copy, scale, add, triad, read-only and write-only over
// three arrays far larger than L2, with 16-byte accesses (vec=2), several independent loads in
// flight per thread (unroll) and a grid that fills every SM. The per-element ops are the CPU's
// (kiln_patterns.h, compiled without contraction), so after the last iteration every element of
// a, b, c must equal the recurrence replayed on the host, bit for bit; a verify kernel checks that.
// Each iteration's scalar alternates and the write op stores a new value every iteration, so a
// lost store cannot hide behind the previous iteration's value (kiln_patterns.h); the read-only op
// runs last and checks c, the write op's output, as it reads.
// Last, cudaMemcpy device-to-device on the same buffers is timed as the yardstick.
#include "gpu_backend.h"
#include "../common/kiln_patterns.h"

#include <algorithm>
#include <chrono>
#include <thread>

namespace kiln::gpu {
namespace {

constexpr int k_ops = 6;
const char* const k_op_names[k_ops] = {"copy", "scale", "add", "triad", "read", "write"};
// Bytes counted per element: read + written, as on the CPU (docs/METRICS.md).
const double k_op_bytes[k_ops] = {16, 16, 24, 24, 8, 8};

template <int V>
struct vec_of;
template <>
struct vec_of<1> {
    using type = double;
};
template <>
struct vec_of<2> {
    using type = double2;
};

__device__ __forceinline__ double scale_v(double q, double c) { return kiln_stream_scale(q, c); }
__device__ __forceinline__ double2 scale_v(double q, double2 c) { return make_double2(kiln_stream_scale(q, c.x), kiln_stream_scale(q, c.y)); }
__device__ __forceinline__ double add_v(double a, double b) { return kiln_stream_add(a, b); }
__device__ __forceinline__ double2 add_v(double2 a, double2 b) { return make_double2(kiln_stream_add(a.x, b.x), kiln_stream_add(a.y, b.y)); }
__device__ __forceinline__ double triad_v(double q, double b, double c) { return kiln_stream_triad(q, b, c); }
__device__ __forceinline__ double2 triad_v(double q, double2 b, double2 c) {
    return make_double2(kiln_stream_triad(q, b.x, c.x), kiln_stream_triad(q, b.y, c.y));
}
__device__ __forceinline__ double splat(double v, double) { return v; }
__device__ __forceinline__ double2 splat(double v, double2) { return make_double2(v, v); }

__device__ __forceinline__ void check_word(double v, uint64_t element, uint64_t want, const error_log_ref& log) {
    const uint64_t got = static_cast<uint64_t>(__double_as_longlong(v));
    if (got != want) record_error(log, element * 8u, want, got);
}
__device__ __forceinline__ void check_read(double v, uint64_t i, uint64_t want, const error_log_ref& log) { check_word(v, i, want, log); }
__device__ __forceinline__ void check_read(double2 v, uint64_t i, uint64_t want, const error_log_ref& log) {
    check_word(v.x, 2 * i, want, log);
    check_word(v.y, 2 * i + 1, want, log);
}

template <typename T>
struct two {
    T x, y;
};

// Grid-stride loop over n vectors: U loads issued before their U stores, then the tail.
template <int U, typename Load, typename Store>
__device__ __forceinline__ void unrolled(uint64_t n, Load load, Store store) {
    const uint64_t stride = static_cast<uint64_t>(gridDim.x) * blockDim.x;
    uint64_t i = static_cast<uint64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
    for (; i + (U - 1) * stride < n; i += U * stride) {
        decltype(load(i)) r[U];
#pragma unroll
        for (int u = 0; u < U; ++u) r[u] = load(i + u * stride);
#pragma unroll
        for (int u = 0; u < U; ++u) store(i + u * stride, r[u]);
    }
    for (; i < n; i += stride) store(i, load(i));
}

template <int V, int U>
__global__ void stream_op_kernel(int op, double* __restrict__ a, double* __restrict__ b, double* __restrict__ c, uint64_t n_vec,
                                 double q, double c_value, error_log_ref log) {
    using T = typename vec_of<V>::type;
    T* av = reinterpret_cast<T*>(a);
    T* bv = reinterpret_cast<T*>(b);
    T* cv = reinterpret_cast<T*>(c);
    switch (op) {
    case 0:
        unrolled<U>(n_vec, [&](uint64_t i) { return av[i]; }, [&](uint64_t i, T v) { cv[i] = v; });
        break;
    case 1:
        unrolled<U>(n_vec, [&](uint64_t i) { return cv[i]; }, [&](uint64_t i, T v) { bv[i] = scale_v(q, v); });
        break;
    case 2:
        unrolled<U>(n_vec, [&](uint64_t i) { return two<T>{av[i], bv[i]}; }, [&](uint64_t i, two<T> v) { cv[i] = add_v(v.x, v.y); });
        break;
    case 3:
        unrolled<U>(n_vec, [&](uint64_t i) { return two<T>{bv[i], cv[i]}; }, [&](uint64_t i, two<T> v) { av[i] = triad_v(q, v.x, v.y); });
        break;
    case 4: {
        // After the write op: c must hold its value (or, without write, what add or copy left).
        const uint64_t want = static_cast<uint64_t>(__double_as_longlong(c_value));
        unrolled<U>(n_vec, [&](uint64_t i) { return cv[i]; }, [&](uint64_t i, T v) { check_read(v, i, want, log); });
        break;
    }
    default: {
        const T value = splat(c_value, T{});
        unrolled<U>(n_vec, [&](uint64_t) { return value; }, [&](uint64_t i, T v) { cv[i] = v; });
        break;
    }
    }
}

__global__ void stream_fill_kernel(double* a, double* b, double* c, uint64_t n, kiln_stream_values v) {
    const uint64_t stride = static_cast<uint64_t>(gridDim.x) * blockDim.x;
    for (uint64_t i = static_cast<uint64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) {
        a[i] = v.a;
        b[i] = v.b;
        c[i] = v.c;
    }
}

__global__ void stream_verify_kernel(const double* __restrict__ x, uint64_t n, double expected, error_log_ref log) {
    const uint64_t want = static_cast<uint64_t>(__double_as_longlong(expected));
    const uint64_t stride = static_cast<uint64_t>(gridDim.x) * blockDim.x;
    for (uint64_t i = static_cast<uint64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) check_word(x[i], i, want, log);
}

using op_kernel_fn = void (*)(int, double*, double*, double*, uint64_t, double, double, error_log_ref);
const int k_op_order[k_ops] = KILN_STREAM_ORDER_INIT;

template <int V>
op_kernel_fn pick_unroll(int unroll) {
    switch (unroll) {
    case 1: return stream_op_kernel<V, 1>;
    case 2: return stream_op_kernel<V, 2>;
    case 8: return stream_op_kernel<V, 8>;
    default: return stream_op_kernel<V, 4>;
    }
}

}  // namespace

uint64_t stream_array_bytes(const kiln_test_params* p, uint64_t free_bytes) {
    uint64_t bytes = p->size_bytes;
    if (!bytes && p->size_fraction > 0) bytes = static_cast<uint64_t>(p->size_fraction * free_bytes / 3.0);
    // Default: 1 GiB per array (far beyond any L2), less on a device with little free memory.
    if (!bytes) bytes = std::min<uint64_t>(1ull << 30, free_bytes / 4);
    return bytes / 16u * 16u;
}

kiln_status run_stream(const run_context& ctx, const kiln_test_params* p, sink_writer& out, const volatile int32_t* cancel) {
    size_t free_b = 0, total_b = 0;
    KILN_GPU_TRY(cudaMemGetInfo(&free_b, &total_b));
    const uint64_t n = stream_array_bytes(p, free_b) / 8u;  // elements, even
    const int vec = p->vec ? p->vec : 2;
    const int unroll = p->unroll ? p->unroll : 4;
    const int block = launch_block(p, 256);
    const int grid = launch_grid(p, *ctx.props, block);
    const op_kernel_fn kernel = vec == 1 ? pick_unroll<1>(unroll) : pick_unroll<2>(unroll);
    const uint64_t n_vec = n / static_cast<uint64_t>(vec);

    timed_stream stream;
    KILN_GPU_CHECK(stream.create());
    device_buffer a, b, c;
    KILN_GPU_CHECK(a.allocate(n * 8u, "stream array a"));
    KILN_GPU_CHECK(b.allocate(n * 8u, "stream array b"));
    KILN_GPU_CHECK(c.allocate(n * 8u, "stream array c"));
    error_log log;
    KILN_GPU_CHECK(log.allocate(std::max(1u, std::min(p->max_error_reports, 4096u))));
    kiln_stream_values now = kiln_stream_initial();
    KILN_GPU_CHECK(launch("stream_fill_kernel", stream_fill_kernel, grid, block, stream.get(), a.as<double>(), b.as<double>(), c.as<double>(),
                          n, now));
    KILN_GPU_CHECK(stream.sync());

    const uint32_t all = KILN_STREAM_ALL, mask = p->op_mask ? (p->op_mask & all) : all;
    const double slowdown = (p->inject_slowdown > 0 && p->inject_slowdown < 1) ? p->inject_slowdown : 1.0;
    const int iterations = std::max(1, p->iterations);
    const double duration_s = p->duration_ms / 1000.0;
    double best[k_ops] = {0, 0, 0, 0, 0, 0};
    int completed = 0;
    bool cancelled = false;
    const auto start = std::chrono::steady_clock::now();
    auto elapsed = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(); };
    for (uint64_t k = 0;; ++k) {
        now = kiln_stream_step(now, mask, k);
        const double q = kiln_stream_scalar(k);
        for (int slot = 0; slot < k_ops && !cancelled; ++slot) {
            const int op = k_op_order[slot];
            if (!(mask & (1u << op))) continue;
            cancelled = was_cancelled(cancel);
            if (cancelled) break;
            KILN_GPU_CHECK(stream.start());
            KILN_GPU_CHECK(launch("stream_op_kernel", kernel, grid, block, stream.get(), op, a.as<double>(), b.as<double>(), c.as<double>(), n_vec,
                                  q, now.c, log.ref()));
            double seconds = 0;
            KILN_GPU_CHECK(stream.stop(&seconds));
            if (slowdown < 1.0) {
                std::this_thread::sleep_for(std::chrono::duration<double>(seconds * (1.0 / slowdown - 1.0)));
                seconds /= slowdown;
            }
            const double gbps = k_op_bytes[op] * static_cast<double>(n) / seconds / 1e9;
            best[op] = std::max(best[op], gbps);
            out.metric(std::string(k_op_names[op]) + "_gbps", gbps, "GB/s");
            if (op == 4) {
                uint64_t found = 0;
                KILN_GPU_CHECK(log.drain(stream.get(), "stream_read", out, &found));
            }
        }
        if (cancelled) break;
        ++completed;
        const double t = elapsed();
        out.progress(duration_s > 0 ? std::min(t / duration_s, static_cast<double>(completed) / iterations)
                                    : static_cast<double>(completed) / iterations);
        if (completed >= iterations && (duration_s <= 0 || t >= duration_s)) break;
    }

    if (!cancelled) {
        // stream:corrupt=N: N elements of a changed after the last op, before the verify, at the
        // positions kiln_injection_positions predicts; the first by one ulp (as on the CPU), so a
        // verify that tolerated rounding would miss it.
        std::vector<uint64_t> corrupt_words(static_cast<size_t>(std::max(0, p->inject_corrupt)));
        std::vector<uint32_t> corrupt_bits(corrupt_words.size());
        corrupt_words.resize(static_cast<size_t>(
            kiln_injection_positions_fill(p->inject_seed, p->inject_corrupt, n, corrupt_words.data(), corrupt_bits.data())));
        for (size_t k = 0; k < corrupt_words.size(); ++k) {
            uint64_t value = 0;
            double* at = a.as<double>() + corrupt_words[k];
            KILN_GPU_TRY(cudaMemcpy(&value, at, 8, cudaMemcpyDeviceToHost));
            value ^= uint64_t{1} << (k == 0 ? 0 : corrupt_bits[k]);
            KILN_GPU_TRY(cudaMemcpy(at, &value, 8, cudaMemcpyHostToDevice));
        }
        // Every element of every array against the replayed recurrence.
        const double expected[3] = {now.a, now.b, now.c};
        const double* arrays[3] = {a.as<double>(), b.as<double>(), c.as<double>()};
        static const char* const names[3] = {"stream_a", "stream_b", "stream_c"};
        for (int k = 0; k < 3; ++k) {
            KILN_GPU_CHECK(launch("stream_verify_kernel", stream_verify_kernel, grid, block, stream.get(), arrays[k], n, expected[k], log.ref()));
            uint64_t found = 0;
            KILN_GPU_CHECK(log.drain(stream.get(), names[k], out, &found));
        }
        for (int op = 0; op < k_ops; ++op)
            if (mask & (1u << op)) out.metric(std::string(k_op_names[op]) + "_gbps_best", best[op], "GB/s");
        // The yardstick: the runtime's own device-to-device copy of the same buffers, counted the same way.
        double memcpy_best = 0;
        for (int r = 0; r < 3 && !was_cancelled(cancel); ++r) {
            KILN_GPU_CHECK(stream.start());
            KILN_GPU_TRY(cudaMemcpyAsync(c.as<void>(), a.as<void>(), n * 8u, cudaMemcpyDeviceToDevice, stream.get()));
            double seconds = 0;
            KILN_GPU_CHECK(stream.stop(&seconds));
            memcpy_best = std::max(memcpy_best, 16.0 * static_cast<double>(n) / seconds / 1e9);
        }
        if (memcpy_best > 0) out.metric("memcpy_d2d_gbps", memcpy_best, "GB/s");
    }
    out.metric("array_bytes", static_cast<double>(n * 8u), "bytes");
    out.metric("iterations", completed, "count");
    out.metric("block", block, "count");
    out.metric("grid", grid, "count");
    out.metric("vec", vec, "count");
    out.metric("unroll", unroll, "count");
    out.metric("errors_total", static_cast<double>(out.errors_counted()), "count");
    if (cancelled) return fail(KILN_CANCELLED, "stream: cancelled after %d iterations", completed);
    return KILN_OK;
}

}  // namespace kiln::gpu
