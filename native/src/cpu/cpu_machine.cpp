// cpu_machine.cpp - the host as the cpu backend sees it: topology from /proc and /sys, pinned
// worker threads and first-touch memory regions.
#include "cpu_backend.h"

#include <sched.h>
#include <sys/mman.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>
#include <thread>

namespace kiln::cpu {
namespace {

std::string read_first_line(const std::string& path) {
    std::ifstream f(path);
    std::string line;
    std::getline(f, line);
    return line;
}

// "0-3,8,10-11" -> {0,1,2,3,8,10,11}
std::vector<int> parse_cpu_list(const std::string& text) {
    std::vector<int> cpus;
    std::stringstream ss(text);
    std::string part;
    while (std::getline(ss, part, ',')) {
        int lo = 0, hi = 0;
        if (sscanf(part.c_str(), "%d-%d", &lo, &hi) == 2) {
            for (int c = lo; c <= hi; ++c) cpus.push_back(c);
        } else if (sscanf(part.c_str(), "%d", &lo) == 1) {
            cpus.push_back(lo);
        }
    }
    return cpus;
}

uint64_t meminfo_kib(const char* key) {
    std::ifstream f("/proc/meminfo");
    std::string line;
    const size_t key_len = strlen(key);
    while (std::getline(f, line))
        if (line.compare(0, key_len, key) == 0 && line.size() > key_len && line[key_len] == ':')
            return strtoull(line.c_str() + key_len + 1, nullptr, 10);
    return 0;
}

uint64_t parse_cache_size(const std::string& text) {
    char unit = 0;
    unsigned long long value = 0;
    if (sscanf(text.c_str(), "%llu%c", &value, &unit) < 1) return 0;
    if (unit == 'K') return value << 10;
    if (unit == 'M') return value << 20;
    if (unit == 'G') return value << 30;
    return value;
}

}  // namespace

topology read_topology() {
    topology t;
    {
        std::ifstream f("/proc/cpuinfo");
        std::string line;
        while (std::getline(f, line)) {
            const size_t colon = line.find(':');
            if (colon == std::string::npos) continue;
            std::string key = line.substr(0, colon);
            key.erase(key.find_last_not_of(" \t") + 1);
            const std::string value = colon + 2 <= line.size() ? line.substr(colon + 2) : "";
            if (t.model.empty() && (key == "model name" || key == "Model" || key == "cpu model")) t.model = value;
            if (t.clock_mhz == 0 && key == "cpu MHz") t.clock_mhz = atof(value.c_str());
        }
        if (t.model.empty()) t.model = "unknown CPU";
    }
    t.machine_id = read_first_line("/etc/machine-id");

    cpu_set_t allowed;
    CPU_ZERO(&allowed);
    sched_getaffinity(0, sizeof allowed, &allowed);
    std::map<int, std::vector<int>> by_node;
    for (int node = 0; node < 4096; ++node) {
        const std::string list = read_first_line("/sys/devices/system/node/node" + std::to_string(node) + "/cpulist");
        if (list.empty()) {
            if (node > 0 && access(("/sys/devices/system/node/node" + std::to_string(node)).c_str(), F_OK) != 0) break;
            continue;
        }
        for (int c : parse_cpu_list(list))
            if (c < CPU_SETSIZE && CPU_ISSET(c, &allowed)) by_node[node].push_back(c);
    }
    if (by_node.empty())
        for (int c = 0; c < CPU_SETSIZE; ++c)
            if (CPU_ISSET(c, &allowed)) by_node[0].push_back(c);
    t.numa_nodes = static_cast<int>(by_node.size());
    // Interleave nodes so the first k workers spread over all of them.
    for (size_t i = 0;; ++i) {
        bool any = false;
        for (auto& [node, cpus] : by_node)
            if (i < cpus.size()) {
                t.cpus.push_back(cpus[i]);
                any = true;
            }
        if (!any) break;
    }
    const std::vector<int> siblings =
        parse_cpu_list(read_first_line("/sys/devices/system/cpu/cpu0/topology/thread_siblings_list"));
    t.threads_per_core = siblings.empty() ? 1 : static_cast<int>(siblings.size());

    for (int i = 0; i < 8; ++i) {
        const std::string dir = "/sys/devices/system/cpu/cpu0/cache/index" + std::to_string(i);
        const uint64_t size = parse_cache_size(read_first_line(dir + "/size"));
        if (size > t.last_level_cache_bytes) t.last_level_cache_bytes = size;
    }
    t.total_memory_bytes = meminfo_kib("MemTotal") * 1024u;
    utsname u{};
    if (uname(&u) == 0) t.kernel = std::string(u.sysname) + " " + u.release;
    t.memory = derive_memory_peak(machine_root(), t.model);
    return t;
}

uint64_t available_memory_bytes() { return meminfo_kib("MemAvailable") * 1024u; }

worker_team::worker_team(int workers, const std::vector<int>& cpus) : workers_(workers), cpus_(cpus) {
    pthread_barrier_init(&barrier_, nullptr, static_cast<unsigned>(workers));
}

worker_team::~worker_team() { pthread_barrier_destroy(&barrier_); }

void worker_team::barrier() { pthread_barrier_wait(&barrier_); }

void worker_team::run(const std::function<void(int)>& fn) {
    std::vector<std::thread> threads;
    threads.reserve(static_cast<size_t>(workers_));
    for (int w = 0; w < workers_; ++w) {
        threads.emplace_back([this, w, &fn] {
            if (!cpus_.empty()) {
                cpu_set_t set;
                CPU_ZERO(&set);
                CPU_SET(cpus_[static_cast<size_t>(w) % cpus_.size()], &set);
                pthread_setaffinity_np(pthread_self(), sizeof set, &set);
            }
            fn(w);
        });
    }
    for (auto& t : threads) t.join();
}

region::region(uint64_t bytes) : bytes_(bytes) {
    void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED) return;
    // Huge pages cut TLB misses on big sweeps; the kernel may ignore the hint.
    madvise(p, bytes, MADV_HUGEPAGE);
    data_ = p;
}

region::~region() {
    if (data_) munmap(data_, bytes_);
}

void partition(uint64_t count, int n, int w, uint64_t align, uint64_t* begin, uint64_t* end) {
    const uint64_t units = (count + align - 1) / align;
    const uint64_t per = units / static_cast<uint64_t>(n), extra = units % static_cast<uint64_t>(n);
    const uint64_t uw = static_cast<uint64_t>(w);
    const uint64_t b = uw * per + (uw < extra ? uw : extra);
    const uint64_t e = b + per + (uw < extra ? 1 : 0);
    *begin = b * align < count ? b * align : count;
    *end = e * align < count ? e * align : count;
}

int effective_threads(const kiln_test_params* p, const topology& topo) {
    const int cpus = static_cast<int>(topo.cpus.size());
    return p->threads > 0 ? p->threads : (cpus > 0 ? cpus : 1);
}

double now_seconds() {
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

}  // namespace kiln::cpu
