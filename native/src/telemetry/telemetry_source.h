// telemetry_source.h - one vendor management library behind the kiln_telemetry handle: NVML and
// ROCm SMI each fill kiln_gpu_health / kiln_gpu_sample from their own API.
#pragma once

#include "../core/kiln_internal.h"

#include <memory>
#include <string>

namespace kiln::telemetry {

class source {
public:
    virtual ~source() = default;
    virtual std::string driver_version() const = 0;
    virtual int32_t device_count() const = 0;
    // Fills what only a health check reads; kiln_telemetry_health takes temperature, power,
    // throttle reasons and volatile ECC from sample().
    virtual kiln_status health(int32_t index, kiln_gpu_health* out) = 0;
    virtual kiln_status sample(int32_t index, kiln_gpu_sample* out) = 0;
};

// Each returns nullptr with the reason in *why when the library or its driver is absent.
std::unique_ptr<source> open_nvml(const std::string& library, std::string* why);
std::unique_ptr<source> open_rocm_smi(const std::string& library, std::string* why);
std::unique_ptr<source> open_emu(const std::string& library, std::string* why);
// libkiln-emu.so in the folder libkiln.so was loaded from.
std::string default_emu_library();

// Resolves a symbol of an opened library into a typed function pointer; false when absent.
template <typename Fn>
bool resolve(void* lib, const char* name, Fn* out);

// dlopens a vendor library; when it is absent, *why says so after `absent` ("no NVIDIA driver").
void* open_library(const std::string& library, const char* absent, std::string* why);

// Sets every numeric field of a health/sample record to "unknown" (-1).
void mark_unknown(kiln_gpu_health* h);
void mark_unknown(kiln_gpu_sample* s);

}  // namespace kiln::telemetry

#include <dlfcn.h>

template <typename Fn>
bool kiln::telemetry::resolve(void* lib, const char* name, Fn* out) {
    *out = reinterpret_cast<Fn>(dlsym(lib, name));
    return *out != nullptr;
}
