// test_patterns.cpp - the shared per-element logic (kiln_patterns.h) that the CPU and GPU kernels
// both use: generator, pattern words, periods, injection positions, stream recurrence, the gemm's
// exact product and the power burner's exact operand pairs.
#include "common/kiln_patterns.h"
#include "test_support.h"

#include <gtest/gtest.h>

#include <cstring>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <set>
#include <vector>

TEST(Patterns, Splitmix64KnownVector) {
    uint64_t state = 1234567;
    // Reference outputs of splitmix64 seeded with 1234567 (Vigna's published generator).
    EXPECT_EQ(kiln_splitmix64_next(&state), 6457827717110365317ull);
    EXPECT_EQ(kiln_splitmix64_next(&state), 3203168211198807973ull);
}

TEST(Patterns, WalkingOnesAndZerosHaveOneBit) {
    for (uint64_t i = 0; i < 200; ++i) {
        EXPECT_EQ(__builtin_popcountll(kiln_pattern_word(KILN_P_WALKING_ONES, 0, 3, i, 0)), 1);
        EXPECT_EQ(__builtin_popcountll(kiln_pattern_word(KILN_P_WALKING_ZEROS, 0, 3, i, 0)), 63);
    }
    EXPECT_EQ(kiln_pattern_word(KILN_P_WALKING_ONES, 0, 0, 5, 0), 1ull << 5);
    EXPECT_EQ(kiln_pattern_word(KILN_P_WALKING_ONES, 0, 2, 5, 0), 1ull << 7);
}

TEST(Patterns, OwnAddressHoldsOffsetThenComplement) {
    EXPECT_EQ(kiln_pattern_word(KILN_P_OWN_ADDRESS, 0, 0, 10, 0), 80u);
    EXPECT_EQ(kiln_pattern_word(KILN_P_OWN_ADDRESS, 1, 0, 10, 0), ~80ull);
    EXPECT_EQ(kiln_pattern_period_words(KILN_P_OWN_ADDRESS), 0u);
}

TEST(Patterns, PeriodicPatternsRepeatWithTheirPeriod) {
    for (int pat : {KILN_P_WALKING_ONES, KILN_P_WALKING_ZEROS, KILN_P_MOVING_INV_FIXED, KILN_P_MOVING_INV_RANDOM,
                    KILN_P_MODULO_20}) {
        const uint32_t period = kiln_pattern_period_words(pat);
        ASSERT_GT(period, 0u);
        for (uint32_t phase = 0; phase < kiln_pattern_phases(pat); ++phase)
            for (uint64_t i = 0; i < 700; ++i)
                ASSERT_EQ(kiln_pattern_word(pat, phase, 1, i, 99), kiln_pattern_word(pat, phase, 1, i + period, 99))
                    << "pattern " << pat << " phase " << phase << " word " << i;
    }
}

TEST(Patterns, Modulo20PlacesPatternEveryTwentiethWord) {
    for (uint32_t k = 0; k < 20; ++k) {
        const uint64_t p = kiln_pattern_word(KILN_P_MODULO_20, k, 0, k, 5);
        for (uint64_t i = 0; i < 60; ++i)
            EXPECT_EQ(kiln_pattern_word(KILN_P_MODULO_20, k, 0, i, 5), i % 20 == k ? p : ~p);
    }
}

TEST(Patterns, MovingInversionsAlternateDirectionAndComplement) {
    EXPECT_FALSE(kiln_pattern_descending(KILN_P_MOVING_INV_FIXED, 0));
    EXPECT_TRUE(kiln_pattern_descending(KILN_P_MOVING_INV_FIXED, 1));
    EXPECT_EQ(kiln_pattern_word(KILN_P_MOVING_INV_RANDOM, 1, 0, 0, 7), ~kiln_pattern_word(KILN_P_MOVING_INV_RANDOM, 0, 0, 0, 7));
    EXPECT_NE(kiln_pattern_word(KILN_P_MOVING_INV_RANDOM, 0, 0, 0, 7), kiln_pattern_word(KILN_P_MOVING_INV_RANDOM, 0, 0, 0, 8));
}

TEST(Patterns, InjectionPositionsAreDistinctDeterministicAndExported) {
    uint64_t offsets[64], again[64];
    uint32_t bits[64], bits_again[64];
    ASSERT_EQ(kiln_injection_positions(7, 64, 4096, offsets, bits), KILN_OK);
    ASSERT_EQ(kiln_injection_positions(7, 64, 4096, again, bits_again), KILN_OK);
    std::set<uint64_t> seen;
    for (int i = 0; i < 64; ++i) {
        EXPECT_EQ(offsets[i] % 8, 0u);
        EXPECT_LT(offsets[i], 4096u);
        EXPECT_LT(bits[i], 64u);
        EXPECT_EQ(offsets[i], again[i]);
        EXPECT_EQ(bits[i], bits_again[i]);
        seen.insert(offsets[i]);
    }
    EXPECT_EQ(seen.size(), 64u);
    // The documented formula: word = next() % words, bit = next() % 64.
    uint64_t state = 7;
    const uint64_t word = kiln_splitmix64_next(&state) % 512;
    EXPECT_EQ(offsets[0], word * 8);
    EXPECT_EQ(bits[0], kiln_splitmix64_next(&state) % 64);
    EXPECT_EQ(kiln_injection_positions(7, 600, 4096, offsets, bits), KILN_INVALID_ARGUMENT);
}

TEST(Patterns, StreamRecurrenceStaysBoundedAndNeverRepeatsTheLastIteration) {
    for (uint32_t mask : {15u, 63u}) {
        kiln_stream_values v = kiln_stream_initial();
        for (uint64_t k = 0; k < 1000000; ++k) {
            const kiln_stream_values next = kiln_stream_step(v, mask, k);
            // Every array moves by far more than rounding: a lost store leaves a wrong value.
            ASSERT_GT(std::fabs(next.a - v.a), 0.1 * std::fabs(next.a)) << k;
            ASSERT_GT(std::fabs(next.b - v.b), 0.1 * std::fabs(next.b)) << k;
            ASSERT_NE(next.c, v.c) << k;
            v = next;
        }
        EXPECT_GT(v.a, 0.1);
        EXPECT_LT(v.a, 10.0);
    }
}

// One element's recurrence with one store lost (op, at iteration k): the loss must still show in
// the arrays after 100 iterations, at every k. With the single scalar sqrt(2)-1, a lost scale
// store vanished by rounding at about half of the iterations.
TEST(Patterns, AStreamStoreLostAtAnyIterationStaysVisible) {
    auto run = [](int lost_op, uint64_t lost_at) {
        kiln_stream_values v = kiln_stream_initial();
        for (uint64_t k = 0; k < 100; ++k) {
            const kiln_stream_values before = v, after = kiln_stream_step(v, 15, k);
            v = after;
            if (k != lost_at) continue;
            // Replay the iteration with that op's store lost.
            const double q = kiln_stream_scalar(k);
            kiln_stream_values w = before;
            if (lost_op != 0) w.c = w.a;
            if (lost_op != 1) w.b = kiln_stream_scale(q, w.c);
            if (lost_op != 2) w.c = kiln_stream_add(w.a, w.b);
            if (lost_op != 3) w.a = kiln_stream_triad(q, w.b, w.c);
            v = w;
        }
        return v;
    };
    const kiln_stream_values good = run(-1, 0);
    for (int op = 0; op < 4; ++op)
        for (uint64_t k = 0; k < 99; ++k) {
            const kiln_stream_values bad = run(op, k);
            EXPECT_FALSE(bad.a == good.a && bad.b == good.b && bad.c == good.c) << "op " << op << " lost at iteration " << k;
        }
}

TEST(Patterns, GemmExpectedTableEqualsTheNaiveIntegerProduct) {
    // Sizes below, at and above the table period, so the full-period and remainder sums both count.
    int8_t ta[KILN_GEMM_PERIOD], tb[KILN_GEMM_PERIOD];
    kiln_gemm_tables(0x4B494C4Eull, ta, tb);
    std::vector<int64_t> e(KILN_GEMM_PERIOD * KILN_GEMM_PERIOD);
    for (uint64_t n : {1u, 5u, 61u, 62u, 130u}) {
        kiln_gemm_expected_table(ta, tb, n, e.data());
        for (uint64_t i = 0; i < n; ++i)
            for (uint64_t j = 0; j < n; ++j) {
                int64_t sum = 0;
                for (uint64_t k = 0; k < n; ++k) sum += int64_t{kiln_gemm_a(ta, i, k)} * kiln_gemm_b(tb, k, j);
                ASSERT_EQ(kiln_gemm_expected(e.data(), i, j), sum) << "n " << n << " (" << i << ", " << j << ")";
            }
    }
}

TEST(Patterns, GemmInputsAreSmallIntegersThatMoveWithRowAndColumn) {
    int8_t ta[KILN_GEMM_PERIOD], tb[KILN_GEMM_PERIOD];
    kiln_gemm_tables(7, ta, tb);
    std::set<int> values;
    for (uint32_t t = 0; t < KILN_GEMM_PERIOD; ++t) {
        ASSERT_LE(std::abs(int{ta[t]}), 4);
        ASSERT_LE(std::abs(int{tb[t]}), 4);
        values.insert(ta[t]);
    }
    EXPECT_GE(values.size(), 6u);  // not a degenerate table
    // A row shifted by one is a different row: a misplaced row changes the result.
    int differ = 0;
    for (uint64_t k = 0; k < 61; ++k) differ += kiln_gemm_a(ta, 3, k) != kiln_gemm_a(ta, 4, k);
    EXPECT_GT(differ, 30);
}

TEST(Patterns, PowerBurnerPairsReturnExactly) {
    for (uint32_t j = 0; j < 4096; ++j) {
        const double a = kiln_power_fp64_operand(99, j, 0), b = kiln_power_fp64_operand(99, j, 1);
        const double x = kiln_power_fp64_operand(99, j, 2);
        ASSERT_GE(x, 8.0);
        ASSERT_LT(x, 12.0);
        ASSERT_EQ(std::fma(-a, b, std::fma(a, b, x)), x) << j;
        ASSERT_NE(std::fma(a, b, x), x);
        const float af = kiln_power_fp32_operand(99, j, 0), bf = kiln_power_fp32_operand(99, j, 1);
        const float xf = kiln_power_fp32_operand(99, j, 2);
        ASSERT_EQ(std::fma(-af, bf, std::fma(af, bf, xf)), xf) << j;
        ASSERT_NE(std::fma(af, bf, xf), xf);
    }
}

namespace {
uint64_t bits64(double v) {
    uint64_t u;
    memcpy(&u, &v, 8);
    return u;
}
uint32_t bits32(float v) {
    uint32_t u;
    memcpy(&u, &v, 4);
    return u;
}
}  // namespace

TEST(Patterns, PowerClosingStepIsKnownFromIntegersAndCatchesAMultiplierThatCancels) {
    for (uint64_t seed : {1ull, 99ull, 0x4B494C4Eull})
        for (uint32_t j = 0; j < 4096; ++j) {
            const double a = kiln_power_fp64_operand(seed, j, 0), b = kiln_power_fp64_operand(seed, j, 1);
            const double x = kiln_power_fp64_operand(seed, j, 2);
            ASSERT_EQ(kiln_power_fp64_final_bits(bits64(x), bits64(a), bits64(b)), bits64(std::fma(a, b, x))) << seed << "/" << j;
            const float af = kiln_power_fp32_operand(seed, j, 0), bf = kiln_power_fp32_operand(seed, j, 1);
            const float xf = kiln_power_fp32_operand(seed, j, 2);
            ASSERT_EQ(kiln_power_fp32_final_bits(bits32(xf), bits32(af), bits32(bf)), bits32(std::fma(af, bf, xf))) << seed << "/" << j;
        }
    // A multiplier that misreads a bit of b the same way for both signs: the pair still returns x
    // (the old check passed it), the closing step does not land on the known value.
    const double a = kiln_power_fp64_operand(7, 3, 0), b = kiln_power_fp64_operand(7, 3, 1), x = kiln_power_fp64_operand(7, 3, 2);
    uint64_t wrong_bits = bits64(b) ^ (1ull << 40);
    double wrong;
    memcpy(&wrong, &wrong_bits, 8);
    EXPECT_EQ(std::fma(-a, wrong, std::fma(a, wrong, x)), x);
    EXPECT_NE(bits64(std::fma(a, wrong, x)), kiln_power_fp64_final_bits(bits64(x), bits64(a), bits64(b)));
}

TEST(Patterns, MemtestScheduleWalksEveryPhaseOfTheSelectedPatterns) {
    const uint32_t mask = (1u << KILN_P_OWN_ADDRESS) | (1u << KILN_P_MODULO_20);
    EXPECT_EQ(kiln_memtest_phases_per_round(mask), 22u);
    EXPECT_EQ(kiln_memtest_phases_per_round(0), 1u + 1u + 2u + 4u + 2u + 20u);  // 0 = all patterns
    kiln_memtest_step s = kiln_memtest_first(mask);
    EXPECT_EQ(s.pattern, KILN_P_OWN_ADDRESS);
    std::vector<int> seen;
    for (int i = 0; i < 22; ++i, s = kiln_memtest_next(s, mask)) {
        EXPECT_EQ(s.round, 0u);
        seen.push_back(s.pattern * 100 + static_cast<int>(s.phase));
    }
    EXPECT_EQ(seen.front(), 200);
    EXPECT_EQ(seen[1], 201);
    EXPECT_EQ(seen[2], 500);
    EXPECT_EQ(seen.back(), 519);
    EXPECT_EQ(s.round, 1u);  // the next round starts over
    EXPECT_EQ(s.pattern, KILN_P_OWN_ADDRESS);
    EXPECT_EQ(s.phase, 0u);
}

namespace {

// The order of every sweep of `rounds` rounds of mask, as the CPU and GPU memtests walk them: sweep k
// writes phase k and verifies phase k-1; its direction is the written phase's (the last sweep only
// verifies, in the direction its phase was written).
std::vector<kiln_sweep_order> sweep_orders(uint32_t mask, int rounds, uint64_t words, uint64_t align) {
    const uint64_t phases = kiln_memtest_phases_per_round(mask) * static_cast<uint64_t>(rounds);
    std::vector<int> directions;
    kiln_memtest_step s = kiln_memtest_first(mask);
    for (uint64_t k = 0; k < phases; ++k, s = kiln_memtest_next(s, mask)) directions.push_back(kiln_pattern_descending(s.pattern, s.phase));
    directions.push_back(directions.back());
    std::vector<kiln_sweep_order> orders{kiln_sweep_first(directions[0])};
    for (size_t k = 1; k < directions.size(); ++k) orders.push_back(kiln_sweep_next(orders.back(), directions[k], words, align));
    return orders;
}

const uint32_t k_masks[] = {0, 1u << KILN_P_MOVING_INV_FIXED, 1u << KILN_P_MOVING_INV_RANDOM,
                            (1u << KILN_P_OWN_ADDRESS) | (1u << KILN_P_MOVING_INV_RANDOM) | (1u << KILN_P_MODULO_20)};

}  // namespace

TEST(Patterns, SweepOrderVisitsEveryWordOnceFromItsStart) {
    for (const int descending : {0, 1}) {
        const kiln_sweep_order o = kiln_sweep_next(kiln_sweep_first(!descending), descending, 1000, 8);
        EXPECT_EQ(o.start, 496u);  // half of 1000 words, on an 8-word boundary
        uint64_t lo[2], hi[2];
        kiln_sweep_ranges(o, 1000, lo, hi);
        std::vector<int> seen(1000, 0);
        uint64_t t = 0;
        for (int r = 0; r < 2; ++r)
            for (uint64_t i = 0; i < hi[r] - lo[r]; ++i, ++t) {
                const uint64_t w = descending ? hi[r] - 1 - i : lo[r] + i;  // the ranges, each in the sweep's direction
                ASSERT_EQ(kiln_sweep_word(o, 1000, t), w);
                ASSERT_EQ(kiln_sweep_time(o, 1000, w), t);
                ++seen[w];
            }
        EXPECT_EQ(t, 1000u);
        EXPECT_EQ(std::count(seen.begin(), seen.end(), 1), 1000);
        // Inside each range the direction is the phase's: moving inversions still walk up, then down.
        EXPECT_EQ(kiln_sweep_word(o, 1000, 0), descending ? 495u : 496u);
    }
}

TEST(Patterns, NoSweepVerifiesFirstWhatThePreviousSweepWroteLast) {
    // Word counts and L2 sizes of an H100 (75 GiB tested, 50 MiB L2), an H200 (132 GiB, 60 MiB), an
    // MI300X (182 GiB, 256 MiB Infinity Cache) and the emulator (quick: 128 MiB, 4 MiB), with the GPU's
    // 4 KiB alignment; a CPU worker's slice (2 GiB of 64 cores' 128 GiB, 320-word blocks) against a 32 MiB cache.
    const struct { uint64_t words, cache_words, align; } k_cases[] = {
        {75ull << 27, 50ull << 17, 512}, {132ull << 27, 60ull << 17, 512}, {182ull << 27, 256ull << 17, 512},
        {128ull << 17, 4ull << 17, 512}, {2ull << 27, 32ull << 17, 320}};
    for (const auto& c : k_cases)
        for (const uint32_t mask : k_masks) {
            const auto orders = sweep_orders(mask, 2, c.words, c.align);
            for (size_t k = 1; k < orders.size(); ++k) {
                const uint64_t first = kiln_sweep_word(orders[k], c.words, 0);
                // How many words the previous sweep wrote after it wrote `first`.
                const uint64_t written_after = c.words - 1 - kiln_sweep_time(orders[k - 1], c.words, first);
                EXPECT_GE(written_after, c.cache_words) << "mask " << mask << ", sweep " << k << " of " << c.words << " words";
            }
        }
}

TEST(Patterns, EveryWordIsVerifiedAtLeastHalfARegionAfterItsWrite) {
    // Every word, every sweep, on a region small enough to walk word by word: between its write and its
    // verify the sweeps visit at least half the region (an odd word count and alignments that do not divide it).
    for (const uint64_t words : {uint64_t{1} << 16, uint64_t{99999}})
        for (const uint64_t align : {uint64_t{1}, uint64_t{320}, uint64_t{512}})
            for (const uint32_t mask : k_masks) {
                const auto orders = sweep_orders(mask, 2, words, align);
                uint64_t worst = words;
                for (size_t k = 1; k < orders.size(); ++k)
                    for (uint64_t w = 0; w < words; ++w) {
                        const uint64_t gap = (words - kiln_sweep_time(orders[k - 1], words, w)) + kiln_sweep_time(orders[k], words, w);
                        worst = std::min(worst, gap);
                    }
                EXPECT_GE(worst, words / 2 / align * align) << "mask " << mask << ", " << words << " words, align " << align;
            }
}
