// emu_smi.cpp - the emulated devices as a telemetry source: libkiln-emu.so (beside libkiln.so)
// exports a small management API (kiln_emu_smi_*), opened with dlopen like NVML. The plugin the
// registry loaded and this source share one copy of the emulator's state, so power follows the
// kernels the burn runs.
#include "telemetry_source.h"

#include <dlfcn.h>

namespace kiln::telemetry {
namespace {

struct emu_api {
    const char* (*unavailable)();
    int32_t (*device_count)();
    kiln_status (*sample)(int32_t, kiln_gpu_sample*);
    kiln_status (*health)(int32_t, kiln_gpu_health*);
};

class emu_source final : public source {
public:
    emu_source(void* lib, const emu_api& api) : lib_(lib), api_(api) {}
    ~emu_source() override { dlclose(lib_); }
    std::string driver_version() const override { return "emulated 1.0"; }
    int32_t device_count() const override { return api_.device_count(); }
    kiln_status health(int32_t index, kiln_gpu_health* out) override { return checked(api_.health(index, out), index); }
    kiln_status sample(int32_t index, kiln_gpu_sample* out) override { return checked(api_.sample(index, out), index); }

private:
    static kiln_status checked(kiln_status st, int32_t index) {
        return st == KILN_OK ? st : kiln::fail(st, "emulated device %d: no such device", index);
    }
    void* lib_;
    emu_api api_;
};

}  // namespace

// The plugin the registry loads (the same folder, $KILN_PLUGIN_DIR included), so both share one emulator.
std::string default_emu_library() { return kiln::default_plugin_dir() + "/libkiln-emu.so"; }

std::unique_ptr<source> open_emu(const std::string& library, std::string* why) {
    void* lib = open_library(library, "no emulated device", why);
    if (!lib) return nullptr;
    emu_api api{};
    if (!resolve(lib, "kiln_emu_smi_unavailable", &api.unavailable) || !resolve(lib, "kiln_emu_smi_device_count", &api.device_count) ||
        !resolve(lib, "kiln_emu_smi_sample", &api.sample) || !resolve(lib, "kiln_emu_smi_health", &api.health)) {
        *why = library + ": not the emulator (kiln_emu_smi_* missing)";
        dlclose(lib);
        return nullptr;
    }
    if (const char* off = api.unavailable()) {
        *why = std::string("no emulated device: ") + off;
        dlclose(lib);
        return nullptr;
    }
    return std::make_unique<emu_source>(lib, api);
}

}  // namespace kiln::telemetry
