// cpu_backend.cpp - the built-in cpu backend: one device (the host), its description, parameter
// checks that name the limit, and dispatch to the stream, memtest, gemm and power kernels.
#include "cpu_backend.h"
#include "../common/kiln_patterns.h"

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
    out->peak_memory_bandwidth_gbps = t.memory.gbps;
    copy_text(out->peak_memory_basis, sizeof out->peak_memory_basis, t.memory.basis);
    // FMA peaks at the reported clock: AVX2/FMA cores have two 256-bit FMA pipes (Haswell and later,
    // Zen 2 and later): 2 pipes x 4 doubles x 2 flops = 16 fp64 and 32 fp32 flops per cycle; 0 without.
    int fp64_flops_per_cycle = 0;
#if defined(__x86_64__)
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) fp64_flops_per_cycle = 16;
#endif
    out->peak_fp64_tflops = out->compute_units / t.threads_per_core * t.clock_mhz * 1e6 * fp64_flops_per_cycle / 1e12;
    out->peak_fp32_tflops = 2 * out->peak_fp64_tflops;
    return KILN_OK;
}

kiln_status validate(void* state, int32_t index, const kiln_test_params* p) {
    if (index != 0) return fail(KILN_NOT_FOUND, "device %d: the cpu backend has 1 device (0)", index);
    const topology& t = static_cast<cpu_state*>(state)->topo;
    if (p->test != KILN_TEST_STREAM && p->test != KILN_TEST_MEMTEST && p->test != KILN_TEST_GEMM &&
        p->test != KILN_TEST_POWER)
        return fail(KILN_UNSUPPORTED, "test '%s' is not implemented by the cpu backend", kiln_test_name(p->test));
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
    if (p->test == KILN_TEST_GEMM) {
        if (p->matrix_n < 0) return fail(KILN_INVALID_ARGUMENT, "matrix_n: %d is negative", p->matrix_n);
        if (p->matrix_n > KILN_GEMM_MAX_N)
            return fail(KILN_INVALID_ARGUMENT, "matrix_n: %d is above %d, the largest n whose sums stay exact", p->matrix_n,
                        KILN_GEMM_MAX_N);
        const uint64_t n = gemm_matrix_n(p);
        if (3 * n * n * 8 > available)
            return fail(KILN_INVALID_ARGUMENT, "matrix_n: 3 matrices of %llu x %llu doubles need %s, more than available memory (%s)",
                        static_cast<unsigned long long>(n), static_cast<unsigned long long>(n),
                        format_bytes(3.0 * n * n * 8).c_str(), format_bytes(available).c_str());
        if (p->dtype_mask & ~static_cast<uint32_t>(KILN_DTYPE_FP64))
            return fail(KILN_INVALID_ARGUMENT, "dtype_mask: 0x%x asks for more than fp64 (0x1), the only type the cpu gemm has",
                        p->dtype_mask);
        return KILN_OK;
    }
    if (p->test == KILN_TEST_POWER) {
        if (p->dtype_mask & ~static_cast<uint32_t>(KILN_DTYPE_FP64 | KILN_DTYPE_FP32))
            return fail(KILN_INVALID_ARGUMENT, "dtype_mask: 0x%x asks for more than fp64 and fp32 (0x3), the types the cpu power burner has",
                        p->dtype_mask);
        return KILN_OK;
    }
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
        switch (p->test) {
        case KILN_TEST_STREAM: return run_stream(t, p, out, cancel);
        case KILN_TEST_MEMTEST: return run_memtest(t, p, out, cancel);
        case KILN_TEST_GEMM: return run_gemm(t, p, out, cancel);
        default: return run_power(t, p, out, cancel);
        }
    } catch (const std::bad_alloc&) {
        return fail(KILN_OUT_OF_MEMORY, "%s: out of memory", kiln_test_name(p->test));
    } catch (const std::exception& e) {
        return fail(KILN_INTERNAL, "%s: %s", kiln_test_name(p->test), e.what());
    }
}

const kiln_backend_ops k_cpu_ops = {
    KILN_PLUGIN_API_VERSION, "cpu", init, shutdown, device_count, runtime_version, device_info, validate, run,
    nullptr, nullptr, nullptr,  // no collectives: NCCL/RCCL run between GPUs
    nullptr, nullptr,           // no GPUDirect RDMA: host memory is the RDMA probe's default
};

}  // namespace
}  // namespace kiln::cpu

const kiln_backend_ops* kiln::cpu_backend_ops() { return &kiln::cpu::k_cpu_ops; }
