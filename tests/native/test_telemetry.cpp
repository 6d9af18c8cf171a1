// test_telemetry.cpp - NVML and ROCm SMI through the dlopen seam, against the fake libnvidia-ml.so.1
// and librocm_smi64.so: fields mapped, PCI addresses normalised, counters summed, and a missing
// driver is a clean skip.
#include "test_support.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include <sys/stat.h>

namespace {
// A sysfs root (KILN_SYSFS_ROOT) with one PCI function of the given vendor and class, for ROCm SMI's gate.
struct pci_root {
    std::string root;
    pci_root(const char* vendor, const char* cls) {
        char tmpl[] = "/tmp/kiln-pci-XXXXXX";
        root = mkdtemp(tmpl);
        const std::string dev = root + "/sys/bus/pci/devices/0000:c1:00.0";
        for (const std::string& d : {root + "/sys", root + "/sys/bus", root + "/sys/bus/pci", root + "/sys/bus/pci/devices", dev})
            mkdir(d.c_str(), 0755);
        write(dev + "/vendor", vendor);
        write(dev + "/class", cls);
        setenv("KILN_SYSFS_ROOT", root.c_str(), 1);
    }
    ~pci_root() {
        unsetenv("KILN_SYSFS_ROOT");
        std::string cmd = "rm -rf '" + root + "'";
        if (system(cmd.c_str()) != 0) fprintf(stderr, "could not remove %s\n", root.c_str());
    }
    static void write(const std::string& path, const char* text) {
        if (FILE* f = fopen(path.c_str(), "w")) {
            fprintf(f, "%s\n", text);
            fclose(f);
        }
    }
};

struct fake_nvml : ::testing::Test {
    kiln_telemetry* tel = nullptr;
    void open(const char* config) {
        setenv("KILN_FAKE_NVML", config, 1);
        ASSERT_EQ(kiln_telemetry_open(KILN_TELEMETRY_NVML, KILN_FAKE_NVML_LIBRARY, &tel), KILN_OK) << last_error_text();
    }
    void TearDown() override {
        kiln_telemetry_destroy(tel);
        unsetenv("KILN_FAKE_NVML");
    }
};
}  // namespace

TEST_F(fake_nvml, HealthyNodeReadsAsHealthy) {
    open("");
    EXPECT_EQ(kiln_telemetry_device_count(tel), 8);
    char driver[64];
    ASSERT_EQ(kiln_telemetry_driver_version(tel, driver, sizeof driver), KILN_OK);
    EXPECT_STREQ(driver, "535.183.01");
    kiln_gpu_health h;
    ASSERT_EQ(kiln_telemetry_health(tel, 2, &h), KILN_OK);
    EXPECT_STREQ(h.name, "NVIDIA H100 80GB HBM3");
    EXPECT_STREQ(h.pci_bus_id, "0000:3a:00.0");  // NVML's 8-digit upper-case form, normalised
    EXPECT_EQ(h.index, 2);
    EXPECT_EQ(h.pcie_gen_current, 5);
    EXPECT_EQ(h.pcie_width_max, 16);
    EXPECT_EQ(h.nvlink_links_total, 18);
    EXPECT_EQ(h.nvlink_links_active, 18);
    EXPECT_EQ(h.remap_pending, 0);
    EXPECT_EQ(h.ecc_volatile_uncorrected, 0);
    EXPECT_EQ(h.compute_processes, 0);
    EXPECT_DOUBLE_EQ(h.power_limit_w, 700.0);
    EXPECT_EQ(kiln_telemetry_health(tel, 8, &h), KILN_NOT_FOUND);
}

TEST_F(fake_nvml, FaultsAreReported) {
    open("gpu3.remap_pending=1;gpu3.remap_failed=1;gpu1.pcie_width=8;gpu5.nvlinks_down=2;gpu5.nvlink_crc=12;"
         "gpu0.retired_dbe=4;gpu0.retired_pending=1;gpu6.throttle=0x48;gpu7.processes=3");
    kiln_gpu_health h;
    ASSERT_EQ(kiln_telemetry_health(tel, 3, &h), KILN_OK);
    EXPECT_EQ(h.remap_pending, 1);
    EXPECT_EQ(h.remap_failed, 1);
    ASSERT_EQ(kiln_telemetry_health(tel, 1, &h), KILN_OK);
    EXPECT_EQ(h.pcie_width_current, 8);
    ASSERT_EQ(kiln_telemetry_health(tel, 5, &h), KILN_OK);
    EXPECT_EQ(h.nvlink_links_active, 16);
    EXPECT_EQ(h.nvlink_crc_errors, 12);
    ASSERT_EQ(kiln_telemetry_health(tel, 0, &h), KILN_OK);
    EXPECT_EQ(h.retired_pages_dbe, 4);
    EXPECT_EQ(h.retired_pages_pending, 1);
    ASSERT_EQ(kiln_telemetry_health(tel, 6, &h), KILN_OK);
    EXPECT_EQ(h.throttle_reasons, static_cast<uint64_t>(KILN_THROTTLE_HW_SLOWDOWN | KILN_THROTTLE_HW_THERMAL));
    ASSERT_EQ(kiln_telemetry_health(tel, 7, &h), KILN_OK);
    EXPECT_EQ(h.compute_processes, 3);
}

TEST_F(fake_nvml, SamplesSeeCountersMove) {
    open("gpu4.ecc_uncorrected_step=1;gpu4.sm_clock=1410");
    kiln_gpu_sample a, b;
    ASSERT_EQ(kiln_telemetry_sample(tel, 4, &a), KILN_OK);
    ASSERT_EQ(kiln_telemetry_sample(tel, 4, &b), KILN_OK);
    EXPECT_GT(b.ecc_volatile_uncorrected, a.ecc_volatile_uncorrected);
    EXPECT_DOUBLE_EQ(a.sm_clock_mhz, 1410.0);
    EXPECT_DOUBLE_EQ(a.temperature_c, 35.0);
}

TEST(Telemetry, MissingDriverIsACleanSkipWithTheReason) {
    kiln_telemetry* tel = nullptr;
    EXPECT_EQ(kiln_telemetry_open(KILN_TELEMETRY_NVML, "/nonexistent/libnvidia-ml.so.1", &tel), KILN_UNSUPPORTED);
    EXPECT_EQ(tel, nullptr);
    EXPECT_NE(last_error_text().find("no NVIDIA driver"), std::string::npos) << last_error_text();
    {
        const pci_root amd("0x1002", "0x038000");
        EXPECT_EQ(kiln_telemetry_open(KILN_TELEMETRY_ROCM_SMI, "/nonexistent/librocm_smi64.so", &tel), KILN_UNSUPPORTED);
        EXPECT_NE(last_error_text().find("no ROCm"), std::string::npos) << last_error_text();
    }
    EXPECT_EQ(kiln_telemetry_open(9, nullptr, &tel), KILN_INVALID_ARGUMENT);
}

TEST(Telemetry, RocmSmiIsNotStartedWithoutAnAmdGpuOnThePciBus) {
    const pci_root nvidia("0x10de", "0x030200");  // a GPU, but not AMD's
    kiln_telemetry* tel = nullptr;
    testing::internal::CaptureStderr();
    EXPECT_EQ(kiln_telemetry_open(KILN_TELEMETRY_ROCM_SMI, KILN_FAKE_ROCM_LIBRARY, &tel), KILN_UNSUPPORTED);
    EXPECT_EQ(testing::internal::GetCapturedStderr(), "") << "rsmi_init must not have run";
    EXPECT_NE(last_error_text().find("no AMD GPU (vendor 0x1002) on the PCI bus (" + nvidia.root + "/sys/bus/pci/devices)"), std::string::npos)
        << last_error_text();
}

TEST(Telemetry, WhatRocmSmiPrintsWhileFailingGoesIntoTheReasonNotTheTerminal) {
    const pci_root amd("0x1002", "0x120000");  // an Instinct accelerator
    setenv("KILN_FAKE_ROCM_SMI", "init_error=8", 1);  // RSMI_STATUS_INIT_ERROR, as on a node without amdgpu
    kiln_telemetry* tel = nullptr;
    testing::internal::CaptureStderr();
    EXPECT_EQ(kiln_telemetry_open(KILN_TELEMETRY_ROCM_SMI, KILN_FAKE_ROCM_LIBRARY, &tel), KILN_UNSUPPORTED);
    EXPECT_EQ(testing::internal::GetCapturedStderr(), "");
    EXPECT_NE(last_error_text().find("status 8; it printed: Failed to open drm root directory /sys/class/drm.; Exception caught: rsmi_init."),
              std::string::npos) << last_error_text();
    unsetenv("KILN_FAKE_ROCM_SMI");
}

namespace {
struct fake_rocm_smi : ::testing::Test {
    kiln_telemetry* tel = nullptr;
    pci_root amd{"0x1002", "0x120000"};
    void open(const char* config) {
        setenv("KILN_FAKE_ROCM_SMI", config, 1);
        ASSERT_EQ(kiln_telemetry_open(KILN_TELEMETRY_ROCM_SMI, KILN_FAKE_ROCM_LIBRARY, &tel), KILN_OK) << last_error_text();
    }
    void TearDown() override {
        kiln_telemetry_destroy(tel);
        unsetenv("KILN_FAKE_ROCM_SMI");
    }
};
}  // namespace

TEST_F(fake_rocm_smi, HealthyMi300xReadsAsHealthy) {
    open("");
    EXPECT_EQ(kiln_telemetry_device_count(tel), 8);
    char driver[64];
    ASSERT_EQ(kiln_telemetry_driver_version(tel, driver, sizeof driver), KILN_OK);
    EXPECT_STREQ(driver, "6.7.0");
    kiln_gpu_health h;
    ASSERT_EQ(kiln_telemetry_health(tel, 2, &h), KILN_OK);
    EXPECT_STREQ(h.name, "AMD Instinct MI300X");
    EXPECT_STREQ(h.serial, "FAKE000000000002");
    EXPECT_STREQ(h.pci_bus_id, "0000:65:00.0");  // from the BDFID: bus << 8
    EXPECT_STREQ(h.uuid, "0x1f00000000000002");
    EXPECT_EQ(h.ecc_enabled, 1);
    EXPECT_EQ(h.memory_total_bytes, 192ull << 30);
    EXPECT_DOUBLE_EQ(h.temperature_c, 40.0);           // millidegrees / 1000
    EXPECT_DOUBLE_EQ(h.temperature_slowdown_c, 100.0);  // the junction's critical limit
    EXPECT_DOUBLE_EQ(h.power_w, 300.0);                  // microwatts / 1e6
    EXPECT_DOUBLE_EQ(h.power_limit_w, 750.0);
    EXPECT_EQ(h.ecc_volatile_uncorrected, 0);
    EXPECT_EQ(h.ecc_volatile_corrected, 1);  // summed over blocks: UMC 0 + SDMA 1
    EXPECT_EQ(h.nvlink_links_total, -1);     // no counterpart in ROCm SMI: unknown, never 0
    EXPECT_EQ(h.remap_pending, -1);
    EXPECT_EQ(kiln_telemetry_health(tel, 8, &h), KILN_NOT_FOUND);
}

TEST_F(fake_rocm_smi, FaultsAreReported) {
    open("gpu3.ecc_uncorrectable=2;gpu3.ecc_correctable=40;gpu5.temperature=97;gpu6.ecc_enabled=0;gpu1.replay=12");
    kiln_gpu_health h;
    ASSERT_EQ(kiln_telemetry_health(tel, 3, &h), KILN_OK);
    EXPECT_EQ(h.ecc_volatile_uncorrected, 2);
    EXPECT_EQ(h.ecc_volatile_corrected, 41);
    ASSERT_EQ(kiln_telemetry_health(tel, 5, &h), KILN_OK);
    EXPECT_DOUBLE_EQ(h.temperature_c, 97.0);
    ASSERT_EQ(kiln_telemetry_health(tel, 6, &h), KILN_OK);
    EXPECT_EQ(h.ecc_enabled, 0);
    kiln_gpu_sample s;
    ASSERT_EQ(kiln_telemetry_sample(tel, 1, &s), KILN_OK);
    EXPECT_EQ(s.pcie_replay_count, 12);
}

TEST_F(fake_rocm_smi, SamplesSeeCountersMove) {
    open("gpu4.ecc_uncorrectable_step=1;gpu4.busy=87;gpu4.power_w=640");
    kiln_gpu_sample a, b;
    ASSERT_EQ(kiln_telemetry_sample(tel, 4, &a), KILN_OK);
    ASSERT_EQ(kiln_telemetry_sample(tel, 4, &b), KILN_OK);
    EXPECT_GT(b.ecc_volatile_uncorrected, a.ecc_volatile_uncorrected);
    EXPECT_DOUBLE_EQ(a.utilization_pct, 87.0);
    EXPECT_DOUBLE_EQ(a.power_w, 640.0);
    EXPECT_DOUBLE_EQ(a.sm_clock_mhz, -1.0);  // ROCm SMI's clocks are not read: unknown
}

TEST(Telemetry, DriverThatFailsToStartIsACleanSkip) {
    setenv("KILN_FAKE_NVML", "init_error=9", 1);
    kiln_telemetry* tel = nullptr;
    EXPECT_EQ(kiln_telemetry_open(KILN_TELEMETRY_NVML, KILN_FAKE_NVML_LIBRARY, &tel), KILN_UNSUPPORTED);
    EXPECT_NE(last_error_text().find("Driver Not Loaded"), std::string::npos) << last_error_text();
    unsetenv("KILN_FAKE_NVML");
}
