// test_net.cpp - the TCP probe on loopback: it measures, every name it emits is in the catalog, and
// every peer fault (unreachable, garbage, silence, a stop mid-test, busy) is KILN_PEER_ERROR with
// the reason within its deadline, never a hang.
#include "test_support.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <cstring>
#include <fstream>
#include <functional>
#include <string>
#include <thread>

namespace {

std::string error_text() {
    char buf[1024];
    kiln_last_error(buf, sizeof buf);
    return buf;
}

double seconds_since(std::chrono::steady_clock::time_point t) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

kiln_net_params quick_params() {
    kiln_net_params p;
    kiln_net_params_init(&p);
    p.streams = 2;
    p.duration_ms = 300;
    p.latency_duration_ms = 200;
    p.timeout_ms = 1500;
    return p;
}

// A kiln server on a free loopback port, served from a thread until the test ends.
struct served {
    kiln_net_server* server = nullptr;
    volatile int32_t cancel = 0;
    std::thread thread;
    std::vector<std::string> log;
    std::mutex log_mutex;
    kiln_status status = KILN_INTERNAL;

    explicit served(int32_t max_sessions = 0) {
        EXPECT_EQ(kiln_net_server_create(nullptr, 0, &server), KILN_OK) << error_text();
        thread = std::thread([this, max_sessions] {
            const kiln_net_log l{this, &on_text};
            status = kiln_net_server_run(server, max_sessions, &l, &cancel);
        });
    }
    ~served() { stop(); }
    void stop() {
        cancel = 1;
        if (thread.joinable()) thread.join();
        kiln_net_server_destroy(server);
        server = nullptr;
    }
    int32_t port() const { return kiln_net_server_port(server); }
    static void on_text(void* ctx, const char* text) {
        auto* self = static_cast<served*>(ctx);
        std::lock_guard<std::mutex> lock(self->log_mutex);
        self->log.emplace_back(text);
    }
};

// A listener that does what `behave` says with each connection: a peer that is not a kiln server.
struct fake_peer {
    int fd = -1;
    int32_t port = 0;
    std::thread thread;
    std::atomic<bool> stop{false};

    explicit fake_peer(std::function<void(int)> behave) {
        fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        EXPECT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
        EXPECT_EQ(listen(fd, 8), 0);
        socklen_t len = sizeof a;
        getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
        port = ntohs(a.sin_port);
        thread = std::thread([this, behave] {
            const int c = accept(fd, nullptr, nullptr);
            if (c >= 0) {
                behave(c);
                while (!stop) std::this_thread::sleep_for(std::chrono::milliseconds(20));
                close(c);
            }
        });
    }
    ~fake_peer() {
        stop = true;
        shutdown(fd, SHUT_RDWR);
        if (thread.joinable()) thread.join();
        close(fd);
    }
};

bool in_tcp_catalog(const std::string& name) {
    for (int32_t i = 0; i < kiln_metric_count(); ++i) {
        kiln_metric_info m;
        kiln_metric_at(i, &m);
        if (std::string(m.test) == "tcp" && name == m.name && (m.backends & KILN_BACKEND_NET)) return true;
    }
    return false;
}

}  // namespace

TEST(NetProbe, MeasuresBothWaysAndLatencyOnLoopback) {
    served s;
    recording_sink rec;
    kiln_net_params p = quick_params();
    ASSERT_EQ(kiln_net_probe("127.0.0.1", s.port(), &p, &rec.sink, nullptr), KILN_OK) << error_text();
    for (const char* name : {"send_gbits", "recv_gbits", "send_stream_gbits_min", "recv_stream_gbits_min"})
        EXPECT_GT(rec.last(name), 0.1) << name;
    EXPECT_EQ(rec.last("streams"), 2);
    EXPECT_GT(rec.last("rtt_samples"), 10);
    EXPECT_GT(rec.last("rtt_us_min"), 0);
    EXPECT_LE(rec.last("rtt_us_min"), rec.last("rtt_us_median"));
    EXPECT_LE(rec.last("rtt_us_median"), rec.last("rtt_us_p99"));
    EXPECT_LE(rec.last("rtt_us_p99"), rec.last("rtt_us_p999"));
    EXPECT_LE(rec.last("rtt_us_p999"), rec.last("rtt_us_max"));
    EXPECT_GE(rec.last("send_retransmits"), 0);
    for (const auto& [name, value] : rec.metrics)
        EXPECT_TRUE(in_tcp_catalog(name)) << "tcp emits '" << name << "', which native/src/core/metrics.cpp does not declare";
}

TEST(NetProbe, OnlyThePhasesAsked) {
    served s;
    recording_sink rec;
    kiln_net_params p = quick_params();
    p.phase_mask = KILN_NET_LATENCY;
    p.latency_samples = 50;
    ASSERT_EQ(kiln_net_probe("127.0.0.1", s.port(), &p, &rec.sink, nullptr), KILN_OK) << error_text();
    EXPECT_EQ(rec.count("send_gbits"), 0);
    EXPECT_EQ(rec.last("rtt_samples"), 50);
}

TEST(NetProbe, ServesOneClientAfterAnother) {
    served s;
    for (int i = 0; i < 2; ++i) {
        recording_sink rec;
        kiln_net_params p = quick_params();
        p.phase_mask = KILN_NET_LATENCY;
        p.latency_samples = 20;
        EXPECT_EQ(kiln_net_probe("127.0.0.1", s.port(), &p, &rec.sink, nullptr), KILN_OK) << error_text();
    }
}

TEST(NetProbe, UnreachablePeerFailsWithTheReason) {
    // A port that was free a moment ago: nothing listens there.
    int32_t port = 0;
    {
        fake_peer closed([](int) {});
        port = closed.port;
    }
    kiln_net_params p = quick_params();
    const auto t0 = std::chrono::steady_clock::now();
    EXPECT_EQ(kiln_net_probe("127.0.0.1", port, &p, nullptr, nullptr), KILN_PEER_ERROR);
    EXPECT_NE(error_text().find("connect"), std::string::npos) << error_text();
    EXPECT_LT(seconds_since(t0), 2.0);
}

TEST(NetProbe, UnresolvableHostFailsWithTheReason) {
    kiln_net_params p = quick_params();
    EXPECT_EQ(kiln_net_probe("no-such-host.invalid", 7777, &p, nullptr, nullptr), KILN_PEER_ERROR);
    EXPECT_NE(error_text().find("cannot resolve no-such-host.invalid"), std::string::npos) << error_text();
}

TEST(NetProbe, GarbageFromThePeerFails) {
    fake_peer web([](int c) {
        const char reply[] = "HTTP/1.1 400 Bad Request\r\n\r\n";
        send(c, reply, sizeof reply - 1, MSG_NOSIGNAL);
    });
    kiln_net_params p = quick_params();
    EXPECT_EQ(kiln_net_probe("127.0.0.1", web.port, &p, nullptr, nullptr), KILN_PEER_ERROR);
    EXPECT_NE(error_text().find("garbage"), std::string::npos) << error_text();
    EXPECT_NE(error_text().find("48 54 54 50"), std::string::npos) << "names the bytes that came: " << error_text();
}

TEST(NetProbe, SilentPeerTimesOutWithinTheTimeout) {
    fake_peer mute([](int) {});
    kiln_net_params p = quick_params();
    p.timeout_ms = 500;
    const auto t0 = std::chrono::steady_clock::now();
    EXPECT_EQ(kiln_net_probe("127.0.0.1", mute.port, &p, nullptr, nullptr), KILN_PEER_ERROR);
    const double took = seconds_since(t0);
    EXPECT_NE(error_text().find("timed out"), std::string::npos) << error_text();
    EXPECT_GE(took, 0.45);
    EXPECT_LT(took, 2.0);
}

TEST(NetProbe, PeerStoppingMidTestFailsWithinTheDeadline) {
    auto s = std::make_unique<served>();
    kiln_net_params p = quick_params();
    p.duration_ms = 3000;
    p.timeout_ms = 1000;
    std::thread stopper([&] {
        std::this_thread::sleep_for(std::chrono::milliseconds(500));
        s->stop();  // the server goes away in the middle of the send phase
    });
    const auto t0 = std::chrono::steady_clock::now();
    const kiln_status st = kiln_net_probe("127.0.0.1", s->port(), &p, nullptr, nullptr);
    const double took = seconds_since(t0);
    stopper.join();
    EXPECT_EQ(st, KILN_PEER_ERROR);
    EXPECT_NE(error_text().find("send phase"), std::string::npos) << error_text();
    EXPECT_LT(took, 3.0 + 1.0 + 1.0) << "duration + timeout + slack";
}

TEST(NetProbe, ServerRefusesASecondClientWhileATestRuns) {
    served s;
    kiln_net_params first = quick_params();
    first.duration_ms = 1500;
    kiln_status first_status = KILN_INTERNAL;
    std::thread running([&] { first_status = kiln_net_probe("127.0.0.1", s.port(), &first, nullptr, nullptr); });
    std::this_thread::sleep_for(std::chrono::milliseconds(400));
    kiln_net_params second = quick_params();
    EXPECT_EQ(kiln_net_probe("127.0.0.1", s.port(), &second, nullptr, nullptr), KILN_PEER_ERROR);
    EXPECT_NE(error_text().find("busy"), std::string::npos) << error_text();
    running.join();
    EXPECT_EQ(first_status, KILN_OK) << "the running test is not disturbed";
    std::lock_guard<std::mutex> lock(s.log_mutex);
    bool refused = false;
    for (const auto& line : s.log) refused |= line.find("refused") != std::string::npos;
    EXPECT_TRUE(refused);
}

TEST(NetProbe, ServerBindsLoopbackUnlessToldOtherwise) {
    kiln_net_server* server = nullptr;
    ASSERT_EQ(kiln_net_server_create(nullptr, 0, &server), KILN_OK);
    // The kernel's table of TCP sockets says where it listens: 127.0.0.1 (0100007F), not 0.0.0.0.
    const int32_t port = kiln_net_server_port(server);
    ASSERT_GT(port, 0);
    std::ifstream table("/proc/net/tcp");
    char local[32];
    snprintf(local, sizeof local, ":%04X", static_cast<unsigned>(port));
    std::string line, bound;
    while (std::getline(table, line))
        if (line.find(local) != std::string::npos && line.find(" 0A ") != std::string::npos) bound = line;  // 0A: LISTEN
    EXPECT_NE(bound.find("0100007F" + std::string(local)), std::string::npos) << bound;
    kiln_net_server_destroy(server);
    ASSERT_EQ(kiln_net_server_create("0.0.0.0", 0, &server), KILN_OK) << "every address, when asked";
    kiln_net_server_destroy(server);
    EXPECT_EQ(kiln_net_server_create("not-an-address", 0, &server), KILN_INVALID_ARGUMENT);
    EXPECT_NE(error_text().find("not-an-address"), std::string::npos);
    EXPECT_EQ(kiln_net_server_create("127.0.0.1", 70000, &server), KILN_INVALID_ARGUMENT);
    kiln_net_server_destroy(nullptr);
}

TEST(NetProbe, BadParametersNameTheField) {
    kiln_net_params p = quick_params();
    p.streams = 0;
    EXPECT_EQ(kiln_net_probe("127.0.0.1", 1, &p, nullptr, nullptr), KILN_INVALID_ARGUMENT);
    EXPECT_NE(error_text().find("streams"), std::string::npos);
    p = quick_params();
    p.message_bytes = 10;
    EXPECT_EQ(kiln_net_probe("127.0.0.1", 1, &p, nullptr, nullptr), KILN_INVALID_ARGUMENT);
    EXPECT_NE(error_text().find("message_bytes"), std::string::npos);
    EXPECT_EQ(kiln_net_probe("127.0.0.1", 0, &p, nullptr, nullptr), KILN_INVALID_ARGUMENT);
}

TEST(NetProbe, CancelStopsTheProbeSoon) {
    served s;
    kiln_net_params p = quick_params();
    p.duration_ms = 10000;
    volatile int32_t cancel = 0;
    std::thread stopper([&] {
        std::this_thread::sleep_for(std::chrono::milliseconds(300));
        cancel = 1;
    });
    const auto t0 = std::chrono::steady_clock::now();
    EXPECT_EQ(kiln_net_probe("127.0.0.1", s.port(), &p, nullptr, &cancel), KILN_CANCELLED);
    EXPECT_LT(seconds_since(t0), 1.5);
    stopper.join();
}

TEST(NetProbe, NetworkTestsAreNotRunOnADevice) {
    kiln_registry* reg = nullptr;
    ASSERT_EQ(kiln_registry_create("/nonexistent", &reg), KILN_OK);
    kiln_device* dev = nullptr;
    ASSERT_EQ(kiln_device_open(reg, "cpu", 0, &dev), KILN_OK);
    kiln_test_params p;
    ASSERT_EQ(kiln_test_params_init(KILN_TEST_TCP, &p), KILN_OK);
    EXPECT_EQ(kiln_run(dev, &p, nullptr, nullptr), KILN_UNSUPPORTED);
    EXPECT_NE(error_text().find("network test"), std::string::npos);
    kiln_device_destroy(dev);
    kiln_registry_destroy(reg);
}

// ---- RDMA probe: what runs without an HCA --------------------------------------------------------
#include "net/rdma_plugin.h"

TEST(RdmaProbe, ANodeWithoutTheRdmaStackSaysWhy) {
    kiln_rdma* rdma = nullptr;
    EXPECT_EQ(kiln_rdma_open("/nonexistent", &rdma), KILN_UNSUPPORTED);
    EXPECT_EQ(rdma, nullptr);
    EXPECT_NE(error_text().find("no RDMA probe"), std::string::npos) << error_text();
    EXPECT_NE(error_text().find("libkiln-rdma.so"), std::string::npos) << error_text();
    kiln_rdma_destroy(nullptr);
}

TEST(RdmaProbe, ThePluginLoadsAndReportsNoDevicesCleanly) {
    if (!KILN_BUILT_RDMA) GTEST_SKIP() << "libibverbs-dev is not installed: libkiln-rdma.so is not built";
    kiln_rdma* rdma = nullptr;
    const kiln_status st = kiln_rdma_open(KILN_PLUGIN_BUILD_DIR, &rdma);
    if (st == KILN_OK) {
        // A node with an HCA: every port says what it is.
        ASSERT_GT(kiln_rdma_port_count(rdma), 0);
        kiln_rdma_port_info info;
        ASSERT_EQ(kiln_rdma_port_at(rdma, 0, &info), KILN_OK);
        EXPECT_GE(info.port, 1);
        EXPECT_NE(std::string(info.device), "");
        EXPECT_EQ(kiln_rdma_port_at(rdma, kiln_rdma_port_count(rdma), &info), KILN_NOT_FOUND);
        kiln_rdma_destroy(rdma);
        return;
    }
    EXPECT_EQ(st, KILN_UNSUPPORTED);
    EXPECT_NE(error_text().find("no RDMA devices"), std::string::npos) << error_text();
}

TEST(RdmaProbe, TheRdmaPluginIsNotTakenForABackend) {
    if (!KILN_BUILT_RDMA) GTEST_SKIP() << "libkiln-rdma.so is not built";
    kiln_registry* reg = nullptr;
    ASSERT_EQ(kiln_registry_create(KILN_PLUGIN_BUILD_DIR, &reg), KILN_OK);
    for (int32_t i = 0; i < kiln_registry_skip_count(reg); ++i) {
        kiln_plugin_skip skip;
        kiln_registry_skip_info(reg, i, &skip);
        EXPECT_EQ(std::string(skip.path).find("libkiln-rdma.so"), std::string::npos) << skip.reason;
    }
    kiln_registry_destroy(reg);
}

TEST(RdmaProbe, ParametersAreCheckedWithTheFieldNamed) {
    kiln_rdma_params p;
    ASSERT_EQ(kiln_rdma_params_init(&p), KILN_OK);
    EXPECT_EQ(kiln::rdma::check_params(p), "");
    EXPECT_EQ(p.max_message_bytes, 8u << 20);
    p.min_message_bytes = 3;
    EXPECT_NE(kiln::rdma::check_params(p).find("powers of two"), std::string::npos);
    kiln_rdma_params_init(&p);
    p.queue_depth = 0;
    EXPECT_NE(kiln::rdma::check_params(p).find("queue_depth"), std::string::npos);
    kiln_rdma_params_init(&p);
    p.min_message_bytes = 1u << 20;
    p.max_message_bytes = 1u << 10;
    EXPECT_NE(kiln::rdma::check_params(p).find("larger than max_message_bytes"), std::string::npos);
}

TEST(RdmaProbe, TheSweepDoublesFromMinToMax) {
    EXPECT_EQ(kiln::rdma::message_sizes(2, 16), (std::vector<uint64_t>{2, 4, 8, 16}));
    EXPECT_EQ(kiln::rdma::message_sizes(8u << 20, 8u << 20), (std::vector<uint64_t>{8u << 20}));
    EXPECT_EQ(kiln::rdma::message_sizes(2, 8u << 20).size(), 23u);  // ib_write_bw -a: 2 B .. 8 MiB
}

TEST(RdmaProbe, TheQueuePairRecordSurvivesTheSideChannel) {
    kiln::rdma::qp_endpoint a;
    a.lid = 17;
    a.qpn = 0xabcdef;
    a.psn = 0x123456;
    a.mtu_bytes = 4096;
    a.rkey = 0xdeadbeef;
    a.addr = 0x7f0012345678ull;
    for (int i = 0; i < 16; ++i) a.gid[i] = static_cast<uint8_t>(0xf0 + i);
    kiln::net::payload wire(a.encode().bytes());
    kiln::rdma::qp_endpoint b;
    ASSERT_TRUE(b.decode(wire));
    EXPECT_EQ(b.lid, 17u);
    EXPECT_EQ(b.qpn, 0xabcdefu);
    EXPECT_EQ(b.psn, 0x123456u);
    EXPECT_EQ(b.rkey, 0xdeadbeefu);
    EXPECT_EQ(b.addr, 0x7f0012345678ull);
    EXPECT_EQ(memcmp(a.gid, b.gid, 16), 0);
    // A short record from the peer is garbage, not a queue pair.
    std::vector<uint8_t> cut = a.encode().bytes();
    cut.resize(cut.size() - 1);
    kiln::net::payload short_wire(cut);
    EXPECT_FALSE(b.decode(short_wire));
}

TEST(RdmaProbe, LinkRatesAsIbstatSaysThem) {
    EXPECT_DOUBLE_EQ(kiln::rdma::link_rate_gbits(2, 128), 400.0);  // 4X NDR
    EXPECT_DOUBLE_EQ(kiln::rdma::link_rate_gbits(2, 64), 200.0);   // 4X HDR
    EXPECT_DOUBLE_EQ(kiln::rdma::link_rate_gbits(2, 32), 100.0);   // 4X EDR
    EXPECT_DOUBLE_EQ(kiln::rdma::link_rate_gbits(1, 32), 25.0);    // 1X EDR
    EXPECT_DOUBLE_EQ(kiln::rdma::link_rate_gbits(3, 32), 0.0);     // an unknown width
}

TEST(RdmaProbe, BothWaysIsZeroOrOne) {
    if (!KILN_BUILT_RDMA) GTEST_SKIP() << "libkiln-rdma.so is not built";
    kiln_rdma* rdma = nullptr;
    if (kiln_rdma_open(KILN_PLUGIN_BUILD_DIR, &rdma) != KILN_OK) GTEST_SKIP() << "no RDMA devices: " << error_text();
    kiln_rdma_params p;
    kiln_rdma_params_init(&p);
    p.bidirectional = 2;
    EXPECT_EQ(kiln_rdma_probe(rdma, "127.0.0.1", 1, &p, nullptr, nullptr), KILN_INVALID_ARGUMENT);
    kiln_rdma_destroy(rdma);
}

TEST(RdmaProbe, PortCountersThatGrewDuringARunAreReported) {
    // A sysfs tree as an HCA's driver lays it out (counters of mlx5_0 port 1).
    const std::string root = testing::TempDir() + "kiln-rdma-sysfs";
    const std::string dir = root + "/sys/class/infiniband/mlx5_0/ports/1/counters/";
    ASSERT_EQ(system(("mkdir -p " + dir).c_str()), 0);
    auto write = [&](const char* name, long v) {
        FILE* f = fopen((dir + name).c_str(), "w");
        ASSERT_NE(f, nullptr);
        fprintf(f, "%ld\n", v);
        fclose(f);
    };
    write("symbol_error", 3);
    write("link_downed", 1);
    const auto before = kiln::rdma::read_port_counters(root, "mlx5_0", 1);
    write("symbol_error", 10);  // the run raised symbol errors; the link stayed up
    const auto after = kiln::rdma::read_port_counters(root, "mlx5_0", 1);
    std::vector<std::pair<std::string, double>> got;
    kiln::rdma::emit_counter_deltas(before, after, [&](const std::string& n, double v) { got.emplace_back(n, v); });
    EXPECT_EQ(got, (std::vector<std::pair<std::string, double>>{{"symbol_error_delta", 7}, {"link_downed_delta", 0}}))
        << "counters the port lacks are left out, not reported as 0";
    for (const auto& [name, value] : got) {
        bool declared = false;
        for (int32_t i = 0; i < kiln_metric_count(); ++i) {
            kiln_metric_info m;
            kiln_metric_at(i, &m);
            declared |= std::string(m.test) == "rdma" && name == m.name;
        }
        EXPECT_TRUE(declared) << name << " is not in the metric catalog";
    }
    system(("rm -rf " + root).c_str());
}

TEST(NetProbe, PercentilesAreNearestRankOverEverySample) {
    std::vector<double> v;
    for (int i = 1; i <= 1000; ++i) v.push_back(i);
    EXPECT_EQ(kiln::net::percentile(v, 0.5), 500);
    EXPECT_EQ(kiln::net::percentile(v, 0.99), 990);
    EXPECT_EQ(kiln::net::percentile(v, 0.999), 999);
    EXPECT_EQ(kiln::net::percentile({7}, 0.999), 7);
    EXPECT_EQ(kiln::net::percentile({}, 0.5), 0);
    EXPECT_DOUBLE_EQ(kiln::net::gbits(125000000, 1000000000), 1.0);  // 125 MB in 1 s: 1 Gb/s
}
