// coll_rendezvous.cpp - how the processes of one multi-node collectives run meet: the process of
// index 0 listens, every other joins with its index and its device count, and once all have come
// each is told its first rank (ranks in process-index order) and the communicator's unique id. The
// wire is the TCP probe's framing (net_socket.h); every wait has the caller's deadline, so a process
// that never comes is named, never waited for forever. Also kiln_coll_params_init.
#include "net_socket.h"

#include "../core/kiln_internal.h"

#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

using kiln::net::msg;
using kiln::net::payload;
using kiln::net::socket_conn;

namespace {

constexpr uint64_t k_ms = 1000000ull;
// A connected process has this long to say who it is; a slow or silent one is dropped, not waited for.
constexpr uint64_t k_join_wait_ns = 5000 * k_ms;

kiln_status peer_fail(const std::string& why) { return kiln::fail(KILN_PEER_ERROR, "%s", why.c_str()); }

std::string ranges(const std::vector<int32_t>& items) {
    std::string s;
    for (size_t i = 0; i < items.size(); ++i) {
        size_t j = i;
        while (j + 1 < items.size() && items[j + 1] == items[j] + 1) ++j;
        s += (s.empty() ? "" : ", ") + std::to_string(items[i]) + (j > i ? "-" + std::to_string(items[j]) : "");
        i = j;
    }
    return s;
}

kiln_status check_common(int32_t processes, int32_t local_ranks, size_t id_bytes, const kiln_coll_rendezvous_result* out) {
    if (!out) return kiln::fail(KILN_INVALID_ARGUMENT, "out_result must not be NULL");
    if (processes < 1 || processes > 65536) return kiln::fail(KILN_INVALID_ARGUMENT, "processes: %d is outside 1..65536", processes);
    if (local_ranks < 1 || local_ranks > KILN_COLL_MAX_DEVICES)
        return kiln::fail(KILN_INVALID_ARGUMENT, "local_ranks: %d is outside 1..%d", local_ranks, KILN_COLL_MAX_DEVICES);
    if (id_bytes != KILN_COLL_ID_BYTES)
        return kiln::fail(KILN_INVALID_ARGUMENT, "id_bytes: %zu, a unique id is %d bytes", id_bytes, KILN_COLL_ID_BYTES);
    return KILN_OK;
}

}  // namespace

extern "C" {

kiln_status kiln_coll_params_init(kiln_coll_params* out_params) {
    if (!out_params) return kiln::fail(KILN_INVALID_ARGUMENT, "out_params must not be NULL");
    memset(out_params, 0, sizeof *out_params);
    out_params->op_mask = KILN_COLL_ALL;
    out_params->iterations = 20;         // nccl-tests' -n default
    out_params->warmup_iterations = 5;   // nccl-tests' -w default
    out_params->max_error_reports = 100;
    out_params->timeout_ms = 5 * 60 * 1000;
    return KILN_OK;
}

kiln_status kiln_coll_rendezvous_serve(const char* address, int32_t port, int32_t processes, int32_t local_ranks,
                                       const uint8_t* unique_id, size_t id_bytes, uint64_t timeout_ms,
                                       kiln_coll_rendezvous_result* out_result, const volatile int32_t* cancel) {
    if (kiln_status st = check_common(processes, local_ranks, id_bytes, out_result); st != KILN_OK) return st;
    if (!unique_id) return kiln::fail(KILN_INVALID_ARGUMENT, "unique_id must not be NULL");
    *out_result = {local_ranks, 0, 1, 0};
    if (processes == 1) return KILN_OK;
    int fd = -1, bound = 0;
    if (std::string why = kiln::net::listen_on(address ? address : "", port, 128, &fd, &bound); !why.empty())
        return kiln::fail(KILN_INVALID_ARGUMENT, "%s", why.c_str());
    socket_conn listener(fd);
    const std::string where = std::string(address && *address ? address : "127.0.0.1") + ":" + std::to_string(bound);
    const uint64_t deadline = kiln::net::now_ns() + (timeout_ms ? timeout_ms : 60000) * k_ms;
    std::vector<socket_conn> joined(static_cast<size_t>(processes));
    std::vector<int32_t> ranks(static_cast<size_t>(processes), 0);
    ranks[0] = local_ranks;
    int32_t count = 1;
    try {
        while (count < processes) {
            const int client = kiln::net::accept_until(fd, deadline, cancel);
            if (client < 0) break;
            socket_conn conn(client, kiln::net::peer_name(client));
            payload body;
            const uint64_t join_by = std::min(deadline, kiln::net::now_ns() + k_join_wait_ns);
            if (!conn.expect_msg(msg::coll_join, &body, join_by, cancel).empty()) continue;  // not one of ours: dropped
            uint32_t index = 0, n = 0;
            if (!body.get_u32(&index) || !body.get_u32(&n)) continue;
            std::string refuse;
            if (index < 1 || index >= static_cast<uint32_t>(processes))
                refuse = "process index " + std::to_string(index) + " is outside 1.." + std::to_string(processes - 1);
            else if (n < 1 || n > KILN_COLL_MAX_DEVICES)
                refuse = "process " + std::to_string(index) + ": " + std::to_string(n) + " ranks is outside 1.." +
                         std::to_string(KILN_COLL_MAX_DEVICES);
            else if (joined[index].valid())
                refuse = "process index " + std::to_string(index) + " has already joined (from " + joined[index].peer() + ")";
            if (!refuse.empty()) {
                conn.send_msg(msg::error, payload().text(refuse), join_by, cancel);
                continue;
            }
            ranks[index] = static_cast<int32_t>(n);
            joined[index] = std::move(conn);
            ++count;
        }
        if (cancel && *cancel) return kiln::fail(KILN_CANCELLED, "cancelled");
        if (count < processes) {
            std::vector<int32_t> missing;
            for (int32_t i = 1; i < processes; ++i)
                if (!joined[static_cast<size_t>(i)].valid()) missing.push_back(i);
            const std::string why = "collectives rendezvous on " + where + ": " + std::to_string(count) + " of " +
                                    std::to_string(processes) + " processes joined in " + std::to_string(timeout_ms / 1000) +
                                    " s; missing process" + (missing.size() == 1 ? " " : "es ") + ranges(missing);
            for (auto& c : joined)
                if (c.valid()) c.send_msg(msg::error, payload().text(why), kiln::net::now_ns() + 1000 * k_ms, cancel);
            return peer_fail(why);
        }
        int64_t total = 0;
        for (int32_t n : ranks) total += n;
        if (total > 1 << 20) return kiln::fail(KILN_INVALID_ARGUMENT, "%lld ranks in all is more than Kiln verifies", static_cast<long long>(total));
        int32_t first = local_ranks;
        for (int32_t i = 1; i < processes; ++i) {
            payload reply;
            reply.u32(static_cast<uint32_t>(total)).u32(static_cast<uint32_t>(first)).u32(static_cast<uint32_t>(processes));
            reply.raw(unique_id, KILN_COLL_ID_BYTES);
            if (std::string why = joined[static_cast<size_t>(i)].send_msg(msg::coll_id, reply, deadline, cancel); !why.empty())
                return peer_fail("collectives rendezvous: process " + std::to_string(i) + " (" + joined[static_cast<size_t>(i)].peer() +
                                 "): " + why);
            first += ranks[static_cast<size_t>(i)];
        }
        *out_result = {static_cast<int32_t>(total), 0, processes, 0};
        return KILN_OK;
    } catch (const std::exception& e) {
        return kiln::fail(KILN_INTERNAL, "collectives rendezvous: %s", e.what());
    }
}

kiln_status kiln_coll_rendezvous_join(const char* host, int32_t port, int32_t index, int32_t local_ranks, uint64_t timeout_ms,
                                      uint8_t* out_id, size_t id_bytes, kiln_coll_rendezvous_result* out_result,
                                      const volatile int32_t* cancel) {
    if (kiln_status st = check_common(index + 1, local_ranks, id_bytes, out_result); st != KILN_OK) return st;
    if (!host || !*host || !out_id) return kiln::fail(KILN_INVALID_ARGUMENT, "host and out_id must not be NULL");
    if (index < 1) return kiln::fail(KILN_INVALID_ARGUMENT, "index: %d; process 0 serves the rendezvous", index);
    if (port < 1 || port > 65535) return kiln::fail(KILN_INVALID_ARGUMENT, "port: %d is outside 1..65535", port);
    const std::string where = std::string(host) + ":" + std::to_string(port);
    const uint64_t deadline = kiln::net::now_ns() + (timeout_ms ? timeout_ms : 60000) * k_ms;
    try {
        // Process 0 may start after this one: a refused connection is tried again until the deadline.
        socket_conn conn;
        std::string why;
        for (;;) {
            if (cancel && *cancel) return kiln::fail(KILN_CANCELLED, "cancelled");
            why = socket_conn::connect_to(host, port, deadline, cancel, &conn);
            if (why.empty()) break;
            if (why.rfind("cannot resolve", 0) == 0 || kiln::net::now_ns() + 200 * k_ms >= deadline)
                return peer_fail("collectives rendezvous at " + where + ": " + why);
            usleep(200 * 1000);
        }
        payload hello;
        hello.u32(static_cast<uint32_t>(index)).u32(static_cast<uint32_t>(local_ranks));
        if (why = conn.send_msg(msg::coll_join, hello, deadline, cancel); !why.empty())
            return peer_fail("collectives rendezvous at " + where + ": " + why);
        payload body;
        if (why = conn.expect_msg(msg::coll_id, &body, deadline, cancel); !why.empty()) {
            if (cancel && *cancel) return kiln::fail(KILN_CANCELLED, "cancelled");
            return peer_fail("collectives rendezvous at " + where + ": " + why);
        }
        uint32_t total = 0, first = 0, processes = 0;
        if (!body.get_u32(&total) || !body.get_u32(&first) || !body.get_u32(&processes) || !body.get_raw(out_id, KILN_COLL_ID_BYTES))
            return peer_fail("collectives rendezvous at " + where + ": a short coll_id message");
        *out_result = {static_cast<int32_t>(total), static_cast<int32_t>(first), static_cast<int32_t>(processes), 0};
        return KILN_OK;
    } catch (const std::exception& e) {
        return kiln::fail(KILN_INTERNAL, "collectives rendezvous: %s", e.what());
    }
}

}  // extern "C"
