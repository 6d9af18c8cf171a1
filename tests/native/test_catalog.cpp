// test_catalog.cpp - the metric catalog (kiln_metric_at) against what the backends really emit:
// every test on the cpu backend and on two emulated devices (the one GPU source), each emitted
// name must match a catalog entry of its test that names its backend. A metric added to a kernel
// and not to native/src/core/metrics.cpp fails here, before a profile can judge a name nobody emits.
#include "test_support.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <regex>
#include <set>
#include <string>
#include <vector>

namespace {

// An entry's name as a regex: {op}, {pattern}, {dtype} from the stable keys, {src}/{dst} indices.
std::regex pattern_of(const std::string& name) {
    static const std::vector<std::pair<std::string, std::string>> placeholders = {
        {"{op}", "(copy|scale|add|triad|read|write)"},
        {"{pattern}", "(walking_ones|walking_zeros|own_address|moving_inv_fixed|moving_inv_random|modulo_20)"},
        {"{dtype}", "(fp64|fp32|tf32|bf16|fp16)"},
        {"{src}", "[0-9]+"},
        {"{dst}", "[0-9]+"},
    };
    std::string re = name;
    for (const auto& [from, to] : placeholders)
        for (size_t at = re.find(from); at != std::string::npos; at = re.find(from, at + to.size())) re.replace(at, from.size(), to);
    return std::regex("^" + re + "$");
}

uint32_t backend_bit(const std::string& backend) {
    if (backend == "cpu") return KILN_BACKEND_CPU;
    if (backend == "cuda") return KILN_BACKEND_CUDA;
    if (backend == "hip") return KILN_BACKEND_HIP;
    return KILN_BACKEND_EMU;
}

bool in_catalog(const std::string& test, const std::string& metric, const std::string& backend) {
    for (int32_t i = 0; i < kiln_metric_count(); ++i) {
        kiln_metric_info m;
        if (kiln_metric_at(i, &m) != KILN_OK) continue;
        if (test == m.test && (m.backends & backend_bit(backend)) && !m.from_host && std::regex_match(metric, pattern_of(m.name))) return true;
    }
    return false;
}

}  // namespace

TEST(MetricCatalog, EveryEntryIsWellFormed) {
    ASSERT_GT(kiln_metric_count(), 40);
    std::set<std::string> seen;
    for (int32_t i = 0; i < kiln_metric_count(); ++i) {
        kiln_metric_info m;
        ASSERT_EQ(kiln_metric_at(i, &m), KILN_OK);
        EXPECT_NE(std::string(kiln_test_name(0)), "unknown");
        EXPECT_TRUE(seen.insert(std::string(m.test) + "/" + m.name).second) << "declared twice: " << m.test << " " << m.name;
        EXPECT_GT(strlen(m.unit), 0u) << m.name;
        EXPECT_NE(m.backends, 0u) << m.name;
        EXPECT_GE(m.better, KILN_BETTER_NEITHER);
        EXPECT_LE(m.better, KILN_BETTER_LOWER);
    }
    kiln_metric_info m;
    EXPECT_EQ(kiln_metric_at(kiln_metric_count(), &m), KILN_NOT_FOUND);
}

TEST(MetricCatalog, HoldsEveryNameTheCpuAndEmulatedBackendsEmit) {
    setenv("KILN_EMU_DEVICES", "2:memory=256MiB", 0);
    kiln_registry* reg = nullptr;
    ASSERT_EQ(kiln_registry_create(KILN_PLUGIN_BUILD_DIR, &reg), KILN_OK);
    int backends_run = 0;
    for (const char* backend : {"cpu", "emu"}) {
        kiln_device* dev = nullptr;
        if (kiln_device_open(reg, backend, 0, &dev) != KILN_OK) continue;
        ++backends_run;
        for (int32_t test = 0; test < KILN_TEST_COUNT; ++test) {
            kiln_test_params p;
            kiln_test_params_init(test, &p);
            p.size_bytes = test == KILN_TEST_COPY ? (4u << 20) : (8u << 20);
            if (test == KILN_TEST_GEMM) p.matrix_n = 130;   // a gemm knob; the others refuse it
            p.duration_ms = test == KILN_TEST_POWER ? 300 : 0;
            p.dtype_mask = 0;
            if (test == KILN_TEST_LAUNCH) p.iterations = 300;
            if (test == KILN_TEST_POWER && std::string(backend) == "emu") p.dtype_mask = KILN_DTYPE_ALL & ~KILN_DTYPE_TF32;
            recording_sink rec;
            const kiln_status st = kiln_run(dev, &p, &rec.sink, nullptr);
            if (st == KILN_UNSUPPORTED) continue;
            ASSERT_EQ(st, KILN_OK) << backend << " " << kiln_test_name(test) << ": " << last_error_text();
            EXPECT_FALSE(rec.metrics.empty()) << backend << " " << kiln_test_name(test);
            for (const auto& [name, value] : rec.metrics)
                EXPECT_TRUE(in_catalog(kiln_test_name(test), name, backend))
                    << backend << " " << kiln_test_name(test) << " emits '" << name << "', which native/src/core/metrics.cpp does not declare";
        }
        kiln_device_destroy(dev);
    }
    EXPECT_EQ(backends_run, 2) << "cpu and emu must both run";
    kiln_registry_destroy(reg);
}

// The knob catalog: every entry well formed, and kiln_test_validate refusing by it.
TEST(KnobCatalog, EntriesAreWellFormedAndNameRealFields) {
    ASSERT_GT(kiln_knob_count(), 0);
    for (int32_t i = 0; i < kiln_knob_count(); ++i) {
        kiln_knob_info k;
        ASSERT_EQ(kiln_knob_at(i, &k), KILN_OK);
        const std::string name = k.name;
        EXPECT_TRUE(name == "block" || name == "grid" || name == "vec" || name == "unroll" || name == "matrix_n") << name;
        EXPECT_GE(k.min, 1) << k.test << "." << name << ": 0 is reserved for the backend's default";
        EXPECT_LE(k.min, k.max) << k.test << "." << name;
        EXPECT_TRUE(k.default_value == -1 || (k.default_value >= k.min && k.default_value <= k.max)) << k.test << "." << name;
        EXPECT_NE(k.backends, 0u) << k.test << "." << name;
        EXPECT_GT(std::string(k.description).size(), 10u) << k.test << "." << name;
    }
    kiln_knob_info k;
    EXPECT_EQ(kiln_knob_at(kiln_knob_count(), &k), KILN_NOT_FOUND);
}

struct knob_validation : cpu_device_fixture {};
TEST_F(knob_validation, ValidationRefusesAKnobTheTestDoesNotReadAndIgnoresAnotherBackendsKnob) {
    kiln_test_params p;
    kiln_test_params_init(KILN_TEST_GEMM, &p);
    p.vec = 4;  // gemm reads no vec on any backend
    EXPECT_EQ(kiln_test_validate(dev, &p), KILN_INVALID_ARGUMENT);
    EXPECT_NE(last_error_text().find("vec: gemm does not read it (its knobs: matrix_n); leave it at 0"), std::string::npos) << last_error_text();
    kiln_test_params_init(KILN_TEST_STREAM, &p);
    p.size_bytes = 1u << 20;
    p.block = 256;  // a GPU launch shape: the cpu does not read it, and one plan serves every device
    EXPECT_EQ(kiln_test_validate(dev, &p), KILN_OK) << last_error_text();
    p.vec = 4;
    EXPECT_EQ(kiln_test_validate(dev, &p), KILN_OK) << "vec is a GPU knob of stream: not the cpu's to judge";
}
