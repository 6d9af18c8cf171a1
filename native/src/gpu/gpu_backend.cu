// gpu_backend.cu - the GPU backend's table (libkiln-cuda.so / the HIP kernels library): devices
// and their theoretical peaks, parameter checks that name the device's own limits, and dispatch of
// each test on its device's own stream. Thread-safe per device: every call sets its device first,
// so one kiln_run per device can run on its own thread.
#include "gpu_backend.h"
#include "../common/kiln_names.h"
#include "../common/kiln_patterns.h"

#if defined(KILN_GPU_EMU)
#include "emu/emu_config.h"
#endif

#include <cctype>
#include <cstdio>
#include <cstring>
#include <new>

namespace kiln::gpu {

const kiln_host_services* g_host = nullptr;

namespace {

struct backend_state {
    std::vector<device_props> devices;
    std::string runtime_version;
};

std::string version_text(int v) {
    // CUDA encodes 1000 * major + 10 * minor; HIP 10000000 * major + 100000 * minor + patch.
    char buf[32];
#if defined(KILN_GPU_HIP)
    snprintf(buf, sizeof buf, "%d.%d.%d", v / 10000000, (v / 100000) % 100, v % 100000);
#else
    snprintf(buf, sizeof buf, "%d.%d", v / 1000, (v % 1000) / 10);
#endif
    return buf;
}

kiln_status read_props(int index, device_props& d) {
    cudaDeviceProp prop;
    memset(&prop, 0, sizeof prop);
    KILN_GPU_TRY(cudaGetDeviceProperties(&prop, index));
    d.name = prop.name;
    d.major = prop.major;
    d.minor = prop.minor;
    d.sms = prop.multiProcessorCount;
    d.warp_size = prop.warpSize;
    d.max_threads_per_block = prop.maxThreadsPerBlock;
    d.max_threads_per_sm = prop.maxThreadsPerMultiProcessor;
    d.max_grid_x = prop.maxGridSize[0];
    d.total_memory_bytes = prop.totalGlobalMem;
    d.l2_bytes = static_cast<uint64_t>(prop.l2CacheSize);
    char arch[64];
#if defined(KILN_GPU_HIP)
    // "gfx90a:sramecc+:xnack-" -> "gfx90a"
    std::string gcn = prop.gcnArchName;
    d.arch = gcn.substr(0, gcn.find(':'));
    hipUUID uuid;
    if (hipDeviceGetUuid(&uuid, index) == hipSuccess) {
        char text[40];
        // ROCm reports the UUID as 16 printable characters.
        snprintf(text, sizeof text, "GPU-%.16s", uuid.bytes);
        d.uuid = text;
    } else {
        (void)cudaGetLastError();
    }
#else
#if defined(KILN_GPU_EMU)
    snprintf(arch, sizeof arch, "emu");
#else
    snprintf(arch, sizeof arch, "sm_%d%d", prop.major, prop.minor);
#endif
    d.arch = arch;
    const unsigned char* u = reinterpret_cast<const unsigned char*>(prop.uuid.bytes);
    char text[64];
    snprintf(text, sizeof text, "GPU-%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", u[0], u[1],
             u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9], u[10], u[11], u[12], u[13], u[14], u[15]);
    d.uuid = text;
#endif
    (void)arch;
    char bus[32] = {0};
    if (cudaDeviceGetPCIBusId(bus, sizeof bus, index) == cudaSuccess) {
        for (char* c = bus; *c; ++c) *c = static_cast<char>(tolower(*c));
        d.pci_bus_id = bus;
    } else {
        (void)cudaGetLastError();
    }
    int clock_khz = 0, memory_khz = 0, bus_bits = 0;
    // Attributes, not the cudaDeviceProp fields: CUDA 13 removed clockRate and memoryClockRate from the struct.
    if (cudaDeviceGetAttribute(&clock_khz, cudaDevAttrClockRate, index) != cudaSuccess) (void)cudaGetLastError();
    if (cudaDeviceGetAttribute(&memory_khz, cudaDevAttrMemoryClockRate, index) != cudaSuccess) (void)cudaGetLastError();
    if (cudaDeviceGetAttribute(&bus_bits, cudaDevAttrGlobalMemoryBusWidth, index) != cudaSuccess) (void)cudaGetLastError();
    d.clock_mhz = clock_khz / 1000.0;
    d.memory_clock_mhz = memory_khz / 1000.0;
    d.memory_bus_bits = bus_bits;
    compute_peaks(d);
    return KILN_OK;
}

kiln_status init(const kiln_host_services* host, void** out_state, char* reason, size_t reason_bytes) {
    g_host = host;
#if defined(KILN_GPU_EMU)
    // Off unless asked for: a production node never shows an emulated device. A malformed
    // variable is a usage error (the host exits 2), not a missing device.
    if (!kiln::emu::current_config().enabled) {
        snprintf(reason, reason_bytes, "%s", kiln::emu::config_error().c_str());
        return kiln::emu::config_malformed() ? KILN_INVALID_ARGUMENT : KILN_UNSUPPORTED;
    }
#endif
    int count = 0;
    const cudaError_t e = cudaGetDeviceCount(&count);
    if (e != cudaSuccess || count <= 0) {
        (void)cudaGetLastError();
#if defined(KILN_GPU_EMU)
        snprintf(reason, reason_bytes, "the emulated devices could not be created (%s)", cudaGetErrorString(e));
#elif defined(KILN_GPU_HIP)
        if (e == cudaErrorNoDevice || count <= 0)
            snprintf(reason, reason_bytes, "no device: no ROCm device (hipGetDeviceCount: %s)", cudaGetErrorName(e));
        else
            snprintf(reason, reason_bytes, "no ROCm driver (hipGetDeviceCount: %s: %s)", cudaGetErrorName(e), cudaGetErrorString(e));
#else
        if (e == cudaErrorNoDevice || (e == cudaSuccess && count <= 0))
            snprintf(reason, reason_bytes, "no device (cudaGetDeviceCount: %s)", e == cudaSuccess ? "0 devices" : cudaGetErrorString(e));
        else
            snprintf(reason, reason_bytes, "no CUDA driver (cudaGetDeviceCount: %s: %s)", cudaGetErrorName(e), cudaGetErrorString(e));
#endif
        return KILN_UNSUPPORTED;
    }
    auto* state = new (std::nothrow) backend_state;
    if (!state) {
        snprintf(reason, reason_bytes, "out of memory");
        return KILN_OUT_OF_MEMORY;
    }
    state->devices.resize(static_cast<size_t>(count));
    for (int i = 0; i < count; ++i) {
        if (read_props(i, state->devices[static_cast<size_t>(i)]) != KILN_OK) {
            snprintf(reason, reason_bytes, "device %d: cannot read its properties", i);
            delete state;
            return KILN_UNSUPPORTED;
        }
    }
    int driver = 0, runtime = 0;
    if (cudaDriverGetVersion(&driver) != cudaSuccess) (void)cudaGetLastError();
    if (cudaRuntimeGetVersion(&runtime) != cudaSuccess) (void)cudaGetLastError();
    state->runtime_version = std::string(KILN_GPU_RUNTIME_NAME " driver ") + version_text(driver) + ", runtime " + version_text(runtime);
    *out_state = state;
    return KILN_OK;
}

void shutdown(void* state) { delete static_cast<backend_state*>(state); }

int32_t device_count(void* state) { return static_cast<int32_t>(static_cast<backend_state*>(state)->devices.size()); }

const char* runtime_version(void* state) { return static_cast<backend_state*>(state)->runtime_version.c_str(); }

kiln_status check_index(const backend_state* s, int32_t index) {
    const int count = static_cast<int>(s->devices.size());
    if (index < 0 || index >= count)
        return fail(KILN_NOT_FOUND, "device %d: backend '%s' has %d device%s (0..%d)", index, KILN_GPU_BACKEND_NAME, count,
                    count == 1 ? "" : "s", count - 1);
    return KILN_OK;
}

kiln_status free_memory(int32_t index, uint64_t* free_bytes, uint64_t* total_bytes) {
    KILN_GPU_TRY(cudaSetDevice(index));
    size_t free_b = 0, total_b = 0;
    KILN_GPU_TRY(cudaMemGetInfo(&free_b, &total_b));
    *free_bytes = free_b;
    *total_bytes = total_b;
    return KILN_OK;
}

kiln_status device_info(void* state, int32_t index, kiln_device_info* out) {
    const auto* s = static_cast<backend_state*>(state);
    KILN_GPU_CHECK(check_index(s, index));
    const device_props& d = s->devices[static_cast<size_t>(index)];
    copy_text(out->backend, sizeof out->backend, KILN_GPU_BACKEND_NAME);
    copy_text(out->name, sizeof out->name, d.name);
    copy_text(out->uuid, sizeof out->uuid, d.uuid);
    copy_text(out->pci_bus_id, sizeof out->pci_bus_id, d.pci_bus_id);
    out->index = index;
    out->compute_units = d.sms;
    out->numa_nodes = 1;
    out->threads_per_unit = d.max_threads_per_sm;
    out->total_memory_bytes = d.total_memory_bytes;
    uint64_t free_b = 0, total_b = 0;
    KILN_GPU_CHECK(free_memory(index, &free_b, &total_b));
    out->available_memory_bytes = free_b;
    out->last_level_cache_bytes = d.l2_bytes;
    out->clock_mhz = d.clock_mhz;
    out->peak_memory_bandwidth_gbps = d.peak_memory_gbps;
    if (d.peak_memory_gbps > 0)
        snprintf(out->peak_memory_basis, sizeof out->peak_memory_basis, "2 x %.0f MHz memory clock x %d-bit bus", d.memory_clock_mhz,
                 d.memory_bus_bits);
    else
        copy_text(out->peak_memory_basis, sizeof out->peak_memory_basis, "peak unknown: the runtime reports no memory clock or bus width");
    out->peak_fp64_tflops = d.peak_fp64_tflops;
    out->peak_fp32_tflops = d.peak_fp32_tflops;
    out->peak_tf32_tflops = d.peak_tensor_tflops[2];
    out->peak_bf16_tflops = d.peak_tensor_tflops[3];
    out->peak_fp16_tflops = d.peak_tensor_tflops[4];
    return KILN_OK;
}

// The dtype bits of mask as "fp64, bf16".
std::string dtype_list(uint32_t mask) {
    std::string text;
    for (uint32_t bit = 1; bit <= KILN_DTYPE_FP16; bit <<= 1)
        if (mask & bit) text += (text.empty() ? "" : ", ") + std::string(kiln_dtype_key(bit));
    return text.empty() ? "none" : text;
}

kiln_status validate_launch_knobs(const device_props& d, const kiln_test_params* p) {
    if (p->block < 0) return fail(KILN_INVALID_ARGUMENT, "block: %d is negative", p->block);
    if (p->block > d.max_threads_per_block)
        return fail(KILN_INVALID_ARGUMENT, "block: %d is above this device's limit of %d threads per block (%s)", p->block,
                    d.max_threads_per_block, d.name.c_str());
    if (p->block > 0 && p->block % d.warp_size != 0)
        return fail(KILN_INVALID_ARGUMENT, "block: %d is not a multiple of this device's warp size %d", p->block, d.warp_size);
    if (p->grid < 0) return fail(KILN_INVALID_ARGUMENT, "grid: %d is negative", p->grid);
    if (p->grid > d.max_grid_x)
        return fail(KILN_INVALID_ARGUMENT, "grid: %d is above this device's limit of %d blocks", p->grid, d.max_grid_x);
    // Which test reads vec and unroll, and the values its kernels are built for: the knob catalog
    // (native/src/core/knobs.cpp), checked by libkiln before this.
    return KILN_OK;
}

kiln_status validate(void* state, int32_t index, const kiln_test_params* p) {
    const auto* s = static_cast<backend_state*>(state);
    KILN_GPU_CHECK(check_index(s, index));
    const device_props& d = s->devices[static_cast<size_t>(index)];
#if defined(KILN_GPU_EMU)
    (void)d;  // the emulator runs every kernel
#elif defined(KILN_GPU_CUDA)
    if (d.major < 8)
        return fail(KILN_UNSUPPORTED, "device %d (%s) has compute capability %d.%d; this build has kernels for sm_80 and newer",
                    index, d.name.c_str(), d.major, d.minor);
#else
    // KILN_HIP_ARCHS_TEXT: the --offload-arch list this library was built with ("gfx90a,gfx942").
    const std::string built = "," KILN_HIP_ARCHS_TEXT ",";
    if (built.find("," + d.arch + ",") == std::string::npos)
        return fail(KILN_UNSUPPORTED, "device %d (%s) is %s; this build has kernels for %s", index, d.name.c_str(), d.arch.c_str(),
                    KILN_HIP_ARCHS_TEXT);
#endif
    if (p->test < 0 || p->test >= KILN_TEST_COUNT) return fail(KILN_INVALID_ARGUMENT, "test: %d is not a kiln_test_kind", p->test);
    if (p->iterations < 1) return fail(KILN_INVALID_ARGUMENT, "iterations: %d, must be at least 1", p->iterations);
    if (p->size_fraction < 0 || p->size_fraction > 0.99)
        return fail(KILN_INVALID_ARGUMENT, "size_fraction: %g is outside 0..0.99 of free device memory", p->size_fraction);
    if (p->inject_slowdown < 0 || p->inject_slowdown > 1)
        return fail(KILN_INVALID_ARGUMENT, "inject_slowdown: %g is outside 0..1", p->inject_slowdown);
    if (p->inject_flips < 0) return fail(KILN_INVALID_ARGUMENT, "inject_flips: %d is negative", p->inject_flips);
    if (p->inject_corrupt < 0) return fail(KILN_INVALID_ARGUMENT, "inject_corrupt: %d is negative", p->inject_corrupt);
    KILN_GPU_CHECK(validate_launch_knobs(d, p));

    uint64_t free_b = 0, total_b = 0;
    KILN_GPU_CHECK(free_memory(index, &free_b, &total_b));
    const std::string free_text = format_bytes(static_cast<double>(free_b)) + " free of " + format_bytes(static_cast<double>(total_b));
    switch (p->test) {
    case KILN_TEST_STREAM: {
        const uint64_t array = stream_array_bytes(p, free_b);
        if (array < (1u << 20))
            return fail(KILN_INVALID_ARGUMENT, "size_bytes: %s per array is below the 1 MiB minimum", format_bytes(array).c_str());
        if (3 * array > free_b)
            return fail(KILN_INVALID_ARGUMENT, "size_bytes: 3 arrays of %s are larger than this device's memory (%s)",
                        format_bytes(array).c_str(), free_text.c_str());
        break;
    }
    case KILN_TEST_MEMTEST: {
        const uint64_t bytes = memtest_region_bytes(p, free_b);
        if (bytes < (1u << 20)) return fail(KILN_INVALID_ARGUMENT, "size_bytes: %s is below the 1 MiB minimum", format_bytes(bytes).c_str());
        if (bytes > free_b)
            return fail(KILN_INVALID_ARGUMENT, "size_bytes: %s is larger than this device's memory (%s)", format_bytes(bytes).c_str(),
                        free_text.c_str());
        if (static_cast<uint64_t>(p->inject_flips) > bytes / 8)
            return fail(KILN_INVALID_ARGUMENT, "inject_flips: %d is more than the %llu words tested", p->inject_flips,
                        static_cast<unsigned long long>(bytes / 8));
        if (p->pattern_mask >> KILN_PATTERN_COUNT)
            return fail(KILN_INVALID_ARGUMENT, "pattern_mask: 0x%x has bits beyond the %d patterns", p->pattern_mask, KILN_PATTERN_COUNT);
        break;
    }
    case KILN_TEST_GEMM: {
        const uint32_t have = gemm_dtypes_available(d);
        if (p->dtype_mask & ~have)
            return fail(KILN_INVALID_ARGUMENT, "dtype_mask: 0x%x asks for %s; this device (%s, %s) has gemm kernels for %s",
                        p->dtype_mask, dtype_list(p->dtype_mask & ~have).c_str(), d.name.c_str(), d.arch.c_str(),
                        dtype_list(have).c_str());
        const int n = gemm_matrix_n(p, d);
        const uint32_t mask = p->dtype_mask ? p->dtype_mask : have;
        for (uint32_t bit = 1; bit <= KILN_DTYPE_FP16; bit <<= 1)
            if ((mask & bit) && gemm_bytes_needed(n, bit) > free_b)
                return fail(KILN_INVALID_ARGUMENT, "matrix_n: %d needs %s for the %s product, more than this device's memory (%s)", n,
                            format_bytes(static_cast<double>(gemm_bytes_needed(n, bit))).c_str(), kiln_dtype_key(bit),
                            free_text.c_str());
        break;
    }
    case KILN_TEST_POWER: {
        const uint32_t have = power_dtypes_available(d);
        if (p->dtype_mask & ~have)
            return fail(KILN_INVALID_ARGUMENT, "dtype_mask: 0x%x asks for %s; this device's power burners are %s", p->dtype_mask,
                        dtype_list(p->dtype_mask & ~have).c_str(), dtype_list(have).c_str());
        break;
    }
    case KILN_TEST_COPY: {
        const uint64_t bytes = copy_buffer_bytes(p, free_b);
        if (bytes < (1u << 20)) return fail(KILN_INVALID_ARGUMENT, "size_bytes: %s is below the 1 MiB minimum", format_bytes(bytes).c_str());
        if (2 * bytes > free_b)
            return fail(KILN_INVALID_ARGUMENT, "size_bytes: 2 buffers of %s are larger than this device's memory (%s)",
                        format_bytes(bytes).c_str(), free_text.c_str());
        break;
    }
    default:
        break;
    }
    return KILN_OK;
}

kiln_status run(void* state, int32_t index, const kiln_test_params* p, const kiln_sink* sink, const volatile int32_t* cancel) {
    KILN_GPU_CHECK(validate(state, index, p));
    const auto* s = static_cast<backend_state*>(state);
    KILN_GPU_TRY(cudaSetDevice(index));
    const bool injected = p->inject_flips > 0 || p->inject_corrupt > 0 || (p->inject_slowdown > 0 && p->inject_slowdown < 1);
    sink_writer out(sink, kiln_test_key(p->test), p->max_error_reports, injected);
    const run_context ctx{index, &s->devices[static_cast<size_t>(index)], static_cast<int>(s->devices.size())};
    try {
        switch (p->test) {
        case KILN_TEST_STREAM: return run_stream(ctx, p, out, cancel);
        case KILN_TEST_MEMTEST: return run_memtest(ctx, p, out, cancel);
        case KILN_TEST_GEMM: return run_gemm(ctx, p, out, cancel);
        case KILN_TEST_POWER: return run_power(ctx, p, out, cancel);
        case KILN_TEST_COPY: return run_copy(ctx, p, out, cancel);
        default: return run_launch(ctx, p, out, cancel);
        }
    } catch (const std::bad_alloc&) {
        return fail(KILN_OUT_OF_MEMORY, "%s: out of host memory", kiln_test_key(p->test));
    } catch (const std::exception& e) {
        return fail(KILN_INTERNAL, "%s: %s", kiln_test_key(p->test), e.what());
    }
}

kiln_status coll_library_op(void*, kiln_coll_library_info* out) { return coll_library(out); }

kiln_status coll_unique_id_op(void*, uint8_t* out_id) { return coll_unique_id(out_id); }

kiln_status coll_run_op(void* state, const int32_t* indices, int32_t count, const kiln_coll_params* p, const kiln_sink* sink,
                        const volatile int32_t* cancel) {
    const auto* s = static_cast<backend_state*>(state);
    std::vector<const device_props*> props;
    for (int32_t i = 0; i < count; ++i) {
        if (indices[i] < 0 || indices[i] >= static_cast<int32_t>(s->devices.size()))
            return fail(KILN_NOT_FOUND, "device %d: this backend has %zu devices", indices[i], s->devices.size());
        props.push_back(&s->devices[static_cast<size_t>(indices[i])]);
    }
    try {
        return run_coll(props, indices, count, p, sink, cancel);
    } catch (const std::bad_alloc&) {
        return fail(KILN_OUT_OF_MEMORY, "allreduce: out of host memory");
    } catch (const std::exception& e) {
        return fail(KILN_INTERNAL, "allreduce: %s", e.what());
    }
}

#if defined(KILN_GPU_EMU)
// The emulated device's memory is host memory: no HCA driver knows it as a GPU's.
constexpr auto export_memory_op = nullptr;
constexpr auto release_memory_op = nullptr;
#else
kiln_status export_memory_op(void*, int32_t index, uint64_t bytes, kiln_gpu_memory* out) { return export_memory(index, bytes, out); }

void release_memory_op(void*, int32_t index, kiln_gpu_memory* memory) { release_memory(index, memory); }
#endif

const kiln_backend_ops k_ops = {
    KILN_PLUGIN_API_VERSION, KILN_GPU_BACKEND_NAME, init, shutdown, device_count, runtime_version, device_info, validate, run,
    coll_library_op, coll_unique_id_op, coll_run_op, export_memory_op, release_memory_op,
};

// Issue rates per multiprocessor per clock, by architecture. FMA lanes count 2 flops each; tensor
// and matrix rates are dense flops per clock (no sparsity).
// NVIDIA: FP32/FP64 lanes from the CUDA C++ Programming Guide, "Arithmetic Instructions" table
// (32-bit and 64-bit floating-point add/multiply/multiply-add results per clock per SM); tensor
// rates from the V100, A100 (Table 3) and H100 (Table 2) architecture whitepapers, divided by
// SMs x boost clock (A100: 312 TF fp16 / (108 x 1.41 GHz) = 2048; H100 SXM: 989 TF / (132 x
// 1.83 GHz) = 4096). AMD: CDNA2 and CDNA3 whitepapers, flops per clock per CU (MI250X: FP64 vector
// 128, matrix FP64 256, matrix FP16/BF16 1024; MI300X: FP64 vector 128, FP32 vector 256, matrix
// FP16/BF16 2048, TF32 1024).
struct arch_rates {
    const char* arch_prefix;  // matched against device_props::arch ("sm_90", "gfx90a")
    double fp64_lanes, fp32_lanes;
    double tensor_flops[5];   // fp64 (tensor/matrix), fp32 (matrix), tf32, bf16, fp16
};
const arch_rates k_rates[] = {
    {"sm_70", 32, 64, {0, 0, 0, 0, 1024}},
    {"sm_75", 2, 64, {0, 0, 0, 0, 1024}},
    {"sm_80", 32, 64, {128, 0, 1024, 2048, 2048}},
    {"sm_86", 2, 128, {0, 0, 512, 1024, 1024}},
    {"sm_87", 2, 128, {0, 0, 512, 1024, 1024}},
    {"sm_89", 2, 128, {0, 0, 512, 1024, 1024}},
    {"sm_90", 64, 128, {256, 0, 2048, 4096, 4096}},
    {"sm_10", 64, 128, {256, 0, 4096, 8192, 8192}},
    {"sm_12", 2, 128, {0, 0, 0, 0, 0}},
    {"gfx908", 32, 64, {0, 256, 0, 512, 1024}},
    {"gfx90a", 64, 64, {256, 256, 0, 1024, 1024}},
    {"gfx94", 64, 128, {256, 256, 1024, 2048, 2048}},
    // The emulated device: rates near what the emulator reaches on one host core per SM at its
    // default 1 GHz, so fraction_of_peak thresholds mean the same on emu as on a GPU (docs/EMULATOR.md).
    {"emu", 0.5, 0.5, {0, 0, 0.1, 0.1, 0.1}},
};

}  // namespace

void compute_peaks(device_props& d) {
    // HBM and GDDR transfer on both clock edges: bytes/s = 2 x memory clock x bus width / 8.
    d.peak_memory_gbps = 2.0 * d.memory_clock_mhz * 1e6 * d.memory_bus_bits / 8.0 / 1e9;
    for (const arch_rates& r : k_rates) {
        if (d.arch.compare(0, strlen(r.arch_prefix), r.arch_prefix) != 0) continue;
        const double sm_ghz = d.sms * d.clock_mhz / 1000.0;  // SMs x GHz: flops per clock per SM -> GFLOP/s
        d.peak_fp64_tflops = sm_ghz * r.fp64_lanes * 2 / 1000.0;
        d.peak_fp32_tflops = sm_ghz * r.fp32_lanes * 2 / 1000.0;
        for (int k = 0; k < 5; ++k) d.peak_tensor_tflops[k] = sm_ghz * r.tensor_flops[k] / 1000.0;
        break;
    }
}

double peak_tflops(const device_props& d, uint32_t dtype_bit) {
    switch (dtype_bit) {
    case KILN_DTYPE_FP64: return d.peak_fp64_tflops;
    case KILN_DTYPE_FP32: return d.peak_fp32_tflops;
    case KILN_DTYPE_TF32: return d.peak_tensor_tflops[2];
    case KILN_DTYPE_BF16: return d.peak_tensor_tflops[3];
    case KILN_DTYPE_FP16: return d.peak_tensor_tflops[4];
    default: return 0;
    }
}

}  // namespace kiln::gpu

extern "C" __attribute__((visibility("default"))) const kiln_backend_ops* kiln_plugin_entry(void) { return &kiln::gpu::k_ops; }
