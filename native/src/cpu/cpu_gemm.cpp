// cpu_gemm.cpp - verified FP64 GEMM on every core: C = A x B (n x n) with the exact integer inputs
// of kiln_patterns.h, blocked for the caches (packed panels of A per worker, a shared packed panel
// of B), an AVX2/FMA 6x8 microkernel chosen at run time (a plain one otherwise), and a verify pass
// that compares every element of C bit for bit with its known exact value after every product.
// Every other product is on random full-mantissa inputs (every multiplier bit driven) and must
// repeat the first of them bit for bit: each element is one worker's, in a fixed order. C is
// poisoned before every product, so a lost store cannot leave the last product's value.
#include "cpu_backend.h"
#include "../common/kiln_patterns.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <thread>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace kiln::cpu {
namespace {

constexpr int k_mr = 6;     // microkernel rows: 6 x 2 ymm accumulators + 2 of B + 1 of A = 15 of 16 registers
constexpr int k_nr = 8;     // microkernel columns (two ymm of 4 doubles)
constexpr int k_kc = 256;   // depth of a packed block: an MR x KC sliver of A (12 KiB) stays in L1 with B's
constexpr int k_mc = 144;   // rows of a worker's packed A block: 144 x 256 x 8 = 288 KiB, in L2
constexpr uint64_t k_default_n = 2048;

// c[0..MR)[0..NR) (row stride ldc) = (accumulate ? c : 0) + ap (kc x MR, k-major) x bp (kc x NR, k-major).
using microkernel_fn = void (*)(int kc, const double* ap, const double* bp, double* c, int64_t ldc, bool accumulate);

void microkernel_plain(int kc, const double* ap, const double* bp, double* c, int64_t ldc, bool accumulate) {
    double acc[k_mr][k_nr] = {};
    for (int k = 0; k < kc; ++k, ap += k_mr, bp += k_nr)
        for (int r = 0; r < k_mr; ++r)
            for (int j = 0; j < k_nr; ++j) acc[r][j] += ap[r] * bp[j];
    for (int r = 0; r < k_mr; ++r)
        for (int j = 0; j < k_nr; ++j) c[r * ldc + j] = (accumulate ? c[r * ldc + j] : 0.0) + acc[r][j];
}

#if defined(__x86_64__)
__attribute__((target("avx2,fma"))) void microkernel_avx2(int kc, const double* ap, const double* bp, double* c,
                                                          int64_t ldc, bool accumulate) {
    __m256d c00 = _mm256_setzero_pd(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00;
    __m256d c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;
    for (int k = 0; k < kc; ++k, ap += k_mr, bp += k_nr) {
        const __m256d b0 = _mm256_load_pd(bp), b1 = _mm256_load_pd(bp + 4);
        __m256d a = _mm256_broadcast_sd(ap + 0);
        c00 = _mm256_fmadd_pd(a, b0, c00);
        c01 = _mm256_fmadd_pd(a, b1, c01);
        a = _mm256_broadcast_sd(ap + 1);
        c10 = _mm256_fmadd_pd(a, b0, c10);
        c11 = _mm256_fmadd_pd(a, b1, c11);
        a = _mm256_broadcast_sd(ap + 2);
        c20 = _mm256_fmadd_pd(a, b0, c20);
        c21 = _mm256_fmadd_pd(a, b1, c21);
        a = _mm256_broadcast_sd(ap + 3);
        c30 = _mm256_fmadd_pd(a, b0, c30);
        c31 = _mm256_fmadd_pd(a, b1, c31);
        a = _mm256_broadcast_sd(ap + 4);
        c40 = _mm256_fmadd_pd(a, b0, c40);
        c41 = _mm256_fmadd_pd(a, b1, c41);
        a = _mm256_broadcast_sd(ap + 5);
        c50 = _mm256_fmadd_pd(a, b0, c50);
        c51 = _mm256_fmadd_pd(a, b1, c51);
    }
    const __m256d rows[k_mr][2] = {{c00, c01}, {c10, c11}, {c20, c21}, {c30, c31}, {c40, c41}, {c50, c51}};
    for (int r = 0; r < k_mr; ++r) {
        double* row = c + r * ldc;
        __m256d lo = rows[r][0], hi = rows[r][1];
        if (accumulate) {
            lo = _mm256_add_pd(lo, _mm256_loadu_pd(row));
            hi = _mm256_add_pd(hi, _mm256_loadu_pd(row + 4));
        }
        _mm256_storeu_pd(row, lo);
        _mm256_storeu_pd(row + 4, hi);
    }
}
#endif

microkernel_fn pick_microkernel(const char** name) {
#if defined(__x86_64__)
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
        *name = "avx2_fma";
        return microkernel_avx2;
    }
#endif
    *name = "plain";
    return microkernel_plain;
}

struct aligned_free {
    void operator()(double* p) const { free(p); }
};
using aligned_buffer = std::unique_ptr<double[], aligned_free>;
aligned_buffer aligned_doubles(uint64_t count) {
    void* p = nullptr;
    if (posix_memalign(&p, 64, std::max<uint64_t>(count, 1) * sizeof(double)) != 0) return aligned_buffer();
    return aligned_buffer(static_cast<double*>(p));
}

// Columns of the shared packed B panel: half the last-level cache, a multiple of NR.
int panel_columns(const topology& topo) {
    const uint64_t llc = topo.last_level_cache_bytes ? topo.last_level_cache_bytes : (8u << 20);
    const uint64_t cols = llc / 2 / (k_kc * sizeof(double));
    return static_cast<int>(std::clamp<uint64_t>(cols / k_nr * k_nr, 4 * k_nr, 8192));
}

uint64_t bits_of(double v) {
    uint64_t u;
    memcpy(&u, &v, sizeof u);
    return u;
}

}  // namespace

uint64_t gemm_matrix_n(const kiln_test_params* p) { return p->matrix_n > 0 ? static_cast<uint64_t>(p->matrix_n) : k_default_n; }

kiln_status run_gemm(const topology& topo, const kiln_test_params* p, sink_writer& out, const volatile int32_t* cancel) {
    const int threads = effective_threads(p, topo);
    const int64_t n = static_cast<int64_t>(gemm_matrix_n(p));
    const uint64_t elements = static_cast<uint64_t>(n) * static_cast<uint64_t>(n);
    // A and B twice (the exact integer inputs and the random full-mantissa ones), C, and the first
    // random product, which every later one must repeat bit for bit.
    region ra(elements * 8u), rb(elements * 8u), rc(elements * 8u), rra(elements * 8u), rrb(elements * 8u), rfirst(elements * 8u);
    if (!ra.ok() || !rb.ok() || !rc.ok() || !rra.ok() || !rrb.ok() || !rfirst.ok())
        return fail(KILN_OUT_OF_MEMORY, "gemm: cannot map 6 matrices of %s", format_bytes(elements * 8.0).c_str());
    double* const exact_a = ra.as<double>();
    double* const exact_b = rb.as<double>();
    double* const random_a = rra.as<double>();
    double* const random_b = rrb.as<double>();
    double* const first = rfirst.as<double>();
    double* c = rc.as<double>();
    const int nc_max = panel_columns(topo);
    const uint64_t slivers_max = static_cast<uint64_t>((nc_max + k_nr - 1) / k_nr);
    aligned_buffer bpack = aligned_doubles(slivers_max * k_nr * k_kc);
    if (!bpack) return fail(KILN_OUT_OF_MEMORY, "gemm: cannot allocate the packed B panel");

    int8_t ta[KILN_GEMM_PERIOD], tb[KILN_GEMM_PERIOD];
    kiln_gemm_tables(p->seed, ta, tb);
    std::vector<int64_t> expected_table(KILN_GEMM_PERIOD * KILN_GEMM_PERIOD);
    kiln_gemm_expected_table(ta, tb, static_cast<uint64_t>(n), expected_table.data());

    // Corrupted after the first product, before its verify (kiln_injection_positions predicts them).
    std::vector<uint64_t> corrupt_words(static_cast<size_t>(std::max(0, p->inject_corrupt)));
    std::vector<uint32_t> corrupt_bits(corrupt_words.size());
    corrupt_words.resize(static_cast<size_t>(
        kiln_injection_positions_fill(p->inject_seed, p->inject_corrupt, elements, corrupt_words.data(), corrupt_bits.data())));

    const char* kernel_name = nullptr;
    const microkernel_fn kernel = pick_microkernel(&kernel_name);
    const int iterations = std::max(1, p->iterations);
    const double duration_s = p->duration_ms / 1000.0;
    const double slowdown = (p->inject_slowdown > 0 && p->inject_slowdown < 1) ? p->inject_slowdown : 1.0;
    out.metric("matrix_n", static_cast<double>(n), "count");

    std::atomic<bool> stop{false};
    std::atomic<uint64_t> errors{0};
    bool done = false;
    int completed = 0, exact_done = 0, random_done = 0;
    double best_tflops = 0, t0 = 0;
    const double start = now_seconds();
    worker_team team(threads, topo.cpus);
    team.run([&](int w) {
        uint64_t row_begin, row_end;
        partition(static_cast<uint64_t>(n), threads, w, k_mr, &row_begin, &row_end);
        // Inputs, first-touched by the worker whose rows they are.
        for (uint64_t i = row_begin; i < row_end && !*cancel; ++i) {
            uint32_t ra_phase = kiln_gemm_row_phase(i);
            for (int64_t k = 0; k < n; ++k) {
                exact_a[i * n + k] = ta[ra_phase];
                ra_phase = ra_phase + 1 == KILN_GEMM_PERIOD ? 0 : ra_phase + 1;
            }
            const uint32_t kb = static_cast<uint32_t>(i % KILN_GEMM_PERIOD);  // row i of B is row k = i
            for (int64_t j = 0; j < n; ++j) exact_b[i * n + j] = tb[(kb + kiln_gemm_col_phase(static_cast<uint64_t>(j))) % KILN_GEMM_PERIOD];
            for (int64_t k = 0; k < n; ++k) {
                random_a[i * n + k] = kiln_gemm_random_unit(p->seed, 0, i, static_cast<uint64_t>(k));
                random_b[i * n + k] = kiln_gemm_random_unit(p->seed, 1, static_cast<uint64_t>(k), i);  // B[i][k], as the GPU's B^T[k][i]
            }
        }
        aligned_buffer apack = aligned_doubles(static_cast<uint64_t>(k_mc) * k_kc);
        double edge[k_mr * k_nr];
        team.barrier();
        if (w == 0 && *cancel) stop = true;
        team.barrier();
        while (!stop) {
            // Odd products are on the random inputs. C is poisoned first (every bit set: NaN, never a
            // product's value), so a store that is lost cannot leave the last product's value.
            const bool random = completed % 2 == 1;
            const double* a = random ? random_a : exact_a;
            const double* b = random ? random_b : exact_b;
            memset(c + row_begin * n, 0xFF, (row_end - row_begin) * static_cast<size_t>(n) * sizeof(double));
            team.barrier();
            if (w == 0) t0 = now_seconds();
            // stop is set only between the second barrier of a block and the next barrier, and read
            // only right after a barrier, so every worker leaves at the same barrier.
            bool aborted = false;
            for (int64_t jc = 0; jc < n && !aborted; jc += nc_max) {
                const int nc = static_cast<int>(std::min<int64_t>(nc_max, n - jc));
                const int slivers = (nc + k_nr - 1) / k_nr;
                for (int64_t pc = 0; pc < n; pc += k_kc) {
                    const int kc = static_cast<int>(std::min<int64_t>(k_kc, n - pc));
                    // Every worker packs its share of B's slivers; all use the whole panel.
                    team.barrier();
                    if (stop) {
                        aborted = true;
                        break;
                    }
                    for (int s = w; s < slivers; s += threads) {
                        double* dst = bpack.get() + static_cast<int64_t>(s) * k_kc * k_nr;
                        const int64_t col0 = jc + static_cast<int64_t>(s) * k_nr;
                        const int cols = static_cast<int>(std::min<int64_t>(k_nr, n - col0));
                        for (int k = 0; k < kc; ++k, dst += k_nr) {
                            const double* src = b + (pc + k) * n + col0;
                            for (int j = 0; j < k_nr; ++j) dst[j] = j < cols ? src[j] : 0.0;
                        }
                    }
                    team.barrier();
                    for (uint64_t ic = row_begin; ic < row_end; ic += k_mc) {
                        if (*cancel) {
                            stop = true;
                            break;
                        }
                        const int mc = static_cast<int>(std::min<uint64_t>(k_mc, row_end - ic));
                        double* ap = apack.get();
                        for (int ir = 0; ir < mc; ir += k_mr) {
                            const int rows = std::min(k_mr, mc - ir);
                            for (int k = 0; k < kc; ++k)
                                for (int r = 0; r < k_mr; ++r)
                                    *ap++ = r < rows ? a[(static_cast<int64_t>(ic) + ir + r) * n + pc + k] : 0.0;
                        }
                        for (int s = 0; s < slivers; ++s) {
                            const int64_t col0 = jc + static_cast<int64_t>(s) * k_nr;
                            const int cols = static_cast<int>(std::min<int64_t>(k_nr, n - col0));
                            const double* bp = bpack.get() + static_cast<int64_t>(s) * k_kc * k_nr;
                            for (int ir = 0; ir < mc; ir += k_mr) {
                                const int rows = std::min(k_mr, mc - ir);
                                const double* a_sliver = apack.get() + static_cast<int64_t>(ir) * kc;
                                double* cp = c + (static_cast<int64_t>(ic) + ir) * n + col0;
                                if (rows == k_mr && cols == k_nr) {
                                    kernel(kc, a_sliver, bp, cp, n, pc > 0);
                                    continue;
                                }
                                kernel(kc, a_sliver, bp, edge, k_nr, false);
                                for (int r = 0; r < rows; ++r)
                                    for (int j = 0; j < cols; ++j)
                                        cp[r * n + j] = (pc > 0 ? cp[r * n + j] : 0.0) + edge[r * k_nr + j];
                            }
                        }
                    }
                }
            }
            team.barrier();
            if (stop) break;
            if (w == 0) {
                double seconds = now_seconds() - t0;
                if (slowdown < 1.0) {
                    std::this_thread::sleep_for(std::chrono::duration<double>(seconds * (1.0 / slowdown - 1.0)));
                    seconds = now_seconds() - t0;
                }
                const double tflops = 2.0 * n * static_cast<double>(n) * n / seconds / 1e12;
                best_tflops = std::max(best_tflops, tflops);
                out.metric("fp64_tflops", tflops, "TFLOP/s");
                if (completed == 0)  // the first product is an exact one
                    for (size_t k = 0; k < corrupt_words.size(); ++k) {
                        uint64_t bits = bits_of(c[corrupt_words[k]]) ^ (1ull << corrupt_bits[k]);
                        memcpy(&c[corrupt_words[k]], &bits, sizeof bits);
                    }
            }
            team.barrier();
            // Verify this product: an exact one, every element against its exact value; the first
            // random one is kept; every later random one against it, bit for bit.
            if (!random) {
                for (uint64_t i = row_begin; i < row_end; ++i)
                    for (int64_t j = 0; j < n; ++j) {
                        const double want = static_cast<double>(kiln_gemm_expected(expected_table.data(), i, static_cast<uint64_t>(j)));
                        const double got = c[i * n + j];
                        if (bits_of(got) != bits_of(want)) {
                            errors.fetch_add(1, std::memory_order_relaxed);
                            out.data_error("fp64", (i * n + j) * 8u, bits_of(want), bits_of(got));
                        }
                    }
            } else if (random_done == 0) {
                memcpy(first + row_begin * n, c + row_begin * n, (row_end - row_begin) * static_cast<size_t>(n) * sizeof(double));
            } else {
                for (uint64_t i = row_begin; i < row_end; ++i)
                    for (int64_t j = 0; j < n; ++j)
                        if (bits_of(c[i * n + j]) != bits_of(first[i * n + j])) {
                            errors.fetch_add(1, std::memory_order_relaxed);
                            out.data_error("fp64_repeat", (i * n + j) * 8u, bits_of(first[i * n + j]), bits_of(c[i * n + j]));
                        }
            }
            team.barrier();
            if (w == 0) {
                ++completed;
                ++(random ? random_done : exact_done);
                const double elapsed = now_seconds() - start;
                done = exact_done >= iterations && random_done >= 2 && (duration_s <= 0 || elapsed >= duration_s);
                out.progress(duration_s > 0 ? std::min(elapsed / duration_s, static_cast<double>(exact_done) / iterations)
                                            : static_cast<double>(exact_done) / iterations);
                if (done) stop = true;
            }
            team.barrier();
        }
    });

    if (completed > 0) out.metric("fp64_tflops_best", best_tflops, "TFLOP/s");
    out.metric("errors_fp64", static_cast<double>(errors.load()), "count");
    out.metric("errors_total", static_cast<double>(out.errors_counted()), "count");
    out.metric("iterations", completed, "count");
    if (random_done > 0) out.metric("random_products_fp64", random_done, "count");
    out.metric("threads", threads, "count");
    out.metric(kernel_name[0] == 'a' ? "microkernel_avx2_fma" : "microkernel_plain", 1, "flag");
    if (!done) return fail(KILN_CANCELLED, "gemm: cancelled after %d products", completed);
    return KILN_OK;
}

}  // namespace kiln::cpu
