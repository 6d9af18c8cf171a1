// cpu_backend.h - what the cpu backend's sources share: the machine's topology, pinned worker
// threads with a barrier, a serialized sink, and the two test entry points.
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

// Serializes the callbacks of a kiln_sink (they may be called from any worker, never
// concurrently) and caps data-error reports while counting every error.
class sink_writer {
public:
    sink_writer(const kiln_sink* sink, const char* test, uint32_t max_error_reports, bool injected);
    void metric(const char* name, double value, const char* unit);
    void data_error(const char* pattern, uint64_t offset_bytes, uint64_t expected, uint64_t actual);
    void progress(double fraction);
    uint64_t errors_counted() const { return errors_.load(); }
    bool injected() const { return injected_; }

private:
    const kiln_sink* sink_;
    const char* test_;
    uint32_t max_reports_;
    bool injected_;
    std::mutex mutex_;
    std::atomic<uint64_t> errors_{0};
    std::vector<std::string> names_;  // keeps metric name strings alive for the callback
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
// Bytes stream would allocate (three arrays) and memtest would test, after defaults.
uint64_t stream_array_bytes(const kiln_test_params* p, const topology& topo);
uint64_t memtest_region_bytes(const kiln_test_params* p);

}  // namespace kiln::cpu
