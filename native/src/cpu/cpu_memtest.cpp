// cpu_memtest.cpp - the memtest patterns of kiln_patterns.h over a large region on every core.
// Each phase is a write pass, then a separate verify pass. Periodic patterns are streamed from a
// small template with non-temporal stores and checked 16 bytes at a time, so the test runs at
// memory speed; a block with any difference is rescanned word by word and every wrong word is
// reported with its offset, expected and actual value.
#include "cpu_backend.h"
#include "../common/kiln_patterns.h"

#include <algorithm>
#include <vector>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace kiln::cpu {
namespace {

constexpr uint64_t k_address_block_words = 512;      // own-address block: 4 KiB
constexpr uint64_t k_blocks_per_cancel_check = 1024;  // >= 512 KiB between checks

struct phase_ctx {
    int pattern;
    uint32_t phase;
    uint32_t round;
    uint64_t seed;
    const char* name;
    bool descending;
    uint64_t block_words;      // G: the block the fast path works on
    const uint64_t* tmpl;      // G words for periodic patterns; nullptr for own-address
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
        if (got != want) out.data_error(c.name, i * 8u, want, got);
    }
}

// One block of G words starting at a multiple of G.
void block_write(uint64_t* mem, const phase_ctx& c, uint64_t base) {
#if defined(__SSE2__)
    __m128i* dst = reinterpret_cast<__m128i*>(mem + base);
    if (c.tmpl) {
        const __m128i* src = reinterpret_cast<const __m128i*>(c.tmpl);
        for (uint64_t j = 0; j < c.block_words / 2; ++j) _mm_stream_si128(dst + j, _mm_load_si128(src + j));
    } else {
        const long long first = static_cast<long long>(base * 8u);
        __m128i v = _mm_set_epi64x(first + 8, first);
        const __m128i step = _mm_set1_epi64x(16);
        const __m128i flip = (c.phase & 1u) ? _mm_set1_epi32(-1) : _mm_setzero_si128();
        for (uint64_t j = 0; j < c.block_words / 2; ++j) {
            _mm_stream_si128(dst + j, _mm_xor_si128(v, flip));
            v = _mm_add_epi64(v, step);
        }
    }
#else
    scalar_write(mem, c, base, base + c.block_words);
#endif
}

void block_verify(const uint64_t* mem, const phase_ctx& c, uint64_t base, sink_writer& out) {
#if defined(__SSE2__)
    const __m128i* src = reinterpret_cast<const __m128i*>(mem + base);
    __m128i diff = _mm_setzero_si128();
    if (c.tmpl) {
        const __m128i* want = reinterpret_cast<const __m128i*>(c.tmpl);
        for (uint64_t j = 0; j < c.block_words / 2; ++j)
            diff = _mm_or_si128(diff, _mm_xor_si128(_mm_load_si128(src + j), _mm_load_si128(want + j)));
    } else {
        const long long first = static_cast<long long>(base * 8u);
        __m128i v = _mm_set_epi64x(first + 8, first);
        const __m128i step = _mm_set1_epi64x(16);
        const __m128i flip = (c.phase & 1u) ? _mm_set1_epi32(-1) : _mm_setzero_si128();
        for (uint64_t j = 0; j < c.block_words / 2; ++j) {
            diff = _mm_or_si128(diff, _mm_xor_si128(_mm_load_si128(src + j), _mm_xor_si128(v, flip)));
            v = _mm_add_epi64(v, step);
        }
    }
    if (_mm_movemask_epi8(_mm_cmpeq_epi8(diff, _mm_setzero_si128())) == 0xFFFF) return;
#endif
    scalar_verify(mem, c, base, base + c.block_words, out);
}

// One pass over [b, e) in the phase's direction. Returns false when cancelled part way.
bool sweep(uint64_t* mem, const phase_ctx& c, uint64_t b, uint64_t e, bool write, sink_writer& out,
           const volatile int32_t* cancel) {
    const uint64_t g = c.block_words;
    const uint64_t body_begin = std::min(e, (b + g - 1) / g * g);
    const uint64_t body_end = std::max(body_begin, e / g * g);
    auto edge = [&](uint64_t lo, uint64_t hi) {
        if (write) scalar_write(mem, c, lo, hi);
        else scalar_verify(mem, c, lo, hi, out);
    };
    const uint64_t blocks = (body_end - body_begin) / g;
    if (!c.descending) edge(b, body_begin);
    else edge(body_end, e);
    for (uint64_t k = 0; k < blocks; ++k) {
        if (k % k_blocks_per_cancel_check == 0 && *cancel) return false;
        const uint64_t base = c.descending ? body_end - (k + 1) * g : body_begin + k * g;
        if (write) block_write(mem, c, base);
        else block_verify(mem, c, base, out);
    }
    if (!c.descending) edge(body_end, e);
    else edge(b, body_begin);
#if defined(__SSE2__)
    _mm_sfence();
#endif
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

    std::vector<int> patterns;
    const uint32_t mask = p->pattern_mask ? p->pattern_mask : (1u << KILN_PATTERN_COUNT) - 1u;
    for (int pat = 0; pat < KILN_PATTERN_COUNT; ++pat)
        if (mask & (1u << pat)) patterns.push_back(pat);
    uint64_t phases_per_round = 0;
    for (int pat : patterns) phases_per_round += kiln_pattern_phases(pat);
    const int rounds = std::max(1, p->iterations);
    const double duration_s = p->duration_ms / 1000.0;

    // Templates: one block of each periodic pattern per phase, built from the shared per-word logic.
    // The block length is a multiple of every period (64 and 20) and of 2 words.
    constexpr uint64_t k_template_words = 320;
    std::vector<uint64_t> tmpl_storage(k_template_words + 8);
    uint64_t* tmpl = reinterpret_cast<uint64_t*>((reinterpret_cast<uintptr_t>(tmpl_storage.data()) + 63) & ~uintptr_t(63));

    // Injected flips, placed over the whole region (kiln_injection_positions predicts them).
    std::vector<uint64_t> flip_words;
    std::vector<uint32_t> flip_bits;
    if (p->inject_flips > 0) {
        uint64_t state = p->inject_seed;
        for (int i = 0; i < p->inject_flips; ++i) {
            uint64_t w = 0;
            uint32_t bit = 0;
            if (!kiln_injection_position(&state, words, flip_words.data(), static_cast<int>(flip_words.size()), &w, &bit))
                break;
            flip_words.push_back(w);
            flip_bits.push_back(bit);
        }
    }

    worker_team team(threads, topo.cpus);
    phase_ctx ctx{};
    bool stop = false, done = false;
    uint64_t phases_done = 0, traffic_bytes = 0, verified_bytes = 0;
    int rounds_done = 0;
    double start = 0, pattern_start = 0;
    uint64_t pattern_errors_before = 0, pattern_traffic_before = 0;
    std::string metric_name;

    team.run([&](int w) {
        uint64_t b, e;
        partition(words, threads, w, 8, &b, &e);
        std::fill(mem + b, mem + e, 0ull);  // first touch: pages land on this worker's node
        team.barrier();
        if (w == 0) start = now_seconds();
        for (uint32_t round = 0; !stop && !done; ++round) {
            for (size_t pi = 0; pi < patterns.size() && !stop; ++pi) {
                const int pat = patterns[pi];
                for (uint32_t phase = 0; phase < kiln_pattern_phases(pat) && !stop; ++phase) {
                    team.barrier();
                    if (w == 0) {
                        if (phase == 0) {
                            pattern_start = now_seconds();
                            pattern_errors_before = out.errors_counted();
                            pattern_traffic_before = traffic_bytes;
                        }
                        const uint32_t period = kiln_pattern_period_words(pat);
                        ctx = {pat, phase, round, p->seed, kiln_pattern_name(pat), kiln_pattern_descending(pat, phase) != 0,
                               period ? k_template_words : k_address_block_words, period ? tmpl : nullptr};
                        if (period)
                            for (uint64_t j = 0; j < k_template_words; ++j) tmpl[j] = expected_word(ctx, j);
                    }
                    team.barrier();
                    const phase_ctx c = ctx;
                    sweep(mem, c, b, e, true, out, cancel);
                    team.barrier();
                    if (w == 0) {
                        stop = *cancel != 0;
                        // Flip after the first write pass of the run, before its verify.
                        if (!stop && round == 0 && pi == 0 && phase == 0)
                            for (size_t k = 0; k < flip_words.size(); ++k) mem[flip_words[k]] ^= 1ull << flip_bits[k];
                    }
                    team.barrier();
                    if (stop) break;
                    sweep(mem, c, b, e, false, out, cancel);
                    team.barrier();
                    if (w == 0) {
                        stop = *cancel != 0;
                        if (!stop) {
                            ++phases_done;
                            traffic_bytes += 2 * bytes;
                            verified_bytes += bytes;
                            out.progress(static_cast<double>(phases_done) / (phases_per_round * rounds));
                            if (phase + 1 == kiln_pattern_phases(pat)) {
                                const double seconds = now_seconds() - pattern_start;
                                metric_name = std::string("errors_") + kiln_pattern_name(pat);
                                out.metric(metric_name.c_str(),
                                           static_cast<double>(out.errors_counted() - pattern_errors_before), "count");
                                metric_name = std::string(kiln_pattern_name(pat)) + "_gbps";
                                out.metric(metric_name.c_str(), (traffic_bytes - pattern_traffic_before) / seconds / 1e9,
                                           "GB/s");
                            }
                        }
                    }
                    team.barrier();
                }
            }
            if (w == 0 && !stop) {
                ++rounds_done;
                const double elapsed = now_seconds() - start;
                done = rounds_done >= rounds && (duration_s <= 0 || elapsed >= duration_s);
            }
            team.barrier();
        }
    });

    const double seconds = now_seconds() - start;
    out.metric("errors_total", static_cast<double>(out.errors_counted()), "count");
    out.metric("bytes_tested", static_cast<double>(bytes), "bytes");
    if (seconds > 0 && phases_done > 0) {
        out.metric("traffic_gbps", traffic_bytes / seconds / 1e9, "GB/s");
        out.metric("verified_gbps", verified_bytes / seconds / 1e9, "GB/s");
    }
    out.metric("threads", threads, "count");
    if (stop) return fail(KILN_CANCELLED, "memtest: cancelled after %llu phases", static_cast<unsigned long long>(phases_done));
    return KILN_OK;
}

}  // namespace kiln::cpu
