// net_socket.cpp - sockets with deadlines and the framed control messages of the probe protocol.
#include "net_socket.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <linux/tcp.h>  // tcp_info with tcpi_segs_out (glibc's copy lacks it)
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <ctime>

namespace kiln::net {

uint64_t now_ns() {
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
}

double percentile(const std::vector<double>& sorted, double q) {
    if (sorted.empty()) return 0;
    const size_t rank = static_cast<size_t>(std::ceil(q * static_cast<double>(sorted.size())));
    return sorted[std::min(sorted.size() - 1, rank == 0 ? 0 : rank - 1)];
}

namespace {

constexpr uint64_t k_slice_ns = 100000000ull;  // cancel is polled this often while waiting

// Waits until fd is ready for events, the deadline passes or cancel is set. "" when ready.
std::string wait_ready(int fd, short events, uint64_t deadline_ns, const volatile int32_t* cancel, const char* what) {
    for (;;) {
        if (cancel && *cancel) return "cancelled";
        const uint64_t now = now_ns();
        if (now >= deadline_ns) return std::string("timed out waiting to ") + what;
        const uint64_t left = deadline_ns - now;
        pollfd p{fd, events, 0};
        const int ms = static_cast<int>((left < k_slice_ns ? left : k_slice_ns) / 1000000ull) + 1;
        const int n = poll(&p, 1, ms);
        if (n < 0) {
            if (errno == EINTR) continue;
            return std::string("poll: ") + strerror(errno);
        }
        if (n > 0) return "";
    }
}

void put_be32(uint8_t* p, uint32_t v) {
    p[0] = static_cast<uint8_t>(v >> 24);
    p[1] = static_cast<uint8_t>(v >> 16);
    p[2] = static_cast<uint8_t>(v >> 8);
    p[3] = static_cast<uint8_t>(v);
}
uint32_t get_be32(const uint8_t* p) {
    return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | uint32_t{p[3]};
}

}  // namespace

payload& payload::u32(uint32_t v) {
    uint8_t b[4];
    put_be32(b, v);
    bytes_.insert(bytes_.end(), b, b + 4);
    return *this;
}
payload& payload::u64(uint64_t v) {
    u32(static_cast<uint32_t>(v >> 32));
    return u32(static_cast<uint32_t>(v));
}
payload& payload::text(const std::string& s) {
    bytes_.insert(bytes_.end(), s.begin(), s.end());
    return *this;
}
payload& payload::raw(const void* data, size_t bytes) {
    const auto* p = static_cast<const uint8_t*>(data);
    bytes_.insert(bytes_.end(), p, p + bytes);
    return *this;
}
bool payload::get_raw(void* data, size_t bytes) {
    if (read_ + bytes > bytes_.size()) return false;
    memcpy(data, bytes_.data() + read_, bytes);
    read_ += bytes;
    return true;
}
bool payload::get_u32(uint32_t* v) {
    if (read_ + 4 > bytes_.size()) return false;
    *v = get_be32(bytes_.data() + read_);
    read_ += 4;
    return true;
}
bool payload::get_u64(uint64_t* v) {
    uint32_t hi = 0, lo = 0;
    if (!get_u32(&hi) || !get_u32(&lo)) return false;
    *v = (uint64_t{hi} << 32) | lo;
    return true;
}
std::string payload::rest_as_text() const {
    std::string s(bytes_.begin() + static_cast<std::ptrdiff_t>(read_), bytes_.end());
    for (char& c : s)
        if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) > 0x7e) c = '?';
    return s;
}

socket_conn::socket_conn(int fd, std::string peer) : fd_(fd), peer_(std::move(peer)) {}
socket_conn::~socket_conn() { close_now(); }
socket_conn::socket_conn(socket_conn&& o) noexcept : fd_(o.fd_), peer_(std::move(o.peer_)) { o.fd_ = -1; }
socket_conn& socket_conn::operator=(socket_conn&& o) noexcept {
    if (this != &o) {
        close_now();
        fd_ = o.fd_;
        peer_ = std::move(o.peer_);
        o.fd_ = -1;
    }
    return *this;
}
void socket_conn::close_now() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
}

std::string peer_name(int fd) {
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    if (getpeername(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return "?";
    char host[NI_MAXHOST] = {0}, port[NI_MAXSERV] = {0};
    if (getnameinfo(reinterpret_cast<sockaddr*>(&ss), len, host, sizeof host, port, sizeof port, NI_NUMERICHOST | NI_NUMERICSERV) != 0)
        return "?";
    return ss.ss_family == AF_INET6 ? "[" + std::string(host) + "]:" + port : std::string(host) + ":" + port;
}

std::string listen_on(const std::string& address, int port, int backlog, int* out_fd, int* out_port) {
    *out_fd = -1;
    if (port < 0 || port > 65535) return "port: " + std::to_string(port) + " is outside 0..65535";
    const std::string where = address.empty() ? "127.0.0.1" : address;
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICHOST | AI_PASSIVE;
    addrinfo* list = nullptr;
    if (const int rc = getaddrinfo(where.c_str(), std::to_string(port).c_str(), &hints, &list); rc != 0)
        return "address: '" + where + "' is not an IP address (" + gai_strerror(rc) + ")";
    const int fd = socket(list->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        freeaddrinfo(list);
        return std::string("socket: ") + strerror(errno);
    }
    const int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    const int rc = bind(fd, list->ai_addr, list->ai_addrlen);
    freeaddrinfo(list);
    if (rc != 0 || listen(fd, backlog) != 0) {
        const std::string why = "cannot bind " + where + " port " + std::to_string(port) + ": " + strerror(errno);
        ::close(fd);
        return why;
    }
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len);
    *out_port = ntohs(ss.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port
                                               : reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
    *out_fd = fd;
    return "";
}

int accept_until(int listen_fd, uint64_t deadline_ns, const volatile int32_t* cancel) {
    for (;;) {
        if (cancel && *cancel) return -1;
        const uint64_t now = now_ns();
        if (now >= deadline_ns) return -1;
        const int wait_ms = static_cast<int>(std::min<uint64_t>(100, (deadline_ns - now) / 1000000 + 1));
        pollfd pf{listen_fd, POLLIN, 0};
        if (poll(&pf, 1, wait_ms) > 0) {
            const int fd = accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC);
            if (fd >= 0) return fd;
        }
    }
}

std::string socket_conn::connect_to(const std::string& host, int port, uint64_t deadline_ns, const volatile int32_t* cancel,
                                    socket_conn* out) {
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* list = nullptr;
    const std::string service = std::to_string(port);
    if (const int rc = getaddrinfo(host.c_str(), service.c_str(), &hints, &list); rc != 0)
        return "cannot resolve " + host + ": " + gai_strerror(rc);
    std::string last = "no address for " + host;
    for (addrinfo* a = list; a; a = a->ai_next) {
        const int fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, a->ai_protocol);
        if (fd < 0) {
            last = std::string("socket: ") + strerror(errno);
            continue;
        }
        socket_conn conn(fd);
        if (connect(fd, a->ai_addr, a->ai_addrlen) != 0 && errno != EINPROGRESS) {
            last = "connect to " + host + ":" + service + ": " + strerror(errno);
            continue;
        }
        if (std::string why = wait_ready(fd, POLLOUT, deadline_ns, cancel, "connect"); !why.empty()) {
            last = "connect to " + host + ":" + service + ": " + why;
            continue;
        }
        int err = 0;
        socklen_t len = sizeof err;
        getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
        if (err != 0) {
            last = "connect to " + host + ":" + service + ": " + strerror(err);
            continue;
        }
        // Blocking from here; every wait goes through poll with the caller's deadline.
        fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
        const int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        conn.peer_ = peer_name(fd);
        *out = std::move(conn);
        freeaddrinfo(list);
        return "";
    }
    freeaddrinfo(list);
    return last;
}

std::string socket_conn::send_all(const void* data, size_t bytes, uint64_t deadline_ns, const volatile int32_t* cancel) {
    const auto* p = static_cast<const uint8_t*>(data);
    while (bytes > 0) {
        const ssize_t n = ::send(fd_, p, bytes, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n > 0) {
            p += n;
            bytes -= static_cast<size_t>(n);
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            if (std::string why = wait_ready(fd_, POLLOUT, deadline_ns, cancel, "send to the peer"); !why.empty()) return why;
            continue;
        }
        return std::string("send to the peer: ") + (n < 0 ? strerror(errno) : "nothing sent");
    }
    return "";
}

std::string socket_conn::recv_all(void* data, size_t bytes, uint64_t deadline_ns, const volatile int32_t* cancel) {
    auto* p = static_cast<uint8_t*>(data);
    while (bytes > 0) {
        const ssize_t n = ::recv(fd_, p, bytes, MSG_DONTWAIT);
        if (n > 0) {
            p += n;
            bytes -= static_cast<size_t>(n);
            continue;
        }
        if (n == 0) return "the peer closed the connection";
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            if (std::string why = wait_ready(fd_, POLLIN, deadline_ns, cancel, "hear from the peer"); !why.empty()) return why;
            continue;
        }
        return std::string("receive from the peer: ") + strerror(errno);
    }
    return "";
}

std::string socket_conn::send_msg(msg type, const payload& body, uint64_t deadline_ns, const volatile int32_t* cancel) {
    std::vector<uint8_t> frame(12);
    put_be32(frame.data(), k_magic);
    put_be32(frame.data() + 4, (uint32_t{k_version} << 16) | static_cast<uint16_t>(type));
    put_be32(frame.data() + 8, static_cast<uint32_t>(body.bytes().size()));
    frame.insert(frame.end(), body.bytes().begin(), body.bytes().end());
    return send_all(frame.data(), frame.size(), deadline_ns, cancel);
}

std::string socket_conn::recv_msg(msg* type, payload* body, uint64_t deadline_ns, const volatile int32_t* cancel) {
    uint8_t header[12];
    if (std::string why = recv_all(header, sizeof header, deadline_ns, cancel); !why.empty()) return why;
    const uint32_t magic = get_be32(header);
    if (magic != k_magic) {
        char hex[64];
        snprintf(hex, sizeof hex, "%02x %02x %02x %02x", header[0], header[1], header[2], header[3]);
        return std::string("the peer sent garbage, not the kiln probe protocol (first bytes ") + hex + ")";
    }
    const uint32_t word = get_be32(header + 4);
    const uint16_t version = static_cast<uint16_t>(word >> 16);
    if (version != k_version)
        return "the peer speaks probe protocol version " + std::to_string(version) + ", this kiln " + std::to_string(k_version);
    const uint32_t length = get_be32(header + 8);
    if (length > k_max_payload)
        return "the peer sent a message of " + std::to_string(length) + " bytes, more than the protocol's " +
               std::to_string(k_max_payload);
    std::vector<uint8_t> bytes(length);
    if (length > 0)
        if (std::string why = recv_all(bytes.data(), length, deadline_ns, cancel); !why.empty()) return why;
    *type = static_cast<msg>(word & 0xffffu);
    *body = payload(std::move(bytes));
    return "";
}

std::string socket_conn::expect_msg(msg want, payload* body, uint64_t deadline_ns, const volatile int32_t* cancel) {
    msg got{};
    if (std::string why = recv_msg(&got, body, deadline_ns, cancel); !why.empty()) return why;
    if (got == want) return "";
    if (got == msg::error) return "the peer reported: " + body->rest_as_text();
    if (got == msg::busy) return "the peer is busy: " + body->rest_as_text();
    return std::string("protocol error: expected ") + msg_name(want) + ", the peer sent " + msg_name(got);
}

void socket_conn::tcp_counters(uint64_t* retransmits, uint64_t* segments_out) const {
    tcp_info info{};
    socklen_t len = sizeof info;
    *retransmits = 0;
    *segments_out = 0;
    if (getsockopt(fd_, IPPROTO_TCP, TCP_INFO, &info, &len) != 0) return;
    *retransmits = info.tcpi_total_retrans;
    *segments_out = info.tcpi_segs_out;
}

const char* msg_name(msg type) {
    switch (type) {
    case msg::hello: return "hello";
    case msg::welcome: return "welcome";
    case msg::busy: return "busy";
    case msg::error: return "error";
    case msg::attach: return "attach";
    case msg::ready: return "ready";
    case msg::phase: return "phase";
    case msg::phase_end: return "phase_end";
    case msg::phase_result: return "phase_result";
    case msg::bye: return "bye";
    case msg::coll_join: return "coll_join";
    case msg::coll_id: return "coll_id";
    }
    return "an unknown message";
}

}  // namespace kiln::net
