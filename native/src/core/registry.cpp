// registry.cpp - the backend registry: the built-in cpu backend plus libkiln-<name>.so plugins
// dlopen'ed from one folder, each checked for its entry point and API version; every candidate
// that is not loaded is kept with the reason. Devices and test runs dispatch through it.
#include "kiln_internal.h"
#include "../net/rdma_plugin.h"

#include <dirent.h>
#include <unistd.h>
#include <dlfcn.h>

#include <algorithm>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

struct kiln_registry {
    struct backend {
        const kiln_backend_ops* ops = nullptr;
        void* state = nullptr;
        void* library = nullptr;  // dlopen handle; nullptr for the built-in cpu backend
        std::string path;
    };
    std::vector<backend> backends;
    struct skip {
        std::string path, reason;
        kiln_status status;
    };
    std::vector<skip> skips;

    ~kiln_registry() {
        // Reverse order: a plugin's state goes before its library is unloaded.
        for (auto it = backends.rbegin(); it != backends.rend(); ++it) {
            if (it->ops && it->ops->shutdown) it->ops->shutdown(it->state);
            if (it->library) dlclose(it->library);
        }
    }
};

struct kiln_device {
    const kiln_registry::backend* backend;
    int32_t index;
};

namespace {

// --inject TEST:hang=1 / crash=1: the test runs until its first metric has gone out, then the
// calling thread never returns and ignores cancel (a kernel or driver call that hangs), or the
// process dies of SIGSEGV. For the burn engine's deadline and crash handling on any backend; a
// test that reports no metric fails the same way when it returns.
struct failing_sink {
    const kiln_sink* inner;
    bool crash;
};

[[noreturn]] void fail_now(bool crash) {
    if (crash) {
        signal(SIGSEGV, SIG_DFL);  // past the runtime's own handler: the process dies of the signal
        raise(SIGSEGV);
    }
    for (;;) sleep(3600);
}

void failing_metric(void* ctx, const kiln_metric* m) {
    const auto* f = static_cast<const failing_sink*>(ctx);
    if (f->inner->on_metric) f->inner->on_metric(f->inner->ctx, m);
    fail_now(f->crash);
}
void failing_error(void* ctx, const kiln_data_error* e) {
    const auto* f = static_cast<const failing_sink*>(ctx);
    if (f->inner->on_data_error) f->inner->on_data_error(f->inner->ctx, e);
}
void failing_progress(void* ctx, double fraction) {
    const auto* f = static_cast<const failing_sink*>(ctx);
    if (f->inner->on_progress) f->inner->on_progress(f->inner->ctx, fraction);
}

[[noreturn]] void run_until_injected_failure(const kiln_backend_ops& ops, void* state, int32_t index, const kiln_test_params* params,
                                             const kiln_sink* sink) {
    const failing_sink f{sink, params->inject_crash != 0};
    const kiln_sink wrapper{const_cast<failing_sink*>(&f), failing_metric, failing_error, failing_progress};
    static const volatile int32_t never_cancel = 0;
    (void)ops.run(state, index, params, &wrapper, &never_cancel);
    fail_now(f.crash);
}


// The network tests run between hosts through kiln_net_probe and the rdma/collective plugins, never
// on one device: a backend is not asked.
kiln_status reject_network_test(const kiln_test_params* params) {
    if (params->test == KILN_TEST_TCP || params->test == KILN_TEST_RDMA || params->test == KILN_TEST_ALLREDUCE)
        return kiln::fail(KILN_UNSUPPORTED, "%s is a network test between hosts, not a device test (docs/NETWORK.md)",
                          kiln_test_name(params->test));
    return KILN_OK;
}

// Files named libkiln-<name>.so in dir, sorted so the load order is stable.
std::vector<std::string> plugin_candidates(const std::string& dir, std::string* error) {
    std::vector<std::string> files;
    DIR* d = opendir(dir.c_str());
    if (!d) {
        *error = "cannot open plugin folder " + dir + ": " + strerror(errno);
        return files;
    }
    while (dirent* e = readdir(d)) {
        const std::string name = e->d_name;
        // The RDMA probe's plugin sits beside the backends but is not one (kiln_rdma_open loads it).
        if (name.size() > 12 && name.compare(0, 8, "libkiln-") == 0 &&
            name.compare(name.size() - 3, 3, ".so") == 0 && name != KILN_RDMA_PLUGIN_FILE)
            files.push_back(dir + "/" + name);
    }
    closedir(d);
    std::sort(files.begin(), files.end());
    return files;
}

bool has_backend(const kiln_registry* r, const char* name) {
    for (const auto& b : r->backends)
        if (strcmp(b.ops->name, name) == 0) return true;
    return false;
}

void load_plugin(kiln_registry* r, const std::string& path) {
    void* lib = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
        const char* why = dlerror();
        r->skips.push_back({path, std::string("dlopen failed: ") + (why ? why : "unknown error"), KILN_UNSUPPORTED});
        return;
    }
    auto entry = reinterpret_cast<kiln_plugin_entry_fn>(dlsym(lib, KILN_PLUGIN_ENTRY_SYMBOL));
    const kiln_backend_ops* ops = entry ? entry() : nullptr;
    std::string reason;
    kiln_status skip_status = KILN_UNSUPPORTED;
    if (!entry) {
        reason = "no " KILN_PLUGIN_ENTRY_SYMBOL " symbol: not a Kiln plugin";
    } else if (!ops) {
        reason = KILN_PLUGIN_ENTRY_SYMBOL " returned no backend";
    } else if (ops->api_version != KILN_PLUGIN_API_VERSION) {
        reason = "plugin API version " + std::to_string(ops->api_version) + ", this libkiln needs " +
                 std::to_string(KILN_PLUGIN_API_VERSION);
    } else if (!ops->name || !ops->init || !ops->device_count || !ops->device_info || !ops->run) {
        reason = "plugin backend table is incomplete";
    } else if (has_backend(r, ops->name)) {
        reason = std::string("a backend named '") + ops->name + "' is already loaded";
    }
    if (reason.empty()) {
        char why[KILN_PATH_BYTES] = {0};
        void* state = nullptr;
        const kiln_status st = ops->init(kiln::host_services(), &state, why, sizeof why);
        if (st == KILN_OK) {
            r->backends.push_back({ops, state, lib, path});
            return;
        }
        reason = why[0] ? why : kiln_status_name(st);
        // A malformed configuration of the plugin is the user's to fix: said as such.
        if (st == KILN_INVALID_ARGUMENT) skip_status = st;
    }
    r->skips.push_back({path, reason, skip_status});
    dlclose(lib);
}

}  // namespace

std::string kiln::default_plugin_dir() {
    if (const char* env = getenv("KILN_PLUGIN_DIR"); env && *env) return env;
    return folder_of_library(reinterpret_cast<const void*>(&kiln_registry_create));
}

extern "C" {

kiln_status kiln_registry_create(const char* plugin_dir, kiln_registry** out_registry) {
    if (!out_registry) return kiln::fail(KILN_INVALID_ARGUMENT, "out_registry: must not be NULL");
    *out_registry = nullptr;
    auto registry = std::make_unique<kiln_registry>();

    const kiln_backend_ops* cpu = kiln::cpu_backend_ops();
    char why[KILN_PATH_BYTES] = {0};
    void* cpu_state = nullptr;
    if (cpu->init(kiln::host_services(), &cpu_state, why, sizeof why) == KILN_OK)
        registry->backends.push_back({cpu, cpu_state, nullptr, ""});
    else
        registry->skips.push_back({"(built-in cpu)", why, KILN_UNSUPPORTED});

    const std::string dir = plugin_dir && *plugin_dir ? plugin_dir : kiln::default_plugin_dir();
    std::string error;
    for (const std::string& path : plugin_candidates(dir, &error)) load_plugin(registry.get(), path);
    if (!error.empty()) registry->skips.push_back({dir, error, KILN_UNSUPPORTED});

    *out_registry = registry.release();
    return KILN_OK;
}

void kiln_registry_destroy(kiln_registry* registry) { delete registry; }

int32_t kiln_registry_backend_count(const kiln_registry* registry) {
    return registry ? static_cast<int32_t>(registry->backends.size()) : 0;
}

kiln_status kiln_registry_backend_info(const kiln_registry* registry, int32_t index, kiln_backend_info* out_info) {
    if (!registry || !out_info) return kiln::fail(KILN_INVALID_ARGUMENT, "registry and out_info must not be NULL");
    if (index < 0 || index >= static_cast<int32_t>(registry->backends.size()))
        return kiln::fail(KILN_NOT_FOUND, "backend index %d: %zu backends are loaded", index,
                          registry->backends.size());
    const auto& b = registry->backends[static_cast<size_t>(index)];
    memset(out_info, 0, sizeof *out_info);
    kiln::copy_text(out_info->name, sizeof out_info->name, b.ops->name);
    kiln::copy_text(out_info->library_path, sizeof out_info->library_path, b.path);
    const char* version = b.ops->runtime_version ? b.ops->runtime_version(b.state) : nullptr;
    kiln::copy_text(out_info->runtime_version, sizeof out_info->runtime_version, version ? version : "");
    out_info->device_count = b.ops->device_count(b.state);
    out_info->plugin_api_version = b.ops->api_version;
    return KILN_OK;
}

int32_t kiln_registry_skip_count(const kiln_registry* registry) {
    return registry ? static_cast<int32_t>(registry->skips.size()) : 0;
}

kiln_status kiln_registry_skip_info(const kiln_registry* registry, int32_t index, kiln_plugin_skip* out_skip) {
    if (!registry || !out_skip) return kiln::fail(KILN_INVALID_ARGUMENT, "registry and out_skip must not be NULL");
    if (index < 0 || index >= static_cast<int32_t>(registry->skips.size()))
        return kiln::fail(KILN_NOT_FOUND, "skip index %d: %zu candidates were skipped", index, registry->skips.size());
    const auto& s = registry->skips[static_cast<size_t>(index)];
    memset(out_skip, 0, sizeof *out_skip);
    kiln::copy_text(out_skip->path, sizeof out_skip->path, s.path);
    kiln::copy_text(out_skip->reason, sizeof out_skip->reason, s.reason);
    out_skip->status = s.status;
    return KILN_OK;
}

kiln_status kiln_device_open(kiln_registry* registry, const char* backend_name, int32_t device_index,
                             kiln_device** out_device) {
    if (!registry || !backend_name || !out_device)
        return kiln::fail(KILN_INVALID_ARGUMENT, "registry, backend_name and out_device must not be NULL");
    *out_device = nullptr;
    for (const auto& b : registry->backends) {
        if (strcmp(b.ops->name, backend_name) != 0) continue;
        const int32_t count = b.ops->device_count(b.state);
        if (device_index < 0 || device_index >= count)
            return kiln::fail(KILN_NOT_FOUND, "device %d: backend '%s' has %d device%s (0..%d)", device_index,
                              backend_name, count, count == 1 ? "" : "s", count - 1);
        *out_device = new kiln_device{&b, device_index};
        return KILN_OK;
    }
    std::string loaded;
    for (const auto& b : registry->backends) loaded += (loaded.empty() ? "" : ", ") + std::string(b.ops->name);
    return kiln::fail(KILN_NOT_FOUND, "backend '%s' is not loaded (loaded: %s)", backend_name, loaded.c_str());
}

void kiln_device_destroy(kiln_device* device) { delete device; }

kiln_status kiln_device_get_info(const kiln_device* device, kiln_device_info* out_info) {
    if (!device || !out_info) return kiln::fail(KILN_INVALID_ARGUMENT, "device and out_info must not be NULL");
    memset(out_info, 0, sizeof *out_info);
    return device->backend->ops->device_info(device->backend->state, device->index, out_info);
}

}  // extern "C"

// ---- GPU memory for GPUDirect RDMA (rdma.cpp lends it to the RDMA plugin) ------------------------

bool kiln::gpu_can_export(const kiln_device* device) { return device && device->backend->ops->export_memory; }

std::string kiln::device_label(const kiln_device* device) {
    return device ? std::string(device->backend->ops->name) + " " + std::to_string(device->index) : "host";
}

kiln_status kiln::gpu_export_memory(const kiln_device* device, uint64_t bytes, kiln_gpu_memory* out_memory) {
    memset(out_memory, 0, sizeof *out_memory);
    out_memory->dmabuf_fd = -1;
    if (!gpu_can_export(device)) {
        snprintf(out_memory->via, sizeof out_memory->via, "the %s backend has no memory an HCA can reach", device ? device->backend->ops->name : "host");
        return kiln::fail(KILN_UNSUPPORTED, "%s", out_memory->via);
    }
    return device->backend->ops->export_memory(device->backend->state, device->index, bytes, out_memory);
}

void kiln::gpu_release_memory(const kiln_device* device, kiln_gpu_memory* memory) {
    if (gpu_can_export(device) && device->backend->ops->release_memory)
        device->backend->ops->release_memory(device->backend->state, device->index, memory);
}

extern "C" {

// ---- collectives: the device's backend does the work (gpu_coll.cu) ----------------------------

namespace {
kiln_status no_collectives(const kiln_device* device) {
    return kiln::fail(KILN_UNSUPPORTED, "the %s backend has no collectives (NCCL/RCCL run between GPUs)", device->backend->ops->name);
}
}  // namespace

kiln_status kiln_coll_library(const kiln_device* device, kiln_coll_library_info* out_info) {
    if (!device || !out_info) return kiln::fail(KILN_INVALID_ARGUMENT, "device and out_info must not be NULL");
    memset(out_info, 0, sizeof *out_info);
    if (!device->backend->ops->coll_library) return no_collectives(device);
    return device->backend->ops->coll_library(device->backend->state, out_info);
}

kiln_status kiln_coll_unique_id(const kiln_device* device, uint8_t* out_id, size_t id_bytes) {
    if (!device || !out_id) return kiln::fail(KILN_INVALID_ARGUMENT, "device and out_id must not be NULL");
    if (id_bytes != KILN_COLL_ID_BYTES)
        return kiln::fail(KILN_INVALID_ARGUMENT, "id_bytes: %zu, a unique id is %d bytes", id_bytes, KILN_COLL_ID_BYTES);
    if (!device->backend->ops->coll_unique_id) return no_collectives(device);
    return device->backend->ops->coll_unique_id(device->backend->state, out_id);
}

kiln_status kiln_coll_run(kiln_device* const* devices, int32_t device_count, const kiln_coll_params* params,
                          const kiln_sink* sink, const volatile int32_t* cancel) {
    if (!devices || !params || !sink) return kiln::fail(KILN_INVALID_ARGUMENT, "devices, params and sink must not be NULL");
    if (device_count < 1 || device_count > KILN_COLL_MAX_DEVICES)
        return kiln::fail(KILN_INVALID_ARGUMENT, "device_count: %d is outside 1..%d", device_count, KILN_COLL_MAX_DEVICES);
    std::vector<int32_t> indices;
    for (int32_t i = 0; i < device_count; ++i) {
        if (!devices[i]) return kiln::fail(KILN_INVALID_ARGUMENT, "devices[%d] is NULL", i);
        if (devices[i]->backend != devices[0]->backend)
            return kiln::fail(KILN_INVALID_ARGUMENT, "devices[%d] is on backend %s, devices[0] on %s: one backend per run", i,
                              devices[i]->backend->ops->name, devices[0]->backend->ops->name);
        for (int32_t seen : indices)
            if (seen == devices[i]->index) return kiln::fail(KILN_INVALID_ARGUMENT, "devices[%d]: device %d is given twice", i, seen);
        indices.push_back(devices[i]->index);
    }
    if (!devices[0]->backend->ops->coll_run) return no_collectives(devices[0]);
    static const volatile int32_t never = 0;
    return devices[0]->backend->ops->coll_run(devices[0]->backend->state, indices.data(), device_count, params, sink,
                                              cancel ? cancel : &never);
}

kiln_status kiln_test_params_init(int32_t test, kiln_test_params* out_params) {
    if (!out_params) return kiln::fail(KILN_INVALID_ARGUMENT, "out_params must not be NULL");
    if (test < 0 || test >= KILN_TEST_COUNT)
        return kiln::fail(KILN_INVALID_ARGUMENT, "test: %d is not a kiln_test_kind (0..%d)", test, KILN_TEST_COUNT - 1);
    memset(out_params, 0, sizeof *out_params);
    out_params->test = test;
    // launch: the launches timed (a count, under the test's time budget).
    out_params->iterations = test == KILN_TEST_STREAM ? 5 : test == KILN_TEST_LAUNCH ? 10000 : 1;
    out_params->op_mask = KILN_STREAM_ALL;
    out_params->pattern_mask = (1u << KILN_PATTERN_COUNT) - 1u;
    out_params->max_error_reports = 1000;
    out_params->seed = 0x4B494C4Eull;  // "KILN"
    return KILN_OK;
}

kiln_status kiln_test_validate(const kiln_device* device, const kiln_test_params* params) {
    if (!device || !params) return kiln::fail(KILN_INVALID_ARGUMENT, "device and params must not be NULL");
    if (kiln_status st = reject_network_test(params); st != KILN_OK) return st;
    const auto* b = device->backend;
    // The device's own limits first (they name the device: "above this device's limit of 1024
    // threads per block"), then the catalog's ranges and which knobs the test reads.
    if (b->ops->validate) {
        const kiln_status st = b->ops->validate(b->state, device->index, params);
        if (st != KILN_OK) return st;
    }
    return kiln::validate_knobs(b->ops->name, params);
}

kiln_status kiln_run(kiln_device* device, const kiln_test_params* params, const kiln_sink* sink,
                     const volatile int32_t* cancel) {
    if (!device || !params) return kiln::fail(KILN_INVALID_ARGUMENT, "device and params must not be NULL");
    const kiln_sink empty_sink = {nullptr, nullptr, nullptr, nullptr};
    static const volatile int32_t never_cancel = 0;
    const kiln_status st = kiln_test_validate(device, params);
    if (st != KILN_OK) return st;
    const auto* b = device->backend;
    if (params->inject_hang || params->inject_crash) run_until_injected_failure(*b->ops, b->state, device->index, params, sink ? sink : &empty_sink);
    return b->ops->run(b->state, device->index, params, sink ? sink : &empty_sink, cancel ? cancel : &never_cancel);
}

}  // extern "C"
