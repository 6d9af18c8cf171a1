// rdma_verbs.cpp - libkiln-rdma.so: the verbs devices and their ports, and RC queue-pair bandwidth
// (write, read, send over a sweep of message sizes) and latency (post to completion, one in flight),
// host to host with the queue pairs exchanged over a TCP side channel, or between two local ports.
// Linked to libibverbs, so libkiln itself never needs rdma-core. Never exits or prints.
#include "rdma_plugin.h"

#include "../common/kiln_host_util.h"

#include <infiniband/verbs.h>

#include <arpa/inet.h>
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdarg>
#include <endian.h>
#include <functional>
#include <fstream>
#include <memory>
#include <random>
#include <thread>

using kiln::net::msg;
using kiln::net::now_ns;
using kiln::net::payload;
using kiln::net::socket_conn;
using kiln::rdma::qp_endpoint;

namespace {

const kiln_host_services* g_host = nullptr;

kiln_status fail(kiln_status status, const char* format, ...) __attribute__((format(printf, 2, 3)));
kiln_status fail(kiln_status status, const char* format, ...) {
    va_list args;
    va_start(args, format);
    kiln::fail_through(g_host, status, format, args);
    va_end(args);
    return status;
}

struct port_entry {
    ibv_context* ctx;
    kiln_rdma_port_info info;
};

struct state {
    ibv_device** list = nullptr;
    std::vector<ibv_context*> contexts;
    std::vector<port_entry> ports;
    ~state() {
        for (auto* c : contexts) ibv_close_device(c);
        if (list) ibv_free_device_list(list);
    }
};

std::string guid_text(uint64_t be_guid) {
    const uint64_t g = be64toh(be_guid);
    char buf[32];
    snprintf(buf, sizeof buf, "%04x:%04x:%04x:%04x", static_cast<unsigned>(g >> 48) & 0xffff, static_cast<unsigned>(g >> 32) & 0xffff,
             static_cast<unsigned>(g >> 16) & 0xffff, static_cast<unsigned>(g) & 0xffff);
    return buf;
}

std::string gid_text(const ibv_gid& gid) {
    std::string s;
    char buf[8];
    for (int i = 0; i < 16; i += 2) {
        snprintf(buf, sizeof buf, "%s%02x%02x", i ? ":" : "", gid.raw[i], gid.raw[i + 1]);
        s += buf;
    }
    return s;
}

int numa_node_of(ibv_device* dev) {
    std::ifstream f(std::string(dev->ibdev_path) + "/device/numa_node");
    int n = -1;
    return (f >> n) ? n : -1;
}

kiln_status open_plugin(const kiln_host_services* host, void** out_state, char* reason, size_t reason_bytes) {
    g_host = host;
    auto s = std::make_unique<state>();
    int count = 0;
    s->list = ibv_get_device_list(&count);
    if (!s->list || count == 0) {
        kiln::copy_text(reason, reason_bytes,
                        s->list ? "no RDMA devices" : std::string("no RDMA devices (ibv_get_device_list: ") + strerror(errno) + ")");
        return KILN_UNSUPPORTED;
    }
    for (int d = 0; d < count; ++d) {
        ibv_context* ctx = ibv_open_device(s->list[d]);
        if (!ctx) continue;
        s->contexts.push_back(ctx);
        ibv_device_attr attr{};
        if (ibv_query_device(ctx, &attr) != 0) continue;
        for (uint8_t p = 1; p <= attr.phys_port_cnt; ++p) {
            ibv_port_attr pa{};
            if (ibv_query_port(ctx, p, &pa) != 0) continue;
            port_entry e{ctx, {}};
            kiln::copy_text(e.info.device, sizeof e.info.device, ibv_get_device_name(s->list[d]));
            kiln::copy_text(e.info.firmware, sizeof e.info.firmware, attr.fw_ver);
            kiln::copy_text(e.info.node_guid, sizeof e.info.node_guid, guid_text(ibv_get_device_guid(s->list[d])));
            ibv_gid gid{};
            if (ibv_query_gid(ctx, p, 0, &gid) == 0) kiln::copy_text(e.info.gid, sizeof e.info.gid, gid_text(gid));
            kiln::copy_text(e.info.link_layer, sizeof e.info.link_layer, pa.link_layer == IBV_LINK_LAYER_ETHERNET ? "Ethernet" : "InfiniBand");
            kiln::copy_text(e.info.state, sizeof e.info.state, ibv_port_state_str(pa.state));
            e.info.port = p;
            e.info.numa_node = numa_node_of(s->list[d]);
            e.info.lid = pa.lid;
            e.info.active_mtu_bytes = 128 << pa.active_mtu;  // IBV_MTU_256 = 1 ... IBV_MTU_4096 = 5
            e.info.rate_gbits = kiln::rdma::link_rate_gbits(pa.active_width, pa.active_speed);
            s->ports.push_back(e);
        }
    }
    if (s->ports.empty()) {
        kiln::copy_text(reason, reason_bytes, "no RDMA devices could be opened (" + std::to_string(count) + " listed)");
        return KILN_UNSUPPORTED;
    }
    *out_state = s.release();
    return KILN_OK;
}

void close_plugin(void* st) { delete static_cast<state*>(st); }
int32_t port_count(void* st) { return static_cast<int32_t>(static_cast<state*>(st)->ports.size()); }

kiln_status port_info(void* st, int32_t index, kiln_rdma_port_info* out) {
    auto* s = static_cast<state*>(st);
    if (index < 0 || index >= static_cast<int32_t>(s->ports.size()))
        return fail(KILN_NOT_FOUND, "port index %d: %zu RDMA ports", index, s->ports.size());
    *out = s->ports[static_cast<size_t>(index)].info;
    return KILN_OK;
}

// One end of an RC queue pair with a registered buffer of the sweep's largest message.
class endpoint {
public:
    endpoint(const port_entry& port, const kiln_rdma_params& p, const kiln_rdma_memory* memory = nullptr)
        : port_(port), p_(p), memory_(memory) {}
    ~endpoint() {
        if (qp_) ibv_destroy_qp(qp_);
        if (cq_) ibv_destroy_cq(cq_);
        if (mr_) ibv_dereg_mr(mr_);
        if (pd_) ibv_dealloc_pd(pd_);
        if (gpu_.pointer) memory_->release(memory_->ctx, &gpu_);
    }
    endpoint(const endpoint&) = delete;
    endpoint& operator=(const endpoint&) = delete;

    std::string create() {
        if (!(pd_ = ibv_alloc_pd(port_.ctx))) return std::string("ibv_alloc_pd: ") + strerror(errno);
        const int access = IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE | IBV_ACCESS_REMOTE_READ;
        if (memory_) {
            // GPUDirect RDMA: the GPU's memory, through its dma-buf, else as peer memory (nvidia-peermem).
            if (memory_->allocate(memory_->ctx, p_.max_message_bytes, &gpu_) != KILN_OK || !gpu_.pointer)
                return std::string("GPU memory of ") + memory_->name + ": " + gpu_.via;
            base_ = static_cast<uint8_t*>(gpu_.pointer);
            std::string dmabuf_why;
            if (gpu_.dmabuf_fd >= 0) {
                mr_ = ibv_reg_dmabuf_mr(pd_, 0, gpu_.bytes, reinterpret_cast<uintptr_t>(gpu_.pointer), gpu_.dmabuf_fd, access);
                if (!mr_) dmabuf_why = std::string("ibv_reg_dmabuf_mr: ") + strerror(errno) + "; ";
            }
            if (!mr_) mr_ = ibv_reg_mr(pd_, gpu_.pointer, gpu_.bytes, access);
            if (!mr_)
                return std::string("GPU memory of ") + memory_->name + " cannot be registered: " + dmabuf_why + gpu_.via +
                       "; ibv_reg_mr of the device address: " + strerror(errno) + " (is nvidia-peermem or amdgpu's peer memory loaded?)";
        } else {
            buf_.assign(p_.max_message_bytes, 0x5a);
            base_ = buf_.data();
            mr_ = ibv_reg_mr(pd_, buf_.data(), buf_.size(), access);
            if (!mr_) return std::string("ibv_reg_mr: ") + strerror(errno);
        }
        const int depth = p_.queue_depth * 2;
        if (!(cq_ = ibv_create_cq(port_.ctx, depth, nullptr, nullptr, 0))) return std::string("ibv_create_cq: ") + strerror(errno);
        ibv_qp_init_attr a{};
        a.send_cq = a.recv_cq = cq_;
        a.qp_type = IBV_QPT_RC;
        a.cap.max_send_wr = a.cap.max_recv_wr = static_cast<uint32_t>(p_.queue_depth);
        a.cap.max_send_sge = a.cap.max_recv_sge = 1;
        if (!(qp_ = ibv_create_qp(pd_, &a))) return std::string("ibv_create_qp: ") + strerror(errno);
        ibv_qp_attr init{};
        init.qp_state = IBV_QPS_INIT;
        init.port_num = static_cast<uint8_t>(port_.info.port);
        init.qp_access_flags = IBV_ACCESS_REMOTE_WRITE | IBV_ACCESS_REMOTE_READ | IBV_ACCESS_LOCAL_WRITE;
        if (ibv_modify_qp(qp_, &init, IBV_QP_STATE | IBV_QP_PKEY_INDEX | IBV_QP_PORT | IBV_QP_ACCESS_FLAGS) != 0)
            return std::string("ibv_modify_qp INIT: ") + strerror(errno);
        me_.lid = static_cast<uint32_t>(port_.info.lid);
        me_.qpn = qp_->qp_num;
        me_.psn = std::random_device{}() & 0xffffff;
        me_.mtu_bytes = static_cast<uint32_t>(port_.info.active_mtu_bytes);
        me_.rkey = mr_->rkey;
        me_.addr = reinterpret_cast<uintptr_t>(base_);
        ibv_gid gid{};
        if (ibv_query_gid(port_.ctx, static_cast<uint8_t>(port_.info.port), p_.gid_index, &gid) == 0) memcpy(me_.gid, gid.raw, 16);
        return "";
    }

    // INIT -> RTR -> RTS against the peer's record.
    std::string connect(const qp_endpoint& peer) {
        peer_ = peer;
        ibv_qp_attr rtr{};
        rtr.qp_state = IBV_QPS_RTR;
        const uint32_t mtu = std::min(peer.mtu_bytes, me_.mtu_bytes);
        rtr.path_mtu = mtu >= 4096 ? IBV_MTU_4096 : mtu >= 2048 ? IBV_MTU_2048 : mtu >= 1024 ? IBV_MTU_1024 : mtu >= 512 ? IBV_MTU_512 : IBV_MTU_256;
        rtr.dest_qp_num = peer.qpn;
        rtr.rq_psn = peer.psn;
        rtr.max_dest_rd_atomic = 16;
        rtr.min_rnr_timer = 12;
        rtr.ah_attr.port_num = static_cast<uint8_t>(port_.info.port);
        rtr.ah_attr.dlid = static_cast<uint16_t>(peer.lid);
        if (std::string(port_.info.link_layer) == "Ethernet" || peer.lid == 0) {
            rtr.ah_attr.is_global = 1;
            memcpy(rtr.ah_attr.grh.dgid.raw, peer.gid, 16);
            rtr.ah_attr.grh.sgid_index = static_cast<uint8_t>(p_.gid_index);
            rtr.ah_attr.grh.hop_limit = 64;
        }
        if (ibv_modify_qp(qp_, &rtr, IBV_QP_STATE | IBV_QP_AV | IBV_QP_PATH_MTU | IBV_QP_DEST_QPN | IBV_QP_RQ_PSN |
                                         IBV_QP_MAX_DEST_RD_ATOMIC | IBV_QP_MIN_RNR_TIMER) != 0)
            return std::string("ibv_modify_qp RTR: ") + strerror(errno);
        ibv_qp_attr rts{};
        rts.qp_state = IBV_QPS_RTS;
        rts.timeout = 14;
        rts.retry_cnt = 7;
        rts.rnr_retry = 7;
        rts.sq_psn = me_.psn;
        rts.max_rd_atomic = 16;
        if (ibv_modify_qp(qp_, &rts, IBV_QP_STATE | IBV_QP_TIMEOUT | IBV_QP_RETRY_CNT | IBV_QP_RNR_RETRY | IBV_QP_SQ_PSN |
                                         IBV_QP_MAX_QP_RD_ATOMIC) != 0)
            return std::string("ibv_modify_qp RTS: ") + strerror(errno);
        return "";
    }

    const qp_endpoint& me() const { return me_; }

    // Posts count work requests of op and size, queue_depth in flight, and waits for all of them.
    // Returns "" and the elapsed ns, or why it stopped (a failed completion, the timeout, cancel).
    std::string transfer(uint32_t op, uint64_t size, int64_t count, int32_t depth, const volatile int32_t* cancel, uint64_t* elapsed_ns) {
        ibv_sge sge{reinterpret_cast<uintptr_t>(base_), static_cast<uint32_t>(size), mr_->lkey};
        ibv_send_wr wr{};
        wr.sg_list = &sge;
        wr.num_sge = 1;
        wr.send_flags = IBV_SEND_SIGNALED;
        wr.opcode = op == KILN_RDMA_WRITE ? IBV_WR_RDMA_WRITE : op == KILN_RDMA_READ ? IBV_WR_RDMA_READ : IBV_WR_SEND;
        wr.wr.rdma.remote_addr = peer_.addr;
        wr.wr.rdma.rkey = peer_.rkey;
        int64_t posted = 0, done = 0;
        const uint64_t start = now_ns();
        uint64_t progress = start;
        ibv_wc wc[32];
        while (done < count) {
            while (posted < count && posted - done < depth) {
                ibv_send_wr* bad = nullptr;
                if (ibv_post_send(qp_, &wr, &bad) != 0) return std::string("ibv_post_send: ") + strerror(errno);
                ++posted;
            }
            const int n = ibv_poll_cq(cq_, 32, wc);
            if (n < 0) return "ibv_poll_cq failed";
            for (int i = 0; i < n; ++i)
                if (wc[i].status != IBV_WC_SUCCESS) return std::string("completion: ") + ibv_wc_status_str(wc[i].status);
            done += n;
            const uint64_t now = now_ns();
            if (n > 0) progress = now;
            else if (now - progress > p_.timeout_ms * 1000000ull) return "timed out waiting for completions";
            if (cancel && *cancel) return "cancelled";
        }
        *elapsed_ns = now_ns() - start;
        return "";
    }

    // Keeps count receives of size posted and consumed (the passive end of send).
    std::string receive(uint64_t size, int64_t count, const volatile int32_t* cancel) {
        ibv_sge sge{reinterpret_cast<uintptr_t>(base_), static_cast<uint32_t>(size), mr_->lkey};
        ibv_recv_wr wr{};
        wr.sg_list = &sge;
        wr.num_sge = 1;
        int64_t posted = 0, done = 0;
        uint64_t progress = now_ns();
        ibv_wc wc[32];
        while (done < count) {
            while (posted < count && posted - done < p_.queue_depth) {
                ibv_recv_wr* bad = nullptr;
                if (ibv_post_recv(qp_, &wr, &bad) != 0) return std::string("ibv_post_recv: ") + strerror(errno);
                ++posted;
            }
            const int n = ibv_poll_cq(cq_, 32, wc);
            if (n < 0) return "ibv_poll_cq failed";
            for (int i = 0; i < n; ++i)
                if (wc[i].status != IBV_WC_SUCCESS) return std::string("receive completion: ") + ibv_wc_status_str(wc[i].status);
            done += n;
            if (n > 0) progress = now_ns();
            else if (now_ns() - progress > p_.timeout_ms * 1000000ull) return "timed out waiting for sends";
            if (cancel && *cancel) return "cancelled";
        }
        return "";
    }

private:
    const port_entry& port_;
    kiln_rdma_params p_;
    const kiln_rdma_memory* memory_ = nullptr;
    kiln_gpu_memory gpu_{};
    std::vector<uint8_t> buf_;  // host memory, when there is no GPU's
    uint8_t* base_ = nullptr;   // the registered buffer: buf_'s, or the GPU's
    ibv_pd* pd_ = nullptr;
    ibv_mr* mr_ = nullptr;
    ibv_cq* cq_ = nullptr;
    ibv_qp* qp_ = nullptr;
    qp_endpoint me_, peer_;
};

// The passive side of send for one step: run by the server (over the side channel) or a local thread.
using receive_step = std::function<std::string(uint64_t size, int64_t count)>;

// The other end's half of a both-ways step (bidirectional): start() has the peer post the same op,
// size and count at once (after it answered, so both start together); finish() waits for it and says
// the peer's elapsed ns.
struct both_ways_step {
    std::function<std::string(uint32_t op, uint64_t size, int64_t count)> start;
    std::function<std::string(uint64_t* peer_ns)> finish;
};

// Every operation and size from the active end: bandwidth over the sweep, then latency.
std::string drive(endpoint& a, const kiln_rdma_params& p, const receive_step& passive_receive, const both_ways_step& both,
                  kiln::sink_writer& out, const volatile int32_t* cancel) {
    const uint32_t mask = p.op_mask ? p.op_mask : static_cast<uint32_t>(KILN_RDMA_ALL);
    const auto sizes = kiln::rdma::message_sizes(p.min_message_bytes, p.max_message_bytes);
    for (uint32_t op : {static_cast<uint32_t>(KILN_RDMA_WRITE), static_cast<uint32_t>(KILN_RDMA_READ), static_cast<uint32_t>(KILN_RDMA_SEND)}) {
        if (!(mask & op)) continue;
        const std::string key = kiln::rdma::op_key(op);
        double best = 0;
        for (uint64_t size : sizes) {
            std::thread receiver;
            std::string receiver_error;
            if (op == KILN_RDMA_SEND) receiver = std::thread([&] { receiver_error = passive_receive(size, p.iterations); });
            uint64_t ns = 0;
            std::string why = a.transfer(op, size, p.iterations, p.queue_depth, cancel, &ns);
            if (receiver.joinable()) receiver.join();
            if (why.empty()) why = receiver_error;
            if (!why.empty()) return key + " " + std::to_string(size) + " B: " + why;
            best = std::max(best, kiln::net::gbits(size * static_cast<uint64_t>(p.iterations), ns));
        }
        out.metric(key + "_gbits", best, "Gb/s");
        // Both ways at once (write and read): the bytes of both directions over the longer end's time.
        if (p.bidirectional && op != KILN_RDMA_SEND) {
            double best_both = 0;
            for (uint64_t size : sizes) {
                std::string why = both.start(op, size, p.iterations);
                uint64_t ns = 0, peer_ns = 0;
                if (why.empty()) why = a.transfer(op, size, p.iterations, p.queue_depth, cancel, &ns);
                const std::string peer_why = both.finish(&peer_ns);
                if (why.empty()) why = peer_why;
                if (!why.empty()) return key + " both ways " + std::to_string(size) + " B: " + why;
                best_both = std::max(best_both, kiln::net::gbits(2 * size * static_cast<uint64_t>(p.iterations), std::max(ns, peer_ns)));
            }
            out.metric(key + "_bidir_gbits", best_both, "Gb/s");
        }
        std::vector<double> lat_us;
        for (int i = 0; i < p.latency_samples; ++i) {
            std::thread receiver;
            std::string receiver_error;
            if (op == KILN_RDMA_SEND) receiver = std::thread([&] { receiver_error = passive_receive(p.min_message_bytes, 1); });
            uint64_t ns = 0;
            std::string why = a.transfer(op, p.min_message_bytes, 1, 1, cancel, &ns);
            if (receiver.joinable()) receiver.join();
            if (why.empty()) why = receiver_error;
            if (!why.empty()) return key + " latency: " + why;
            lat_us.push_back(static_cast<double>(ns) / 1000.0);
        }
        std::sort(lat_us.begin(), lat_us.end());
        out.metric(key + "_lat_us_min", lat_us.front(), "us");
        out.metric(key + "_lat_us_median", kiln::net::percentile(lat_us, 0.5), "us");
        out.metric(key + "_lat_us_p99", kiln::net::percentile(lat_us, 0.99), "us");
        out.metric(key + "_lat_us_p999", kiln::net::percentile(lat_us, 0.999), "us");
    }
    return "";
}

const port_entry* port_of(state* s, int32_t index) {
    return index >= 0 && index < static_cast<int32_t>(s->ports.size()) ? &s->ports[static_cast<size_t>(index)] : nullptr;
}

kiln_status loopback(void* st, int32_t peer_index, const kiln_rdma_params* p, const kiln_rdma_memory* memory, const kiln_sink* sink,
                     const volatile int32_t* cancel) {
    auto* s = static_cast<state*>(st);
    const port_entry* pa = port_of(s, p->port_index);
    const port_entry* pb = port_of(s, peer_index);
    if (!pa || !pb) return fail(KILN_NOT_FOUND, "port index %d or %d: %zu RDMA ports", p->port_index, peer_index, s->ports.size());
    endpoint a(*pa, *p, memory), b(*pb, *p, memory);
    std::string why = a.create();
    if (why.empty()) why = b.create();
    if (why.empty()) why = a.connect(b.me());
    if (why.empty()) why = b.connect(a.me());
    if (!why.empty()) return fail(KILN_BACKEND_ERROR, "rdma loopback %s/%d -> %s/%d: %s", pa->info.device, pa->info.port, pb->info.device,
                                  pb->info.port, why.c_str());
    kiln::sink_writer out(sink, "rdma", 0, false);
    const auto before_a = kiln::rdma::read_port_counters("/", pa->info.device, pa->info.port);
    const auto before_b = kiln::rdma::read_port_counters("/", pb->info.device, pb->info.port);
    std::thread peer;
    std::string peer_why;
    uint64_t peer_elapsed = 0;
    const both_ways_step both_ways{
        [&](uint32_t op, uint64_t size, int64_t count) {
            peer = std::thread([&, op, size, count] { peer_why = b.transfer(op, size, count, p->queue_depth, cancel, &peer_elapsed); });
            return std::string();
        },
        [&](uint64_t* ns) {
            if (peer.joinable()) peer.join();
            *ns = peer_elapsed;
            return peer_why;
        }};
    why = drive(a, *p, [&](uint64_t size, int64_t count) { return b.receive(size, count, cancel); }, both_ways, out, cancel);
    if (peer.joinable()) peer.join();
    // Both ends' ports: the worse of the two grows the delta.
    auto after_a = kiln::rdma::read_port_counters("/", pa->info.device, pa->info.port);
    const auto after_b = kiln::rdma::read_port_counters("/", pb->info.device, pb->info.port);
    auto both = before_a;
    for (size_t i = 0; i < kiln::rdma::k_port_counter_count; ++i) {
        const bool known = before_a.value[i] >= 0 && after_a.value[i] >= 0 && before_b.value[i] >= 0 && after_b.value[i] >= 0;
        both.value[i] = known ? 0 : -1;
        after_a.value[i] = known ? (after_a.value[i] - before_a.value[i]) + (after_b.value[i] - before_b.value[i]) : -1;
    }
    kiln::rdma::emit_counter_deltas(both, after_a, [&](const std::string& name, double v) { out.metric(name, v, "count"); });
    if (cancel && *cancel) return fail(KILN_CANCELLED, "cancelled");
    return why.empty() ? KILN_OK : fail(KILN_BACKEND_ERROR, "rdma loopback: %s", why.c_str());
}

// The side channel: the server's record, then one "phase" per passive receive (send op), "bye" at the end.
kiln_status serve(void* st, const char* address, int32_t port, const kiln_rdma_params* p, const kiln_rdma_memory* memory,
                  const volatile int32_t* cancel) {
    auto* s = static_cast<state*>(st);
    const port_entry* pe = port_of(s, p->port_index);
    if (!pe) return fail(KILN_NOT_FOUND, "port index %d: %zu RDMA ports", p->port_index, s->ports.size());
    // A plain listening socket: one client, one test.
    int fd = -1, bound_port = 0;
    if (std::string why = kiln::net::listen_on(address ? address : "", port, 1, &fd, &bound_port); !why.empty())
        return fail(KILN_INVALID_ARGUMENT, "%s", why.c_str());
    socket_conn listener(fd);
    const int client = kiln::net::accept_until(fd, UINT64_MAX, cancel);
    if (client < 0) return fail(KILN_CANCELLED, "cancelled");
    socket_conn side(client, kiln::net::peer_name(client));
    const uint64_t t = p->timeout_ms * 1000000ull;
    endpoint e(*pe, *p, memory);
    std::string why = e.create();
    payload hello;
    if (why.empty()) why = side.expect_msg(msg::hello, &hello, now_ns() + t, cancel);
    qp_endpoint peer;
    if (why.empty() && !peer.decode(hello)) why = "protocol error: the client's queue-pair record is short";
    if (why.empty()) why = side.send_msg(msg::welcome, e.me().encode(), now_ns() + t, cancel);
    if (why.empty()) why = e.connect(peer);
    while (why.empty()) {
        msg type{};
        payload body;
        if (!(why = side.recv_msg(&type, &body, now_ns() + 10 * t, cancel)).empty()) break;
        if (type == msg::bye) return KILN_OK;
        uint64_t size = 0, count = 0;
        if (type != msg::phase || !body.get_u64(&size) || !body.get_u64(&count) || size > p->max_message_bytes) {
            why = "protocol error: expected a receive step";
            break;
        }
        // A third field: a both-ways step, this end posting the same op at once; else the passive end of send.
        uint32_t op = 0;
        const bool active = body.get_u32(&op);
        if (active && op != KILN_RDMA_WRITE && op != KILN_RDMA_READ) {
            why = "protocol error: a both-ways step of op " + std::to_string(op);
            break;
        }
        if (!(why = side.send_msg(msg::ready, payload(), now_ns() + t, cancel)).empty()) break;
        uint64_t elapsed = 0;
        why = active ? e.transfer(op, size, static_cast<int64_t>(count), p->queue_depth, cancel, &elapsed)
                     : e.receive(size, static_cast<int64_t>(count), cancel);
        if (why.empty()) why = side.send_msg(msg::phase_result, payload().u64(elapsed), now_ns() + t, cancel);
    }
    if (cancel && *cancel) return fail(KILN_CANCELLED, "cancelled");
    return fail(KILN_PEER_ERROR, "rdma serve %s: %s", side.peer().c_str(), why.c_str());
}

kiln_status probe(void* st, const char* host, int32_t port, const kiln_rdma_params* p, const kiln_rdma_memory* memory, const kiln_sink* sink,
                  const volatile int32_t* cancel) {
    auto* s = static_cast<state*>(st);
    const port_entry* pe = port_of(s, p->port_index);
    if (!pe) return fail(KILN_NOT_FOUND, "port index %d: %zu RDMA ports", p->port_index, s->ports.size());
    const uint64_t t = p->timeout_ms * 1000000ull;
    socket_conn side;
    std::string why = socket_conn::connect_to(host, port, now_ns() + t, cancel, &side);
    if (!why.empty()) return fail(KILN_PEER_ERROR, "%s:%d: %s", host, port, why.c_str());
    endpoint e(*pe, *p, memory);
    why = e.create();
    if (!why.empty()) return fail(KILN_BACKEND_ERROR, "rdma %s/%d: %s", pe->info.device, pe->info.port, why.c_str());
    payload welcome;
    qp_endpoint peer;
    why = side.send_msg(msg::hello, e.me().encode(), now_ns() + t, cancel);
    if (why.empty()) why = side.expect_msg(msg::welcome, &welcome, now_ns() + t, cancel);
    if (why.empty() && !peer.decode(welcome)) why = "protocol error: the server's queue-pair record is short";
    if (why.empty()) why = e.connect(peer);
    if (!why.empty()) return fail(KILN_PEER_ERROR, "%s:%d: %s", host, port, why.c_str());
    kiln::sink_writer out(sink, "rdma", 0, false);
    const auto before = kiln::rdma::read_port_counters("/", pe->info.device, pe->info.port);
    // The passive receive of send runs on the server: announce it, wait for ready, and for its end.
    const both_ways_step both{
        [&](uint32_t op, uint64_t size, int64_t count) {
            std::string w = side.send_msg(msg::phase, payload().u64(size).u64(static_cast<uint64_t>(count)).u32(op), now_ns() + t, cancel);
            payload r;
            if (w.empty()) w = side.expect_msg(msg::ready, &r, now_ns() + t, cancel);
            return w;
        },
        [&](uint64_t* peer_ns) {
            payload r;
            std::string w = side.expect_msg(msg::phase_result, &r, now_ns() + 10 * t, cancel);
            if (w.empty() && !r.get_u64(peer_ns)) w = "protocol error: a short phase_result";
            return w;
        }};
    why = drive(e, *p,
                [&](uint64_t size, int64_t count) {
                    std::string w = side.send_msg(msg::phase, payload().u64(size).u64(static_cast<uint64_t>(count)), now_ns() + t, cancel);
                    payload r;
                    if (w.empty()) w = side.expect_msg(msg::ready, &r, now_ns() + t, cancel);
                    if (w.empty()) w = side.expect_msg(msg::phase_result, &r, now_ns() + 10 * t, cancel);
                    return w;
                },
                both, out, cancel);
    kiln::rdma::emit_counter_deltas(before, kiln::rdma::read_port_counters("/", pe->info.device, pe->info.port),
                                    [&](const std::string& name, double v) { out.metric(name, v, "count"); });
    side.send_msg(msg::bye, payload(), now_ns() + t, cancel);
    if (cancel && *cancel) return fail(KILN_CANCELLED, "cancelled");
    return why.empty() ? KILN_OK : fail(KILN_PEER_ERROR, "%s:%d: %s", host, port, why.c_str());
}

const kiln_rdma_plugin_ops k_ops = {kiln::rdma::k_plugin_api_version, open_plugin, close_plugin, port_count, port_info, serve, probe, loopback};

}  // namespace

extern "C" __attribute__((visibility("default"))) const kiln_rdma_plugin_ops* kiln_rdma_plugin_entry(void) { return &k_ops; }
