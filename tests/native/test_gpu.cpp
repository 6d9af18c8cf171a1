// test_gpu.cpp - the GPU plugins as built. Both load through the registry from the build's lib
// folder; on a machine without a GPU each is skipped with its reason ("no CUDA driver", "no
// device", "no ROCm"), never a crash. Every GPU test runs on device 0 of each backend that has
// one and is SKIPPED with the plugin's reason where there is none (never counted as passed).
#include "test_support.h"

#include <gtest/gtest.h>

#include <cstring>
#include <regex>
#include <string>

namespace {

struct plugin {
    const char* backend;
    const char* file;
    bool built;
};
const plugin k_plugins[] = {
    {"cuda", "libkiln-cuda.so", KILN_BUILT_CUDA != 0},
    {"hip", "libkiln-hip.so", KILN_BUILT_HIP != 0},
    {"emu", "libkiln-emu.so", true},  // the same sources on the host: built everywhere, run on every CI
};

// The emulated devices these tests run on (two, for the peer copies); a process-wide setting read
// when the emulator first loads.
const bool k_emu_configured = [] {
    setenv("KILN_EMU_DEVICES", "2:memory=256MiB", 0);
    return true;
}();

const plugin& plugin_of(const std::string& backend) {
    for (const plugin& p : k_plugins)
        if (backend == p.backend) return p;
    return k_plugins[0];
}

int device_count_of(const kiln_registry* reg, const std::string& name) {
    for (int i = 0; i < kiln_registry_backend_count(reg); ++i) {
        kiln_backend_info info;
        if (kiln_registry_backend_info(reg, i, &info) == KILN_OK && name == info.name) return info.device_count;
    }
    return 0;
}

bool has_backend(const kiln_registry* reg, const std::string& name) {
    for (int i = 0; i < kiln_registry_backend_count(reg); ++i) {
        kiln_backend_info info;
        if (kiln_registry_backend_info(reg, i, &info) == KILN_OK && name == info.name) return true;
    }
    return false;
}

// The reason the registry gave for skipping file, or "" when it was not skipped.
std::string skip_reason(const kiln_registry* reg, const std::string& file) {
    for (int i = 0; i < kiln_registry_skip_count(reg); ++i) {
        kiln_plugin_skip s;
        if (kiln_registry_skip_info(reg, i, &s) == KILN_OK && std::string(s.path).find("/" + file) != std::string::npos)
            return s.reason;
    }
    return "";
}

}  // namespace

TEST(GpuPlugins, LoadOrAreSkippedWithTheReason) {
    // Twice, so a plugin that fails to unload cleanly shows up here and not in a user's process.
    for (int round = 0; round < 2; ++round) {
        kiln_registry* reg = nullptr;
        ASSERT_EQ(kiln_registry_create(KILN_PLUGIN_BUILD_DIR, &reg), KILN_OK);
        EXPECT_TRUE(has_backend(reg, "cpu"));
        for (const plugin& p : k_plugins) {
            if (!p.built) continue;
            if (has_backend(reg, p.backend)) {
                kiln_device* dev = nullptr;
                EXPECT_EQ(kiln_device_open(reg, p.backend, 0, &dev), KILN_OK) << last_error_text();
                kiln_device_destroy(dev);
                continue;
            }
            const std::string why = skip_reason(reg, p.file);
            EXPECT_TRUE(std::regex_search(why, std::regex("no CUDA driver|no device|no ROCm|KILN_EMU_DEVICES is not set")))
                << p.file << " was neither loaded nor skipped with a driver/device reason: '" << why << "'";
        }
        kiln_registry_destroy(reg);
    }
}

namespace {

class gpu_fixture : public ::testing::TestWithParam<std::string> {
protected:
    kiln_registry* reg = nullptr;
    kiln_device* dev = nullptr;
    kiln_device_info info{};

    void SetUp() override {
        const plugin& p = plugin_of(GetParam());
        if (!p.built) GTEST_SKIP() << p.file << " is not built here (no " << (GetParam() == "cuda" ? "nvcc" : "hipcc") << ")";
        ASSERT_EQ(kiln_registry_create(KILN_PLUGIN_BUILD_DIR, &reg), KILN_OK);
        if (!has_backend(reg, p.backend)) GTEST_SKIP() << p.file << ": " << skip_reason(reg, p.file);
        ASSERT_EQ(kiln_device_open(reg, p.backend, 0, &dev), KILN_OK) << last_error_text();
        ASSERT_EQ(kiln_device_get_info(dev, &info), KILN_OK) << last_error_text();
        hardware = GetParam() != "emu";
    }
    // False on the emulated device: its speeds are the host's, so the speed floors below are for
    // real GPUs only (the emulator's own floors are the emu profile's fractions of its peaks).
    bool hardware = true;
    void TearDown() override {
        kiln_device_destroy(dev);
        kiln_registry_destroy(reg);
    }
    static kiln_test_params params(int32_t test) {
        kiln_test_params p;
        kiln_test_params_init(test, &p);
        return p;
    }
    // Every injected position must be among the errors, with the flipped bit.
    // first_one_ulp: the first position's change is its lowest bit (stream's corruption), not the predicted bit.
    static void expect_injected(const recording_sink& rec, uint64_t seed, int count, uint64_t words, uint32_t word_bytes,
                                const std::string& pattern, bool first_one_ulp = false) {
        std::vector<uint64_t> offsets(static_cast<size_t>(count));
        std::vector<uint32_t> bits(static_cast<size_t>(count));
        ASSERT_EQ(kiln_injection_positions(seed, count, words * 8, offsets.data(), bits.data()), KILN_OK);
        for (int k = 0; k < count; ++k) {
            const uint64_t offset = offsets[k] / 8 * word_bytes;
            bool found = false;
            for (const auto& e : rec.errors) {
                if (e.offset != offset) continue;
                found = true;
                EXPECT_EQ(e.expected ^ e.actual, 1ull << (first_one_ulp && k == 0 ? 0 : bits[k] % (8 * word_bytes))) << pattern;
                EXPECT_EQ(e.pattern, pattern);
                EXPECT_TRUE(e.injected);
                EXPECT_EQ(e.word_bytes, word_bytes);
            }
            EXPECT_TRUE(found) << pattern << " missed offset " << offset;
        }
    }
};

}  // namespace

TEST_P(gpu_fixture, DescribesTheDeviceWithItsPeaks) {
    EXPECT_STREQ(info.backend, GetParam().c_str());
    EXPECT_GT(strlen(info.name), 0u);
    EXPECT_GT(strlen(info.pci_bus_id), 0u);
    EXPECT_GT(info.compute_units, 0);
    EXPECT_GT(info.total_memory_bytes, hardware ? 1ull << 30 : 16ull << 20);
    EXPECT_LE(info.available_memory_bytes, info.total_memory_bytes);
    EXPECT_GT(info.peak_memory_bandwidth_gbps, hardware ? 100 : 1);
    EXPECT_GT(info.peak_fp32_tflops, hardware ? 1 : 0.001);
    EXPECT_GT(info.peak_fp64_tflops, 0);
}

TEST_P(gpu_fixture, StreamMeasuresEveryOpAndVerifies) {
    kiln_test_params p = params(KILN_TEST_STREAM);
    p.size_bytes = 64u << 20;
    p.iterations = 3;
    recording_sink rec;
    ASSERT_EQ(kiln_run(dev, &p, &rec.sink, nullptr), KILN_OK) << last_error_text();
    for (const char* op : {"copy_gbps", "scale_gbps", "add_gbps", "triad_gbps", "read_gbps", "write_gbps"}) {
        EXPECT_EQ(rec.count(op), 3) << op;
        if (hardware) EXPECT_GT(rec.last(op), 10) << op;
        else EXPECT_GT(rec.last(op), 0) << op;
    }
    if (hardware) EXPECT_GT(rec.last("memcpy_d2d_gbps"), 10);
    EXPECT_EQ(rec.last("errors_total"), 0);
    EXPECT_TRUE(rec.errors.empty());
}

TEST_P(gpu_fixture, StreamFindsEveryCorruptedElementOneUlpIncluded) {
    kiln_test_params p = params(KILN_TEST_STREAM);
    p.size_bytes = 16u << 20;
    p.iterations = 2;
    p.inject_corrupt = 3;
    p.inject_seed = 5;
    recording_sink rec;
    ASSERT_EQ(kiln_run(dev, &p, &rec.sink, nullptr), KILN_OK) << last_error_text();
    ASSERT_EQ(rec.errors.size(), 3u);
    EXPECT_EQ(rec.last("errors_total"), 3);
    expect_injected(rec, 5, 3, p.size_bytes / 8, 8, "stream_a", /*first_one_ulp=*/true);
}

TEST_P(gpu_fixture, StreamKnobsAreUsedAndVerified) {
    for (int32_t vec : {1, 2})
        for (int32_t unroll : {1, 8}) {
            kiln_test_params p = params(KILN_TEST_STREAM);
            p.size_bytes = (16u << 20) + 48;  // a tail that no unrolled step covers
            p.vec = vec;
            p.unroll = unroll;
            p.block = 128;
            p.grid = 7;
            recording_sink rec;
            ASSERT_EQ(kiln_run(dev, &p, &rec.sink, nullptr), KILN_OK) << last_error_text();
            EXPECT_EQ(rec.last("errors_total"), 0) << vec << "/" << unroll;
            EXPECT_EQ(rec.last("grid"), 7);
            EXPECT_EQ(rec.last("block"), 128);
        }
}

TEST_P(gpu_fixture, MemtestFindsInjectedFlipsOnDeviceMemory) {
    const char* const patterns[] = {"walking_ones", "walking_zeros", "own_address", "moving_inv_fixed", "moving_inv_random", "modulo_20"};
    for (int pat = 0; pat < KILN_PATTERN_COUNT; ++pat) {
        kiln_test_params p = params(KILN_TEST_MEMTEST);
        p.size_bytes = (64u << 20) + 4096;
        p.pattern_mask = 1u << pat;
        p.inject_flips = 3;
        p.inject_seed = 7;
        recording_sink rec;
        ASSERT_EQ(kiln_run(dev, &p, &rec.sink, nullptr), KILN_OK) << last_error_text();
        ASSERT_EQ(rec.errors.size(), 3u) << patterns[pat];
        EXPECT_EQ(rec.last(std::string("errors_") + patterns[pat]), 3);
        expect_injected(rec, 7, 3, p.size_bytes / 8, 8, patterns[pat]);
        // Reported lowest address first, whichever block found each, and with the SM that found it.
        for (size_t k = 1; k < rec.errors.size(); ++k) EXPECT_LT(rec.errors[k - 1].offset, rec.errors[k].offset) << patterns[pat];
        for (const auto& e : rec.errors) {
            EXPECT_GE(e.sm, 0) << patterns[pat];
            EXPECT_LT(e.sm, info.compute_units) << patterns[pat];
        }
    }
}

TEST_P(gpu_fixture, MemtestCoversAtLeast95PercentOfFreeMemory) {
    kiln_test_params p = params(KILN_TEST_MEMTEST);
    p.pattern_mask = 1u << KILN_PATTERN_WALKING_ONES;
    recording_sink rec;
    ASSERT_EQ(kiln_run(dev, &p, &rec.sink, nullptr), KILN_OK) << last_error_text();
    EXPECT_GE(rec.last("fraction_of_free"), 0.949);
    EXPECT_EQ(rec.last("errors_total"), 0);
    if (hardware) EXPECT_GT(rec.last("walking_ones_gbps"), 100);
}

TEST_P(gpu_fixture, GemmIsExactInEveryFormatOnOddSizes) {
    for (int32_t n : {1, 333}) {
        kiln_test_params p = params(KILN_TEST_GEMM);
        p.matrix_n = n;
        recording_sink rec;
        ASSERT_EQ(kiln_run(dev, &p, &rec.sink, nullptr), KILN_OK) << last_error_text();
        EXPECT_EQ(rec.last("errors_total"), 0) << n;
        EXPECT_TRUE(rec.errors.empty()) << n << ": first at " << (rec.errors.empty() ? 0 : rec.errors[0].offset) << " in "
                                        << (rec.errors.empty() ? "" : rec.errors[0].pattern);
        for (const char* dtype : {"fp64", "fp32", "bf16", "fp16"}) EXPECT_GT(rec.last(std::string(dtype) + "_tflops"), 0) << dtype;
        if (GetParam() != "hip") EXPECT_GT(rec.last("tf32_tflops"), 0);  // WMMA: CUDA and the emulator
    }
}

TEST_P(gpu_fixture, GemmFindsEveryCorruptedElement) {
    for (uint32_t dtype : {static_cast<uint32_t>(KILN_DTYPE_FP64), static_cast<uint32_t>(KILN_DTYPE_BF16)}) {
        kiln_test_params p = params(KILN_TEST_GEMM);
        p.matrix_n = 300;
        p.dtype_mask = dtype;
        p.inject_corrupt = 5;
        p.inject_seed = 9;
        recording_sink rec;
        ASSERT_EQ(kiln_run(dev, &p, &rec.sink, nullptr), KILN_OK) << last_error_text();
        ASSERT_EQ(rec.errors.size(), 5u);
        const bool fp64 = dtype == KILN_DTYPE_FP64;
        expect_injected(rec, 9, 5, 300 * 300, fp64 ? 8 : 4, fp64 ? "fp64" : "bf16");
    }
}

// Random full-mantissa products: every one repeats bit for bit on the device, and the digest is a
// property of (seed, size, format), equal on every healthy device of the node, not a constant.
TEST_P(gpu_fixture, GemmRandomProductsRepeatAndAgreeAcrossDevices) {
    if (device_count_of(reg, GetParam()) < 2) GTEST_SKIP() << "one device: nothing to compare it with";
    kiln_device* other = nullptr;
    ASSERT_EQ(kiln_device_open(reg, GetParam().c_str(), 1, &other), KILN_OK) << last_error_text();
    auto run = [&](kiln_device* d, uint64_t seed) {
        kiln_test_params p = params(KILN_TEST_GEMM);
        p.matrix_n = 200;
        p.dtype_mask = KILN_DTYPE_FP32 | KILN_DTYPE_BF16;
        p.iterations = 2;
        p.seed = seed;
        recording_sink rec;
        EXPECT_EQ(kiln_run(d, &p, &rec.sink, nullptr), KILN_OK) << last_error_text();
        EXPECT_EQ(rec.last("errors_total"), 0);
        EXPECT_TRUE(rec.errors.empty()) << (rec.errors.empty() ? "" : rec.errors[0].pattern);
        for (const char* dtype : {"fp32", "bf16"}) EXPECT_GE(rec.last(std::string("random_products_") + dtype), 2) << dtype;
        return std::make_pair(rec.last("digest_fp32"), rec.last("digest_bf16"));
    };
    const auto here = run(dev, 5), there = run(other, 5), reseeded = run(dev, 6);
    kiln_device_destroy(other);
    EXPECT_GT(here.first, 0);
    EXPECT_EQ(here, there);
    EXPECT_NE(here.first, reseeded.first);
    EXPECT_NE(here.second, reseeded.second);
}

TEST_P(gpu_fixture, PowerBurnsAndVerifiesItsRegisters) {
    kiln_test_params p = params(KILN_TEST_POWER);
    p.duration_ms = 1200;
    p.dtype_mask = KILN_DTYPE_FP64 | KILN_DTYPE_FP32 | KILN_DTYPE_BF16;
    recording_sink rec;
    ASSERT_EQ(kiln_run(dev, &p, &rec.sink, nullptr), KILN_OK) << last_error_text();
    EXPECT_GT(rec.last("fp64_tflops"), 0);
    EXPECT_GT(rec.last("fp32_tflops"), 0);
    EXPECT_GT(rec.last("bf16_tflops"), 0);
    EXPECT_EQ(rec.last("errors_total"), 0);
}

TEST_P(gpu_fixture, PowerFindsEveryCorruptedRegisterAtItsPredictedWord) {
    // fp64 on the FMA units: register word = thread x 8 chains + chain, 8 bytes each.
    kiln_test_params p = params(KILN_TEST_POWER);
    p.duration_ms = 300;
    p.dtype_mask = KILN_DTYPE_FP64;
    p.block = 256;
    p.grid = 8;
    p.inject_corrupt = 4;
    p.inject_seed = 11;
    recording_sink rec;
    ASSERT_EQ(kiln_run(dev, &p, &rec.sink, nullptr), KILN_OK) << last_error_text();
    ASSERT_EQ(rec.errors.size(), 4u);
    EXPECT_EQ(rec.last("errors_total"), 4);
    expect_injected(rec, 11, 4, 8ull * 256 * 8, 8, "fp64");
}

TEST_P(gpu_fixture, CopiesAreMeasuredAndVerified) {
    kiln_test_params p = params(KILN_TEST_COPY);
    p.size_bytes = 64u << 20;
    recording_sink rec;
    ASSERT_EQ(kiln_run(dev, &p, &rec.sink, nullptr), KILN_OK) << last_error_text();
    for (const char* m : {"h2d_gbps_best", "d2h_gbps_best", "bidir_gbps_best", "d2d_gbps_best"}) EXPECT_GT(rec.last(m), hardware ? 1 : 0) << m;
    EXPECT_EQ(rec.last("errors_total"), 0);
    EXPECT_TRUE(rec.errors.empty());
    // Every repetition of every path verified: h2d, d2h, bidir (both ends), d2d, and each peer path.
    const double reps = std::max(3, p.iterations), paths = 5 + rec.last("p2p_ce_gbps_pairs") + rec.last("p2p_sm_gbps_pairs");
    EXPECT_EQ(rec.last("bytes_verified"), static_cast<double>(p.size_bytes) * reps * paths);
}

TEST_P(gpu_fixture, CopyFindsEveryCorruptedWordAtItsPredictedOffset) {
    kiln_test_params p = params(KILN_TEST_COPY);
    p.size_bytes = 16u << 20;
    p.inject_corrupt = 4;
    p.inject_seed = 11;
    recording_sink rec;
    ASSERT_EQ(kiln_run(dev, &p, &rec.sink, nullptr), KILN_OK) << last_error_text();
    ASSERT_EQ(rec.errors.size(), 4u);
    EXPECT_EQ(rec.last("errors_total"), 4);
    expect_injected(rec, 11, 4, p.size_bytes / 8, 8, "h2d");
}

TEST_P(gpu_fixture, LaunchLatencyHasMinMedianP99) {
    kiln_test_params p = params(KILN_TEST_LAUNCH);
    recording_sink rec;
    ASSERT_EQ(kiln_run(dev, &p, &rec.sink, nullptr), KILN_OK) << last_error_text();
    EXPECT_GT(rec.last("launch_latency_us_min"), 0);
    EXPECT_LE(rec.last("launch_latency_us_min"), rec.last("launch_latency_us_median"));
    EXPECT_LE(rec.last("launch_latency_us_median"), rec.last("launch_latency_us_p99"));
    EXPECT_EQ(rec.last("errors_total"), 0);
}

TEST_P(gpu_fixture, CancelStopsABurnWithinASecond) {
    kiln_test_params p = params(KILN_TEST_MEMTEST);
    p.size_bytes = hardware ? 4ull << 30 : info.available_memory_bytes / 2;
    p.iterations = 1000;
    recording_sink rec;
    kiln_status status;
    EXPECT_LT(cancel_latency_seconds(dev, p, rec, &status), 1.0);
    EXPECT_EQ(status, KILN_CANCELLED);
    p = params(KILN_TEST_GEMM);
    p.dtype_mask = KILN_DTYPE_FP64;
    p.iterations = 1000;
    recording_sink rec2;
    EXPECT_LT(cancel_latency_seconds(dev, p, rec2, &status), 1.0);
    EXPECT_EQ(status, KILN_CANCELLED);
}

TEST_P(gpu_fixture, BadInputNamesTheDevicesOwnLimit) {
    kiln_test_params p = params(KILN_TEST_STREAM);
    p.block = 4096;
    EXPECT_EQ(kiln_test_validate(dev, &p), KILN_INVALID_ARGUMENT);
    EXPECT_TRUE(std::regex_search(last_error_text(), std::regex("block: 4096 is above this device's limit of [0-9]+ threads per block")))
        << last_error_text();
    p = params(KILN_TEST_MEMTEST);
    p.size_bytes = info.total_memory_bytes * 2;
    EXPECT_EQ(kiln_run(dev, &p, nullptr, nullptr), KILN_INVALID_ARGUMENT);
    EXPECT_NE(last_error_text().find("larger than this device's memory"), std::string::npos) << last_error_text();
    kiln_device* missing = nullptr;
    EXPECT_EQ(kiln_device_open(reg, GetParam().c_str(), 999, &missing), KILN_NOT_FOUND);
    EXPECT_NE(last_error_text().find("device 999"), std::string::npos) << last_error_text();
}

INSTANTIATE_TEST_SUITE_P(Backends, gpu_fixture, ::testing::Values(std::string("cuda"), std::string("hip"), std::string("emu")),
                         [](const ::testing::TestParamInfo<std::string>& info) { return info.param; });
