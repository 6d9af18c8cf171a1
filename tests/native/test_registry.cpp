// test_registry.cpp - the plugin loader: the fake plugins built for the tests are loaded or
// skipped with the right reason, devices open and run through the registry.
#include "test_support.h"

#include <gtest/gtest.h>

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstring>
#include <string>
#include <thread>

namespace {
struct registry_fixture : ::testing::Test {
    kiln_registry* reg = nullptr;
    void SetUp() override { ASSERT_EQ(kiln_registry_create(KILN_TEST_PLUGIN_DIR, &reg), KILN_OK); }
    void TearDown() override { kiln_registry_destroy(reg); }

    std::string skip_reason(const std::string& file) {
        for (int i = 0; i < kiln_registry_skip_count(reg); ++i) {
            kiln_plugin_skip s;
            EXPECT_EQ(kiln_registry_skip_info(reg, i, &s), KILN_OK);
            if (std::string(s.path).find(file) != std::string::npos) return s.reason;
        }
        return "(not skipped)";
    }
};
}  // namespace

TEST_F(registry_fixture, LoadsCpuAndTheGoodPlugin) {
    ASSERT_EQ(kiln_registry_backend_count(reg), 2);
    kiln_backend_info cpu, fake;
    ASSERT_EQ(kiln_registry_backend_info(reg, 0, &cpu), KILN_OK);
    ASSERT_EQ(kiln_registry_backend_info(reg, 1, &fake), KILN_OK);
    EXPECT_STREQ(cpu.name, "cpu");
    EXPECT_EQ(cpu.device_count, 1);
    EXPECT_STREQ(cpu.library_path, "");
    EXPECT_STREQ(fake.name, "fake");
    EXPECT_EQ(fake.device_count, 2);
    EXPECT_STREQ(fake.runtime_version, "fake runtime 1.0");
    EXPECT_NE(std::string(fake.library_path).find("libkiln-fake.so"), std::string::npos);
    EXPECT_EQ(kiln_registry_backend_info(reg, 2, &fake), KILN_NOT_FOUND);
}

TEST_F(registry_fixture, SkipsCandidatesWithTheReason) {
    EXPECT_EQ(kiln_registry_skip_count(reg), 3);
    EXPECT_NE(skip_reason("libkiln-oldapi.so").find("plugin API version 99, this libkiln needs " + std::to_string(KILN_PLUGIN_API_VERSION)), std::string::npos)
        << skip_reason("libkiln-oldapi.so");
    EXPECT_EQ(skip_reason("libkiln-nodevice.so"), "no device");
    EXPECT_NE(skip_reason("libkiln-noentry.so").find("no kiln_plugin_entry symbol"), std::string::npos);
}

TEST_F(registry_fixture, MissingPluginFolderIsASkipNotAFailure) {
    kiln_registry* other = nullptr;
    ASSERT_EQ(kiln_registry_create("/nonexistent/kiln-plugins", &other), KILN_OK);
    EXPECT_EQ(kiln_registry_backend_count(other), 1);
    ASSERT_EQ(kiln_registry_skip_count(other), 1);
    kiln_plugin_skip s;
    ASSERT_EQ(kiln_registry_skip_info(other, 0, &s), KILN_OK);
    EXPECT_NE(std::string(s.reason).find("cannot open plugin folder"), std::string::npos);
    kiln_registry_destroy(other);
}

TEST_F(registry_fixture, DeviceIndexOutOfRangeNamesTheLimit) {
    kiln_device* dev = nullptr;
    EXPECT_EQ(kiln_device_open(reg, "fake", 5, &dev), KILN_NOT_FOUND);
    EXPECT_NE(last_error_text().find("backend 'fake' has 2 devices (0..1)"), std::string::npos) << last_error_text();
    EXPECT_EQ(kiln_device_open(reg, "cpu", 1, &dev), KILN_NOT_FOUND);
}

TEST_F(registry_fixture, PluginDeviceRunsThroughTheSinkAndValidates) {
    kiln_device* dev = nullptr;
    ASSERT_EQ(kiln_device_open(reg, "fake", 1, &dev), KILN_OK);
    kiln_device_info info;
    ASSERT_EQ(kiln_device_get_info(dev, &info), KILN_OK);
    EXPECT_STREQ(info.name, "Fake GPU 1");
    EXPECT_STREQ(info.pci_bus_id, "0000:11:00.0");

    kiln_test_params p;
    kiln_test_params_init(KILN_TEST_MEMTEST, &p);
    recording_sink rec;
    EXPECT_EQ(kiln_run(dev, &p, &rec.sink, nullptr), KILN_OK);
    EXPECT_EQ(rec.last("copy_gbps"), 1234.5);
    ASSERT_EQ(rec.errors.size(), 1u);
    EXPECT_EQ(rec.errors[0].offset, 4096u);

    p.block = 1025;
    EXPECT_EQ(kiln_test_validate(dev, &p), KILN_INVALID_ARGUMENT);
    EXPECT_NE(last_error_text().find("limit of 1024"), std::string::npos);
    EXPECT_EQ(kiln_run(dev, &p, &rec.sink, nullptr), KILN_INVALID_ARGUMENT);
    kiln_device_destroy(dev);
}

// --inject TEST:hang=1 / crash=1 on any backend: the test's first metric goes out, then the process
// dies of SIGSEGV, or the call never returns even when cancelled. Each runs in a death-test child.
namespace {
kiln_device* cpu_device_or_exit() {
    kiln_registry* reg = nullptr;
    kiln_device* dev = nullptr;
    if (kiln_registry_create("/nonexistent", &reg) != KILN_OK || kiln_device_open(reg, "cpu", 0, &dev) != KILN_OK) _exit(3);
    return dev;  // the child exits without freeing them
}

kiln_test_params small_stream() {
    kiln_test_params p;
    kiln_test_params_init(KILN_TEST_STREAM, &p);
    p.size_bytes = 1 << 20;
    return p;
}
}  // namespace
TEST(InjectedFailures, CrashDiesOfSigsegvAfterTheFirstMetric) {
    GTEST_FLAG_SET(death_test_style, "threadsafe");
    EXPECT_EXIT(
        {
            kiln_device* dev = cpu_device_or_exit();
            kiln_test_params p = small_stream();
            p.inject_crash = 1;
            recording_sink rec;
            kiln_run(dev, &p, &rec.sink, nullptr);
            _exit(4);  // never reached
        },
        ::testing::KilledBySignal(SIGSEGV), "");
}

TEST(InjectedFailures, HangNeverReturnsAndIgnoresCancel) {
    GTEST_FLAG_SET(death_test_style, "threadsafe");
    EXPECT_EXIT(
        {
            kiln_device* dev = cpu_device_or_exit();
            kiln_test_params p = small_stream();
            p.inject_hang = 1;
            static recording_sink rec;
            static volatile int32_t cancel = 0;
            static std::atomic<bool> returned{false};
            std::thread runner([&] {
                kiln_run(dev, &p, &rec.sink, &cancel);
                returned = true;
            });
            runner.detach();
            const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(20);
            while (rec.metric_count.load() == 0 && std::chrono::steady_clock::now() < give_up)
                std::this_thread::sleep_for(std::chrono::milliseconds(10));
            if (rec.metric_count.load() == 0) _exit(5);  // the first metric never came
            cancel = 1;
            std::this_thread::sleep_for(std::chrono::milliseconds(1500));
            _exit(returned ? 6 : 7);  // 7: still hung after the cancel
        },
        ::testing::ExitedWithCode(7), "");
}
