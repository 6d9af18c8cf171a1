// emu_device.h - one emulated device's state, shared by the runtime (emu_runtime.cpp) and the
// emulated management library (emu_smi.cpp).
#pragma once

#include "emu_config.h"
#include "kiln_emu_runtime.h"

#include <atomic>
#include <cstdio>
#include <chrono>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

namespace kiln::emu {

// What every process of one emulation session sees of a device's activity: its busy time and the
// launches running, as the driver's counters are seen by NVML from any process. A burn's workers
// run the devices while the parent samples their telemetry. Lives in /dev/shm/kiln-emu-<session>
// (KILN_EMU_SESSION, default this process's id), one cache line per device; process-local when
// that cannot be made.
struct shared_activity {
    std::atomic<int64_t> busy_ns;          // steady-clock nanoseconds the device was busy, finished spans
    std::atomic<int64_t> running;          // launches and copies in flight
    std::atomic<int64_t> running_since_ns; // when the latest of them started
    char pad[40];
};
shared_activity* shared_activity_of(int index);

struct device {
    int index = 0;
    device_config cfg;
    std::vector<fault> faults;           // this device's, in the order written
    unsigned char* base = nullptr;       // the memory arena; device address = offset from base
    std::map<uint64_t, uint64_t> allocations;  // offset -> bytes
    uint64_t allocated_bytes = 0;
    std::mutex mutex;                    // one operation at a time, as a stream in order
    double clock_s = 0;                  // the emulated clock events read
    int64_t launches = 0;
    int64_t copies = 0;                  // copies of at least a copyloss fault's min bytes, counted for it
    cudaError_t sticky = cudaSuccess;    // set by a planted launch failure: every later call fails
    std::string sticky_text;
    std::set<int> peers_enabled;
    std::chrono::steady_clock::time_point created;

    // The session-wide activity, and what this process has read of it (time, busy ns) for the
    // utilisation the emulated SMI reports.
    shared_activity* shared = nullptr;
    std::mutex activity_mutex;
    std::deque<std::pair<int64_t, int64_t>> readings;

    void apply_stuck_bits();
    void begin_busy(std::chrono::steady_clock::time_point from);
    void end_busy(std::chrono::steady_clock::time_point from, std::chrono::steady_clock::time_point to);
    bool busy_now() const { return shared->running.load() > 0; }
    // Busy fraction of about the last window_s seconds of wall time, across the session's processes.
    double utilization(std::chrono::steady_clock::time_point now, double window_s);
    const fault* find(fault_kind kind) const {
        for (const fault& f : faults)
            if (f.kind == kind) return &f;
        return nullptr;
    }
};

struct stream {
    int device;
};
struct event {
    double seconds = 0;
};

// Every emulated device (created on first use from the environment); empty when off.
std::vector<std::unique_ptr<device>>& devices();

// A stable UUID per index: "KILNEMU", zeros, then the index (GPU-4b494c4e-454d-5500-...).
inline std::string uuid_bytes(int index) {
    std::string id("KILNEMU", 7);
    id.append(8, '\0');
    id.push_back(static_cast<char>(index));
    return id;
}

// "00ee:01:00.0" for device 0: a PCI domain no real machine has.
inline std::string pci_bus_id(int index) {
    char text[32];
    snprintf(text, sizeof text, "00ee:%02x:00.0", index + 1);
    return text;
}

}  // namespace kiln::emu
