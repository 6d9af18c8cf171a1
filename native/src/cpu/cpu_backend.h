// cpu_backend.h - what the cpu backend's sources share: the machine's topology, pinned worker
// threads with a barrier, and the test entry points (the serialized sink is kiln_host_util.h's).
#pragma once

#include "../core/kiln_internal.h"

#include <atomic>
#include <cstdint>
#include <functional>
#include <mutex>
#include <pthread.h>
#include <string>
#include <vector>

namespace kiln::cpu {

struct topology {
    std::string model;
    std::string machine_id;
    std::vector<int> cpus;  // allowed CPUs, interleaved across NUMA nodes (worker t runs on cpus[t])
    int numa_nodes = 1;
    int threads_per_core = 1;
    uint64_t total_memory_bytes = 0;
    uint64_t last_level_cache_bytes = 0;
    double clock_mhz = 0;
    std::string kernel;
};

// Reads /proc and /sys once; the root can be moved for tests (KILN_SYSFS_ROOT is not used here:
// the cpu backend always describes the machine it runs on).
topology read_topology();
// MemAvailable now, in bytes.
uint64_t available_memory_bytes();

// Runs fn(worker) on `workers` threads, worker t pinned to cpus[t % cpus.size()]; returns when
// all are done. fn may call barrier() to line the workers up.
class worker_team {
public:
    worker_team(int workers, const std::vector<int>& cpus);
    ~worker_team();
    worker_team(const worker_team&) = delete;
    worker_team& operator=(const worker_team&) = delete;
    void run(const std::function<void(int worker)>& fn);
    void barrier();
    int size() const { return workers_; }

private:
    int workers_;
    std::vector<int> cpus_;
    pthread_barrier_t barrier_;
};

// Anonymous memory the workers first-touch (so each partition lands on its worker's NUMA node).
class region {
public:
    explicit region(uint64_t bytes);
    ~region();
    region(const region&) = delete;
    region& operator=(const region&) = delete;
    bool ok() const { return data_ != nullptr; }
    uint64_t bytes() const { return bytes_; }
    template <typename T>
    T* as() const { return static_cast<T*>(data_); }

private:
    void* data_ = nullptr;
    uint64_t bytes_ = 0;
};

// [begin, end) of `count` items for worker w of n, boundaries on multiples of `align` items.
void partition(uint64_t count, int n, int w, uint64_t align, uint64_t* begin, uint64_t* end);

int effective_threads(const kiln_test_params* p, const topology& topo);
double now_seconds();

kiln_status run_stream(const topology& topo, const kiln_test_params* p, sink_writer& out,
                       const volatile int32_t* cancel);
kiln_status run_memtest(const topology& topo, const kiln_test_params* p, sink_writer& out,
                        const volatile int32_t* cancel);
kiln_status run_gemm(const topology& topo, const kiln_test_params* p, sink_writer& out, const volatile int32_t* cancel);
kiln_status run_power(const topology& topo, const kiln_test_params* p, sink_writer& out, const volatile int32_t* cancel);
// Bytes stream would allocate (three arrays) and memtest would test, after defaults.
uint64_t stream_array_bytes(const kiln_test_params* p, const topology& topo);
uint64_t memtest_region_bytes(const kiln_test_params* p);
// gemm's n after defaults; the kiln_dtype bits power burns after defaults (fp64 and fp32).
uint64_t gemm_matrix_n(const kiln_test_params* p);
uint32_t power_dtype_mask(const kiln_test_params* p);

}  // namespace kiln::cpu
