// net_socket.h - what the TCP probe and the RDMA side channel share: sockets with deadlines (every
// wait is bounded, so a silent peer is an error, never a hang) and the framed control messages of
// the probe's wire protocol (docs/NETWORK.md). Errors are returned as text; callers turn them into
// KILN_PEER_ERROR.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace kiln::net {

// Monotonic time in nanoseconds.
uint64_t now_ns();

// Nearest-rank percentile (q in 0..1) of sorted values; 0 for none.
double percentile(const std::vector<double>& sorted, double q);

// 1e9 bits per second of bytes moved in ns.
inline double gbits(uint64_t bytes, uint64_t ns) { return ns > 0 ? static_cast<double>(bytes) * 8.0 / static_cast<double>(ns) : 0.0; }

// Wire protocol: every control message is a 12-byte header (magic, version, type, payload bytes,
// all big-endian) and its payload. Anything else from the peer is garbage and ends the session.
constexpr uint32_t k_magic = 0x4B4C4E54;  // "KLNT"
constexpr uint16_t k_version = 1;
constexpr uint32_t k_max_payload = 1u << 16;

enum class msg : uint16_t {
    hello = 1,        // client -> server: streams, message bytes, latency bytes
    welcome = 2,      // server -> client: session token
    busy = 3,         // server -> client: text; another client's test is running
    error = 4,        // either way: text; the sender ends the session
    attach = 5,       // client -> server, first message of a data connection: token, stream index
    ready = 6,        // server -> client: every stream attached / a phase may start
    phase = 7,        // client -> server: which phase, its duration
    phase_end = 8,    // the sender of a bandwidth phase -> the receiver: bytes per stream, retransmits
    phase_result = 9, // the receiver of the client's send phase -> client: bytes, elapsed ns
    bye = 10,         // client -> server: the test is over
    coll_join = 11,   // collectives rendezvous, a process -> the process of index 0: its index, its ranks
    coll_id = 12,     // the process of index 0 -> each: ranks in all, its first rank, processes, the unique id
};

enum class phase_kind : uint32_t { send = 1, recv = 2, latency = 3 };

// A payload built and read as a sequence of big-endian fields.
class payload {
public:
    payload() = default;
    explicit payload(std::vector<uint8_t> bytes) : bytes_(std::move(bytes)) {}
    payload& u32(uint32_t v);
    payload& u64(uint64_t v);
    payload& text(const std::string& s);
    payload& raw(const void* data, size_t bytes);
    // Readers return false past the end (a short payload is garbage).
    bool get_u32(uint32_t* v);
    bool get_u64(uint64_t* v);
    bool get_raw(void* data, size_t bytes);
    std::string rest_as_text() const;
    const std::vector<uint8_t>& bytes() const { return bytes_; }

private:
    std::vector<uint8_t> bytes_;
    size_t read_ = 0;
};

// One connected TCP socket that owns its descriptor. Every call waits at most until the deadline
// (absolute now_ns() value) and polls *cancel every 100 ms; it returns "" on success or the reason.
class socket_conn {
public:
    socket_conn() = default;
    explicit socket_conn(int fd, std::string peer = {});
    ~socket_conn();
    socket_conn(socket_conn&& o) noexcept;
    socket_conn& operator=(socket_conn&& o) noexcept;
    socket_conn(const socket_conn&) = delete;
    socket_conn& operator=(const socket_conn&) = delete;

    // Resolves host (a name or an address) and connects to the first address that answers.
    static std::string connect_to(const std::string& host, int port, uint64_t deadline_ns, const volatile int32_t* cancel,
                                  socket_conn* out);

    int fd() const { return fd_; }
    const std::string& peer() const { return peer_; }
    bool valid() const { return fd_ >= 0; }
    void close_now();

    std::string send_all(const void* data, size_t bytes, uint64_t deadline_ns, const volatile int32_t* cancel);
    std::string recv_all(void* data, size_t bytes, uint64_t deadline_ns, const volatile int32_t* cancel);
    std::string send_msg(msg type, const payload& body, uint64_t deadline_ns, const volatile int32_t* cancel);
    // Reads one message; garbage (a bad magic, version or length) is an error naming what came.
    std::string recv_msg(msg* type, payload* body, uint64_t deadline_ns, const volatile int32_t* cancel);
    // Reads one message and requires its type: an error message from the peer is its text, any other
    // type is a protocol error naming both.
    std::string expect_msg(msg want, payload* body, uint64_t deadline_ns, const volatile int32_t* cancel);

    // Segments this socket's TCP stack retransmitted so far, and segments it sent (TCP_INFO).
    void tcp_counters(uint64_t* retransmits, uint64_t* segments_out) const;

private:
    int fd_ = -1;
    std::string peer_;
};

// Binds and listens on address:port (an IP address; "" is 127.0.0.1, never every address unless asked;
// port 0 takes a free one). "" with the listening descriptor in *out_fd and the port in *out_port, or
// the reason ("address: 'x' is not an IP address", "cannot bind 10.0.0.1 port 7300: ...").
std::string listen_on(const std::string& address, int port, int backlog, int* out_fd, int* out_port);

// Waits for a connection on a listening descriptor until deadline_ns or *cancel: the accepted
// descriptor, or -1 (timed out, cancelled).
int accept_until(int listen_fd, uint64_t deadline_ns, const volatile int32_t* cancel);

// "10.0.0.2:41234" for an accepted or connected socket's peer.
std::string peer_name(int fd);

const char* msg_name(msg type);

}  // namespace kiln::net
