// test_abi.cpp - the ABI's promises: version handshake, names, error text, NULL-safe destroy,
// defaults, and a layout table that knows every public struct.
#include "test_support.h"

#include <gtest/gtest.h>

#include <cstring>

TEST(Abi, VersionHandshake) {
    EXPECT_EQ(kiln_abi_version(), static_cast<uint32_t>(KILN_ABI_VERSION));
    EXPECT_STREQ(kiln_version(), "0.1.0");
}

TEST(Abi, StableNames) {
    EXPECT_STREQ(kiln_test_name(KILN_TEST_STREAM), "stream");
    EXPECT_STREQ(kiln_test_name(KILN_TEST_MEMTEST), "memtest");
    EXPECT_STREQ(kiln_test_name(99), "unknown");
    EXPECT_STREQ(kiln_pattern_name(KILN_PATTERN_MODULO_20), "modulo_20");
    EXPECT_STREQ(kiln_status_name(KILN_CANCELLED), "cancelled");
    EXPECT_STREQ(kiln_status_name(-1), "unknown");
}

TEST(Abi, LastErrorIsTruncatedAndReportsFullLength) {
    kiln_registry* reg = nullptr;
    ASSERT_EQ(kiln_registry_create(nullptr, &reg), KILN_OK);
    kiln_device* dev = nullptr;
    EXPECT_EQ(kiln_device_open(reg, "nosuch", 0, &dev), KILN_NOT_FOUND);
    EXPECT_EQ(dev, nullptr);
    const size_t need = kiln_last_error(nullptr, 0);
    char small[8];
    EXPECT_EQ(kiln_last_error(small, sizeof small), need);
    EXPECT_EQ(strlen(small), 7u);
    EXPECT_NE(last_error_text().find("backend 'nosuch' is not loaded"), std::string::npos) << last_error_text();
    kiln_registry_destroy(reg);
}

TEST(Abi, DestroyNullIsNoOp) {
    kiln_registry_destroy(nullptr);
    kiln_device_destroy(nullptr);
}

TEST(Abi, ParamsDefaults) {
    kiln_test_params p;
    ASSERT_EQ(kiln_test_params_init(KILN_TEST_MEMTEST, &p), KILN_OK);
    EXPECT_EQ(p.test, KILN_TEST_MEMTEST);
    EXPECT_EQ(p.pattern_mask, (1u << KILN_PATTERN_COUNT) - 1u);
    EXPECT_EQ(p.max_error_reports, 1000u);
    EXPECT_EQ(p.iterations, 1);
    EXPECT_EQ(kiln_test_params_init(77, &p), KILN_INVALID_ARGUMENT);
    EXPECT_NE(last_error_text().find("test: 77"), std::string::npos);
}

TEST(Abi, LayoutTableMatchesCompiler) {
    EXPECT_EQ(kiln_struct_size("kiln_test_params"), sizeof(kiln_test_params));
    EXPECT_EQ(kiln_struct_size("kiln_device_info"), sizeof(kiln_device_info));
    EXPECT_EQ(kiln_struct_field_offset("kiln_data_error", "actual"), offsetof(kiln_data_error, actual));
    EXPECT_EQ(kiln_struct_field_offset("kiln_sink", "on_progress"), offsetof(kiln_sink, on_progress));
    EXPECT_EQ(kiln_struct_size("no_such_struct"), 0u);
    EXPECT_EQ(kiln_struct_field_offset("kiln_metric", "no_such_field"), static_cast<size_t>(-1));
}
