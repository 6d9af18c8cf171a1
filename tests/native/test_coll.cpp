// test_coll.cpp - collectives through the emulated device's NCCL (the same dlopen seam as libnccl.so.2
// and librccl.so.1): the emulated pair as one communicator, two "processes" (threads) of two ranks
// each meeting through the rendezvous, every op's busbw as nccl-tests defines it, and the
// rendezvous's faults (a process that never comes, one that says it is someone else). On a machine
// with a GPU and NCCL the same checks run on the cuda (or hip) backend's devices.
#include "test_support.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

namespace {

const bool k_emu_configured = [] {
    setenv("KILN_EMU_DEVICES", "2:memory=256MiB", 0);  // the same as test_gpu.cpp: read once per process
    return true;
}();

struct coll_fixture : ::testing::Test {
    kiln_registry* reg = nullptr;
    std::vector<kiln_device*> devices;
    void SetUp() override {
        ASSERT_TRUE(k_emu_configured);
        ASSERT_EQ(kiln_registry_create(KILN_PLUGIN_BUILD_DIR, &reg), KILN_OK);
        for (int i = 0; i < 2; ++i) {
            kiln_device* d = nullptr;
            ASSERT_EQ(kiln_device_open(reg, "emu", i, &d), KILN_OK) << last_error();
            devices.push_back(d);
        }
    }
    void TearDown() override {
        for (kiln_device* d : devices) kiln_device_destroy(d);
        kiln_registry_destroy(reg);
    }
    static std::string last_error() {
        char buf[1024];
        kiln_last_error(buf, sizeof buf);
        return buf;
    }
    static kiln_coll_params small() {
        kiln_coll_params p;
        kiln_coll_params_init(&p);
        p.size_bytes = 4u << 20;
        p.iterations = 3;
        p.warmup_iterations = 1;
        p.timeout_ms = 30000;
        return p;
    }
};

TEST_F(coll_fixture, the_emulated_library_is_found_and_its_version_read) {
    kiln_coll_library_info info;
    ASSERT_EQ(kiln_coll_library(devices[0], &info), KILN_OK) << last_error();
    EXPECT_STREQ(info.name, "emulated NCCL");
    EXPECT_GE(info.version, 21000);
    EXPECT_NE(std::string(info.path).find("libkiln-emu.so"), std::string::npos) << info.path;
}

TEST_F(coll_fixture, the_cpu_backend_says_it_has_no_collectives) {
    kiln_device* cpu = nullptr;
    ASSERT_EQ(kiln_device_open(reg, "cpu", 0, &cpu), KILN_OK);
    kiln_coll_library_info info;
    EXPECT_EQ(kiln_coll_library(cpu, &info), KILN_UNSUPPORTED);
    EXPECT_NE(last_error().find("the cpu backend has no collectives"), std::string::npos) << last_error();
    kiln_device* mixed[2] = {devices[0], cpu};
    recording_sink rec;
    const kiln_coll_params p = small();
    EXPECT_EQ(kiln_coll_run(mixed, 2, &p, &rec.sink, nullptr), KILN_INVALID_ARGUMENT);
    EXPECT_NE(last_error().find("one backend per run"), std::string::npos) << last_error();
    kiln_device_destroy(cpu);
}

TEST_F(coll_fixture, two_devices_run_every_op_verified_with_busbw_as_nccl_tests_define_it) {
    recording_sink rec;
    const kiln_coll_params p = small();
    ASSERT_EQ(kiln_coll_run(devices.data(), 2, &p, &rec.sink, nullptr), KILN_OK) << last_error();
    EXPECT_EQ(rec.last("ranks"), 2);
    EXPECT_EQ(rec.last("size_bytes"), 4u << 20);
    for (const char* op : {"allreduce", "allgather", "reducescatter"}) {
        const std::string k = op;
        const double algbw = rec.last(k + "_algbw_gbps"), busbw = rec.last(k + "_busbw_gbps"), t = rec.last(k + "_time_us");
        ASSERT_GT(algbw, 0) << op;
        EXPECT_NEAR(algbw, (4u << 20) / (t * 1e-6) / 1e9, algbw * 1e-6) << op;
        // n = 2: all-reduce's 2(n-1)/n is 1, the others' (n-1)/n is 1/2.
        EXPECT_NEAR(busbw, algbw * (k == "allreduce" ? 1.0 : 0.5), algbw * 1e-9) << op;
        EXPECT_EQ(rec.last(k + "_errors"), 0) << op;
    }
    EXPECT_TRUE(rec.errors.empty());
    EXPECT_FALSE(rec.any_injected);
}

TEST_F(coll_fixture, one_op_and_a_size_that_is_not_a_whole_number_of_elements_per_rank) {
    recording_sink rec;
    kiln_coll_params p = small();
    p.op_mask = KILN_COLL_ALLGATHER;
    p.size_bytes = (1u << 20) + 6;  // rounded down to a multiple of 4 bytes x 2 ranks
    ASSERT_EQ(kiln_coll_run(devices.data(), 2, &p, &rec.sink, nullptr), KILN_OK) << last_error();
    EXPECT_EQ(rec.last("size_bytes"), 1u << 20);
    EXPECT_GT(rec.last("allgather_busbw_gbps"), 0);
    EXPECT_EQ(rec.count("allreduce_busbw_gbps"), 0);
}

TEST_F(coll_fixture, bad_parameters_name_the_field) {
    recording_sink rec;
    kiln_coll_params p = small();
    p.iterations = 0;
    EXPECT_EQ(kiln_coll_run(devices.data(), 2, &p, &rec.sink, nullptr), KILN_INVALID_ARGUMENT);
    EXPECT_NE(last_error().find("iterations: 0"), std::string::npos) << last_error();
    p = small();
    p.size_bytes = 1ull << 40;
    EXPECT_EQ(kiln_coll_run(devices.data(), 2, &p, &rec.sink, nullptr), KILN_INVALID_ARGUMENT);
    EXPECT_NE(last_error().find("size_bytes:"), std::string::npos) << last_error();
    p = small();
    p.nranks = 4;
    p.first_rank = 3;
    EXPECT_EQ(kiln_coll_run(devices.data(), 2, &p, &rec.sink, nullptr), KILN_INVALID_ARGUMENT);
    EXPECT_NE(last_error().find("first_rank: 3"), std::string::npos) << last_error();
    kiln_device* twice[2] = {devices[0], devices[0]};
    p = small();
    EXPECT_EQ(kiln_coll_run(twice, 2, &p, &rec.sink, nullptr), KILN_INVALID_ARGUMENT);
    EXPECT_NE(last_error().find("given twice"), std::string::npos) << last_error();
}

// Two "processes" of two ranks each: the first makes the id and serves the rendezvous, the second
// joins it; both then run one communicator of four ranks.
TEST_F(coll_fixture, two_processes_meet_at_the_rendezvous_and_run_one_communicator_of_four_ranks) {
    uint8_t id[KILN_COLL_ID_BYTES];
    ASSERT_EQ(kiln_coll_unique_id(devices[0], id, sizeof id), KILN_OK) << last_error();
    // A port that is free now: bind 0, read it, release it.
    int port = 0;
    {
        kiln_net_server* probe = nullptr;
        ASSERT_EQ(kiln_net_server_create("127.0.0.1", 0, &probe), KILN_OK);
        port = kiln_net_server_port(probe);
        kiln_net_server_destroy(probe);
    }
    kiln_coll_rendezvous_result joined{}, served{};
    uint8_t received[KILN_COLL_ID_BYTES] = {0};
    kiln_status join_status = KILN_INTERNAL, join_run = KILN_INTERNAL;
    std::string join_error;
    recording_sink second;
    std::thread other([&] {
        join_status = kiln_coll_rendezvous_join("127.0.0.1", port, 1, 2, 10000, received, sizeof received, &joined, nullptr);
        if (join_status != KILN_OK) {
            join_error = last_error();
            return;
        }
        kiln_coll_params p = small();
        p.nranks = joined.nranks;
        p.first_rank = joined.first_rank;
        memcpy(p.unique_id, received, sizeof received);
        join_run = kiln_coll_run(devices.data(), 2, &p, &second.sink, nullptr);
        if (join_run != KILN_OK) join_error = last_error();
    });
    ASSERT_EQ(kiln_coll_rendezvous_serve("127.0.0.1", port, 2, 2, id, sizeof id, 10000, &served, nullptr), KILN_OK) << last_error();
    EXPECT_EQ(served.nranks, 4);
    EXPECT_EQ(served.first_rank, 0);
    kiln_coll_params p = small();
    p.nranks = served.nranks;
    memcpy(p.unique_id, id, sizeof id);
    recording_sink first;
    const kiln_status st = kiln_coll_run(devices.data(), 2, &p, &first.sink, nullptr);
    const std::string first_error = st == KILN_OK ? "" : last_error();
    other.join();
    ASSERT_EQ(join_status, KILN_OK) << join_error;
    EXPECT_EQ(joined.nranks, 4);
    EXPECT_EQ(joined.first_rank, 2);
    EXPECT_EQ(joined.processes, 2);
    EXPECT_EQ(memcmp(received, id, sizeof id), 0);
    ASSERT_EQ(st, KILN_OK) << first_error;
    ASSERT_EQ(join_run, KILN_OK) << join_error;
    for (recording_sink* rec : {&first, &second}) {
        EXPECT_EQ(rec->last("ranks"), 4);
        // n = 4: 2(n-1)/n = 1.5 and (n-1)/n = 0.75.
        EXPECT_NEAR(rec->last("allreduce_busbw_gbps"), 1.5 * rec->last("allreduce_algbw_gbps"), 1e-6);
        EXPECT_NEAR(rec->last("reducescatter_busbw_gbps"), 0.75 * rec->last("reducescatter_algbw_gbps"), 1e-6);
        EXPECT_EQ(rec->last("allreduce_errors") + rec->last("allgather_errors") + rec->last("reducescatter_errors"), 0);
        EXPECT_TRUE(rec->errors.empty());
    }
}

TEST(coll_rendezvous, a_process_that_never_comes_is_named_within_the_timeout) {
    uint8_t id[KILN_COLL_ID_BYTES] = {1, 2, 3};
    kiln_coll_rendezvous_result r{};
    const auto start = std::chrono::steady_clock::now();
    EXPECT_EQ(kiln_coll_rendezvous_serve("127.0.0.1", 0, 3, 1, id, sizeof id, 700, &r, nullptr), KILN_PEER_ERROR);
    const double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    char buf[512];
    kiln_last_error(buf, sizeof buf);
    EXPECT_NE(std::string(buf).find("1 of 3 processes joined"), std::string::npos) << buf;
    EXPECT_NE(std::string(buf).find("missing processes 1-2"), std::string::npos) << buf;
    EXPECT_LT(took, 3.0);
}

TEST(coll_rendezvous, a_join_with_nobody_serving_fails_within_the_timeout) {
    uint8_t id[KILN_COLL_ID_BYTES];
    kiln_coll_rendezvous_result r{};
    // Port 1 on loopback: nothing listens there (and only root could).
    const auto start = std::chrono::steady_clock::now();
    EXPECT_EQ(kiln_coll_rendezvous_join("127.0.0.1", 1, 1, 1, 800, id, sizeof id, &r, nullptr), KILN_PEER_ERROR);
    const double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    char buf[512];
    kiln_last_error(buf, sizeof buf);
    EXPECT_NE(std::string(buf).find("collectives rendezvous at 127.0.0.1:1"), std::string::npos) << buf;
    EXPECT_LT(took, 3.0);
}

TEST(coll_rendezvous, bad_arguments_are_refused) {
    uint8_t id[KILN_COLL_ID_BYTES] = {0};
    kiln_coll_rendezvous_result r{};
    EXPECT_EQ(kiln_coll_rendezvous_serve("127.0.0.1", 0, 0, 1, id, sizeof id, 100, &r, nullptr), KILN_INVALID_ARGUMENT);
    EXPECT_EQ(kiln_coll_rendezvous_serve("not-an-address", 0, 2, 1, id, sizeof id, 100, &r, nullptr), KILN_INVALID_ARGUMENT);
    EXPECT_EQ(kiln_coll_rendezvous_join("127.0.0.1", 7300, 0, 1, 100, id, sizeof id, &r, nullptr), KILN_INVALID_ARGUMENT);
    EXPECT_EQ(kiln_coll_rendezvous_serve("127.0.0.1", 0, 1, 1, id, 16, 100, &r, nullptr), KILN_INVALID_ARGUMENT);
    // One process alone has nothing to wait for.
    EXPECT_EQ(kiln_coll_rendezvous_serve("127.0.0.1", 0, 1, 4, id, sizeof id, 100, &r, nullptr), KILN_OK);
    EXPECT_EQ(r.nranks, 4);
}

}  // namespace
