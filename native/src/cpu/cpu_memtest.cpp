// cpu_memtest.cpp - the memtest patterns of kiln_patterns.h over a large region on every core.
// Every word is written in one sweep over the region and verified in a later, separate sweep, so
// the data has left the caches before it is read back (a sweep that turns the direction starts
// half a slice away, kiln_sweep_next, so it does not begin with the words just written). To run at memory speed, a sweep verifies
// the previous phase and writes the next one block by block (read and write streams overlap, as
// in moving inversions); the first sweep only writes and the last only verifies. Periodic
// patterns stream from a small template with non-temporal stores and are checked 16 bytes at a
// time; a block with any difference is rescanned word by word, and every wrong word is reported
// with its offset, expected and actual value.
#include "cpu_backend.h"
#include "../common/kiln_patterns.h"

#include <algorithm>
#include <array>
#include <vector>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace kiln::cpu {
namespace {

// The fast path's block: a multiple of every pattern period (64 and 20 words) and of 2 words.
constexpr uint64_t k_block_words = 320;
constexpr uint64_t k_blocks_per_cancel_check = 1024;  // 2.5 MiB between checks
constexpr uint64_t k_group_blocks = 8;                // 20 KiB verified, then written

struct phase_ctx {
    int pattern;
    uint32_t phase;
    uint32_t round;
    uint64_t seed;
    const char* name;
    bool descending;
    const uint64_t* tmpl;                // k_block_words words for periodic patterns; nullptr for own-address
    std::atomic<uint64_t>* errors;       // this pattern's error count
};

uint64_t expected_word(const phase_ctx& c, uint64_t i) {
    return kiln_pattern_word(c.pattern, c.phase, c.round, i, c.seed);
}

void scalar_write(uint64_t* mem, const phase_ctx& c, uint64_t b, uint64_t e) {
    for (uint64_t i = b; i < e; ++i) mem[i] = expected_word(c, i);
}

void scalar_verify(const uint64_t* mem, const phase_ctx& c, uint64_t b, uint64_t e, sink_writer& out) {
    for (uint64_t i = b; i < e; ++i) {
        const uint64_t want = expected_word(c, i);
        const uint64_t got = mem[i];
        if (got != want) {
            c.errors->fetch_add(1, std::memory_order_relaxed);
            out.data_error(c.name, i * 8u, want, got);
        }
    }
}

// One block of G words starting at a multiple of G.
void block_write(uint64_t* mem, const phase_ctx& c, uint64_t base) {
#if defined(__SSE2__)
    __m128i* dst = reinterpret_cast<__m128i*>(mem + base);
    if (c.tmpl) {
        const __m128i* src = reinterpret_cast<const __m128i*>(c.tmpl);
        for (uint64_t j = 0; j < k_block_words / 2; ++j) _mm_stream_si128(dst + j, _mm_load_si128(src + j));
    } else {
        const long long first = static_cast<long long>(base * 8u);
        __m128i v = _mm_set_epi64x(first + 8, first);
        const __m128i step = _mm_set1_epi64x(16);
        const __m128i flip = (c.phase & 1u) ? _mm_set1_epi32(-1) : _mm_setzero_si128();
        for (uint64_t j = 0; j < k_block_words / 2; ++j) {
            _mm_stream_si128(dst + j, _mm_xor_si128(v, flip));
            v = _mm_add_epi64(v, step);
        }
    }
#else
    scalar_write(mem, c, base, base + k_block_words);
#endif
}

void block_verify(const uint64_t* mem, const phase_ctx& c, uint64_t base, sink_writer& out) {
#if defined(__SSE2__)
    const __m128i* src = reinterpret_cast<const __m128i*>(mem + base);
    __m128i diff = _mm_setzero_si128();
    if (c.tmpl) {
        const __m128i* want = reinterpret_cast<const __m128i*>(c.tmpl);
        for (uint64_t j = 0; j < k_block_words / 2; ++j)
            diff = _mm_or_si128(diff, _mm_xor_si128(_mm_load_si128(src + j), _mm_load_si128(want + j)));
    } else {
        const long long first = static_cast<long long>(base * 8u);
        __m128i v = _mm_set_epi64x(first + 8, first);
        const __m128i step = _mm_set1_epi64x(16);
        const __m128i flip = (c.phase & 1u) ? _mm_set1_epi32(-1) : _mm_setzero_si128();
        for (uint64_t j = 0; j < k_block_words / 2; ++j) {
            diff = _mm_or_si128(diff, _mm_xor_si128(_mm_load_si128(src + j), _mm_xor_si128(v, flip)));
            v = _mm_add_epi64(v, step);
        }
    }
    if (_mm_movemask_epi8(_mm_cmpeq_epi8(diff, _mm_setzero_si128())) == 0xFFFF) return;
#endif
    scalar_verify(mem, c, base, base + k_block_words, out);
}

// One sweep over [b, e): verify `check` (when set) and then write `fill` (when set), block by
// block, in the direction of the phase being written. Returns false when cancelled part way.
bool sweep(uint64_t* mem, const phase_ctx* check, const phase_ctx* fill, uint64_t b, uint64_t e, sink_writer& out,
           const volatile int32_t* cancel) {
    const uint64_t g = k_block_words;
    const bool descending = fill ? fill->descending : check->descending;
    const uint64_t body_begin = std::min(e, (b + g - 1) / g * g);
    const uint64_t body_end = std::max(body_begin, e / g * g);
    auto edge = [&](uint64_t lo, uint64_t hi) {
        if (check) scalar_verify(mem, *check, lo, hi, out);
        if (fill) scalar_write(mem, *fill, lo, hi);
    };
    const uint64_t blocks = (body_end - body_begin) / g;
    if (!descending) edge(b, body_begin);
    else edge(body_end, e);
    // Blocks go in groups: verify a group, then write it. Longer runs of one access kind keep the
    // read and the non-temporal write streams from interrupting each other every 2.5 KiB.
    for (uint64_t k0 = 0; k0 < blocks; k0 += k_group_blocks) {
        if (k0 % k_blocks_per_cancel_check == 0 && *cancel) return false;
        const uint64_t k1 = std::min(blocks, k0 + k_group_blocks);
        auto base_of = [&](uint64_t k) { return descending ? body_end - (k + 1) * g : body_begin + k * g; };
        if (check)
            for (uint64_t k = k0; k < k1; ++k) block_verify(mem, *check, base_of(k), out);
        if (fill)
            for (uint64_t k = k0; k < k1; ++k) block_write(mem, *fill, base_of(k));
    }
    if (!descending) edge(body_end, e);
    else edge(b, body_begin);
#if defined(__SSE2__)
    _mm_sfence();
#endif
    return true;
}

// One sweep of a worker's slice [b, e) in the order kiln_sweep_order gives (offsets within the
// slice): its two ranges one after the other, each in the sweep's direction.
bool sweep_in_order(uint64_t* mem, const phase_ctx* check, const phase_ctx* fill, const kiln_sweep_order& order, uint64_t b,
                    uint64_t e, sink_writer& out, const volatile int32_t* cancel) {
    uint64_t lo[2], hi[2];
    kiln_sweep_ranges(order, e - b, lo, hi);
    for (int r = 0; r < 2; ++r)
        if (lo[r] < hi[r] && !sweep(mem, check, fill, b + lo[r], b + hi[r], out, cancel)) return false;
    return true;
}

}  // namespace

uint64_t memtest_region_bytes(const kiln_test_params* p) {
    uint64_t bytes = p->size_bytes;
    if (!bytes && p->size_fraction > 0) bytes = static_cast<uint64_t>(p->size_fraction * available_memory_bytes());
    if (!bytes) bytes = 256ull << 20;
    return bytes / 8u * 8u;
}

kiln_status run_memtest(const topology& topo, const kiln_test_params* p, sink_writer& out,
                        const volatile int32_t* cancel) {
    const int threads = effective_threads(p, topo);
    const uint64_t bytes = memtest_region_bytes(p);
    const uint64_t words = bytes / 8u;
    region mem_region(bytes);
    if (!mem_region.ok()) return fail(KILN_OUT_OF_MEMORY, "memtest: cannot map %s", format_bytes(bytes).c_str());
    uint64_t* mem = mem_region.as<uint64_t>();

    const uint32_t mask = p->pattern_mask;
    const uint64_t phases_per_round = kiln_memtest_phases_per_round(mask);
    const int rounds = std::max(1, p->iterations);
    const double duration_s = p->duration_ms / 1000.0;

    // Injected flips, placed over the whole region (kiln_injection_positions predicts them).
    std::vector<uint64_t> flip_words(static_cast<size_t>(std::max(0, p->inject_flips)));
    std::vector<uint32_t> flip_bits(flip_words.size());
    flip_words.resize(static_cast<size_t>(
        kiln_injection_positions_fill(p->inject_seed, p->inject_flips, words, flip_words.data(), flip_bits.data())));

    // Everything below is owned by worker 0 and read by the others only between barriers.
    using step = kiln_memtest_step;
    std::array<std::atomic<uint64_t>, KILN_PATTERN_COUNT> pattern_errors{};
    std::array<double, KILN_PATTERN_COUNT> pattern_start{};
    std::vector<uint64_t> tmpl_storage(2 * k_block_words + 16);
    uint64_t* tmpl_a = reinterpret_cast<uint64_t*>((reinterpret_cast<uintptr_t>(tmpl_storage.data()) + 63) & ~uintptr_t(63));
    uint64_t* tmpl_b = tmpl_a + k_block_words;
    phase_ctx check{}, fill{};
    bool has_check = false, has_fill = true, stop = false, first_sweep = true;
    step next_step = kiln_memtest_first(mask);
    uint64_t phases_verified = 0, traffic_bytes = 0, verified_bytes = 0;
    double start = 0;
    std::string metric_name;

    auto make_ctx = [&](const step& s, uint64_t* tmpl) {
        const int pat = s.pattern;
        phase_ctx c{pat, s.phase, s.round, p->seed, kiln_pattern_name(pat), kiln_pattern_descending(pat, s.phase) != 0,
                    kiln_pattern_period_words(pat) ? tmpl : nullptr, &pattern_errors[static_cast<size_t>(pat)]};
        if (c.tmpl)
            for (uint64_t j = 0; j < k_block_words; ++j) tmpl[j] = expected_word(c, j);
        return c;
    };

    worker_team team(threads, topo.cpus);
    team.run([&](int w) {
        uint64_t b, e;
        partition(words, threads, w, 8, &b, &e);
        // First touch: pages land on this worker's node. Large regions take seconds, so check cancel;
        // a cancelled fill makes the first sweep return at once and the stop is decided after it.
        constexpr uint64_t k_fill_words = 1u << 18;
        for (uint64_t i = b; i < e && !*cancel; i += k_fill_words) std::fill(mem + i, mem + std::min(e, i + k_fill_words), 0ull);
        team.barrier();
        if (w == 0) {
            start = now_seconds();
            fill = make_ctx(next_step, tmpl_a);
            pattern_start[static_cast<size_t>(fill.pattern)] = start;
        }
        team.barrier();
        // This worker's sweep order over its slice: a turn of direction moves the start by half the
        // slice, so the words it wrote last are not the first it verifies (from the cache).
        kiln_sweep_order order = kiln_sweep_first(fill.descending);
        for (bool first = true;; first = false) {
            const phase_ctx c_check = check, c_fill = fill;
            const bool do_check = has_check, do_fill = has_fill;
            if (!do_check && !do_fill) break;
            if (!first) order = kiln_sweep_next(order, do_fill ? c_fill.descending : c_check.descending, e - b, k_block_words);
            sweep_in_order(mem, do_check ? &c_check : nullptr, do_fill ? &c_fill : nullptr, order, b, e, out, cancel);
            team.barrier();
            if (w == 0) {
                stop = *cancel != 0;
                if (!stop) {
                    // Flip after the first write sweep, before the sweep that verifies it.
                    if (first_sweep)
                        for (size_t k = 0; k < flip_words.size(); ++k) mem[flip_words[k]] ^= 1ull << flip_bits[k];
                    first_sweep = false;
                    traffic_bytes += (do_check ? bytes : 0) + (do_fill ? bytes : 0);
                    if (do_check) {
                        verified_bytes += bytes;
                        ++phases_verified;
                        out.progress(static_cast<double>(phases_verified) / static_cast<double>(phases_per_round * rounds));
                        if (c_check.phase + 1 == kiln_pattern_phases(c_check.pattern)) {
                            // The pattern's last verify: its errors and its rate (write + verify sweeps,
                            // which it shared with its neighbours).
                            const size_t pi = static_cast<size_t>(c_check.pattern);
                            metric_name = std::string("errors_") + c_check.name;
                            out.metric(metric_name.c_str(), static_cast<double>(pattern_errors[pi].exchange(0)), "count");
                            metric_name = std::string(c_check.name) + "_gbps";
                            out.metric(metric_name.c_str(),
                                       2.0 * bytes * kiln_pattern_phases(c_check.pattern) / (now_seconds() - pattern_start[pi]) / 1e9,
                                       "GB/s");
                        }
                    }
                    // What the next sweep verifies is what this one wrote; decide what it writes.
                    has_check = do_fill;
                    if (do_fill) {
                        check = c_fill;
                        uint64_t* spare = (c_fill.tmpl == tmpl_a) ? tmpl_b : tmpl_a;
                        const step s = kiln_memtest_next(next_step, mask);
                        const bool new_round = s.round != next_step.round;
                        const double elapsed = now_seconds() - start;
                        has_fill = !(new_round && static_cast<int>(s.round) >= rounds && (duration_s <= 0 || elapsed >= duration_s));
                        if (has_fill) {
                            next_step = s;
                            fill = make_ctx(s, spare);
                            if (s.phase == 0) pattern_start[static_cast<size_t>(fill.pattern)] = now_seconds();
                        }
                    } else {
                        has_fill = false;
                    }
                }
            }
            team.barrier();
            if (stop) break;
        }
    });

    const double seconds = now_seconds() - start;
    out.metric("errors_total", static_cast<double>(out.errors_counted()), "count");
    out.metric("bytes_tested", static_cast<double>(bytes), "bytes");
    if (seconds > 0 && phases_verified > 0) {
        out.metric("traffic_gbps", traffic_bytes / seconds / 1e9, "GB/s");
        out.metric("verified_gbps", verified_bytes / seconds / 1e9, "GB/s");
    }
    out.metric("threads", threads, "count");
    if (stop)
        return fail(KILN_CANCELLED, "memtest: cancelled after %llu phases", static_cast<unsigned long long>(phases_verified));
    return KILN_OK;
}

}  // namespace kiln::cpu
