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

// What SMBIOS says about memory and sockets (parse_smbios reads a raw structure table).
struct smbios_memory {
    int dimms = 0;                // type 17 devices with memory installed
    int dimms_without_speed = 0;  // of which no speed is known (virtual machines)
    uint32_t speed_mts = 0;       // the slowest configured (else rated) speed, MT/s
    int data_width_bits = 0;      // the narrowest data width (64 for DDR4 and DDR5 DIMMs)
    std::string memory_type;      // "DDR5" ...
    int sockets = 0;              // type 4 processors whose socket is populated
    std::string cpu_model;        // the first one's version string
};
smbios_memory parse_smbios(const uint8_t* table, size_t bytes);
// Memory channels per socket of a CPU model ("Intel(R) Xeon(R) Platinum 8480+" -> 8); 0 when unknown.
int memory_channels_per_socket(const std::string& model);

struct memory_peak {
    double gbps = 0;    // 0: unknown
    std::string basis;  // how it was derived, or "peak unknown: why"
};
// From ROOT/sys/firmware/dmi/tables/DMI (ROOT "" for the machine); proc_model names the CPU when
// SMBIOS does not.
memory_peak derive_memory_peak(const std::string& root, const std::string& proc_model);
// KILN_SYSFS_ROOT, or "" (the machine itself).
std::string machine_root();

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
    memory_peak memory;
};

// Reads /proc and /sys once; the topology is always the machine it runs on (KILN_SYSFS_ROOT moves
// only the SMBIOS table that memory_peak comes from, for tests).
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
