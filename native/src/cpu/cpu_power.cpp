// cpu_power.cpp - the FMA burner: every core runs register-resident chains of fused multiply-adds
// (AVX2/FMA when the CPU has it) for duration_ms, fp64 and then fp32, and reports the rate
// reached. The chains are kiln_patterns.h's exact pairs x -> x + a*b -> x, then one closing step
// x -> x + a*b whose result is computed with integers alone (kiln_power_*_final_bits): a multiplier
// wrong the same way for a*b and -a*b cancels in the pairs but not there. Every register that does
// not end on that value is a data error.
#include "cpu_backend.h"
#include "../common/kiln_names.h"
#include "../common/kiln_patterns.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace kiln::cpu {
namespace {

constexpr int k_chains = 10;         // independent accumulators per lane: 10 x ymm covers FMA latency x 2 ports
constexpr int k_lanes = 8;           // fp32 lanes of a ymm; fp64 uses the first 4
constexpr uint64_t k_pairs_per_check = 1u << 16;  // ~1 ms of work between deadline and cancel checks
constexpr uint64_t k_default_duration_ms = 10000;

// Values one worker burns: operand lanes a, b and the chains' accumulators x[chain][lane].
template <typename T>
struct burn_state {
    alignas(32) T a[k_lanes];
    alignas(32) T b[k_lanes];
    alignas(32) T x[k_chains][k_lanes];
};

template <typename T>
constexpr int lanes_of() { return 32 / static_cast<int>(sizeof(T)); }

template <typename T>
T operand(uint64_t seed, uint32_t j, uint32_t which) {
    if constexpr (sizeof(T) == 8) return kiln_power_fp64_operand(seed, j, which);
    else return kiln_power_fp32_operand(seed, j, which);
}

template <typename T>
void init_state(burn_state<T>& s, uint64_t seed) {
    for (int l = 0; l < k_lanes; ++l) {
        s.a[l] = operand<T>(seed, static_cast<uint32_t>(l), 0);
        s.b[l] = operand<T>(seed, static_cast<uint32_t>(l), 1);
        for (int c = 0; c < k_chains; ++c) s.x[c][l] = operand<T>(seed, static_cast<uint32_t>(c * k_lanes + l), 2);
    }
}

// pairs x (a*b added, then taken away) on every chain and lane.
template <typename T>
void burn_plain(burn_state<T>& s, uint64_t pairs) {
    constexpr int lanes = lanes_of<T>();
    for (uint64_t i = 0; i < pairs; ++i)
        for (int c = 0; c < k_chains; ++c)
            for (int l = 0; l < lanes; ++l) s.x[c][l] = std::fma(-s.a[l], s.b[l], std::fma(s.a[l], s.b[l], s.x[c][l]));
}

#if defined(__x86_64__)
__attribute__((target("avx2,fma"))) void burn_avx2(burn_state<double>& s, uint64_t pairs) {
    const __m256d a = _mm256_load_pd(s.a), b = _mm256_load_pd(s.b);
    const __m256d na = _mm256_sub_pd(_mm256_setzero_pd(), a);
    __m256d x[k_chains];
    for (int c = 0; c < k_chains; ++c) x[c] = _mm256_load_pd(s.x[c]);
    for (uint64_t i = 0; i < pairs; ++i) {
#pragma GCC unroll 10
        for (int c = 0; c < k_chains; ++c) x[c] = _mm256_fmadd_pd(a, b, x[c]);
#pragma GCC unroll 10
        for (int c = 0; c < k_chains; ++c) x[c] = _mm256_fmadd_pd(na, b, x[c]);
    }
    for (int c = 0; c < k_chains; ++c) _mm256_store_pd(s.x[c], x[c]);
}

__attribute__((target("avx2,fma"))) void burn_avx2(burn_state<float>& s, uint64_t pairs) {
    const __m256 a = _mm256_load_ps(s.a), b = _mm256_load_ps(s.b);
    const __m256 na = _mm256_sub_ps(_mm256_setzero_ps(), a);
    __m256 x[k_chains];
    for (int c = 0; c < k_chains; ++c) x[c] = _mm256_load_ps(s.x[c]);
    for (uint64_t i = 0; i < pairs; ++i) {
#pragma GCC unroll 10
        for (int c = 0; c < k_chains; ++c) x[c] = _mm256_fmadd_ps(a, b, x[c]);
#pragma GCC unroll 10
        for (int c = 0; c < k_chains; ++c) x[c] = _mm256_fmadd_ps(na, b, x[c]);
    }
    for (int c = 0; c < k_chains; ++c) _mm256_store_ps(s.x[c], x[c]);
}

bool have_avx2_fma() { return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"); }
#else
bool have_avx2_fma() { return false; }
#endif

template <typename T>
void burn(burn_state<T>& s, uint64_t pairs, bool avx2) {
#if defined(__x86_64__)
    if (avx2) return burn_avx2(s, pairs);
#endif
    burn_plain(s, pairs);
}

template <typename T>
uint64_t bits_of(T v) {
    if constexpr (sizeof(T) == 8) {
        uint64_t u;
        memcpy(&u, &v, 8);
        return u;
    } else {
        uint32_t u;
        memcpy(&u, &v, 4);
        return u;
    }
}

// x + a*b for burner operands, from their bits with integers only.
template <typename T>
T closing_value(T x, T a, T b) {
    T out;
    if constexpr (sizeof(T) == 8) {
        const uint64_t r = kiln_power_fp64_final_bits(bits_of<T>(x), bits_of<T>(a), bits_of<T>(b));
        memcpy(&out, &r, 8);
    } else {
        const uint32_t r = kiln_power_fp32_final_bits(static_cast<uint32_t>(bits_of<T>(x)), static_cast<uint32_t>(bits_of<T>(a)),
                                                      static_cast<uint32_t>(bits_of<T>(b)));
        memcpy(&out, &r, 4);
    }
    return out;
}

// One dtype on every worker for seconds: KILN_OK, KILN_CANCELLED, or KILN_INTERNAL.
template <typename T>
kiln_status burn_dtype(const topology& topo, const kiln_test_params* p, int threads, double seconds, const char* dtype,
                sink_writer& out, const volatile int32_t* cancel, uint64_t* errors) {
    constexpr int lanes = lanes_of<T>();
    burn_state<T> start_state;
    init_state(start_state, p->seed);
    // The replay: one pair on every operand triple must give back x exactly; the closing step's
    // known result (integers only) is what every register must end on.
    burn_state<T> want = start_state;
    for (int c = 0; c < k_chains; ++c)
        for (int l = 0; l < lanes; ++l) {
            const T x = start_state.x[c][l], a = start_state.a[l], b = start_state.b[l];
            if (bits_of<T>(std::fma(-a, b, std::fma(a, b, x))) != bits_of<T>(x))
                return fail(KILN_INTERNAL, "power: %s burner operands of chain %d lane %d are not exact", dtype, c, l);
            want.x[c][l] = closing_value(x, a, b);
            if (bits_of<T>(want.x[c][l]) != bits_of<T>(std::fma(a, b, x)))
                return fail(KILN_INTERNAL, "power: %s closing step of chain %d lane %d is not exact", dtype, c, l);
        }
    const bool avx2 = have_avx2_fma();
    std::vector<burn_state<T>> states(static_cast<size_t>(threads), start_state);
    std::vector<uint64_t> pairs_done(static_cast<size_t>(threads), 0);
    std::atomic<bool> stop{false};
    const double begin = now_seconds(), deadline = begin + seconds;
    worker_team team(threads, topo.cpus);
    team.run([&](int w) {
        burn_state<T>& s = states[static_cast<size_t>(w)];
        uint64_t done = 0;
        while (!stop.load(std::memory_order_relaxed)) {
            burn(s, k_pairs_per_check, avx2);
            done += k_pairs_per_check;
            if (*cancel) stop = true;
            if (now_seconds() >= deadline) break;
        }
        // The closing step: x0 + a*b, which the host knows without a floating-point unit.
        for (int c = 0; c < k_chains; ++c)
            for (int l = 0; l < lanes; ++l) s.x[c][l] = std::fma(s.a[l], s.b[l], s.x[c][l]);
        pairs_done[static_cast<size_t>(w)] = done;
    });
    const double elapsed = now_seconds() - begin;
    uint64_t pairs = 0;
    for (uint64_t d : pairs_done) pairs += d;
    // Two FMAs (4 flops) per pair, per chain and lane.
    const double flops = 4.0 * static_cast<double>(pairs) * k_chains * lanes;
    std::string name = std::string(dtype) + "_tflops";
    out.metric(name.c_str(), flops / elapsed / 1e12, "TFLOP/s");

    // Injected corruption: flip bits of seeded registers before the check.
    const uint64_t words = static_cast<uint64_t>(threads) * k_chains * lanes;
    std::vector<uint64_t> corrupt_words(static_cast<size_t>(std::max(0, p->inject_corrupt)));
    std::vector<uint32_t> corrupt_bits(corrupt_words.size());
    const int corrupted = kiln_injection_positions_fill(p->inject_seed, p->inject_corrupt, words, corrupt_words.data(), corrupt_bits.data());
    for (int k = 0; k < corrupted; ++k) {
        const uint64_t word = corrupt_words[static_cast<size_t>(k)];
        T& v = states[word / (k_chains * lanes)].x[(word / lanes) % k_chains][word % lanes];
        auto flipped = bits_of<T>(v) ^ (static_cast<decltype(bits_of<T>(v))>(1) << (corrupt_bits[static_cast<size_t>(k)] % (8 * sizeof(T))));
        memcpy(&v, &flipped, sizeof v);
    }
    uint64_t wrong = 0;
    for (int w = 0; w < threads; ++w)
        for (int c = 0; c < k_chains; ++c)
            for (int l = 0; l < lanes; ++l) {
                const T got = states[static_cast<size_t>(w)].x[c][l], expected = want.x[c][l];
                if (bits_of<T>(got) == bits_of<T>(expected)) continue;
                ++wrong;
                const uint64_t index = (static_cast<uint64_t>(w) * k_chains + c) * lanes + l;
                out.data_error(dtype, index * sizeof(T), bits_of<T>(expected), bits_of<T>(got), sizeof(T));
            }
    name = std::string("errors_") + dtype;
    out.metric(name.c_str(), static_cast<double>(wrong), "count");
    *errors += wrong;
    return stop ? KILN_CANCELLED : KILN_OK;
}

}  // namespace

uint32_t power_dtype_mask(const kiln_test_params* p) {
    return p->dtype_mask ? p->dtype_mask : (KILN_DTYPE_FP64 | KILN_DTYPE_FP32);
}

kiln_status run_power(const topology& topo, const kiln_test_params* p, sink_writer& out, const volatile int32_t* cancel) {
    const int threads = effective_threads(p, topo);
    const uint32_t mask = power_dtype_mask(p);
    const int dtypes = ((mask & KILN_DTYPE_FP64) ? 1 : 0) + ((mask & KILN_DTYPE_FP32) ? 1 : 0);
    const double seconds = (p->duration_ms ? p->duration_ms : k_default_duration_ms) / 1000.0 / dtypes;
    uint64_t errors = 0;
    kiln_status st = KILN_OK;
    if (mask & KILN_DTYPE_FP64) {
        st = burn_dtype<double>(topo, p, threads, seconds, kiln_dtype_key(KILN_DTYPE_FP64), out, cancel, &errors);
        out.progress(dtypes == 2 ? 0.5 : 1.0);
    }
    if (st == KILN_OK && (mask & KILN_DTYPE_FP32)) {
        st = burn_dtype<float>(topo, p, threads, seconds, kiln_dtype_key(KILN_DTYPE_FP32), out, cancel, &errors);
        out.progress(1.0);
    }
    out.metric("errors_total", static_cast<double>(out.errors_counted()), "count");
    out.metric("threads", threads, "count");
    if (st == KILN_CANCELLED) return fail(KILN_CANCELLED, "power: cancelled");
    return st;
}

}  // namespace kiln::cpu
