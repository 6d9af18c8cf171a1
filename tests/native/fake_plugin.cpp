// fake_plugin.cpp - a backend plugin built only for the tests, in variants (compile definitions)
// that exercise every way the loader can accept or skip a candidate.
#include <kiln/kiln_plugin.h>

#include <cstdio>
#include <cstring>

#ifndef FAKE_API_VERSION
#define FAKE_API_VERSION KILN_PLUGIN_API_VERSION
#endif

namespace {
const kiln_host_services* g_host = nullptr;

kiln_status init(const kiln_host_services* host, void** out_state, char* reason, size_t reason_bytes) {
    g_host = host;
#ifdef FAKE_UNSUPPORTED
    snprintf(reason, reason_bytes, "no device");
    return KILN_UNSUPPORTED;
#else
    static int state = 42;
    *out_state = &state;
    return KILN_OK;
#endif
}
void shutdown(void*) {}
int32_t device_count(void*) { return 2; }
const char* runtime_version(void*) { return "fake runtime 1.0"; }
kiln_status device_info(void*, int32_t index, kiln_device_info* out) {
    snprintf(out->backend, sizeof out->backend, "%s", FAKE_NAME);
    snprintf(out->name, sizeof out->name, "Fake GPU %d", index);
    snprintf(out->pci_bus_id, sizeof out->pci_bus_id, "0000:%02x:00.0", 0x10 + index);
    out->index = index;
    out->compute_units = 132;
    out->total_memory_bytes = 80ull << 30;
    return KILN_OK;
}
kiln_status validate(void*, int32_t, const kiln_test_params* p) {
    if (p->block > 1024) {
        g_host->set_error("block: 1025 is above this device's limit of 1024 threads per block");
        return KILN_INVALID_ARGUMENT;
    }
    return KILN_OK;
}
kiln_status run(void*, int32_t, const kiln_test_params* p, const kiln_sink* sink, const volatile int32_t*) {
    const kiln_metric m = {"stream", "copy_gbps", "GB/s", 1234.5, 0, 0};
    if (sink->on_metric) sink->on_metric(sink->ctx, &m);
    const kiln_data_error e = {"memtest", "walking_ones", 4096, 1, 3, 8, 0, -1, 0};
    if (p->test == KILN_TEST_MEMTEST && sink->on_data_error) sink->on_data_error(sink->ctx, &e);
    return KILN_OK;
}

const kiln_backend_ops k_ops = {FAKE_API_VERSION, FAKE_NAME, init, shutdown, device_count,
                                runtime_version, device_info, validate, run};
}  // namespace

#ifndef FAKE_NO_ENTRY
extern "C" __attribute__((visibility("default"))) const kiln_backend_ops* kiln_plugin_entry(void) { return &k_ops; }
#else
extern "C" __attribute__((visibility("default"))) int not_a_kiln_plugin(void) { return k_ops.api_version; }
#endif
