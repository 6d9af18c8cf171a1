// emu_config.cpp - the parser of KILN_EMU_DEVICES and KILN_EMU_FAULTS (docs/EMULATOR.md). Strict: an
// unknown key, a value out of range or a fault on a device that does not exist is refused, with the
// variable and the bad part named, so a typo never turns into a silently healthy emulated node.
#include "emu_config.h"

#include <cerrno>
#include <cstdlib>
#include <map>
#include <mutex>
#include <sstream>

namespace kiln::emu {
namespace {

std::vector<std::string> split(const std::string& text, char sep) {
    std::vector<std::string> parts;
    std::string part;
    std::stringstream ss(text);
    while (std::getline(ss, part, sep)) {
        const size_t a = part.find_first_not_of(" \t"), b = part.find_last_not_of(" \t");
        parts.push_back(a == std::string::npos ? "" : part.substr(a, b - a + 1));
    }
    return parts;
}

bool parse_u64(const std::string& text, uint64_t* out) {
    if (text.empty() || text[0] == '-') return false;
    errno = 0;
    char* end = nullptr;
    const unsigned long long v = strtoull(text.c_str(), &end, 0);
    if (errno || *end) return false;
    *out = v;
    return true;
}

bool parse_double(const std::string& text, double* out) {
    if (text.empty()) return false;
    errno = 0;
    char* end = nullptr;
    const double v = strtod(text.c_str(), &end);
    if (errno || *end || !(v == v)) return false;
    *out = v;
    return true;
}

// "512MiB", "2GiB", "1048576"
bool parse_bytes(const std::string& text, uint64_t* out) {
    static const std::pair<const char*, uint64_t> units[] = {{"KiB", 1ull << 10}, {"MiB", 1ull << 20}, {"GiB", 1ull << 30},
                                                             {"KB", 1000ull}, {"MB", 1000000ull}, {"GB", 1000000000ull}};
    for (const auto& [suffix, scale] : units) {
        const std::string s = suffix;
        if (text.size() > s.size() && text.compare(text.size() - s.size(), s.size(), s) == 0) {
            double v = 0;
            if (!parse_double(text.substr(0, text.size() - s.size()), &v) || v < 0) return false;
            *out = static_cast<uint64_t>(v * static_cast<double>(scale));
            return true;
        }
    }
    return parse_u64(text, out);
}

struct parser {
    const char* variable;
    std::string* error;

    bool bad(const std::string& part, const std::string& why) const {
        *error = std::string(variable) + ": '" + part + "': " + why;
        return false;
    }

    // key=value pairs of one item; `allowed` lists the keys it may have.
    bool pairs(const std::string& item, const std::string& list, const std::vector<std::string>& allowed,
               std::map<std::string, std::string>* out) const {
        for (const std::string& kv : split(list, ',')) {
            const size_t eq = kv.find('=');
            if (eq == std::string::npos || eq == 0 || eq + 1 == kv.size()) return bad(kv, "expected KEY=VALUE in '" + item + "'");
            const std::string key = kv.substr(0, eq);
            bool known = false;
            for (const std::string& a : allowed) known = known || a == key;
            if (!known) {
                std::string names;
                for (const std::string& a : allowed) names += (names.empty() ? "" : ", ") + a;
                return bad(kv, "unknown key '" + key + "' (known: " + names + ")");
            }
            if (out->count(key)) return bad(kv, "'" + key + "' given twice");
            (*out)[key] = kv.substr(eq + 1);
        }
        return true;
    }

    bool number(const std::map<std::string, std::string>& kv, const char* key, double lo, double hi, double* out) const {
        auto it = kv.find(key);
        if (it == kv.end()) return true;
        double v = 0;
        if (!parse_double(it->second, &v)) return bad(std::string(key) + "=" + it->second, "not a number");
        if (v < lo || v > hi) {
            std::ostringstream range;
            range << "outside " << lo << ".." << hi;
            return bad(std::string(key) + "=" + it->second, range.str());
        }
        *out = v;
        return true;
    }

    template <typename T>
    bool integer(const std::map<std::string, std::string>& kv, const char* key, uint64_t lo, uint64_t hi, T* out) const {
        auto it = kv.find(key);
        if (it == kv.end()) return true;
        uint64_t v = 0;
        if (!parse_u64(it->second, &v)) return bad(std::string(key) + "=" + it->second, "not a whole number");
        if (v < lo || v > hi) return bad(std::string(key) + "=" + it->second, "outside " + std::to_string(lo) + ".." + std::to_string(hi));
        *out = static_cast<T>(v);
        return true;
    }
};

bool parse_devices(const std::string& text, config* out, std::string* error) {
    parser p{"KILN_EMU_DEVICES", error};
    const size_t colon = text.find(':');
    const std::string count_text = text.substr(0, colon);
    uint64_t count = 0;
    if (!parse_u64(count_text, &count) || count < 1 || count > 16)
        return p.bad(count_text, "the device count must be a whole number 1..16 (COUNT[:KEY=VALUE,...])");
    device_config d;
    if (colon != std::string::npos) {
        std::map<std::string, std::string> kv;
        if (!p.pairs(text, text.substr(colon + 1),
                     {"sms", "memory", "clock_mhz", "memory_clock_mhz", "bus_bits", "l2", "power_limit_w", "name"}, &kv))
            return false;
        if (!p.integer(kv, "sms", 1, 1024, &d.sms)) return false;
        if (!p.number(kv, "clock_mhz", 1, 10000, &d.clock_mhz)) return false;
        if (!p.number(kv, "memory_clock_mhz", 1, 100000, &d.memory_clock_mhz)) return false;
        if (!p.integer(kv, "bus_bits", 8, 16384, &d.bus_bits)) return false;
        if (!p.number(kv, "power_limit_w", 1, 5000, &d.power_limit_w)) return false;
        if (kv.count("memory") && (!parse_bytes(kv["memory"], &d.memory_bytes) || d.memory_bytes < (16ull << 20)))
            return p.bad("memory=" + kv["memory"], "expected a size of at least 16MiB (e.g. 512MiB, 2GiB)");
        if (kv.count("l2") && !parse_bytes(kv["l2"], &d.l2_bytes)) return p.bad("l2=" + kv["l2"], "expected a size (e.g. 4MiB)");
        if (kv.count("name")) d.name = kv["name"];
    }
    out->devices.assign(static_cast<size_t>(count), d);
    return true;
}

struct fault_syntax {
    const char* name;
    fault_kind kind;
    std::vector<std::string> keys;
};
const fault_syntax k_faults[] = {
    {"stuck", fault_kind::stuck, {"dev", "addr", "bit", "value"}},
    {"flip", fault_kind::flip, {"dev", "addr", "bit", "launch"}},
    {"drop", fault_kind::drop, {"dev", "block", "addr", "bytes", "from", "to"}},
    {"copyloss", fault_kind::copyloss, {"dev", "bytes", "min", "from", "to"}},
    {"fma", fault_kind::fma, {"dev", "sm", "lowbits", "bit"}},
    {"mma", fault_kind::mma, {"dev", "sm", "lowbits", "bit"}},
    {"slow", fault_kind::slow, {"dev", "sm", "factor"}},
    {"hang", fault_kind::hang, {"dev", "launch"}},
    {"sticky", fault_kind::sticky, {"dev", "launch"}},
    {"ecc", fault_kind::ecc, {"dev", "corrected_per_s", "uncorrected"}},
    {"thermal", fault_kind::thermal, {"dev", "temp"}},
    {"powerbrake", fault_kind::powerbrake, {"dev"}},
    {"remap", fault_kind::remap, {"dev", "correctable", "uncorrectable", "pending"}},
    {"retired", fault_kind::retired, {"dev", "sbe", "dbe", "pending"}},
    {"alloc", fault_kind::alloc, {"dev", "limit"}},
    {"collflip", fault_kind::collflip, {"dev", "offset", "bit"}},
    {"collslow", fault_kind::collslow, {"dev", "factor"}},
};

bool parse_faults(const std::string& text, config* out, std::string* error) {
    parser p{"KILN_EMU_FAULTS", error};
    for (const std::string& item : split(text, ';')) {
        if (item.empty()) continue;
        const size_t colon = item.find(':');
        const std::string name = item.substr(0, colon);
        const fault_syntax* syntax = nullptr;
        for (const fault_syntax& s : k_faults)
            if (name == s.name) syntax = &s;
        if (!syntax) {
            std::string names;
            for (const fault_syntax& s : k_faults) names += (names.empty() ? "" : ", ") + std::string(s.name);
            return p.bad(item, "unknown fault '" + name + "' (known: " + names + ")");
        }
        std::map<std::string, std::string> kv;
        if (colon != std::string::npos && !p.pairs(item, item.substr(colon + 1), syntax->keys, &kv)) return false;
        fault f;
        f.kind = syntax->kind;
        f.text = item;
        const uint64_t devices = out->devices.size();
        if (!p.integer(kv, "dev", 0, devices - 1, &f.device)) return false;
        const uint64_t memory = out->devices[static_cast<size_t>(f.device)].memory_bytes;
        const int sms = out->devices[static_cast<size_t>(f.device)].sms;
        auto require = [&](const char* key) { return kv.count(key) ? true : p.bad(item, std::string("needs ") + key + "="); };
        switch (f.kind) {
        case fault_kind::stuck:
        case fault_kind::flip:
            if (!require("addr") || !p.integer(kv, "addr", 0, memory - 1, &f.address) || !p.integer(kv, "bit", 0, 7, &f.bit)) return false;
            if (!p.integer(kv, "value", 0, 1, &f.value) || !p.integer(kv, "launch", 1, INT64_MAX, &f.launch)) return false;
            break;
        case fault_kind::drop:
            if (!require("addr") || !p.integer(kv, "addr", 0, memory - 1, &f.address)) return false;
            if (!p.integer(kv, "bytes", 1, memory, &f.bytes) || !p.integer(kv, "block", 0, INT64_MAX, &f.block)) return false;
            if (!p.integer(kv, "from", 1, INT64_MAX, &f.launch) || !p.integer(kv, "to", 1, INT64_MAX, &f.last_launch)) return false;
            if (f.last_launch < f.launch) return p.bad(item, "to= is before from=");
            if (f.address + f.bytes > memory) return p.bad(item, "the range runs past the device's memory");
            break;
        case fault_kind::copyloss:
            f.bytes = 4096;
            if (!p.integer(kv, "bytes", 1, memory, &f.bytes) || !p.integer(kv, "min", 1, UINT64_MAX, &f.min_bytes)) return false;
            if (!p.integer(kv, "from", 1, INT64_MAX, &f.launch) || !p.integer(kv, "to", 1, INT64_MAX, &f.last_launch)) return false;
            if (f.last_launch < f.launch) return p.bad(item, "to= is before from=");
            break;
        case fault_kind::fma:
        case fault_kind::mma:
            if (!p.integer(kv, "sm", 0, static_cast<uint64_t>(sms - 1), &f.sm) || !p.integer(kv, "lowbits", 0, 52, &f.low_bits)) return false;
            f.bit = 1;  // default: the top fraction bit of b goes wrong (a large error)
            if (!p.integer(kv, "bit", 1, 52, &f.bit)) return false;
            break;
        case fault_kind::slow:
            f.factor = 10;
            if (!p.integer(kv, "sm", 0, static_cast<uint64_t>(sms - 1), &f.sm) || !p.number(kv, "factor", 1, 1e6, &f.factor)) return false;
            break;
        case fault_kind::hang:
        case fault_kind::sticky:
            if (!p.integer(kv, "launch", 1, INT64_MAX, &f.launch)) return false;
            break;
        case fault_kind::ecc:
            if (!p.number(kv, "corrected_per_s", 0, 1e9, &f.rate_per_s) || !p.integer(kv, "uncorrected", 0, INT64_MAX, &f.count)) return false;
            break;
        case fault_kind::thermal:
            if (!p.number(kv, "temp", 0, 200, &f.temperature_c)) return false;
            break;
        case fault_kind::powerbrake: break;
        case fault_kind::remap:
            if (!p.integer(kv, "correctable", 0, 100000, &f.count) || !p.integer(kv, "uncorrectable", 0, 100000, &f.count2)) return false;
            if (!p.integer(kv, "pending", 0, 1, &f.pending)) return false;
            break;
        case fault_kind::alloc:
            if (!require("limit")) return false;
            if (!parse_bytes(kv["limit"], &f.bytes) || f.bytes > memory)
                return p.bad("limit=" + kv["limit"], "expected a size up to the device's memory (e.g. 128MiB)");
            break;
        case fault_kind::collflip:
            f.address = 0x1000;
            f.bit = 12;
            if (!p.integer(kv, "offset", 0, memory - 1, &f.address) || !p.integer(kv, "bit", 0, 31, &f.bit)) return false;
            break;
        case fault_kind::collslow:
            f.factor = 4;
            if (!p.number(kv, "factor", 1, 1e4, &f.factor)) return false;
            break;
        case fault_kind::retired:
            if (!p.integer(kv, "sbe", 0, 100000, &f.count) || !p.integer(kv, "dbe", 0, 100000, &f.count2)) return false;
            if (!p.integer(kv, "pending", 0, 1, &f.pending)) return false;
            break;
        }
        out->faults.push_back(f);
    }
    return true;
}

std::once_flag g_once;
config g_config;
std::string g_error;
bool g_malformed = false;

}  // namespace

bool parse_config(const char* devices_text, const char* faults_text, config* out, std::string* error) {
    *out = config{};
    if (!devices_text || !*devices_text) {
        *error = "KILN_EMU_DEVICES is not set: no emulated device (set it to a count, e.g. KILN_EMU_DEVICES=2)";
        return false;
    }
    if (!parse_devices(devices_text, out, error)) return false;
    if (faults_text && *faults_text && !parse_faults(faults_text, out, error)) return false;
    out->enabled = true;
    return true;
}

const config& current_config() {
    std::call_once(g_once, [] {
        const char* devices = getenv("KILN_EMU_DEVICES");
        if (!parse_config(devices, getenv("KILN_EMU_FAULTS"), &g_config, &g_error)) g_malformed = devices && *devices;
    });
    return g_config;
}

const std::string& config_error() {
    current_config();
    return g_error;
}

bool config_malformed() {
    current_config();
    return g_malformed;
}

}  // namespace kiln::emu
