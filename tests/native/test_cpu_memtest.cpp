// test_cpu_memtest.cpp - the cpu memtest: clean memory passes every pattern, an injected flip is
// found at its exact offset and bit by every pattern (fast path and edges), every error is
// counted while reports are capped, and cancellation is honoured.
#include "test_support.h"

#include <gtest/gtest.h>


namespace {
struct memtest_fixture : cpu_device_fixture {
    static kiln_test_params memtest(uint64_t bytes) {
        kiln_test_params p;
        kiln_test_params_init(KILN_TEST_MEMTEST, &p);
        p.size_bytes = bytes;
        return p;
    }
};
const char* const k_patterns[] = {"walking_ones", "walking_zeros", "own_address", "moving_inv_fixed",
                                  "moving_inv_random", "modulo_20"};
}  // namespace

TEST_F(memtest_fixture, CleanMemoryPassesEveryPattern) {
    kiln_test_params p = memtest(8u << 20);
    recording_sink rec;
    ASSERT_EQ(kiln_run(dev, &p, &rec.sink, nullptr), KILN_OK) << last_error_text();
    EXPECT_TRUE(rec.errors.empty());
    for (const char* pat : k_patterns) {
        EXPECT_EQ(rec.last(std::string("errors_") + pat), 0) << pat;
        EXPECT_GT(rec.last(std::string(pat) + "_gbps"), 0) << pat;
    }
    EXPECT_EQ(rec.last("errors_total"), 0);
    EXPECT_EQ(rec.last("bytes_tested"), 8u << 20);
    EXPECT_GT(rec.last("verified_gbps"), 0);
    EXPECT_DOUBLE_EQ(rec.progress.back(), 1.0);
}

TEST_F(memtest_fixture, InjectedFlipsAreFoundAtTheirOffsetsAndBits) {
    // An odd size: the region ends inside a fast-path block, so the scalar edges are covered too.
    const uint64_t bytes = (4u << 20) + 8 * 77;
    for (int pat = 0; pat < KILN_PATTERN_COUNT; ++pat) {
        kiln_test_params p = memtest(bytes);
        p.pattern_mask = 1u << pat;
        p.inject_flips = 3;
        p.inject_seed = 7;
        uint64_t offsets[3];
        uint32_t bits[3];
        ASSERT_EQ(kiln_injection_positions(7, 3, bytes, offsets, bits), KILN_OK);
        recording_sink rec;
        ASSERT_EQ(kiln_run(dev, &p, &rec.sink, nullptr), KILN_OK);
        ASSERT_EQ(rec.errors.size(), 3u) << k_patterns[pat];
        EXPECT_TRUE(rec.any_injected);
        for (int k = 0; k < 3; ++k) {
            bool found = false;
            for (const auto& e : rec.errors) {
                if (e.offset != offsets[k]) continue;
                found = true;
                EXPECT_EQ(e.expected ^ e.actual, 1ull << bits[k]) << k_patterns[pat];
                EXPECT_EQ(e.pattern, k_patterns[pat]);
                EXPECT_TRUE(e.injected);
            }
            EXPECT_TRUE(found) << k_patterns[pat] << " missed offset " << offsets[k];
        }
        EXPECT_EQ(rec.last(std::string("errors_") + k_patterns[pat]), 3);
        EXPECT_EQ(rec.last("errors_total"), 3);
    }
}

TEST_F(memtest_fixture, ASingleFlipIsFoundAndMarkedInjected) {
    // One flip, not two or more: a rule such as "injected when flips > 1" must fail here.
    kiln_test_params p = memtest(1u << 20);
    p.pattern_mask = 1u;
    p.inject_flips = 1;
    p.inject_seed = 5;
    uint64_t offset;
    uint32_t bit;
    ASSERT_EQ(kiln_injection_positions(5, 1, 1u << 20, &offset, &bit), KILN_OK);
    recording_sink rec;
    ASSERT_EQ(kiln_run(dev, &p, &rec.sink, nullptr), KILN_OK);
    ASSERT_EQ(rec.errors.size(), 1u);
    EXPECT_EQ(rec.errors[0].offset, offset);
    EXPECT_EQ(rec.errors[0].expected ^ rec.errors[0].actual, 1ull << bit);
    EXPECT_TRUE(rec.errors[0].injected);
    EXPECT_TRUE(rec.any_injected);
    EXPECT_EQ(rec.last("errors_total"), 1);
}

TEST_F(memtest_fixture, FlipsAtTheVeryEdgesAreFound) {
    // A tiny region: every word is near an edge of a worker's partition or of a block.
    kiln_test_params p = memtest(4096 + 64);
    p.pattern_mask = 1u << KILN_PATTERN_MODULO_20;
    p.inject_flips = 520;  // every word of the region
    p.inject_seed = 3;
    p.max_error_reports = 10000;
    recording_sink rec;
    ASSERT_EQ(kiln_run(dev, &p, &rec.sink, nullptr), KILN_OK);
    EXPECT_EQ(rec.errors.size(), 520u);
}

TEST_F(memtest_fixture, ReportsAreCappedButEveryErrorIsCounted) {
    kiln_test_params p = memtest(1u << 20);
    p.pattern_mask = 1u << KILN_PATTERN_OWN_ADDRESS;
    p.inject_flips = 50;
    p.inject_seed = 11;
    p.max_error_reports = 10;
    recording_sink rec;
    ASSERT_EQ(kiln_run(dev, &p, &rec.sink, nullptr), KILN_OK);
    EXPECT_EQ(rec.errors.size(), 10u);
    EXPECT_EQ(rec.last("errors_total"), 50);
}

TEST_F(memtest_fixture, RejectsBadInputNamingTheField) {
    kiln_test_params p = memtest(1ull << 50);
    EXPECT_EQ(kiln_test_validate(dev, &p), KILN_INVALID_ARGUMENT);
    EXPECT_NE(last_error_text().find("size_bytes: 1.0 PiB is larger than available memory"), std::string::npos)
        << last_error_text();
    p = memtest(1u << 20);
    p.inject_flips = -1;
    EXPECT_EQ(kiln_test_validate(dev, &p), KILN_INVALID_ARGUMENT);
    EXPECT_NE(last_error_text().find("inject_flips: -1"), std::string::npos);
    p = memtest(1u << 20);
    p.pattern_mask = 1u << 9;
    EXPECT_EQ(kiln_test_validate(dev, &p), KILN_INVALID_ARGUMENT);
    p = memtest(1u << 20);
    p.size_fraction = 2.0;
    p.size_bytes = 0;
    EXPECT_EQ(kiln_test_validate(dev, &p), KILN_INVALID_ARGUMENT);
    EXPECT_NE(last_error_text().find("size_fraction"), std::string::npos);
}

TEST_F(memtest_fixture, CancelsWithinASecondAndKeepsWhatItMeasured) {
    kiln_test_params p = memtest(512u << 20);
    p.iterations = 1000;
    recording_sink rec;
    kiln_status status;
    EXPECT_LT(cancel_latency_seconds(dev, p, rec, &status), 1.0);
    EXPECT_EQ(status, KILN_CANCELLED);
    EXPECT_EQ(rec.last("errors_total"), 0);  // the final counts are still reported
    EXPECT_GT(rec.count("errors_walking_ones"), 0);
}

TEST_F(memtest_fixture, CancelDuringSetupOfAHugeRegionIsFast) {
    // 4 GiB of first touch takes over a second; a cancel that arrives during it must still stop at once.
    kiln_test_params p = memtest(4ull << 30);
    volatile int32_t cancel = 0;
    std::thread stopper([&] {
        std::this_thread::sleep_for(std::chrono::milliseconds(200));
        cancel = 1;
    });
    const auto t0 = std::chrono::steady_clock::now();
    EXPECT_EQ(kiln_run(dev, &p, nullptr, &cancel), KILN_CANCELLED);
    stopper.join();
    EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), 1.2);
}

TEST_F(memtest_fixture, ManyFlipsAcrossEveryBlockGroupAreAllFound) {
    // 4,000 flips over 4 MiB land in nearly every group of blocks, in both sweep directions.
    const uint64_t bytes = (4u << 20) + 8 * 13;
    for (int pat = 0; pat < KILN_PATTERN_COUNT; ++pat) {
        kiln_test_params p = memtest(bytes);
        p.pattern_mask = 1u << pat;
        p.inject_flips = 4000;
        p.inject_seed = 99;
        p.max_error_reports = 0;  // count only
        recording_sink rec;
        ASSERT_EQ(kiln_run(dev, &p, &rec.sink, nullptr), KILN_OK);
        EXPECT_EQ(rec.last("errors_total"), 4000) << k_patterns[pat];
        EXPECT_TRUE(rec.errors.empty());
    }
}
