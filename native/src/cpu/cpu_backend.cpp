// cpu_backend.cpp - the built-in cpu backend: one device (the host), its description, parameter
// checks that name the limit, and dispatch to the stream and memtest kernels.
#include "cpu_backend.h"

#include <cstring>

namespace kiln::cpu {
namespace {

struct cpu_state {
    topology topo;
};

kiln_status init(const kiln_host_services*, void** out_state, char*, size_t) {
    *out_state = new cpu_state{read_topology()};
    return KILN_OK;
}

void shutdown(void* state) { delete static_cast<cpu_state*>(state); }

int32_t device_count(void*) { return 1; }

const char* runtime_version(void* state) { return static_cast<cpu_state*>(state)->topo.kernel.c_str(); }

kiln_status device_info(void* state, int32_t index, kiln_device_info* out) {
    if (index != 0) return fail(KILN_NOT_FOUND, "device %d: the cpu backend has 1 device (0)", index);
    const topology& t = static_cast<cpu_state*>(state)->topo;
    copy_text(out->backend, sizeof out->backend, "cpu");
    copy_text(out->name, sizeof out->name, t.model);
    copy_text(out->uuid, sizeof out->uuid, t.machine_id);
    out->index = 0;
    out->compute_units = static_cast<int32_t>(t.cpus.size());
    out->numa_nodes = t.numa_nodes;
    out->threads_per_unit = t.threads_per_core;
    out->total_memory_bytes = t.total_memory_bytes;
    out->available_memory_bytes = available_memory_bytes();
    out->last_level_cache_bytes = t.last_level_cache_bytes;
    out->clock_mhz = t.clock_mhz;
    return KILN_OK;
}

kiln_status validate(void* state, int32_t index, const kiln_test_params* p) {
    if (index != 0) return fail(KILN_NOT_FOUND, "device %d: the cpu backend has 1 device (0)", index);
    const topology& t = static_cast<cpu_state*>(state)->topo;
    if (p->test != KILN_TEST_STREAM && p->test != KILN_TEST_MEMTEST)
        return fail(KILN_UNSUPPORTED, "test '%s' is not implemented by the cpu backend yet", kiln_test_name(p->test));
    const int cpus = static_cast<int>(t.cpus.size());
    if (p->threads < 0) return fail(KILN_INVALID_ARGUMENT, "threads: %d is negative", p->threads);
    if (p->threads > 4 * cpus)
        return fail(KILN_INVALID_ARGUMENT, "threads: %d is more than 4x the %d CPUs this process may use", p->threads, cpus);
    if (p->iterations < 1) return fail(KILN_INVALID_ARGUMENT, "iterations: %d, must be at least 1", p->iterations);
    if (p->size_fraction < 0 || p->size_fraction > 0.95)
        return fail(KILN_INVALID_ARGUMENT, "size_fraction: %g is outside 0..0.95 of available memory", p->size_fraction);
    if (p->inject_slowdown < 0 || p->inject_slowdown > 1)
        return fail(KILN_INVALID_ARGUMENT, "inject_slowdown: %g is outside 0..1", p->inject_slowdown);
    if (p->inject_flips < 0) return fail(KILN_INVALID_ARGUMENT, "inject_flips: %d is negative", p->inject_flips);
    if (p->inject_corrupt < 0) return fail(KILN_INVALID_ARGUMENT, "inject_corrupt: %d is negative", p->inject_corrupt);
    const uint64_t available = available_memory_bytes();
    if (p->test == KILN_TEST_STREAM) {
        const uint64_t array = stream_array_bytes(p, t);
        if (array < 64 * 1024)
            return fail(KILN_INVALID_ARGUMENT, "size_bytes: %s per array is below the 64 KiB minimum", format_bytes(array).c_str());
        if (3 * array > available)
            return fail(KILN_INVALID_ARGUMENT, "size_bytes: 3 arrays of %s are larger than available memory (%s)",
                        format_bytes(array).c_str(), format_bytes(available).c_str());
    } else {
        const uint64_t bytes = memtest_region_bytes(p);
        if (bytes < 4096)
            return fail(KILN_INVALID_ARGUMENT, "size_bytes: %s is below the 4 KiB minimum", format_bytes(bytes).c_str());
        if (bytes > available)
            return fail(KILN_INVALID_ARGUMENT, "size_bytes: %s is larger than available memory (%s)",
                        format_bytes(bytes).c_str(), format_bytes(available).c_str());
        if (static_cast<uint64_t>(p->inject_flips) > bytes / 8)
            return fail(KILN_INVALID_ARGUMENT, "inject_flips: %d is more than the %llu words tested", p->inject_flips,
                        static_cast<unsigned long long>(bytes / 8));
        if (p->pattern_mask >> KILN_PATTERN_COUNT)
            return fail(KILN_INVALID_ARGUMENT, "pattern_mask: 0x%x has bits beyond the %d patterns", p->pattern_mask,
                        KILN_PATTERN_COUNT);
    }
    return KILN_OK;
}

kiln_status run(void* state, int32_t index, const kiln_test_params* p, const kiln_sink* sink,
                const volatile int32_t* cancel) {
    const kiln_status st = validate(state, index, p);
    if (st != KILN_OK) return st;
    const topology& t = static_cast<cpu_state*>(state)->topo;
    const bool injected = p->inject_flips > 0 || p->inject_corrupt > 0 || (p->inject_slowdown > 0 && p->inject_slowdown < 1);
    sink_writer out(sink, kiln_test_name(p->test), p->max_error_reports, injected);
    try {
        return p->test == KILN_TEST_STREAM ? run_stream(t, p, out, cancel) : run_memtest(t, p, out, cancel);
    } catch (const std::bad_alloc&) {
        return fail(KILN_OUT_OF_MEMORY, "%s: out of memory", kiln_test_name(p->test));
    } catch (const std::exception& e) {
        return fail(KILN_INTERNAL, "%s: %s", kiln_test_name(p->test), e.what());
    }
}

const kiln_backend_ops k_cpu_ops = {
    KILN_PLUGIN_API_VERSION, "cpu", init, shutdown, device_count, runtime_version, device_info, validate, run,
};

}  // namespace
}  // namespace kiln::cpu

const kiln_backend_ops* kiln::cpu_backend_ops() { return &kiln::cpu::k_cpu_ops; }
