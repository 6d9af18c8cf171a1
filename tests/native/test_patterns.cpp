// test_patterns.cpp - the shared per-element logic (kiln_patterns.h) that the CPU and GPU kernels
// both use: generator, pattern words, periods, injection positions, stream recurrence.
#include "common/kiln_patterns.h"
#include "test_support.h"

#include <gtest/gtest.h>

#include <set>

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

TEST(Patterns, StreamRecurrenceStaysBounded) {
    kiln_stream_values v = kiln_stream_initial();
    for (int i = 0; i < 100000; ++i) v = kiln_stream_step(v, 15);
    EXPECT_GT(v.a, 0.1);
    EXPECT_LT(v.a, 10.0);
}
