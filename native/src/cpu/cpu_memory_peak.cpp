// cpu_memory_peak.cpp - the host's theoretical memory bandwidth from the machine itself: SMBIOS
// (the raw table in /sys/firmware/dmi/tables/DMI) lists the DIMMs (type 17: speed, data width) and
// the CPU sockets and model (type 4); the model gives the memory channels per socket. Peak =
// populated channels x the slowest DIMM's configured MT/s x bytes per transfer.
#include "cpu_backend.h"

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <regex>

namespace kiln::cpu {
namespace {

uint16_t word(const uint8_t* p) { return static_cast<uint16_t>(p[0] | p[1] << 8); }
uint32_t dword(const uint8_t* p) { return word(p) | static_cast<uint32_t>(word(p + 2)) << 16; }

// The string number n (1-based) of a structure whose strings start at `strings`, up to `end`.
std::string smbios_string(const uint8_t* strings, const uint8_t* end, uint8_t n) {
    if (n == 0) return "";
    const uint8_t* s = strings;
    for (uint8_t i = 1; s < end && *s; ++i) {
        const uint8_t* e = static_cast<const uint8_t*>(memchr(s, 0, static_cast<size_t>(end - s)));
        if (!e) return "";
        if (i == n) return std::string(reinterpret_cast<const char*>(s), reinterpret_cast<const char*>(e));
        s = e + 1;
    }
    return "";
}

const char* memory_type_name(uint8_t type) {
    switch (type) {
        case 0x18: return "DDR3";
        case 0x1A: return "DDR4";
        case 0x1B: return "LPDDR";
        case 0x1C: return "LPDDR2";
        case 0x1D: return "LPDDR3";
        case 0x1E: return "LPDDR4";
        case 0x22: return "DDR5";
        case 0x23: return "LPDDR5";
        default: return "DRAM";
    }
}

}  // namespace

smbios_memory parse_smbios(const uint8_t* table, size_t bytes) {
    smbios_memory m;
    const uint8_t* p = table;
    const uint8_t* end = table + bytes;
    while (p + 4 <= end) {
        const uint8_t type = p[0], length = p[1];
        if (length < 4 || p + length > end) break;  // a truncated table: keep what was read
        const uint8_t* strings = p + length;
        const uint8_t* next = strings;
        while (next + 1 < end && !(next[0] == 0 && next[1] == 0)) ++next;
        next += 2;
        if (type == 127) break;  // end of table
        if (type == 4 && length >= 0x1A) {
            const bool populated = (p[0x18] & 0x40) != 0;
            if (populated) {
                ++m.sockets;
                if (m.cpu_model.empty()) m.cpu_model = smbios_string(strings, end, p[0x10]);
            }
        }
        if (type == 17 && length >= 0x17) {
            const uint16_t size = word(p + 0x0C);
            if (size != 0) {  // 0: an empty slot
                ++m.dimms;
                const uint16_t width = word(p + 0x0A);
                uint32_t speed = word(p + 0x15);
                if (speed == 0xFFFF && length >= 0x58) speed = dword(p + 0x54);
                if (length >= 0x22) {
                    uint32_t configured = word(p + 0x20);
                    if (configured == 0xFFFF && length >= 0x5C) configured = dword(p + 0x58);
                    if (configured != 0) speed = configured;  // what the controller runs it at
                }
                if (speed == 0) {
                    ++m.dimms_without_speed;
                } else if (m.speed_mts == 0 || speed < m.speed_mts) {
                    m.speed_mts = speed;  // a channel runs at its slowest DIMM; take the slowest of all
                }
                if (width != 0 && width != 0xFFFF && (m.data_width_bits == 0 || width < m.data_width_bits)) m.data_width_bits = width;
                if (m.memory_type.empty()) m.memory_type = memory_type_name(p[0x12]);
            }
        }
        p = next;
    }
    return m;
}

int memory_channels_per_socket(const std::string& model) {
    std::smatch m;
    // Xeon Scalable: the second digit is the generation (81xx Skylake, 82xx Cascade Lake: 6 channels;
    // 83xx Ice Lake, 84xx Sapphire Rapids, 85xx Emerald Rapids: 8).
    static const std::regex xeon(R"(Xeon.*(Platinum|Gold|Silver|Bronze)\s+(\d)(\d)\d\d)", std::regex::icase);
    if (std::regex_search(model, m, xeon)) {
        const int generation = m[3].str()[0] - '0';
        return generation <= 2 ? 6 : 8;
    }
    // Xeon 6: 69xx (6900 series, Granite Rapids-AP) 12, 67xx/65xx (6700 series) 8.
    static const std::regex xeon6(R"(Xeon.*\b6(\d)\d\d[PE]\b)", std::regex::icase);
    if (std::regex_search(model, m, xeon6)) return m[1].str()[0] == '9' ? 12 : 8;
    // EPYC: 9xx4/9xx5 (Genoa, Bergamo, Turin) 12; 8xx4 (Siena) 6; 7xxx (Naples to Milan) 8; 4xx4 2.
    static const std::regex epyc(R"(EPYC\s+(\d)\d\d\d)", std::regex::icase);
    if (std::regex_search(model, m, epyc)) {
        switch (m[1].str()[0]) {
            case '9': return 12;
            case '8': return 6;
            case '7': return 8;
            case '4': return 2;
            default: return 0;
        }
    }
    return 0;
}

memory_peak derive_memory_peak(const std::string& root, const std::string& proc_model) {
    memory_peak out;
    const std::string path = root + "/sys/firmware/dmi/tables/DMI";
    std::ifstream f(path, std::ios::binary);
    if (!f) {
        out.basis = "peak unknown: no SMBIOS table (" + path + ": " + strerror(errno) + ")";
        return out;
    }
    const std::vector<uint8_t> table((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    const smbios_memory m = parse_smbios(table.data(), table.size());
    if (m.dimms == 0) {
        out.basis = "peak unknown: SMBIOS (" + path + ") lists no memory devices";
        return out;
    }
    if (m.speed_mts == 0) {
        out.basis = "peak unknown: SMBIOS lists " + std::to_string(m.dimms) + " memory devices without a speed (a virtual machine?)";
        return out;
    }
    const std::string model = m.cpu_model.empty() ? proc_model : m.cpu_model;
    const int sockets = m.sockets > 0 ? m.sockets : 1;
    const int per_socket = memory_channels_per_socket(model);
    // A model not in the table: one DIMM per channel, the usual server population (an upper bound
    // when two share a channel; the profiles judge against a fraction of it).
    const int channels = per_socket > 0 ? std::min(m.dimms, per_socket * sockets) : m.dimms;
    const int width_bits = m.data_width_bits > 0 ? m.data_width_bits : 64;
    out.gbps = channels * static_cast<double>(m.speed_mts) * (width_bits / 8) / 1000.0;
    char text[480];
    if (per_socket > 0)
        snprintf(text, sizeof text, "SMBIOS: %d x %s-%u on %d channels (%d per socket x %d socket%s of %s)", m.dimms,
                 m.memory_type.c_str(), m.speed_mts, channels, per_socket, sockets, sockets == 1 ? "" : "s", model.c_str());
    else
        snprintf(text, sizeof text, "SMBIOS: %d x %s-%u on %d channels (one DIMM per channel assumed: the channels of '%s' are not known)",
                 m.dimms, m.memory_type.c_str(), m.speed_mts, channels, model.c_str());
    out.basis = text;
    return out;
}

std::string machine_root() {
    const char* root = getenv("KILN_SYSFS_ROOT");
    return root && *root ? root : "";
}

}  // namespace kiln::cpu
