// rdma_plugin.h - the table libkiln-rdma.so (linked to libibverbs) hands libkiln, and the logic both
// sides share without verbs: parameter checks, the message-size sweep, the queue-pair exchange
// record of the TCP side channel, link rates, the port error counters. Header-only: the unit tests run it on any node.
#pragma once

#include <kiln/kiln.h>
#include <kiln/kiln_plugin.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "net_socket.h"

extern "C" {
// Where an endpoint's buffer comes from when it is not host memory (kiln_rdma_use_gpu): libkiln
// lends the GPU backend's memory through it. allocate fills a kiln_gpu_memory; release frees it.
typedef struct kiln_rdma_memory {
    void* ctx;
    kiln_status (*allocate)(void* ctx, uint64_t bytes, kiln_gpu_memory* out_memory);
    void (*release)(void* ctx, kiln_gpu_memory* memory);
    const char* name;  // "cuda 0", for messages
} kiln_rdma_memory;

typedef struct kiln_rdma_plugin_ops {
    uint32_t api_version;  // KILN_RDMA_PLUGIN_API_VERSION
    // Opens every verbs device; KILN_UNSUPPORTED and the reason ("no RDMA devices") when there is none.
    kiln_status (*open)(const kiln_host_services* host, void** out_state, char* reason, size_t reason_bytes);
    void (*close)(void* state);
    int32_t (*port_count)(void* state);
    kiln_status (*port_info)(void* state, int32_t index, kiln_rdma_port_info* out_info);
    // memory: NULL for host memory, else where every endpoint's buffer comes from.
    kiln_status (*serve)(void* state, const char* address, int32_t port, const kiln_rdma_params* params, const kiln_rdma_memory* memory,
                         const volatile int32_t* cancel);
    kiln_status (*probe)(void* state, const char* host, int32_t port, const kiln_rdma_params* params, const kiln_rdma_memory* memory,
                         const kiln_sink* sink, const volatile int32_t* cancel);
    kiln_status (*loopback)(void* state, int32_t peer_port_index, const kiln_rdma_params* params, const kiln_rdma_memory* memory,
                            const kiln_sink* sink, const volatile int32_t* cancel);
} kiln_rdma_plugin_ops;
typedef const kiln_rdma_plugin_ops* (*kiln_rdma_entry_fn)(void);
}

#define KILN_RDMA_ENTRY_SYMBOL "kiln_rdma_plugin_entry"
#define KILN_RDMA_PLUGIN_FILE "libkiln-rdma.so"

namespace kiln::rdma {

constexpr uint32_t k_plugin_api_version = 2;
constexpr uint64_t k_max_message_bytes = 1ull << 30;

// The error text of a bad parameter ("" when every field is in range).
inline std::string check_params(const kiln_rdma_params& p) {
    auto pow2 = [](uint64_t v) { return v != 0 && (v & (v - 1)) == 0; };
    if ((p.op_mask & ~static_cast<uint32_t>(KILN_RDMA_ALL)) != 0) return "op_mask: bits outside kiln_rdma_op";
    if (!pow2(p.min_message_bytes) || !pow2(p.max_message_bytes)) return "min_message_bytes, max_message_bytes: must be powers of two";
    if (p.min_message_bytes > p.max_message_bytes) return "min_message_bytes: larger than max_message_bytes";
    if (p.max_message_bytes > k_max_message_bytes) return "max_message_bytes: more than 1 GiB";
    if (p.iterations < 1) return "iterations: must be at least 1";
    if (p.queue_depth < 1 || p.queue_depth > 1024) return "queue_depth: outside 1..1024";
    if (p.latency_samples < 1) return "latency_samples: must be at least 1";
    if (p.timeout_ms < 1 || p.timeout_ms > 600000) return "timeout_ms: outside 1..600000";
    if (p.gid_index < 0 || p.gid_index > 255) return "gid_index: outside 0..255";
    return "";
}

// min, 2 min, 4 min ... max.
inline std::vector<uint64_t> message_sizes(uint64_t min_bytes, uint64_t max_bytes) {
    std::vector<uint64_t> sizes;
    for (uint64_t s = min_bytes; s <= max_bytes && s != 0; s *= 2) sizes.push_back(s);
    return sizes;
}

// The metric stem of one operation: "write", "read", "send".
inline const char* op_key(uint32_t op) {
    return op == KILN_RDMA_WRITE ? "write" : op == KILN_RDMA_READ ? "read" : op == KILN_RDMA_SEND ? "send" : "unknown";
}

// What one end of a queue pair tells the other over the side channel.
struct qp_endpoint {
    uint32_t lid = 0, qpn = 0, psn = 0, mtu_bytes = 0;
    uint8_t gid[16] = {0};
    uint32_t rkey = 0;
    uint64_t addr = 0;

    kiln::net::payload encode() const {
        kiln::net::payload p;
        p.u32(lid).u32(qpn).u32(psn).u32(mtu_bytes).u32(rkey).u64(addr);
        for (int i = 0; i < 16; i += 4)
            p.u32((uint32_t{gid[i]} << 24) | (uint32_t{gid[i + 1]} << 16) | (uint32_t{gid[i + 2]} << 8) | gid[i + 3]);
        return p;
    }
    // False on a short record (garbage from the peer).
    bool decode(kiln::net::payload& p) {
        if (!p.get_u32(&lid) || !p.get_u32(&qpn) || !p.get_u32(&psn) || !p.get_u32(&mtu_bytes) || !p.get_u32(&rkey) || !p.get_u64(&addr))
            return false;
        for (int i = 0; i < 16; i += 4) {
            uint32_t w = 0;
            if (!p.get_u32(&w)) return false;
            gid[i] = static_cast<uint8_t>(w >> 24);
            gid[i + 1] = static_cast<uint8_t>(w >> 16);
            gid[i + 2] = static_cast<uint8_t>(w >> 8);
            gid[i + 3] = static_cast<uint8_t>(w);
        }
        return true;
    }
};

// Active width code x per-lane speed code (ibv_port_attr) -> Gb/s; 0 when a code is unknown.
inline double link_rate_gbits(uint8_t active_width, uint8_t active_speed) {
    int lanes = 0;
    switch (active_width) {
    case 1: lanes = 1; break;
    case 2: lanes = 4; break;
    case 4: lanes = 8; break;
    case 8: lanes = 12; break;
    case 16: lanes = 2; break;
    default: return 0;
    }
    double lane = 0;  // the per-lane data rate, as sysfs' rate and ibstat say it ("100 Gb/sec (4X EDR)")
    switch (active_speed) {
    case 1: lane = 2.5; break;    // SDR
    case 2: lane = 5.0; break;    // DDR
    case 4: lane = 10.0; break;   // QDR
    case 8: lane = 10.0; break;   // FDR10
    case 16: lane = 14.0; break;  // FDR
    case 32: lane = 25.0; break;  // EDR
    case 64: lane = 50.0; break;  // HDR
    case 128: lane = 100.0; break; // NDR
    default: return 0;
    }
    return lanes * lane;
}

// The port error counters read before and after a run: a run that raised symbol errors or took the
// link down fails even when its bandwidth was fine. Names as sysfs has them under
// /sys/class/infiniband/DEV/ports/PORT/counters/; the metric is NAME_delta.
constexpr const char* k_port_counters[] = {
    "symbol_error", "link_downed", "link_error_recovery", "port_rcv_errors", "port_xmit_discards",
    "local_link_integrity_errors", "excessive_buffer_overrun_errors", "port_rcv_remote_physical_errors",
};
constexpr size_t k_port_counter_count = sizeof k_port_counters / sizeof k_port_counters[0];

struct port_counters {
    int64_t value[k_port_counter_count];  // -1 where the port has no such counter
};

// Reads one port's counters under sysfs_root ("/" on a node; a fixture tree in tests).
inline port_counters read_port_counters(const std::string& sysfs_root, const std::string& device, int port) {
    port_counters c{};
    const std::string dir = sysfs_root + (sysfs_root.empty() || sysfs_root.back() != '/' ? "/" : "") + "sys/class/infiniband/" + device +
                            "/ports/" + std::to_string(port) + "/counters/";
    for (size_t i = 0; i < k_port_counter_count; ++i) {
        c.value[i] = -1;
        if (FILE* f = fopen((dir + k_port_counters[i]).c_str(), "r")) {
            long long v = 0;
            if (fscanf(f, "%lld", &v) == 1) c.value[i] = v;
            fclose(f);
        }
    }
    return c;
}

// Counter by counter, how much it grew during the run (after - before); skipped where either read failed.
template <typename Emit>
void emit_counter_deltas(const port_counters& before, const port_counters& after, Emit emit) {
    for (size_t i = 0; i < k_port_counter_count; ++i)
        if (before.value[i] >= 0 && after.value[i] >= 0)
            emit(std::string(k_port_counters[i]) + "_delta", static_cast<double>(after.value[i] - before.value[i]));
}

}  // namespace kiln::rdma
