// gpu_copy.cu - copies and their bandwidth, every one verified: host-to-device, device-to-host and
// both at once from pinned host buffers on the device's own NUMA node, device-to-device, and to
// every other device (this device's row of the peer-to-peer matrix) through the copy engines and
// through an SM kernel writing into the peer's memory. The data is a seeded word per offset
// (kiln_mix64); every repetition's destination is poisoned first and checked after, by a kernel on
// the device that received it or on the host, and the bytes checked are counted (bytes_verified).
#include "gpu_backend.h"
#include "../common/kiln_patterns.h"

#include <pthread.h>
#include <sched.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>
#include <vector>

namespace kiln::gpu {
namespace {

constexpr int k_block = 256;

__device__ __host__ __forceinline__ uint64_t copy_word(uint64_t seed, uint64_t i) { return kiln_mix64(seed ^ (i * 0x9E3779B97F4A7C15ull)); }

__global__ void copy_verify_kernel(const uint64_t* __restrict__ x, uint64_t words, uint64_t seed, error_log_ref log) {
    const uint64_t stride = static_cast<uint64_t>(gridDim.x) * blockDim.x;
    for (uint64_t i = static_cast<uint64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < words; i += stride) {
        const uint64_t want = copy_word(seed, i);
        if (x[i] != want) record_error(log, i * 8u, want, x[i]);
    }
}

// 16-byte copy, four loads in flight per thread; dst may be a peer device's memory.
__global__ void copy_sm_kernel(const ulonglong2* __restrict__ src, ulonglong2* __restrict__ dst, uint64_t pairs) {
    const uint64_t stride = static_cast<uint64_t>(gridDim.x) * blockDim.x;
    uint64_t i = static_cast<uint64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
    for (; i + 3 * stride < pairs; i += 4 * stride) {
        const ulonglong2 v0 = src[i], v1 = src[i + stride], v2 = src[i + 2 * stride], v3 = src[i + 3 * stride];
        dst[i] = v0;
        dst[i + stride] = v1;
        dst[i + 2 * stride] = v2;
        dst[i + 3 * stride] = v3;
    }
    for (; i < pairs; i += stride) dst[i] = src[i];
}

std::string read_line(const std::string& path) {
    std::ifstream f(path);
    std::string line;
    std::getline(f, line);
    return line;
}

// Pins the calling thread to the CPUs of the device's NUMA node for the copy test, so pinned
// host pages are allocated there; restores the previous affinity on every path.
class numa_binding {
public:
    explicit numa_binding(const std::string& pci_bus_id) {
        if (pci_bus_id.empty()) return;
        // A missing file is an unknown node, not node 0 (the emulated devices have none).
        const std::string text = read_line("/sys/bus/pci/devices/" + pci_bus_id + "/numa_node");
        node_ = text.empty() ? -1 : atoi(text.c_str());
        if (node_ < 0) return;
        const std::string list = read_line("/sys/devices/system/node/node" + std::to_string(node_) + "/cpulist");
        cpu_set_t set;
        CPU_ZERO(&set);
        std::stringstream ss(list);
        std::string part;
        int count = 0;
        while (std::getline(ss, part, ',')) {
            int lo = 0, hi = 0;
            const int n = sscanf(part.c_str(), "%d-%d", &lo, &hi);
            if (n < 1) continue;
            if (n == 1) hi = lo;
            for (int c = lo; c <= hi && c < CPU_SETSIZE; ++c, ++count) CPU_SET(c, &set);
        }
        if (count == 0 || pthread_getaffinity_np(pthread_self(), sizeof saved_, &saved_) != 0) return;
        bound_ = pthread_setaffinity_np(pthread_self(), sizeof set, &set) == 0;
    }
    ~numa_binding() {
        if (bound_) pthread_setaffinity_np(pthread_self(), sizeof saved_, &saved_);
    }
    numa_binding(const numa_binding&) = delete;
    numa_binding& operator=(const numa_binding&) = delete;
    int node() const { return bound_ ? node_ : -1; }

private:
    int node_ = -1;
    bool bound_ = false;
    cpu_set_t saved_;
};

// Restores the calling thread's current device on every path.
class device_scope {
public:
    explicit device_scope(int home) : home_(home) {}
    ~device_scope() { (void)cudaSetDevice(home_); }

private:
    int home_;
};

}  // namespace

uint64_t copy_buffer_bytes(const kiln_test_params* p, uint64_t free_bytes) {
    // Default: 256 MiB (far past any cache), less on a device with little memory: the test holds
    // two buffers here and one on each peer.
    const uint64_t bytes = p->size_bytes ? p->size_bytes : std::min<uint64_t>(256ull << 20, free_bytes / 8);
    return bytes / 16u * 16u;
}

kiln_status run_copy(const run_context& ctx, const kiln_test_params* p, sink_writer& out, const volatile int32_t* cancel) {
    size_t free_b = 0, total_b = 0;
    KILN_GPU_TRY(cudaMemGetInfo(&free_b, &total_b));
    const uint64_t bytes = copy_buffer_bytes(p, free_b), words = bytes / 8u;
    const int reps = std::max(3, p->iterations);
    const uint64_t seed = p->seed;
    const int grid = launch_grid(p, *ctx.props, launch_block(p, k_block));
    const int block = launch_block(p, k_block);
    numa_binding numa(ctx.props->pci_bus_id);
    out.metric("numa_node", numa.node(), "index");

    timed_stream stream, other;
    KILN_GPU_CHECK(stream.create());
    KILN_GPU_CHECK(other.create());
    error_log log;
    KILN_GPU_CHECK(log.allocate(std::max(1u, std::min(p->max_error_reports, 4096u))));
    pinned_buffer host_src, host_dst;
    KILN_GPU_CHECK(host_src.allocate(bytes, "copy host source"));
    KILN_GPU_CHECK(host_dst.allocate(bytes, "copy host destination"));
    device_buffer d0, d1;
    KILN_GPU_CHECK(d0.allocate(bytes, "copy device buffer"));
    KILN_GPU_CHECK(d1.allocate(bytes, "copy device buffer"));
    uint64_t* src = host_src.as<uint64_t>();
    for (uint64_t i = 0; i < words; ++i) src[i] = copy_word(seed, i);

    // Every repetition's destination is poisoned before its copy (all bits set: never a data word
    // but with probability 2^-64) and verified after it, so a copy that leaves part of its
    // destination unwritten cannot pass on the previous repetition's correct bytes.
    uint64_t verified = 0;
    auto verify_device = [&](const void* x, const std::string& pattern) -> kiln_status {
        KILN_GPU_CHECK(launch("copy_verify_kernel", copy_verify_kernel, grid, block, stream.get(), static_cast<const uint64_t*>(x), words,
                              seed, log.ref()));
        uint64_t found = 0;
        KILN_GPU_CHECK(log.drain(stream.get(), pattern.c_str(), out, &found));
        verified += bytes;
        return KILN_OK;
    };
    auto verify_host = [&](const std::string& pattern) {
        const uint64_t* dst = host_dst.as<uint64_t>();
        for (uint64_t i = 0; i < words; ++i)
            if (dst[i] != copy_word(seed, i)) out.data_error(pattern.c_str(), i * 8u, copy_word(seed, i), dst[i]);
        verified += bytes;
    };
    auto poison_device = [&](void* x, cudaStream_t s) -> kiln_status {
        KILN_GPU_TRY(cudaMemsetAsync(x, 0xFF, bytes, s));
        return KILN_OK;
    };
    auto poison_host = [&] { memset(host_dst.as<void>(), 0xFF, bytes); };
    // copy:corrupt=N: N words of the first host-to-device copy's destination changed after it,
    // before its verify, at the positions kiln_injection_positions predicts.
    std::vector<uint64_t> corrupt_words(static_cast<size_t>(std::max(0, p->inject_corrupt)));
    std::vector<uint32_t> corrupt_bits(corrupt_words.size());
    corrupt_words.resize(static_cast<size_t>(
        kiln_injection_positions_fill(p->inject_seed, p->inject_corrupt, words, corrupt_words.data(), corrupt_bits.data())));
    auto corrupt = [&](void* x) -> kiln_status {
        KILN_GPU_CHECK(stream.sync());
        for (size_t k = 0; k < corrupt_words.size(); ++k) {
            uint64_t value = 0;
            uint64_t* at = static_cast<uint64_t*>(x) + corrupt_words[k];
            KILN_GPU_TRY(cudaMemcpy(&value, at, 8, cudaMemcpyDeviceToHost));
            value ^= uint64_t{1} << corrupt_bits[k];
            KILN_GPU_TRY(cudaMemcpy(at, &value, 8, cudaMemcpyHostToDevice));
        }
        corrupt_words.clear();  // once
        return KILN_OK;
    };
    // Times reps copies made by `copy` on the main stream, each after `prepare` and followed by
    // `check` (neither timed); reports name per rep, and name_best unless name is a member of the
    // peer matrix (p2p_ce_gbps_0_1: its best is the family's).
    auto timed = [&](const std::string& name, double bytes_counted, bool best_row, auto prepare, auto copy, auto check) -> kiln_status {
        double best = 0;
        for (int r = 0; r < reps; ++r) {
            if (was_cancelled(cancel)) return KILN_CANCELLED;
            KILN_GPU_CHECK(prepare());
            KILN_GPU_CHECK(stream.start());
            KILN_GPU_CHECK(copy());
            double seconds = 0;
            KILN_GPU_CHECK(stream.stop(&seconds));
            const double gbps = bytes_counted / seconds / 1e9;
            best = std::max(best, gbps);
            out.metric(name, gbps, "GB/s");
            KILN_GPU_CHECK(check());
        }
        if (best_row) out.metric(name + "_best", best, "GB/s");
        return KILN_OK;
    };
    auto finish = [&](kiln_status st) {
        out.metric("buffer_bytes", static_cast<double>(bytes), "bytes");
        out.metric("bytes_verified", static_cast<double>(verified), "bytes");
        out.metric("errors_total", static_cast<double>(out.errors_counted()), "count");
        if (st == KILN_CANCELLED) return fail(KILN_CANCELLED, "copy: cancelled");
        return st;
    };
#define KILN_COPY_STEP(expr)                          \
    do {                                              \
        const kiln_status st_ = (expr);               \
        if (st_ != KILN_OK) return finish(st_);       \
    } while (0)

    // Host to device, device to host: bytes copied.
    KILN_COPY_STEP(timed(
        "h2d_gbps", static_cast<double>(bytes), true, [&] { return poison_device(d0.as<void>(), stream.get()); },
        [&]() -> kiln_status {
            KILN_GPU_TRY(cudaMemcpyAsync(d0.as<void>(), src, bytes, cudaMemcpyHostToDevice, stream.get()));
            return KILN_OK;
        },
        [&]() -> kiln_status {
            KILN_GPU_CHECK(corrupt(d0.as<void>()));
            return verify_device(d0.as<void>(), "h2d");
        }));
    KILN_COPY_STEP(timed(
        "d2h_gbps", static_cast<double>(bytes), true, [&]() -> kiln_status { poison_host(); return KILN_OK; },
        [&]() -> kiln_status {
            KILN_GPU_TRY(cudaMemcpyAsync(host_dst.as<void>(), d0.as<void>(), bytes, cudaMemcpyDeviceToHost, stream.get()));
            return KILN_OK;
        },
        [&]() -> kiln_status { verify_host("d2h"); return KILN_OK; }));

    // Both directions at once, on two streams: bytes copied in both directions / wall time.
    {
        double best = 0;
        for (int r = 0; r < reps; ++r) {
            if (was_cancelled(cancel)) return finish(KILN_CANCELLED);
            KILN_COPY_STEP(poison_device(d1.as<void>(), stream.get()));
            KILN_COPY_STEP(stream.sync());
            poison_host();
            const auto t0 = std::chrono::steady_clock::now();
            KILN_GPU_TRY(cudaMemcpyAsync(d1.as<void>(), src, bytes, cudaMemcpyHostToDevice, stream.get()));
            KILN_GPU_TRY(cudaMemcpyAsync(host_dst.as<void>(), d0.as<void>(), bytes, cudaMemcpyDeviceToHost, other.get()));
            KILN_COPY_STEP(stream.sync());
            KILN_COPY_STEP(other.sync());
            const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
            const double gbps = 2.0 * bytes / seconds / 1e9;
            best = std::max(best, gbps);
            out.metric("bidir_gbps", gbps, "GB/s");
            KILN_COPY_STEP(verify_device(d1.as<void>(), "bidir_h2d"));
            verify_host("bidir_d2h");
        }
        out.metric("bidir_gbps_best", best, "GB/s");
    }

    // Device to device: bytes read + written, as stream copy counts them.
    KILN_COPY_STEP(timed(
        "d2d_gbps", 2.0 * bytes, true, [&] { return poison_device(d1.as<void>(), stream.get()); },
        [&]() -> kiln_status {
            KILN_GPU_TRY(cudaMemcpyAsync(d1.as<void>(), d0.as<void>(), bytes, cudaMemcpyDeviceToDevice, stream.get()));
            return KILN_OK;
        },
        [&] { return verify_device(d1.as<void>(), "d2d"); }));

    // This device's row of the peer matrix (members <family>_<this>_<peer>, docs/METRICS.md): copy
    // engines, then an SM kernel writing to the peer. <family>_pairs says how many were measured,
    // so a node with one device shows an empty matrix rather than a missing one.
    device_scope scope(ctx.device);
    int ce_pairs = 0, sm_pairs = 0;
    for (int peer = 0; peer < ctx.device_count; ++peer) {
        if (peer == ctx.device) continue;
        const std::string to = "_" + std::to_string(ctx.device) + "_" + std::to_string(peer);
        int can_access = 0;
        KILN_GPU_TRY(cudaDeviceCanAccessPeer(&can_access, ctx.device, peer));
        out.metric("p2p_access" + to, can_access, "flag");
        KILN_GPU_TRY(cudaSetDevice(peer));
        device_buffer remote;
        const kiln_status alloc = remote.allocate(bytes, "peer buffer");
        KILN_GPU_TRY(cudaSetDevice(ctx.device));
        if (alloc != KILN_OK) {
            // The peer is busy (its own burn holds its memory): a gap in the matrix, said so.
            out.metric("p2p_skipped" + to, 1, "flag");
            continue;
        }
        if (can_access) {
            const cudaError_t e = cudaDeviceEnablePeerAccess(peer, 0);
            if (e != cudaSuccess && e != cudaErrorPeerAccessAlreadyEnabled) return finish(fail_call(e, "cudaDeviceEnablePeerAccess"));
            (void)cudaGetLastError();
        }
        // The peer's buffer is checked on the peer, by its own kernel.
        auto verify_peer = [&](const std::string& pattern) -> kiln_status {
            KILN_GPU_TRY(cudaSetDevice(peer));
            timed_stream peer_stream;
            kiln_status st = peer_stream.create();
            error_log peer_log;
            if (st == KILN_OK) st = peer_log.allocate(std::max(1u, std::min(p->max_error_reports, 4096u)));
            if (st == KILN_OK) {
                st = launch("copy_verify_kernel", copy_verify_kernel, grid, block, peer_stream.get(), remote.as<uint64_t>(), words, seed,
                            peer_log.ref());
            }
            uint64_t found = 0;
            if (st == KILN_OK) st = peer_log.drain(peer_stream.get(), pattern.c_str(), out, &found);
            KILN_GPU_TRY(cudaSetDevice(ctx.device));
            if (st == KILN_OK) verified += bytes;
            return st;
        };
        auto poison_peer = [&]() -> kiln_status {
            KILN_GPU_TRY(cudaSetDevice(peer));
            const cudaError_t e = cudaMemsetAsync(remote.as<void>(), 0xFF, bytes, nullptr);
            const cudaError_t w = e == cudaSuccess ? cudaStreamSynchronize(nullptr) : e;
            KILN_GPU_TRY(cudaSetDevice(ctx.device));
            KILN_GPU_TRY(w);
            return KILN_OK;
        };
        KILN_COPY_STEP(timed(
            "p2p_ce_gbps" + to, static_cast<double>(bytes), false, poison_peer,
            [&]() -> kiln_status {
                KILN_GPU_TRY(cudaMemcpyPeerAsync(remote.as<void>(), peer, d0.as<void>(), ctx.device, bytes, stream.get()));
                return KILN_OK;
            },
            [&] { return verify_peer("p2p_ce" + to); }));
        ++ce_pairs;
        if (can_access) {
            KILN_COPY_STEP(timed(
                "p2p_sm_gbps" + to, static_cast<double>(bytes), false, poison_peer,
                [&]() -> kiln_status {
                    return launch("copy_sm_kernel", copy_sm_kernel, grid, block, stream.get(), d0.as<const ulonglong2>(),
                                  remote.as<ulonglong2>(), bytes / 16u);
                },
                [&] { return verify_peer("p2p_sm" + to); }));
            ++sm_pairs;
        }
    }
    out.metric("p2p_ce_gbps_pairs", ce_pairs, "count");
    out.metric("p2p_sm_gbps_pairs", sm_pairs, "count");
#undef KILN_COPY_STEP
    out.progress(1.0);
    return finish(KILN_OK);
}

}  // namespace kiln::gpu
