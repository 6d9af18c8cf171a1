// cpu_stream.cpp - STREAM-style bandwidth (copy, scale, add, triad, read-only, write-only) on every
// core over arrays far larger than the last-level cache, with non-temporal stores, then a verify
// pass that replays the recurrence on one element (kiln_patterns.h) and compares every element bit
// for bit. The scalar alternates by iteration and the write-only op stores a value new each
// iteration, which the read-only op (run last) checks as it reads c, so a lost store of any op is
// visible at its own check or in the verify (kiln_patterns.h). Injection:
// inject_slowdown stretches each op's time; inject_corrupt changes that many elements of a after
// the last op and before the verify (kiln_injection_positions predicts them; the first change is
// one ulp, so a verify that tolerates rounding would miss it).
#include "cpu_backend.h"
#include "../common/kiln_patterns.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <thread>
#include <vector>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace kiln::cpu {
namespace {

constexpr int k_ops = 6;
const char* const k_op_metrics[k_ops] = {"copy_gbps", "scale_gbps", "add_gbps", "triad_gbps", "read_gbps", "write_gbps"};
const char* const k_op_best[k_ops] = {"copy_gbps_best", "scale_gbps_best", "add_gbps_best", "triad_gbps_best",
                                      "read_gbps_best", "write_gbps_best"};
// Bytes counted per element: what the kernel reads plus what it writes (no write-allocate:
// the stores are non-temporal). Documented in docs/METRICS.md.
const double k_op_bytes[k_ops] = {16, 16, 24, 24, 8, 8};
constexpr uint64_t k_chunk_elements = 1u << 18;  // 2 MiB of doubles between cancel checks

uint64_t bits_of(double v) {
    uint64_t u;
    memcpy(&u, &v, sizeof u);
    return u;
}

// Read-only op (after the write op): compares c[begin, end) with want; reports and returns the wrong words.
uint64_t stream_read(const double* x, double want, uint64_t begin, uint64_t end, sink_writer& out) {
    uint64_t diff = 0;
#if defined(__SSE2__)
    const __m128i vw = _mm_castpd_si128(_mm_set1_pd(want));
    __m128i d0 = _mm_setzero_si128(), d1 = _mm_setzero_si128();
    for (uint64_t i = begin; i < end; i += 4) {
        d0 = _mm_or_si128(d0, _mm_xor_si128(_mm_castpd_si128(_mm_load_pd(x + i)), vw));
        d1 = _mm_or_si128(d1, _mm_xor_si128(_mm_castpd_si128(_mm_load_pd(x + i + 2)), vw));
    }
    diff = static_cast<uint64_t>(_mm_movemask_epi8(_mm_cmpeq_epi8(_mm_or_si128(d0, d1), _mm_setzero_si128())) != 0xFFFF);
#else
    for (uint64_t i = begin; i < end; ++i) diff |= bits_of(x[i]) ^ bits_of(want);
#endif
    if (!diff) return 0;
    uint64_t wrong = 0;
    for (uint64_t i = begin; i < end; ++i)
        if (bits_of(x[i]) != bits_of(want)) {
            ++wrong;
            out.data_error("stream_read", i * 8u, bits_of(want), bits_of(x[i]));
        }
    return wrong;
}

// One op over [begin, end); begin and end are multiples of 8 elements, arrays 64-byte aligned.
// s is the iteration's scalar; the write-only op (5) stores c_value.
void stream_kernel(int op, double* a, double* b, double* c, double s, double c_value, uint64_t begin, uint64_t end) {
#if defined(__SSE2__)
    const __m128d vs = _mm_set1_pd(s);
    const __m128d vc = _mm_set1_pd(c_value);
    for (uint64_t i = begin; i < end; i += 4) {
        switch (op) {
        case 0:
            _mm_stream_pd(c + i, _mm_load_pd(a + i));
            _mm_stream_pd(c + i + 2, _mm_load_pd(a + i + 2));
            break;
        case 1:
            _mm_stream_pd(b + i, _mm_mul_pd(vs, _mm_load_pd(c + i)));
            _mm_stream_pd(b + i + 2, _mm_mul_pd(vs, _mm_load_pd(c + i + 2)));
            break;
        case 2:
            _mm_stream_pd(c + i, _mm_add_pd(_mm_load_pd(a + i), _mm_load_pd(b + i)));
            _mm_stream_pd(c + i + 2, _mm_add_pd(_mm_load_pd(a + i + 2), _mm_load_pd(b + i + 2)));
            break;
        case 3:
            _mm_stream_pd(a + i, _mm_add_pd(_mm_load_pd(b + i), _mm_mul_pd(vs, _mm_load_pd(c + i))));
            _mm_stream_pd(a + i + 2, _mm_add_pd(_mm_load_pd(b + i + 2), _mm_mul_pd(vs, _mm_load_pd(c + i + 2))));
            break;
        default:
            _mm_stream_pd(c + i, vc);
            _mm_stream_pd(c + i + 2, vc);
            break;
        }
    }
    _mm_sfence();
#else
    (void)s;
    for (uint64_t i = begin; i < end; ++i) {
        switch (op) {
        case 0: c[i] = a[i]; break;
        case 1: b[i] = kiln_stream_scale(s, c[i]); break;
        case 2: c[i] = kiln_stream_add(a[i], b[i]); break;
        case 3: a[i] = kiln_stream_triad(s, b[i], c[i]); break;
        default: c[i] = c_value; break;
        }
    }
#endif
}

}  // namespace

uint64_t stream_array_bytes(const kiln_test_params* p, const topology& topo) {
    if (p->size_bytes) return p->size_bytes;
    if (p->size_fraction > 0) return static_cast<uint64_t>(p->size_fraction * available_memory_bytes() / 3.0);
    // Default: far larger than the LLC (x16), at least 256 MiB per array.
    return std::max<uint64_t>(256ull << 20, topo.last_level_cache_bytes * 16u);
}

kiln_status run_stream(const topology& topo, const kiln_test_params* p, sink_writer& out,
                       const volatile int32_t* cancel) {
    const int threads = effective_threads(p, topo);
    const uint64_t n = stream_array_bytes(p, topo) / 8u / 8u * 8u;  // elements, a multiple of 8
    region ra(n * 8u), rb(n * 8u), rc(n * 8u);
    if (!ra.ok() || !rb.ok() || !rc.ok())
        return fail(KILN_OUT_OF_MEMORY, "stream: cannot map 3 x %s", format_bytes(n * 8.0).c_str());
    double* a = ra.as<double>();
    double* b = rb.as<double>();
    double* c = rc.as<double>();
    const uint32_t all_ops = KILN_STREAM_ALL;
    const uint32_t mask = p->op_mask ? (p->op_mask & all_ops) : all_ops;
    const double slowdown = (p->inject_slowdown > 0 && p->inject_slowdown < 1) ? p->inject_slowdown : 1.0;
    std::vector<uint64_t> corrupt_words(static_cast<size_t>(std::max(0, p->inject_corrupt)));
    std::vector<uint32_t> corrupt_bits(corrupt_words.size());
    corrupt_words.resize(static_cast<size_t>(
        kiln_injection_positions_fill(p->inject_seed, p->inject_corrupt, n, corrupt_words.data(), corrupt_bits.data())));
    const int iterations = std::max(1, p->iterations);
    const double duration_s = p->duration_ms / 1000.0;

    worker_team team(threads, topo.cpus);
    std::atomic<bool> stop{false};
    bool done = false;
    int completed = 0;
    double best_gbps[k_ops] = {0, 0, 0, 0};
    const double start = now_seconds();

    team.run([&](int w) {
        uint64_t begin, end;
        partition(n, threads, w, 8, &begin, &end);
        const kiln_stream_values init = kiln_stream_initial();
        // First touch: pages land on this worker's node. Large arrays take seconds, so check cancel.
        for (uint64_t i = begin; i < end && !stop.load(std::memory_order_relaxed); i += k_chunk_elements) {
            if (*cancel) stop = true;
            for (uint64_t j = i; j < std::min(end, i + k_chunk_elements); ++j) {
                a[j] = init.a;
                b[j] = init.b;
                c[j] = init.c;
            }
        }
        double t0 = 0;
        kiln_stream_values now = init;  // what the arrays hold after this iteration's ops
        static const int order[k_ops] = KILN_STREAM_ORDER_INIT;
        for (uint64_t k = 0;; ++k) {
            now = kiln_stream_step(now, mask, k);
            const double q = kiln_stream_scalar(k);
            for (int slot = 0; slot < k_ops; ++slot) {
                const int op = order[slot];
                if (!(mask & (1u << op))) continue;
                team.barrier();
                if (w == 0) t0 = now_seconds();
                for (uint64_t i = begin; i < end && !stop.load(std::memory_order_relaxed); i += k_chunk_elements) {
                    if (*cancel) stop = true;
                    const uint64_t chunk_end = std::min(end, i + k_chunk_elements);
                    if (op == 4) stream_read(c, now.c, i, chunk_end, out);
                    else stream_kernel(op, a, b, c, q, now.c, i, chunk_end);
                }
                team.barrier();
                if (w == 0 && !stop) {
                    double seconds = now_seconds() - t0;
                    if (slowdown < 1.0) {
                        std::this_thread::sleep_for(std::chrono::duration<double>(seconds * (1.0 / slowdown - 1.0)));
                        seconds = now_seconds() - t0;
                    }
                    const double gbps = k_op_bytes[op] * static_cast<double>(n) / seconds / 1e9;
                    best_gbps[op] = std::max(best_gbps[op], gbps);
                    out.metric(k_op_metrics[op], gbps, "GB/s");
                }
            }
            if (w == 0) {
                if (!stop) ++completed;
                const double elapsed = now_seconds() - start;
                done = completed >= iterations && (duration_s <= 0 || elapsed >= duration_s);
                out.progress(duration_s > 0 ? std::min(elapsed / duration_s, static_cast<double>(completed) / iterations)
                                            : static_cast<double>(completed) / iterations);
            }
            team.barrier();
            if (done || stop) break;
        }
        if (stop) return;
        if (!corrupt_words.empty()) {
            // Every worker is past its last op: change the elements, then let everyone verify.
            if (w == 0)
                for (size_t k = 0; k < corrupt_words.size(); ++k) {
                    const uint64_t flipped = bits_of(a[corrupt_words[k]]) ^ (uint64_t{1} << (k == 0 ? 0 : corrupt_bits[k]));
                    memcpy(&a[corrupt_words[k]], &flipped, sizeof flipped);
                }
            team.barrier();
        }
        // Verify: every element must equal the replayed recurrence exactly.
        kiln_stream_values expect = kiln_stream_initial();
        for (int it = 0; it < completed; ++it) expect = kiln_stream_step(expect, mask, static_cast<uint64_t>(it));
        const double* arrays[3] = {a, b, c};
        const double expected[3] = {expect.a, expect.b, expect.c};
        static const char* const names[3] = {"stream_a", "stream_b", "stream_c"};
        for (int k = 0; k < 3; ++k)
            for (uint64_t i = begin; i < end; ++i)
                if (bits_of(arrays[k][i]) != bits_of(expected[k]))
                    out.data_error(names[k], i * 8u, bits_of(expected[k]), bits_of(arrays[k][i]));
    });

    if (stop) return fail(KILN_CANCELLED, "stream: cancelled after %d iterations", completed);
    for (int op = 0; op < k_ops; ++op)
        if (mask & (1u << op)) out.metric(k_op_best[op], best_gbps[op], "GB/s");
    out.metric("array_bytes", static_cast<double>(n * 8u), "bytes");
    out.metric("threads", threads, "count");
    out.metric("iterations", completed, "count");
    out.metric("errors_total", static_cast<double>(out.errors_counted()), "count");
    return KILN_OK;
}

}  // namespace kiln::cpu
