// rdma.cpp - the RDMA probe's side of libkiln: libkiln-rdma.so dlopen'ed from the plugin folder
// (it alone links libibverbs), its API version checked, every kiln_rdma_* call forwarded. A node
// without the plugin, rdma-core or an HCA gets KILN_UNSUPPORTED and the reason, never a crash.
#include "../core/kiln_internal.h"
#include "rdma_plugin.h"

#include <dlfcn.h>

#include <memory>

struct kiln_rdma {
    void* library = nullptr;
    const kiln_rdma_plugin_ops* ops = nullptr;
    void* state = nullptr;
    const kiln_device* gpu = nullptr;  // kiln_rdma_use_gpu: the buffers' device; NULL: host memory
    std::string gpu_name;
    ~kiln_rdma() {
        if (ops && state) ops->close(state);
        if (library) dlclose(library);
    }
};

namespace {
kiln_status checked(const kiln_rdma_params* p) {
    if (!p) return kiln::fail(KILN_INVALID_ARGUMENT, "params must not be NULL");
    const std::string why = kiln::rdma::check_params(*p);
    if (!why.empty()) return kiln::fail(KILN_INVALID_ARGUMENT, "%s", why.c_str());
    if (p->bidirectional != 0 && p->bidirectional != 1)
        return kiln::fail(KILN_INVALID_ARGUMENT, "bidirectional: %d is neither 0 nor 1", p->bidirectional);
    return KILN_OK;
}

// The GPU's memory as the RDMA plugin asks for it, or NULL for host memory.
struct gpu_memory_lender {
    kiln_rdma_memory table{};
    explicit gpu_memory_lender(const kiln_rdma* r) {
        table.ctx = const_cast<kiln_device*>(r->gpu);
        table.allocate = [](void* ctx, uint64_t bytes, kiln_gpu_memory* out) {
            return kiln::gpu_export_memory(static_cast<const kiln_device*>(ctx), bytes, out);
        };
        table.release = [](void* ctx, kiln_gpu_memory* m) { kiln::gpu_release_memory(static_cast<const kiln_device*>(ctx), m); };
        table.name = r->gpu_name.c_str();
    }
};
}  // namespace

extern "C" {

kiln_status kiln_rdma_params_init(kiln_rdma_params* out_params) {
    if (!out_params) return kiln::fail(KILN_INVALID_ARGUMENT, "out_params must not be NULL");
    memset(out_params, 0, sizeof *out_params);
    out_params->op_mask = KILN_RDMA_ALL;
    out_params->min_message_bytes = 2;
    out_params->max_message_bytes = 8u << 20;  // ib_write_bw -a's largest
    out_params->iterations = 1000;
    out_params->queue_depth = 128;
    out_params->latency_samples = 10000;
    out_params->timeout_ms = 5000;
    return KILN_OK;
}

kiln_status kiln_rdma_open(const char* plugin_dir, kiln_rdma** out_rdma) {
    if (!out_rdma) return kiln::fail(KILN_INVALID_ARGUMENT, "out_rdma must not be NULL");
    *out_rdma = nullptr;
    const std::string dir = plugin_dir && *plugin_dir ? plugin_dir : kiln::default_plugin_dir();
    const std::string path = dir + "/" + KILN_RDMA_PLUGIN_FILE;
    auto r = std::make_unique<kiln_rdma>();
    r->library = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (!r->library) {
        const char* why = dlerror();
        // Without rdma-core the plugin is there and libibverbs.so.1 is not: dlerror names it.
        return kiln::fail(KILN_UNSUPPORTED, "no RDMA probe: %s", why ? why : path.c_str());
    }
    auto entry = reinterpret_cast<kiln_rdma_entry_fn>(dlsym(r->library, KILN_RDMA_ENTRY_SYMBOL));
    r->ops = entry ? entry() : nullptr;
    if (!r->ops) return kiln::fail(KILN_UNSUPPORTED, "%s: no %s: not Kiln's RDMA plugin", path.c_str(), KILN_RDMA_ENTRY_SYMBOL);
    if (r->ops->api_version != kiln::rdma::k_plugin_api_version)
        return kiln::fail(KILN_UNSUPPORTED, "%s: RDMA plugin API version %u, this libkiln needs %u", path.c_str(), r->ops->api_version,
                          kiln::rdma::k_plugin_api_version);
    char reason[KILN_PATH_BYTES] = {0};
    const kiln_status st = r->ops->open(kiln::host_services(), &r->state, reason, sizeof reason);
    if (st != KILN_OK) {
        r->state = nullptr;
        return kiln::fail(st, "%s", reason[0] ? reason : kiln_status_name(st));
    }
    *out_rdma = r.release();
    return KILN_OK;
}

void kiln_rdma_destroy(kiln_rdma* rdma) { delete rdma; }

int32_t kiln_rdma_port_count(const kiln_rdma* rdma) { return rdma ? rdma->ops->port_count(rdma->state) : 0; }

kiln_status kiln_rdma_port_at(const kiln_rdma* rdma, int32_t index, kiln_rdma_port_info* out_info) {
    if (!rdma || !out_info) return kiln::fail(KILN_INVALID_ARGUMENT, "rdma and out_info must not be NULL");
    memset(out_info, 0, sizeof *out_info);
    return rdma->ops->port_info(rdma->state, index, out_info);
}

kiln_status kiln_rdma_serve(kiln_rdma* rdma, const char* address, int32_t port, const kiln_rdma_params* params,
                            const volatile int32_t* cancel) {
    if (!rdma) return kiln::fail(KILN_INVALID_ARGUMENT, "rdma must not be NULL");
    if (port < 0 || port > 65535) return kiln::fail(KILN_INVALID_ARGUMENT, "port: %d is outside 0..65535", port);
    if (kiln_status st = checked(params); st != KILN_OK) return st;
    const gpu_memory_lender lender(rdma);
    return rdma->ops->serve(rdma->state, address, port, params, rdma->gpu ? &lender.table : nullptr, cancel);
}

kiln_status kiln_rdma_probe(kiln_rdma* rdma, const char* host, int32_t port, const kiln_rdma_params* params, const kiln_sink* sink,
                            const volatile int32_t* cancel) {
    if (!rdma || !host || !*host) return kiln::fail(KILN_INVALID_ARGUMENT, "rdma and host must not be NULL or empty");
    if (port < 1 || port > 65535) return kiln::fail(KILN_INVALID_ARGUMENT, "port: %d is outside 1..65535", port);
    if (kiln_status st = checked(params); st != KILN_OK) return st;
    const kiln_sink empty = {nullptr, nullptr, nullptr, nullptr};
    const gpu_memory_lender lender(rdma);
    return rdma->ops->probe(rdma->state, host, port, params, rdma->gpu ? &lender.table : nullptr, sink ? sink : &empty, cancel);
}

kiln_status kiln_rdma_loopback(kiln_rdma* rdma, int32_t peer_port_index, const kiln_rdma_params* params, const kiln_sink* sink,
                               const volatile int32_t* cancel) {
    if (!rdma) return kiln::fail(KILN_INVALID_ARGUMENT, "rdma must not be NULL");
    if (kiln_status st = checked(params); st != KILN_OK) return st;
    const kiln_sink empty = {nullptr, nullptr, nullptr, nullptr};
    const gpu_memory_lender lender(rdma);
    return rdma->ops->loopback(rdma->state, peer_port_index, params, rdma->gpu ? &lender.table : nullptr, sink ? sink : &empty, cancel);
}

kiln_status kiln_rdma_use_gpu(kiln_rdma* rdma, const kiln_device* device) {
    if (!rdma) return kiln::fail(KILN_INVALID_ARGUMENT, "rdma must not be NULL");
    if (device && !kiln::gpu_can_export(device))
        return kiln::fail(KILN_UNSUPPORTED, "%s: its backend has no memory an HCA can reach (GPUDirect RDMA needs a GPU's)",
                          kiln::device_label(device).c_str());
    rdma->gpu = device;
    rdma->gpu_name = kiln::device_label(device);
    return KILN_OK;
}

}  // extern "C"
