// test_cpu_gemm.cpp - the cpu gemm and power burner: exact products on odd sizes, injected
// corruption found at the predicted offsets and bits, bad sizes rejected naming the field, and a
// cancel honoured within a second.
#include "test_support.h"

#include <gtest/gtest.h>

namespace {
struct cpu_compute_fixture : cpu_device_fixture {
    static kiln_test_params gemm(int32_t n) {
        kiln_test_params p;
        kiln_test_params_init(KILN_TEST_GEMM, &p);
        p.matrix_n = n;
        return p;
    }
    static kiln_test_params power(uint64_t duration_ms, uint32_t dtypes) {
        kiln_test_params p;
        kiln_test_params_init(KILN_TEST_POWER, &p);
        p.duration_ms = duration_ms;
        p.dtype_mask = dtypes;
        return p;
    }
};
}  // namespace

TEST_F(cpu_compute_fixture, GemmIsExactOnOddSizes) {
    // Sizes that end inside a microkernel tile, a packed block and a B panel.
    for (int32_t n : {1, 7, 67, 333, 517}) {
        kiln_test_params p = gemm(n);
        p.iterations = 2;
        recording_sink rec;
        ASSERT_EQ(kiln_run(dev, &p, &rec.sink, nullptr), KILN_OK) << n << ": " << last_error_text();
        EXPECT_TRUE(rec.errors.empty()) << n;
        EXPECT_EQ(rec.last("errors_total"), 0) << n;
        EXPECT_EQ(rec.last("errors_fp64"), 0) << n;
        // 2 exact products and 2 random ones between them, the second repeating the first bit for bit.
        EXPECT_EQ(rec.count("fp64_tflops"), 4) << n;
        EXPECT_EQ(rec.last("random_products_fp64"), 2) << n;
        EXPECT_GT(rec.last("fp64_tflops_best"), 0) << n;
        EXPECT_EQ(rec.last("matrix_n"), n);
        EXPECT_FALSE(rec.any_injected);
        ASSERT_FALSE(rec.progress.empty());
        EXPECT_DOUBLE_EQ(rec.progress.back(), 1.0);
    }
}

TEST_F(cpu_compute_fixture, GemmFindsEveryCorruptedElementAtItsOffset) {
    const int32_t n = 301;
    kiln_test_params p = gemm(n);
    p.inject_corrupt = 5;
    p.inject_seed = 9;
    p.iterations = 2;  // corruption goes into the first product only
    uint64_t offsets[5];
    uint32_t bits[5];
    ASSERT_EQ(kiln_injection_positions(9, 5, uint64_t{n} * n * 8, offsets, bits), KILN_OK);
    recording_sink rec;
    ASSERT_EQ(kiln_run(dev, &p, &rec.sink, nullptr), KILN_OK) << last_error_text();
    ASSERT_EQ(rec.errors.size(), 5u);
    EXPECT_EQ(rec.last("errors_total"), 5);
    EXPECT_EQ(rec.last("errors_fp64"), 5);
    EXPECT_TRUE(rec.any_injected);
    for (int k = 0; k < 5; ++k) {
        bool found = false;
        for (const auto& e : rec.errors) {
            if (e.offset != offsets[k]) continue;
            found = true;
            EXPECT_EQ(e.expected ^ e.actual, 1ull << bits[k]);
            EXPECT_EQ(e.pattern, "fp64");
            EXPECT_EQ(e.word_bytes, 8u);
            EXPECT_TRUE(e.injected);
        }
        EXPECT_TRUE(found) << "missed offset " << offsets[k];
    }
}

TEST_F(cpu_compute_fixture, GemmRejectsBadSizesNamingTheField) {
    kiln_test_params p = gemm(-1);
    EXPECT_EQ(kiln_test_validate(dev, &p), KILN_INVALID_ARGUMENT);
    EXPECT_NE(last_error_text().find("matrix_n: -1 is negative"), std::string::npos) << last_error_text();
    p = gemm(1000000);
    EXPECT_EQ(kiln_test_validate(dev, &p), KILN_INVALID_ARGUMENT);
    EXPECT_NE(last_error_text().find("matrix_n: 3 matrices of 1000000 x 1000000 doubles need"), std::string::npos)
        << last_error_text();
    EXPECT_NE(last_error_text().find("more than available memory"), std::string::npos);
    p = gemm(2000000);
    EXPECT_EQ(kiln_run(dev, &p, nullptr, nullptr), KILN_INVALID_ARGUMENT);
    EXPECT_NE(last_error_text().find("matrix_n: 2000000 is above 1048576"), std::string::npos) << last_error_text();
    p = gemm(64);
    p.dtype_mask = KILN_DTYPE_BF16;
    EXPECT_EQ(kiln_test_validate(dev, &p), KILN_INVALID_ARGUMENT);
    EXPECT_NE(last_error_text().find("dtype_mask: 0x8"), std::string::npos) << last_error_text();
}

TEST_F(cpu_compute_fixture, GemmCancelsWithinASecond) {
    kiln_test_params p = gemm(1536);
    p.iterations = 1000;
    p.duration_ms = 60000;
    recording_sink rec;
    kiln_status status;
    EXPECT_LT(cancel_latency_seconds(dev, p, rec, &status), 1.0);
    EXPECT_EQ(status, KILN_CANCELLED);
    EXPECT_EQ(rec.last("errors_total"), 0);  // the counts are reported even after a cancel
}

TEST_F(cpu_compute_fixture, PowerBurnsBothTypesAndVerifiesTheRegisters) {
    kiln_test_params p = power(400, 0);
    recording_sink rec;
    ASSERT_EQ(kiln_run(dev, &p, &rec.sink, nullptr), KILN_OK) << last_error_text();
    EXPECT_GT(rec.last("fp64_tflops"), 0);
    EXPECT_GT(rec.last("fp32_tflops"), 0);
    EXPECT_EQ(rec.last("errors_fp64"), 0);
    EXPECT_EQ(rec.last("errors_fp32"), 0);
    EXPECT_EQ(rec.last("errors_total"), 0);
    EXPECT_TRUE(rec.errors.empty());
}

TEST_F(cpu_compute_fixture, PowerFindsCorruptedRegisters) {
    kiln_test_params p = power(100, KILN_DTYPE_FP32);
    p.threads = 2;
    p.inject_corrupt = 3;
    p.inject_seed = 5;
    // 2 workers x 10 chains x 8 fp32 lanes, one 4-byte word each.
    uint64_t offsets[3];
    uint32_t bits[3];
    ASSERT_EQ(kiln_injection_positions(5, 3, 2 * 10 * 8 * 8, offsets, bits), KILN_OK);
    recording_sink rec;
    ASSERT_EQ(kiln_run(dev, &p, &rec.sink, nullptr), KILN_OK) << last_error_text();
    ASSERT_EQ(rec.errors.size(), 3u);
    EXPECT_EQ(rec.last("errors_fp32"), 3);
    EXPECT_EQ(rec.count("fp64_tflops"), 0);
    for (int k = 0; k < 3; ++k) {
        bool found = false;
        for (const auto& e : rec.errors)
            if (e.offset == offsets[k] / 8 * 4) {
                found = true;
                EXPECT_EQ(e.expected ^ e.actual, 1ull << (bits[k] % 32));
                EXPECT_EQ(e.word_bytes, 4u);
            }
        EXPECT_TRUE(found) << "missed register word " << offsets[k] / 8;
    }
}

TEST_F(cpu_compute_fixture, PowerCancelsWithinASecondAndRejectsTensorTypes) {
    kiln_test_params p = power(60000, KILN_DTYPE_FP64);
    recording_sink rec;
    volatile int32_t cancel = 0;
    std::thread stopper([&] {
        std::this_thread::sleep_for(std::chrono::milliseconds(300));
        cancel = 1;
    });
    const auto t0 = std::chrono::steady_clock::now();
    EXPECT_EQ(kiln_run(dev, &p, &rec.sink, &cancel), KILN_CANCELLED);
    stopper.join();
    EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), 1.3);
    EXPECT_GT(rec.last("fp64_tflops"), 0);  // the rate until the stop is still reported
    p.dtype_mask = KILN_DTYPE_FP16;
    EXPECT_EQ(kiln_test_validate(dev, &p), KILN_INVALID_ARGUMENT);
    EXPECT_NE(last_error_text().find("dtype_mask: 0x10"), std::string::npos) << last_error_text();
}
