// tcp_probe.cpp - the TCP probe: a server that runs one client's test at a time, and the client
// that measures N-stream bandwidth each way (counted where the bytes arrive) and request/response
// round trips, streaming "tcp" metrics as each phase ends. Every wait has a deadline: a peer that
// is unreachable, busy, garbled, gone or silent fails the probe with the reason (docs/NETWORK.md).
#include "../core/kiln_internal.h"
#include "../common/kiln_names.h"
#include "net_socket.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cmath>
#include <condition_variable>
#include <cstring>
#include <memory>
#include <mutex>
#include <random>
#include <thread>
#include <vector>

using kiln::net::msg;
using kiln::net::gbits;
using kiln::net::now_ns;
using kiln::net::percentile;
using kiln::net::payload;
using kiln::net::phase_kind;
using kiln::net::socket_conn;

struct kiln_net_server {
    int listen_fd = -1;
    int32_t port = 0;
    std::string address;
    ~kiln_net_server() {
        if (listen_fd >= 0) close(listen_fd);
    }
};

namespace {

constexpr uint64_t k_ms = 1000000ull;
constexpr int32_t k_max_streams = 128;
constexpr uint32_t k_min_message = 1024, k_max_message = 16u << 20, k_max_latency_bytes = 64u << 10;
constexpr uint64_t k_min_phase_ms = 100, k_max_phase_ms = 3600000, k_max_timeout_ms = 600000;
// How long a new connection may take to say who it is before the server drops it.
constexpr uint64_t k_first_message_ns = 2000 * k_ms;

kiln_status peer_fail(const std::string& why) { return kiln::fail(KILN_PEER_ERROR, "%s", why.c_str()); }

kiln_status validate(const kiln_net_params* p) {
    if (!p) return kiln::fail(KILN_INVALID_ARGUMENT, "params must not be NULL");
    if (p->streams < 1 || p->streams > k_max_streams)
        return kiln::fail(KILN_INVALID_ARGUMENT, "streams: %d is outside 1..%d", p->streams, k_max_streams);
    if ((p->phase_mask & ~static_cast<uint32_t>(KILN_NET_ALL)) != 0)
        return kiln::fail(KILN_INVALID_ARGUMENT, "phase_mask: 0x%x has bits outside kiln_net_phase (0x%x)", p->phase_mask, KILN_NET_ALL);
    if (p->duration_ms < k_min_phase_ms || p->duration_ms > k_max_phase_ms)
        return kiln::fail(KILN_INVALID_ARGUMENT, "duration_ms: %llu is outside %llu..%llu", static_cast<unsigned long long>(p->duration_ms),
                          static_cast<unsigned long long>(k_min_phase_ms), static_cast<unsigned long long>(k_max_phase_ms));
    if (p->latency_duration_ms < k_min_phase_ms || p->latency_duration_ms > k_max_phase_ms)
        return kiln::fail(KILN_INVALID_ARGUMENT, "latency_duration_ms: %llu is outside %llu..%llu",
                          static_cast<unsigned long long>(p->latency_duration_ms), static_cast<unsigned long long>(k_min_phase_ms),
                          static_cast<unsigned long long>(k_max_phase_ms));
    if (p->timeout_ms < 1 || p->timeout_ms > k_max_timeout_ms)
        return kiln::fail(KILN_INVALID_ARGUMENT, "timeout_ms: %llu is outside 1..%llu", static_cast<unsigned long long>(p->timeout_ms),
                          static_cast<unsigned long long>(k_max_timeout_ms));
    if (p->message_bytes < k_min_message || p->message_bytes > k_max_message)
        return kiln::fail(KILN_INVALID_ARGUMENT, "message_bytes: %u is outside %u..%u", p->message_bytes, k_min_message, k_max_message);
    if (p->latency_bytes < 1 || p->latency_bytes > k_max_latency_bytes)
        return kiln::fail(KILN_INVALID_ARGUMENT, "latency_bytes: %u is outside 1..%u", p->latency_bytes, k_max_latency_bytes);
    if (p->latency_samples < 1) return kiln::fail(KILN_INVALID_ARGUMENT, "latency_samples: %d, must be at least 1", p->latency_samples);
    return KILN_OK;
}

// Data connections block in the kernel for at most this long per call, so the loops see the
// deadline, the cancel flag and an abort by the other threads.
void set_io_slices(int fd) {
    timeval tv{0, 100000};
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
}

// One stream's side of a bandwidth phase: what it moved, when, and why it stopped early.
struct stream_result {
    uint64_t bytes = 0;
    uint64_t first_ns = 0, last_ns = 0;
    std::string error;
};

// Sends message_bytes chunks on fd until end_ns. Stalls longer than stall_ns, a cancel or an abort
// stop it with the reason.
void send_for(int fd, size_t message_bytes, uint64_t end_ns, uint64_t stall_ns, const volatile int32_t* cancel,
              const std::atomic<bool>* abort, stream_result* out) {
    std::vector<uint8_t> buf(message_bytes);
    for (size_t i = 0; i < buf.size(); ++i) buf[i] = static_cast<uint8_t>(i * 131u + 7u);
    uint64_t progress_ns = now_ns();
    out->first_ns = progress_ns;
    for (;;) {
        const uint64_t now = now_ns();
        if (now >= end_ns) break;
        if ((cancel && *cancel) || abort->load(std::memory_order_relaxed)) {
            out->error = cancel && *cancel ? "cancelled" : "stopped: another stream failed";
            return;
        }
        const ssize_t n = send(fd, buf.data(), buf.size(), MSG_NOSIGNAL);
        if (n > 0) {
            out->bytes += static_cast<uint64_t>(n);
            progress_ns = now_ns();
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
            if (now_ns() - progress_ns > stall_ns) {
                out->error = "stalled: the peer took nothing for " + std::to_string(stall_ns / k_ms) + " ms";
                return;
            }
            continue;
        }
        out->error = n == 0 ? "send sent nothing" : std::string("send: ") + strerror(errno);
        return;
    }
    out->last_ns = now_ns();
}

// Reads fd until *target bytes arrived (the target is set once the sender says how many it sent).
void receive_until(int fd, size_t buffer_bytes, const std::atomic<uint64_t>* target, uint64_t stall_ns,
                   const volatile int32_t* cancel, const std::atomic<bool>* abort, stream_result* out) {
    std::vector<uint8_t> buf(buffer_bytes);
    uint64_t progress_ns = now_ns();
    while (out->bytes < target->load(std::memory_order_acquire)) {
        if ((cancel && *cancel) || abort->load(std::memory_order_relaxed)) {
            out->error = cancel && *cancel ? "cancelled" : "stopped: another stream failed";
            return;
        }
        const ssize_t n = recv(fd, buf.data(), buf.size(), 0);
        if (n > 0) {
            const uint64_t now = now_ns();
            if (out->bytes == 0) out->first_ns = now;
            out->last_ns = now;
            out->bytes += static_cast<uint64_t>(n);
            progress_ns = now;
            continue;
        }
        if (n == 0) {
            out->error = "the peer closed the connection after " + std::to_string(out->bytes) + " bytes";
            return;
        }
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
            if (now_ns() - progress_ns > stall_ns) {
                out->error = "stalled: nothing arrived for " + std::to_string(stall_ns / k_ms) + " ms";
                return;
            }
            continue;
        }
        out->error = std::string("receive: ") + strerror(errno);
        return;
    }
}

// The receiving side of a bandwidth phase over every stream, in threads.
class phase_receiver {
public:
    phase_receiver(const std::vector<socket_conn>& streams, size_t buffer_bytes, uint64_t stall_ns, const volatile int32_t* cancel)
        : results_(streams.size()) {
        // Targets are unknown until the sender's phase_end: until then every stream reads on.
        for (auto& t : target_) t.store(UINT64_MAX, std::memory_order_relaxed);
        threads_.reserve(streams.size());
        for (size_t i = 0; i < streams.size(); ++i)
            threads_.emplace_back(receive_until, streams[i].fd(), buffer_bytes, &target_[i], stall_ns, cancel, &abort_, &results_[i]);
    }
    ~phase_receiver() { stop(); }
    // Tells each stream how many bytes were sent to it, then waits for them.
    void expect(const std::vector<uint64_t>& bytes) {
        for (size_t i = 0; i < bytes.size() && i < results_.size(); ++i) target_[i].store(bytes[i], std::memory_order_release);
        join();
    }
    void stop() {
        abort_ = true;
        join();
    }
    const std::vector<stream_result>& results() const { return results_; }

private:
    void join() {
        for (auto& t : threads_)
            if (t.joinable()) t.join();
    }
    std::vector<stream_result> results_;
    std::atomic<uint64_t> target_[k_max_streams] = {};
    std::atomic<bool> abort_{false};
    std::vector<std::thread> threads_;
};

// Sends on every stream for duration; returns each stream's result.
std::vector<stream_result> send_phase(const std::vector<socket_conn>& streams, size_t message_bytes, uint64_t duration_ns,
                                      uint64_t stall_ns, const volatile int32_t* cancel) {
    std::vector<stream_result> results(streams.size());
    std::atomic<bool> abort{false};
    std::vector<std::thread> threads;
    const uint64_t end = now_ns() + duration_ns;
    for (size_t i = 0; i < streams.size(); ++i)
        threads.emplace_back([&, i] {
            send_for(streams[i].fd(), message_bytes, end, stall_ns, cancel, &abort, &results[i]);
            if (!results[i].error.empty()) abort = true;
        });
    for (auto& t : threads) t.join();
    return results;
}

// The first stream error, as "stream 2: stalled ..."; "" when every stream completed.
std::string first_error(const std::vector<stream_result>& results) {
    for (size_t i = 0; i < results.size(); ++i)
        if (!results[i].error.empty() && results[i].error.compare(0, 8, "stopped:") != 0)
            return "stream " + std::to_string(i) + ": " + results[i].error;
    for (size_t i = 0; i < results.size(); ++i)
        if (!results[i].error.empty()) return "stream " + std::to_string(i) + ": " + results[i].error;
    return "";
}

void counters(const std::vector<socket_conn>& streams, uint64_t* retransmits, uint64_t* segments) {
    *retransmits = *segments = 0;
    for (const auto& s : streams) {
        uint64_t r = 0, o = 0;
        s.tcp_counters(&r, &o);
        *retransmits += r;
        *segments += o;
    }
}

// ---- server ----------------------------------------------------------------------------------

struct session {
    uint64_t token = 0;
    std::string client;
    uint32_t streams = 0, message_bytes = 0, latency_bytes = 0;
    uint64_t timeout_ns = 0;
    socket_conn control;
    std::mutex mutex;
    std::condition_variable attached_cv;
    std::vector<socket_conn> data;  // slot i: stream i, once attached
    size_t attached = 0;
    volatile int32_t cancel = 0;
    std::atomic<bool> done{false};
    std::string outcome;  // "" when the client said bye
    std::thread thread;
};

std::string serve_session(session& s) {
    const volatile int32_t* cancel = &s.cancel;
    {
        std::unique_lock<std::mutex> lock(s.mutex);
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::nanoseconds(s.timeout_ns);
        while (s.attached < s.streams && !s.cancel)
            if (s.attached_cv.wait_until(lock, deadline) == std::cv_status::timeout) break;
        if (s.attached < s.streams)
            return "only " + std::to_string(s.attached) + " of " + std::to_string(s.streams) + " streams attached within the timeout";
    }
    for (auto& d : s.data) set_io_slices(d.fd());
    if (auto why = s.control.send_msg(msg::ready, payload(), now_ns() + s.timeout_ns, cancel); !why.empty()) return why;
    const size_t buffer = std::max<size_t>(s.message_bytes, 128u << 10);
    for (;;) {
        msg type{};
        payload body;
        // The client sends its next phase at once; silence past the timeout ends the session.
        if (auto why = s.control.recv_msg(&type, &body, now_ns() + s.timeout_ns, cancel); !why.empty()) return why;
        if (type == msg::bye) {
            // Free before the client hears it: a client that comes right after this one is served.
            s.done = true;
            s.control.send_msg(msg::bye, payload(), now_ns() + s.timeout_ns, cancel);
            return "";
        }
        uint32_t kind = 0;
        uint64_t duration_ms = 0;
        if (type != msg::phase || !body.get_u32(&kind) || !body.get_u64(&duration_ms) || duration_ms > k_max_phase_ms) {
            s.control.send_msg(msg::error, payload().text("expected a phase"), now_ns() + s.timeout_ns, cancel);
            return std::string("protocol error: expected a phase, got ") + kiln::net::msg_name(type);
        }
        const uint64_t phase_deadline = now_ns() + duration_ms * k_ms + s.timeout_ns;
        if (kind == static_cast<uint32_t>(phase_kind::send)) {
            phase_receiver rx(s.data, buffer, s.timeout_ns, cancel);
            if (auto why = s.control.send_msg(msg::ready, payload(), now_ns() + s.timeout_ns, cancel); !why.empty()) return why;
            payload end;
            if (auto why = s.control.expect_msg(msg::phase_end, &end, phase_deadline, cancel); !why.empty()) return why;
            std::vector<uint64_t> sent(s.streams);
            for (auto& b : sent)
                if (!end.get_u64(&b)) return "protocol error: phase_end is short";
            rx.expect(sent);
            if (auto why = first_error(rx.results()); !why.empty()) {
                s.control.send_msg(msg::error, payload().text("receiving: " + why), now_ns() + s.timeout_ns, cancel);
                return "receiving: " + why;
            }
            payload result;
            for (const auto& r : rx.results()) result.u64(r.bytes).u64(r.first_ns).u64(r.last_ns);
            if (auto why = s.control.send_msg(msg::phase_result, result, now_ns() + s.timeout_ns, cancel); !why.empty()) return why;
        } else if (kind == static_cast<uint32_t>(phase_kind::recv)) {
            if (auto why = s.control.send_msg(msg::ready, payload(), now_ns() + s.timeout_ns, cancel); !why.empty()) return why;
            uint64_t r0 = 0, o0 = 0, r1 = 0, o1 = 0;
            counters(s.data, &r0, &o0);
            const auto results = send_phase(s.data, s.message_bytes, duration_ms * k_ms, s.timeout_ns, cancel);
            counters(s.data, &r1, &o1);
            if (auto why = first_error(results); !why.empty()) {
                s.control.send_msg(msg::error, payload().text("sending: " + why), now_ns() + s.timeout_ns, cancel);
                return "sending: " + why;
            }
            payload end;
            end.u64(r1 - r0).u64(o1 - o0);
            for (const auto& r : results) end.u64(r.bytes);
            if (auto why = s.control.send_msg(msg::phase_end, end, now_ns() + s.timeout_ns, cancel); !why.empty()) return why;
        } else if (kind == static_cast<uint32_t>(phase_kind::latency)) {
            if (auto why = s.control.send_msg(msg::ready, payload(), now_ns() + s.timeout_ns, cancel); !why.empty()) return why;
            std::vector<uint8_t> buf(s.latency_bytes);
            // Echo each request; one whose first byte is 0 is the last.
            for (;;) {
                if (auto why = s.control.recv_all(buf.data(), buf.size(), now_ns() + s.timeout_ns, cancel); !why.empty()) return "latency: " + why;
                if (auto why = s.control.send_all(buf.data(), buf.size(), now_ns() + s.timeout_ns, cancel); !why.empty()) return "latency: " + why;
                if (buf[0] == 0) break;
            }
        } else {
            s.control.send_msg(msg::error, payload().text("unknown phase"), now_ns() + s.timeout_ns, cancel);
            return "protocol error: unknown phase " + std::to_string(kind);
        }
    }
}

void say(const kiln_net_log* log, const std::string& text) {
    if (log && log->on_text) log->on_text(log->ctx, text.c_str());
}

uint64_t new_token() {
    std::random_device rd;
    return (uint64_t{rd()} << 32) ^ rd() ^ now_ns();
}

// Ends the active session when it is done (or at once when stopping): joins it and logs how it went.
bool retire(std::unique_ptr<session>& active, bool stopping, const kiln_net_log* log) {
    if (!active) return false;
    if (stopping) active->cancel = 1;
    if (!active->done && !stopping) return false;
    if (active->thread.joinable()) active->thread.join();
    say(log, "session from " + active->client + ": " + (active->outcome.empty() ? "done" : "failed: " + active->outcome));
    active.reset();
    return true;
}

// A new connection: a hello starts a session (or is told busy), an attach joins the running one.
void admit(socket_conn conn, std::unique_ptr<session>& active, int32_t* served, const kiln_net_log* log,
           const volatile int32_t* cancel) {
    msg type{};
    payload body;
    const uint64_t deadline = now_ns() + k_first_message_ns;
    if (auto why = conn.recv_msg(&type, &body, deadline, cancel); !why.empty()) {
        say(log, "connection from " + conn.peer() + " dropped: " + why);
        return;
    }
    if (type == msg::hello) {
        if (retire(active, false, log)) ++*served;
        if (active) {
            conn.send_msg(msg::busy, payload().text("another client's test is running (from " + active->client + ")"), deadline, cancel);
            say(log, "refused " + conn.peer() + ": a test from " + active->client + " is running");
            return;
        }
        uint32_t streams = 0, message = 0, latency = 0;
        uint64_t timeout_ms = 0;
        if (!body.get_u32(&streams) || !body.get_u32(&message) || !body.get_u32(&latency) || !body.get_u64(&timeout_ms) ||
            streams < 1 || streams > static_cast<uint32_t>(k_max_streams) || message < k_min_message || message > k_max_message ||
            latency < 1 || latency > k_max_latency_bytes || timeout_ms < 1 || timeout_ms > k_max_timeout_ms) {
            conn.send_msg(msg::error, payload().text("bad hello: parameters out of range"), deadline, cancel);
            say(log, "connection from " + conn.peer() + " dropped: a hello with parameters out of range");
            return;
        }
        auto s = std::make_unique<session>();
        s->token = new_token();
        s->client = conn.peer();
        s->streams = streams;
        s->message_bytes = message;
        s->latency_bytes = latency;
        s->timeout_ns = timeout_ms * k_ms;
        s->data.resize(streams);
        if (auto why = conn.send_msg(msg::welcome, payload().u64(s->token), deadline, cancel); !why.empty()) {
            say(log, "connection from " + conn.peer() + " dropped: " + why);
            return;
        }
        s->control = std::move(conn);
        say(log, "session from " + s->client + ": " + std::to_string(streams) + " stream(s)");
        session* raw = s.get();
        raw->thread = std::thread([raw] {
            raw->outcome = serve_session(*raw);
            raw->done = true;
        });
        active = std::move(s);
        return;
    }
    if (type == msg::attach) {
        uint64_t token = 0;
        uint32_t index = 0;
        if (!body.get_u64(&token) || !body.get_u32(&index) || !active || active->done || token != active->token ||
            index >= active->streams) {
            conn.send_msg(msg::error, payload().text("no such session or stream"), deadline, cancel);
            say(log, "connection from " + conn.peer() + " dropped: an attach to no running session");
            return;
        }
        std::lock_guard<std::mutex> lock(active->mutex);
        if (active->data[index].valid()) {
            conn.send_msg(msg::error, payload().text("stream attached twice"), deadline, cancel);
            return;
        }
        active->data[index] = std::move(conn);
        ++active->attached;
        active->attached_cv.notify_all();
        return;
    }
    conn.send_msg(msg::error, payload().text("expected hello or attach"), deadline, cancel);
    say(log, "connection from " + conn.peer() + " dropped: it began with " + kiln::net::msg_name(type));
}

// ---- client ----------------------------------------------------------------------------------

// Aggregate rate: every byte over the span from the first stream's first byte to the last one's last.
void bandwidth(const std::vector<stream_result>& r, double* total_gbits, double* slowest_gbits, uint64_t* bytes) {
    uint64_t first = UINT64_MAX, last = 0;
    *bytes = 0;
    *slowest_gbits = INFINITY;
    for (const auto& s : r) {
        *bytes += s.bytes;
        if (s.bytes == 0) continue;
        first = std::min(first, s.first_ns);
        last = std::max(last, s.last_ns);
        *slowest_gbits = std::min(*slowest_gbits, gbits(s.bytes, s.last_ns - s.first_ns));
    }
    if (!std::isfinite(*slowest_gbits)) *slowest_gbits = 0;
    *total_gbits = last > first ? gbits(*bytes, last - first) : 0.0;
}

class probe {
public:
    probe(const std::string& host, int port, const kiln_net_params& p, kiln::sink_writer& out, const volatile int32_t* cancel)
        : host_(host), port_(port), p_(p), out_(out), cancel_(cancel), timeout_ns_(p.timeout_ms * k_ms) {}

    std::string run() {
        if (auto why = socket_conn::connect_to(host_, port_, deadline(), cancel_, &control_); !why.empty()) return why;
        payload hello;
        hello.u32(static_cast<uint32_t>(p_.streams)).u32(p_.message_bytes).u32(p_.latency_bytes).u64(p_.timeout_ms);
        if (auto why = control_.send_msg(msg::hello, hello, deadline(), cancel_); !why.empty()) return "hello: " + why;
        payload welcome;
        if (auto why = control_.expect_msg(msg::welcome, &welcome, deadline(), cancel_); !why.empty()) return why;
        uint64_t token = 0;
        if (!welcome.get_u64(&token)) return "protocol error: welcome is short";
        streams_.resize(static_cast<size_t>(p_.streams));
        for (size_t i = 0; i < streams_.size(); ++i) {
            if (auto why = socket_conn::connect_to(host_, port_, deadline(), cancel_, &streams_[i]); !why.empty())
                return "stream " + std::to_string(i) + ": " + why;
            if (auto why = streams_[i].send_msg(msg::attach, payload().u64(token).u32(static_cast<uint32_t>(i)), deadline(), cancel_);
                !why.empty())
                return "stream " + std::to_string(i) + ": " + why;
            set_io_slices(streams_[i].fd());
        }
        payload ready;
        if (auto why = control_.expect_msg(msg::ready, &ready, deadline(), cancel_); !why.empty()) return "attaching streams: " + why;
        out_.metric("streams", p_.streams, "count");
        out_.metric("message_bytes", p_.message_bytes, "bytes");
        const uint32_t mask = p_.phase_mask ? p_.phase_mask : static_cast<uint32_t>(KILN_NET_ALL);
        if (mask & KILN_NET_SEND)
            if (auto why = send(); !why.empty()) return "send phase: " + why;
        if (mask & KILN_NET_RECV)
            if (auto why = recv(); !why.empty()) return "receive phase: " + why;
        if (mask & KILN_NET_LATENCY)
            if (auto why = latency(); !why.empty()) return "latency phase: " + why;
        if (auto why = control_.send_msg(msg::bye, payload(), deadline(), cancel_); !why.empty()) return "bye: " + why;
        payload bye;
        if (auto why = control_.expect_msg(msg::bye, &bye, deadline(), cancel_); !why.empty()) return "bye: " + why;
        return "";
    }

private:
    uint64_t deadline() const { return now_ns() + timeout_ns_; }

    std::string start(phase_kind kind, uint64_t duration_ms) {
        if (auto why = control_.send_msg(msg::phase, payload().u32(static_cast<uint32_t>(kind)).u64(duration_ms), deadline(), cancel_);
            !why.empty())
            return why;
        payload ready;
        return control_.expect_msg(msg::ready, &ready, deadline(), cancel_);
    }

    std::string send() {
        if (auto why = start(phase_kind::send, p_.duration_ms); !why.empty()) return why;
        uint64_t r0 = 0, o0 = 0, r1 = 0, o1 = 0;
        counters(streams_, &r0, &o0);
        const auto sent = send_phase(streams_, p_.message_bytes, p_.duration_ms * k_ms, timeout_ns_, cancel_);
        if (auto why = first_error(sent); !why.empty()) return why;
        payload end;
        for (const auto& s : sent) end.u64(s.bytes);
        if (auto why = control_.send_msg(msg::phase_end, end, deadline(), cancel_); !why.empty()) return why;
        payload result;
        // The receiver drains what the socket buffers still hold: give it the timeout past that.
        if (auto why = control_.expect_msg(msg::phase_result, &result, deadline(), cancel_); !why.empty()) return why;
        counters(streams_, &r1, &o1);
        std::vector<stream_result> arrived(streams_.size());
        for (auto& a : arrived)
            if (!result.get_u64(&a.bytes) || !result.get_u64(&a.first_ns) || !result.get_u64(&a.last_ns))
                return "protocol error: phase_result is short";
        for (size_t i = 0; i < arrived.size(); ++i)
            if (arrived[i].bytes != sent[i].bytes)
                return "stream " + std::to_string(i) + ": the peer counted " + std::to_string(arrived[i].bytes) + " bytes of " +
                       std::to_string(sent[i].bytes) + " sent";
        report("send", arrived, r1 - r0, o1 - o0);
        return "";
    }

    std::string recv() {
        phase_receiver rx(streams_, std::max<size_t>(p_.message_bytes, 128u << 10), timeout_ns_, cancel_);
        if (auto why = start(phase_kind::recv, p_.duration_ms); !why.empty()) return why;
        payload end;
        if (auto why = control_.expect_msg(msg::phase_end, &end, now_ns() + p_.duration_ms * k_ms + timeout_ns_, cancel_); !why.empty())
            return why;
        uint64_t retransmits = 0, segments = 0;
        std::vector<uint64_t> sent(streams_.size());
        if (!end.get_u64(&retransmits) || !end.get_u64(&segments)) return "protocol error: phase_end is short";
        for (auto& b : sent)
            if (!end.get_u64(&b)) return "protocol error: phase_end is short";
        rx.expect(sent);
        if (auto why = first_error(rx.results()); !why.empty()) return why;
        report("recv", rx.results(), retransmits, segments);
        return "";
    }

    void report(const std::string& dir, const std::vector<stream_result>& r, uint64_t retransmits, uint64_t segments) {
        double total = 0, slowest = 0;
        uint64_t bytes = 0;
        bandwidth(r, &total, &slowest, &bytes);
        out_.metric(dir + "_gbits", total, "Gb/s");
        out_.metric(dir + "_stream_gbits_min", slowest, "Gb/s");
        out_.metric(dir + "_bytes", static_cast<double>(bytes), "bytes");
        out_.metric(dir + "_retransmits", static_cast<double>(retransmits), "count");
        out_.metric(dir + "_retransmit_ratio", segments > 0 ? static_cast<double>(retransmits) / static_cast<double>(segments) : 0.0,
                    "ratio");
    }

    std::string latency() {
        if (auto why = start(phase_kind::latency, p_.latency_duration_ms); !why.empty()) return why;
        std::vector<uint8_t> buf(p_.latency_bytes, 1), reply(p_.latency_bytes);
        std::vector<double> rtt_us;
        rtt_us.reserve(static_cast<size_t>(std::min(p_.latency_samples, 1 << 20)));
        const uint64_t end = now_ns() + p_.latency_duration_ms * k_ms;
        for (bool last = false; !last;) {
            last = static_cast<int32_t>(rtt_us.size()) + 1 >= p_.latency_samples || now_ns() >= end;
            buf[0] = last ? 0 : 1;
            const uint64_t t0 = now_ns();
            if (auto why = control_.send_all(buf.data(), buf.size(), deadline(), cancel_); !why.empty()) return why;
            if (auto why = control_.recv_all(reply.data(), reply.size(), deadline(), cancel_); !why.empty()) return why;
            rtt_us.push_back(static_cast<double>(now_ns() - t0) / 1000.0);
            if (reply != buf) return "the peer's echo differs from the request";
        }
        std::sort(rtt_us.begin(), rtt_us.end());
        out_.metric("rtt_us_min", rtt_us.front(), "us");
        out_.metric("rtt_us_median", percentile(rtt_us, 0.5), "us");
        out_.metric("rtt_us_p99", percentile(rtt_us, 0.99), "us");
        out_.metric("rtt_us_p999", percentile(rtt_us, 0.999), "us");
        out_.metric("rtt_us_max", rtt_us.back(), "us");
        out_.metric("rtt_samples", static_cast<double>(rtt_us.size()), "count");
        return "";
    }

    std::string host_;
    int port_;
    kiln_net_params p_;
    kiln::sink_writer& out_;
    const volatile int32_t* cancel_;
    uint64_t timeout_ns_;
    socket_conn control_;
    std::vector<socket_conn> streams_;
};

}  // namespace

extern "C" {

kiln_status kiln_net_params_init(kiln_net_params* out_params) {
    if (!out_params) return kiln::fail(KILN_INVALID_ARGUMENT, "out_params must not be NULL");
    memset(out_params, 0, sizeof *out_params);
    out_params->streams = 4;
    out_params->phase_mask = KILN_NET_ALL;
    out_params->duration_ms = 5000;
    out_params->latency_duration_ms = 2000;
    out_params->timeout_ms = 5000;
    out_params->message_bytes = 128u << 10;  // iperf3's TCP default
    out_params->latency_bytes = 64;
    out_params->latency_samples = 100000;
    return KILN_OK;
}

kiln_status kiln_net_server_create(const char* address, int32_t port, kiln_net_server** out_server) {
    if (!out_server) return kiln::fail(KILN_INVALID_ARGUMENT, "out_server must not be NULL");
    *out_server = nullptr;
    auto server = std::make_unique<kiln_net_server>();
    server->address = address && *address ? address : "127.0.0.1";
    if (std::string why = kiln::net::listen_on(server->address, port, 64, &server->listen_fd, &server->port); !why.empty())
        return kiln::fail(KILN_INVALID_ARGUMENT, "%s", why.c_str());
    *out_server = server.release();
    return KILN_OK;
}

void kiln_net_server_destroy(kiln_net_server* server) { delete server; }

int32_t kiln_net_server_port(const kiln_net_server* server) { return server ? server->port : 0; }

kiln_status kiln_net_server_run(kiln_net_server* server, int32_t max_sessions, const kiln_net_log* log,
                                const volatile int32_t* cancel) {
    if (!server) return kiln::fail(KILN_INVALID_ARGUMENT, "server must not be NULL");
    static const volatile int32_t never = 0;
    if (!cancel) cancel = &never;
    std::unique_ptr<session> active;
    int32_t served = 0;
    try {
        for (;;) {
            if (*cancel) {
                retire(active, true, log);
                return kiln::fail(KILN_CANCELLED, "cancelled");
            }
            if (retire(active, false, log)) ++served;
            if (max_sessions > 0 && served >= max_sessions) return KILN_OK;
            pollfd p{server->listen_fd, POLLIN, 0};
            const int n = poll(&p, 1, 100);
            if (n < 0 && errno != EINTR) {
                retire(active, true, log);
                return kiln::fail(KILN_BACKEND_ERROR, "poll: %s", strerror(errno));
            }
            if (n <= 0) continue;
            const int fd = accept4(server->listen_fd, nullptr, nullptr, SOCK_CLOEXEC);
            if (fd < 0) continue;
            socket_conn conn(fd, kiln::net::peer_name(fd));
            // A session that just ended is retired first, so a new client finds the server free.
            if (retire(active, false, log)) ++served;
            admit(std::move(conn), active, &served, log, cancel);
        }
    } catch (const std::exception& e) {
        retire(active, true, log);
        return kiln::fail(KILN_INTERNAL, "net server: %s", e.what());
    }
}

kiln_status kiln_net_probe(const char* host, int32_t port, const kiln_net_params* params, const kiln_sink* sink,
                           const volatile int32_t* cancel) {
    if (!host || !*host) return kiln::fail(KILN_INVALID_ARGUMENT, "host must not be empty");
    if (port < 1 || port > 65535) return kiln::fail(KILN_INVALID_ARGUMENT, "port: %d is outside 1..65535", port);
    if (kiln_status st = validate(params); st != KILN_OK) return st;
    static const volatile int32_t never = 0;
    if (!cancel) cancel = &never;
    const kiln_sink empty = {nullptr, nullptr, nullptr, nullptr};
    try {
        kiln::sink_writer out(sink ? sink : &empty, kiln_test_key(KILN_TEST_TCP), 0, false);
        probe pr(host, port, *params, out, cancel);
        const std::string why = pr.run();
        if (*cancel) return kiln::fail(KILN_CANCELLED, "cancelled");
        if (!why.empty()) return peer_fail(std::string(host) + ":" + std::to_string(port) + ": " + why);
        return KILN_OK;
    } catch (const std::exception& e) {
        return kiln::fail(KILN_INTERNAL, "tcp probe: %s", e.what());
    }
}

}  // extern "C"
