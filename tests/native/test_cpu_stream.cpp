// test_cpu_stream.cpp - the cpu stream kernel: every op measured and verified, slowdown marked
// as injected, corrupted elements found at their offsets, bad sizes rejected with the limit, cancellation honoured.
#include "test_support.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <thread>

namespace {
struct cpu_fixture : cpu_device_fixture {
    kiln_test_params stream(uint64_t bytes, int iterations) {
        kiln_test_params p;
        kiln_test_params_init(KILN_TEST_STREAM, &p);
        p.size_bytes = bytes;
        p.iterations = iterations;
        return p;
    }
};
}  // namespace

TEST_F(cpu_fixture, CpuDeviceDescribesTheHost) {
    kiln_device_info info;
    ASSERT_EQ(kiln_device_get_info(dev, &info), KILN_OK);
    EXPECT_STREQ(info.backend, "cpu");
    EXPECT_GT(info.compute_units, 0);
    EXPECT_GT(info.total_memory_bytes, 0u);
    EXPECT_GT(info.available_memory_bytes, 0u);
    EXPECT_LE(info.available_memory_bytes, info.total_memory_bytes);
    EXPECT_GE(info.numa_nodes, 1);
}

TEST_F(cpu_fixture, StreamMeasuresEveryOpAndVerifies) {
    kiln_test_params p = stream(8u << 20, 3);
    recording_sink rec;
    ASSERT_EQ(kiln_run(dev, &p, &rec.sink, nullptr), KILN_OK) << last_error_text();
    for (const char* op : {"copy_gbps", "scale_gbps", "add_gbps", "triad_gbps", "read_gbps", "write_gbps"}) {
        EXPECT_EQ(rec.count(op), 3) << op;
        EXPECT_GT(rec.last(op), 0.1) << op;
    }
    EXPECT_GE(rec.last("triad_gbps_best"), rec.last("triad_gbps"));
    EXPECT_EQ(rec.last("errors_total"), 0);
    EXPECT_EQ(rec.last("iterations"), 3);
    EXPECT_TRUE(rec.errors.empty());
    EXPECT_FALSE(rec.any_injected);
    ASSERT_FALSE(rec.progress.empty());
    EXPECT_DOUBLE_EQ(rec.progress.back(), 1.0);
}

TEST_F(cpu_fixture, StreamOpMaskSelectsOps) {
    kiln_test_params p = stream(1u << 20, 2);
    p.op_mask = KILN_STREAM_TRIAD;
    recording_sink rec;
    ASSERT_EQ(kiln_run(dev, &p, &rec.sink, nullptr), KILN_OK);
    EXPECT_EQ(rec.count("copy_gbps"), 0);
    EXPECT_EQ(rec.count("triad_gbps"), 2);
    EXPECT_EQ(rec.last("errors_total"), 0);  // a triad-only recurrence still verifies exactly
}

TEST_F(cpu_fixture, ReadOnlyAndWriteOnlyOpsKeepTheRecurrenceExact) {
    // Read and write between the recurrence's ops: the verify pass still expects the replayed values.
    kiln_test_params p = stream(1u << 20, 3);
    p.op_mask = KILN_STREAM_TRIAD | KILN_STREAM_READ | KILN_STREAM_WRITE;
    recording_sink rec;
    ASSERT_EQ(kiln_run(dev, &p, &rec.sink, nullptr), KILN_OK) << last_error_text();
    EXPECT_EQ(rec.count("read_gbps"), 3);
    EXPECT_EQ(rec.count("write_gbps"), 3);
    EXPECT_EQ(rec.count("copy_gbps"), 0);
    EXPECT_GT(rec.last("read_gbps_best"), 0.1);
    EXPECT_EQ(rec.last("errors_total"), 0);
    EXPECT_TRUE(rec.errors.empty());
}

TEST_F(cpu_fixture, SlowdownIsMarkedInjectedAndSlower) {
    kiln_test_params fast = stream(16u << 20, 3);
    fast.op_mask = KILN_STREAM_COPY;
    recording_sink full;
    ASSERT_EQ(kiln_run(dev, &fast, &full.sink, nullptr), KILN_OK);
    kiln_test_params slow = fast;
    slow.inject_slowdown = 0.25;
    recording_sink slowed;
    ASSERT_EQ(kiln_run(dev, &slow, &slowed.sink, nullptr), KILN_OK);
    EXPECT_TRUE(slowed.any_injected);
    EXPECT_FALSE(full.any_injected);
    // A quarter of the speed, with a wide margin for a busy machine.
    EXPECT_LT(slowed.last("copy_gbps_best"), 0.6 * full.last("copy_gbps_best"));
}

TEST_F(cpu_fixture, CorruptedElementsAreFoundExactlyAtTheirOffsetsOneOfThemOneUlpOff) {
    // 4 MiB per array, 2 iterations: a's expected value is the replayed recurrence.
    kiln_test_params p = stream(4u << 20, 2);
    p.inject_corrupt = 5;
    p.inject_seed = 21;
    const uint64_t bytes = p.size_bytes;
    uint64_t offsets[5];
    uint32_t bits[5];
    ASSERT_EQ(kiln_injection_positions(21, 5, bytes, offsets, bits), KILN_OK);
    recording_sink rec;
    ASSERT_EQ(kiln_run(dev, &p, &rec.sink, nullptr), KILN_OK) << last_error_text();
    ASSERT_EQ(rec.errors.size(), 5u);
    EXPECT_EQ(rec.last("errors_total"), 5);
    EXPECT_TRUE(rec.any_injected);
    for (int k = 0; k < 5; ++k) {
        const auto& e = rec.errors;
        const auto it = std::find_if(e.begin(), e.end(), [&](const recorded_error& r) { return r.offset == offsets[k]; });
        ASSERT_NE(it, e.end()) << "missed offset " << offsets[k];
        EXPECT_EQ(it->pattern, "stream_a");
        EXPECT_TRUE(it->injected);
        // The first change is one unit in the last place: a verify with a tolerance would pass it.
        EXPECT_EQ(it->expected ^ it->actual, k == 0 ? 1ull : 1ull << bits[k]) << k;
    }
}

TEST_F(cpu_fixture, StreamWithoutCorruptionFindsNothing) {
    kiln_test_params p = stream(4u << 20, 2);
    p.inject_seed = 21;  // a seed alone injects nothing
    recording_sink rec;
    ASSERT_EQ(kiln_run(dev, &p, &rec.sink, nullptr), KILN_OK);
    EXPECT_TRUE(rec.errors.empty());
    EXPECT_FALSE(rec.any_injected);
}

TEST_F(cpu_fixture, StreamRejectsSizesBeyondMemoryNamingTheLimit) {
    kiln_test_params p = stream(1ull << 50, 1);
    EXPECT_EQ(kiln_test_validate(dev, &p), KILN_INVALID_ARGUMENT);
    EXPECT_NE(last_error_text().find("larger than available memory"), std::string::npos) << last_error_text();
    p = stream(8u << 20, 0);
    EXPECT_EQ(kiln_run(dev, &p, nullptr, nullptr), KILN_INVALID_ARGUMENT);
    EXPECT_NE(last_error_text().find("iterations: 0"), std::string::npos);
    p = stream(8u << 20, 1);
    p.threads = -3;
    EXPECT_EQ(kiln_test_validate(dev, &p), KILN_INVALID_ARGUMENT);
    EXPECT_NE(last_error_text().find("threads: -3 is negative"), std::string::npos);
}

TEST_F(cpu_fixture, StreamCancelsWithinASecond) {
    kiln_test_params p = stream(64u << 20, 1000000);
    recording_sink rec;
    kiln_status status;
    EXPECT_LT(cancel_latency_seconds(dev, p, rec, &status), 1.0);
    EXPECT_EQ(status, KILN_CANCELLED);
    EXPECT_GT(rec.count("copy_gbps"), 0);  // what was measured before the stop was reported
}

TEST_F(cpu_fixture, CancelDuringSetupOfHugeArraysIsFast) {
    kiln_test_params p = stream(3ull << 29, 5);
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
