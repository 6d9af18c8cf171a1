// emu_config.h - what KILN_EMU_DEVICES and KILN_EMU_FAULTS say (grammar: docs/EMULATOR.md), parsed
// once into plain structs; the runtime (emu_runtime.cpp) and the emulated SMI (emu_smi.cpp) read them.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace kiln::emu {

struct device_config {
    std::string name = "Kiln Emulated GPU";
    int sms = 4;
    uint64_t memory_bytes = 512ull << 20;
    uint64_t l2_bytes = 4ull << 20;
    double clock_mhz = 1000;
    double memory_clock_mhz = 500;
    int bus_bits = 64;
    double power_limit_w = 700;
    double idle_power_w = 60;
};

enum class fault_kind {
    stuck,      // a bit that always reads its stuck value
    flip,       // a bit flipped once, after a given launch
    drop,       // one block's writes to a range are lost
    copyloss,   // the copy engine leaves the end of some copies unwritten
    fma,        // an SM's FMA unit multiplies some operands wrong
    mma,        // an SM's matrix unit multiplies some operands wrong
    slow,       // an SM runs N times slower
    hang,       // a launch that never returns
    sticky,     // a launch that fails, and every call after it
    ecc,        // correctable / uncorrectable ECC counts growing
    thermal,    // a hot GPU, thermally throttled
    powerbrake, // the board's power brake asserted
    remap,      // row remapping state
    retired,    // retired pages
    alloc,      // an allocator that hands out less than cudaMemGetInfo reports free
    collflip,   // the emulated NCCL's link into a device delivers one wrong word per result
    collslow,   // every collective the device takes part in runs N times slower
};

struct fault {
    fault_kind kind;
    std::string text;       // as written, for messages
    int device = 0;
    uint64_t address = 0;   // device byte address (offset into the device's memory); collflip: byte offset in each result
    uint64_t bytes = 8;     // drop: the range's length; copyloss: the bytes left unwritten at the end of a copy;
                            // alloc: the most the device's allocations may hold
    uint64_t min_bytes = 1ull << 20;  // copyloss: copies shorter than this are not counted (the error logs' small reads)
    int bit = 0;            // stuck, flip: bit of the byte at address (0..7); fma/mma: fraction bit of b that goes wrong;
                            // collflip: bit of the 32-bit word at the offset (0..31)
    int value = 1;          // stuck: the value the bit is stuck at
    int64_t launch = 1;     // flip: after this launch (1-based); hang, sticky: this launch; drop: the first launch it hits;
                            // copyloss: the first counted copy it hits
    int64_t last_launch = INT64_MAX;  // drop: the last launch it hits; copyloss: the last copy
    int64_t block = 0;      // drop: linear block index
    int sm = 0;             // fma, mma, slow: the SM (linear block index modulo the SM count)
    int low_bits = 0;       // fma, mma: fault only when one of a's lowest low_bits fraction bits is set (0: always)
    double factor = 1;      // slow, collslow: how many times slower
    double rate_per_s = 0;  // ecc: corrected errors per second
    int64_t count = 0;      // ecc: uncorrected errors; remap: correctable rows; retired: sbe pages
    int64_t count2 = 0;     // remap: uncorrectable rows; retired: dbe pages
    int pending = 0;        // remap, retired: a remap/retirement pending
    double temperature_c = 95;  // thermal
};

struct config {
    bool enabled = false;
    std::vector<device_config> devices;
    std::vector<fault> faults;
};

// Parses the two variables; false with one line in *error naming the variable and the bad part.
bool parse_config(const char* devices_text, const char* faults_text, config* out, std::string* error);

// The configuration from the environment, parsed once; error() says why it is off or malformed.
const config& current_config();
const std::string& config_error();
// True when KILN_EMU_DEVICES is set but does not parse (a usage error, not "no device").
bool config_malformed();

}  // namespace kiln::emu
