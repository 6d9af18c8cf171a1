// gpu_memtest.cu - the CPU's memtest patterns (kiln_patterns.h) over >= 95% of free device memory,
// allocated in chunks that form one logical region (offsets are from its start, in chunk order).
// As on the CPU, sweep n verifies phase n-1 and writes phase n, so every word is verified in a
// later launch than the one that wrote it; the first sweep only writes and the last only verifies.
// A sweep is one launch per chunk piece, 16-byte accesses, several in flight per thread; odd phases
// of the moving inversions walk the chunks and each chunk's words from the top down, and a sweep
// that turns the direction starts half a region away (kiln_sweep_next), so it never verifies from
// the L2 what the previous sweep wrote last. Wrong words go
// to the bounded device error log (all counted, the first ones kept with offset, expected, actual).
#include "gpu_backend.h"
#include "../common/kiln_names.h"
#include "../common/kiln_patterns.h"

#include <algorithm>
#include <chrono>
#include <numeric>

namespace kiln::gpu {
namespace {

constexpr uint64_t k_chunk_bytes = 1ull << 30;
constexpr uint64_t k_min_chunk_bytes = 32ull << 20;
// Threads x 2 words per grid step must be a multiple of every pattern period (64 and 20 words), so
// a thread's expected words for the periodic patterns are the same at every step.
constexpr uint64_t k_pairs_per_period = 160;
// Sweeps start on a 4 KiB boundary (kiln_sweep_next): chunk pieces stay whole 16-byte pairs.
constexpr uint64_t k_sweep_align_words = 512;

struct phase_args {
    int active;
    int pattern;
    uint32_t phase, round;
    uint64_t seed;
};

__device__ __forceinline__ uint64_t pattern_word(const phase_args& a, uint64_t word) {
    return kiln_pattern_word(a.pattern, a.phase, a.round, word, a.seed);
}

template <int U>
__global__ void memtest_sweep_kernel(uint64_t* mem, uint64_t n_pairs, uint64_t base_word, phase_args check, phase_args fill,
                                     int descending, error_log_ref log) {
    ulonglong2* pairs = reinterpret_cast<ulonglong2*>(mem);
    const uint64_t stride = static_cast<uint64_t>(gridDim.x) * blockDim.x;
    const uint64_t first = static_cast<uint64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
    auto position = [&](uint64_t q) { return descending ? n_pairs - 1 - q : q; };
    const bool check_periodic = check.active && kiln_pattern_period_words(check.pattern) != 0;
    const bool fill_periodic = fill.active && kiln_pattern_period_words(fill.pattern) != 0;
    uint64_t c0 = 0, c1 = 0, f0 = 0, f1 = 0;
    if (first < n_pairs) {
        const uint64_t w = base_word + 2 * position(first);
        if (check_periodic) c0 = pattern_word(check, w), c1 = pattern_word(check, w + 1);
        if (fill_periodic) f0 = pattern_word(fill, w), f1 = pattern_word(fill, w + 1);
    }
    for (uint64_t q = first; q < n_pairs; q += U * stride) {
        ulonglong2 v[U];
        if (check.active) {
#pragma unroll
            for (int u = 0; u < U; ++u)
                if (q + u * stride < n_pairs) v[u] = pairs[position(q + u * stride)];
        }
#pragma unroll
        for (int u = 0; u < U; ++u) {
            const uint64_t qq = q + u * stride;
            if (qq >= n_pairs) break;
            const uint64_t pos = position(qq);
            const uint64_t w = base_word + 2 * pos;
            if (check.active) {
                const uint64_t want0 = check_periodic ? c0 : pattern_word(check, w);
                const uint64_t want1 = check_periodic ? c1 : pattern_word(check, w + 1);
                if (v[u].x != want0) record_error(log, w * 8u, want0, v[u].x);
                if (v[u].y != want1) record_error(log, (w + 1) * 8u, want1, v[u].y);
            }
            if (fill.active) {
                ulonglong2 out;
                out.x = fill_periodic ? f0 : pattern_word(fill, w);
                out.y = fill_periodic ? f1 : pattern_word(fill, w + 1);
                pairs[pos] = out;
            }
        }
    }
}

using sweep_kernel_fn = void (*)(uint64_t*, uint64_t, uint64_t, phase_args, phase_args, int, error_log_ref);

sweep_kernel_fn pick_unroll(int unroll) {
    switch (unroll) {
    case 1: return memtest_sweep_kernel<1>;
    case 2: return memtest_sweep_kernel<2>;
    case 8: return memtest_sweep_kernel<8>;
    default: return memtest_sweep_kernel<4>;
    }
}

struct chunk {
    device_buffer memory;
    uint64_t base_word;  // index of its first word in the logical region
    uint64_t words;
};

}  // namespace

uint64_t memtest_region_bytes(const kiln_test_params* p, uint64_t free_bytes) {
    uint64_t bytes = p->size_bytes;
    if (!bytes && p->size_fraction > 0) bytes = static_cast<uint64_t>(p->size_fraction * free_bytes);
    if (!bytes) bytes = static_cast<uint64_t>(0.95 * free_bytes);  // the issue's floor: >= 95% of free memory
    return bytes / 4096u * 4096u;
}

kiln_status run_memtest(const run_context& ctx, const kiln_test_params* p, sink_writer& out, const volatile int32_t* cancel) {
    timed_stream stream;
    KILN_GPU_CHECK(stream.create());
    error_log log;
    KILN_GPU_CHECK(log.allocate(std::max(1u, std::min(p->max_error_reports, 4096u))));
    size_t free_b = 0, total_b = 0;
    KILN_GPU_TRY(cudaMemGetInfo(&free_b, &total_b));
    const uint64_t target = memtest_region_bytes(p, free_b);
    const bool exact_size = p->size_bytes != 0;

    // The region: chunks of up to 1 GiB; when the allocator is fragmented, smaller ones. A size the
    // caller asked for must be met; the default takes what it can and says how much that was.
    std::vector<chunk> chunks;
    uint64_t bytes = 0, chunk_bytes = k_chunk_bytes;
    while (bytes < target) {
        const uint64_t want = std::min(chunk_bytes, target - bytes);
        chunk c;
        if (c.memory.allocate(want, "memtest region") != KILN_OK) {
            if (chunk_bytes > k_min_chunk_bytes) {
                chunk_bytes /= 2;
                continue;
            }
            if (exact_size || bytes == 0) return KILN_OUT_OF_MEMORY;  // allocate() set the error text
            break;
        }
        c.base_word = bytes / 8u;
        c.words = want / 8u;
        bytes += want;
        chunks.push_back(std::move(c));
        if (was_cancelled(cancel)) return fail(KILN_CANCELLED, "memtest: cancelled while allocating");
    }
    const uint64_t words = bytes / 8u;

    const int block = launch_block(p, 256);
    int grid = launch_grid(p, *ctx.props, block);
    // Round the grid up so block x grid is a multiple of 160 threads (see k_pairs_per_period).
    const int grid_step = static_cast<int>(k_pairs_per_period / std::gcd<uint64_t>(static_cast<uint64_t>(block), k_pairs_per_period));
    grid = (grid + grid_step - 1) / grid_step * grid_step;
    const int unroll = p->unroll ? p->unroll : 4;
    const sweep_kernel_fn kernel = pick_unroll(unroll);

    const uint32_t mask = p->pattern_mask;
    const uint64_t phases_per_round = kiln_memtest_phases_per_round(mask);
    const int rounds = std::max(1, p->iterations);
    const double duration_s = p->duration_ms / 1000.0;

    std::vector<uint64_t> flip_words(static_cast<size_t>(std::max(0, p->inject_flips)));
    std::vector<uint32_t> flip_bits(flip_words.size());
    flip_words.resize(static_cast<size_t>(
        kiln_injection_positions_fill(p->inject_seed, p->inject_flips, words, flip_words.data(), flip_bits.data())));

    auto args_of = [&](const kiln_memtest_step& s) { return phase_args{1, s.pattern, s.phase, s.round, p->seed}; };
    // A sweep in the given order (kiln_sweep_order: where it starts, which way it goes): its two
    // ranges of the logical region, each as one launch per chunk piece, in the sweep's direction.
    auto sweep = [&](const phase_args& check, const phase_args& fill, const kiln_sweep_order& order) -> kiln_status {
        uint64_t lo[2], hi[2];
        kiln_sweep_ranges(order, words, lo, hi);
        for (int r = 0; r < 2; ++r) {
            for (size_t k = 0; k < chunks.size(); ++k) {
                const chunk& c = chunks[order.descending ? chunks.size() - 1 - k : k];
                const uint64_t a = std::max(lo[r], c.base_word), b = std::min(hi[r], c.base_word + c.words);
                if (a >= b) continue;
                KILN_GPU_CHECK(launch("memtest_sweep_kernel", kernel, grid, block, stream.get(), c.memory.as<uint64_t>() + (a - c.base_word),
                                      (b - a) / 2, a, check, fill, order.descending, log.ref()));
            }
        }
        return stream.sync();
    };
    // Flips word w's bit: read it back, flip, write it (a few words; the copies are synchronous).
    auto flip = [&](uint64_t w, uint32_t bit) -> kiln_status {
        auto it = std::upper_bound(chunks.begin(), chunks.end(), w, [](uint64_t x, const chunk& c) { return x < c.base_word; });
        const chunk& c = *(it - 1);
        uint64_t* addr = c.memory.as<uint64_t>() + (w - c.base_word);
        uint64_t value = 0;
        KILN_GPU_TRY(cudaMemcpy(&value, addr, 8, cudaMemcpyDeviceToHost));
        value ^= 1ull << bit;
        KILN_GPU_TRY(cudaMemcpy(addr, &value, 8, cudaMemcpyHostToDevice));
        return KILN_OK;
    };

    std::vector<uint64_t> pattern_errors(KILN_PATTERN_COUNT, 0);
    std::vector<std::chrono::steady_clock::time_point> pattern_start(KILN_PATTERN_COUNT);
    const auto start = std::chrono::steady_clock::now();
    auto seconds_since = [](std::chrono::steady_clock::time_point t) {
        return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
    };
    phase_args none{0, 0, 0, 0, 0};
    kiln_memtest_step next = kiln_memtest_first(mask);
    phase_args check = none, fill = args_of(next);
    pattern_start[static_cast<size_t>(fill.pattern)] = start;
    bool first_sweep = true, cancelled = false;
    uint64_t phases_verified = 0, traffic_bytes = 0, verified_bytes = 0;
    kiln_sweep_order order = kiln_sweep_first(kiln_pattern_descending(fill.pattern, fill.phase));
    while (check.active || fill.active) {
        if (was_cancelled(cancel)) {
            cancelled = true;
            break;
        }
        const phase_args& dir = fill.active ? fill : check;
        if (!first_sweep) order = kiln_sweep_next(order, kiln_pattern_descending(dir.pattern, dir.phase), words, k_sweep_align_words);
        KILN_GPU_CHECK(sweep(check, fill, order));
        if (first_sweep)
            for (size_t k = 0; k < flip_words.size(); ++k) KILN_GPU_CHECK(flip(flip_words[k], flip_bits[k]));
        first_sweep = false;
        traffic_bytes += (check.active ? bytes : 0) + (fill.active ? bytes : 0);
        if (check.active) {
            uint64_t found = 0;
            KILN_GPU_CHECK(log.drain(stream.get(), kiln_pattern_key(check.pattern), out, &found));
            pattern_errors[static_cast<size_t>(check.pattern)] += found;
            verified_bytes += bytes;
            ++phases_verified;
            out.progress(static_cast<double>(phases_verified) / static_cast<double>(phases_per_round * rounds));
            if (check.phase + 1 == kiln_pattern_phases(check.pattern)) {
                const size_t pi = static_cast<size_t>(check.pattern);
                out.metric(std::string("errors_") + kiln_pattern_key(check.pattern), static_cast<double>(pattern_errors[pi]), "count");
                pattern_errors[pi] = 0;
                out.metric(std::string(kiln_pattern_key(check.pattern)) + "_gbps",
                           2.0 * bytes * kiln_pattern_phases(check.pattern) / seconds_since(pattern_start[pi]) / 1e9, "GB/s");
            }
        }
        // What the next sweep verifies is what this one wrote; decide what it writes.
        check = fill;
        if (fill.active) {
            const kiln_memtest_step s = kiln_memtest_next(next, mask);
            const bool new_round = s.round != next.round;
            const bool more = !(new_round && static_cast<int>(s.round) >= rounds && (duration_s <= 0 || seconds_since(start) >= duration_s));
            if (more) {
                next = s;
                fill = args_of(s);
                if (s.phase == 0) pattern_start[static_cast<size_t>(fill.pattern)] = std::chrono::steady_clock::now();
            } else {
                fill = none;
            }
        }
    }

    const double seconds = seconds_since(start);
    out.metric("errors_total", static_cast<double>(out.errors_counted()), "count");
    out.metric("bytes_tested", static_cast<double>(bytes), "bytes");
    out.metric("fraction_of_free", static_cast<double>(bytes) / static_cast<double>(free_b), "ratio");
    // Below 1 only when the default or a share of free memory was asked for and the allocator would
    // not give it all (an exact size is met or the test fails): the coverage a profile floor judges.
    out.metric("fraction_of_planned", target ? static_cast<double>(bytes) / static_cast<double>(target) : 1.0, "ratio");
    out.metric("chunks", static_cast<double>(chunks.size()), "count");
    if (seconds > 0 && phases_verified > 0) {
        out.metric("traffic_gbps", traffic_bytes / seconds / 1e9, "GB/s");
        out.metric("verified_gbps", verified_bytes / seconds / 1e9, "GB/s");
    }
    out.metric("block", block, "count");
    out.metric("grid", grid, "count");
    out.metric("unroll", unroll, "count");
    if (cancelled)
        return fail(KILN_CANCELLED, "memtest: cancelled after %llu phases", static_cast<unsigned long long>(phases_verified));
    return KILN_OK;
}

}  // namespace kiln::gpu
