// hip_loader.cpp - libkiln-hip.so: a small front for the HIP kernels (kiln-hip-kernels.so beside
// it, which links libamdhip64). There is no static HIP runtime, so on a node without ROCm the
// kernels library cannot load; loading it from here turns that into a clean skip with the reason
// ("no ROCm (...)") instead of a dlopen failure of the plugin itself. Everything else forwards.
// The kernels library is never unloaded: the HIP runtime does not expect to be.
#include <kiln/kiln_plugin.h>

#include "../common/kiln_host_util.h"

#include <dlfcn.h>

#include <cstdio>
#include <new>
#include <string>

namespace {

const char* const k_kernels_library = "kiln-hip-kernels.so";

struct loader_state {
    const kiln_backend_ops* ops;
    void* state;
};

std::string own_folder() { return kiln::folder_of_library(reinterpret_cast<const void*>(&own_folder)); }

kiln_status init(const kiln_host_services* host, void** out_state, char* reason, size_t reason_bytes) {
    const std::string path = own_folder() + "/" + k_kernels_library;
    void* library = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (!library) {
        const char* why = dlerror();
        snprintf(reason, reason_bytes, "no ROCm (%s)", why ? why : "cannot load the HIP kernels");
        return KILN_UNSUPPORTED;
    }
    auto entry = reinterpret_cast<kiln_plugin_entry_fn>(dlsym(library, KILN_PLUGIN_ENTRY_SYMBOL));
    const kiln_backend_ops* ops = entry ? entry() : nullptr;
    if (!ops || ops->api_version != KILN_PLUGIN_API_VERSION) {
        snprintf(reason, reason_bytes, "%s is not a Kiln HIP backend of plugin API %d", path.c_str(), KILN_PLUGIN_API_VERSION);
        return KILN_UNSUPPORTED;
    }
    void* inner = nullptr;
    const kiln_status st = ops->init(host, &inner, reason, reason_bytes);
    if (st != KILN_OK) return st;
    auto* state = new (std::nothrow) loader_state{ops, inner};
    if (!state) {
        ops->shutdown(inner);
        snprintf(reason, reason_bytes, "out of memory");
        return KILN_OUT_OF_MEMORY;
    }
    *out_state = state;
    return KILN_OK;
}

void shutdown(void* state) {
    auto* s = static_cast<loader_state*>(state);
    if (!s) return;
    s->ops->shutdown(s->state);
    delete s;
}

loader_state* of(void* state) { return static_cast<loader_state*>(state); }

int32_t device_count(void* state) { return of(state)->ops->device_count(of(state)->state); }

const char* runtime_version(void* state) { return of(state)->ops->runtime_version(of(state)->state); }

kiln_status device_info(void* state, int32_t index, kiln_device_info* out) {
    return of(state)->ops->device_info(of(state)->state, index, out);
}

kiln_status validate(void* state, int32_t index, const kiln_test_params* p) {
    return of(state)->ops->validate(of(state)->state, index, p);
}

kiln_status run(void* state, int32_t index, const kiln_test_params* p, const kiln_sink* sink, const volatile int32_t* cancel) {
    return of(state)->ops->run(of(state)->state, index, p, sink, cancel);
}

kiln_status coll_library(void* state, kiln_coll_library_info* out) { return of(state)->ops->coll_library(of(state)->state, out); }

kiln_status coll_unique_id(void* state, uint8_t* out_id) { return of(state)->ops->coll_unique_id(of(state)->state, out_id); }

kiln_status coll_run(void* state, const int32_t* indices, int32_t count, const kiln_coll_params* p, const kiln_sink* sink,
                     const volatile int32_t* cancel) {
    return of(state)->ops->coll_run(of(state)->state, indices, count, p, sink, cancel);
}

kiln_status export_memory(void* state, int32_t index, uint64_t bytes, kiln_gpu_memory* out) {
    return of(state)->ops->export_memory(of(state)->state, index, bytes, out);
}

void release_memory(void* state, int32_t index, kiln_gpu_memory* memory) { of(state)->ops->release_memory(of(state)->state, index, memory); }

const kiln_backend_ops k_ops = {KILN_PLUGIN_API_VERSION, "hip", init, shutdown, device_count, runtime_version, device_info, validate, run,
                                coll_library, coll_unique_id, coll_run, export_memory, release_memory};

}  // namespace

extern "C" __attribute__((visibility("default"))) const kiln_backend_ops* kiln_plugin_entry(void) { return &k_ops; }
