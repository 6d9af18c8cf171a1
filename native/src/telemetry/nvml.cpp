// nvml.cpp - NVIDIA telemetry through libnvidia-ml.so.1, opened with dlopen and never linked, so
// a node without the driver still runs everything else. Only the entry points used are declared
// here, with NVML's documented C types; a function an older driver lacks reads as unknown (-1).
#include "telemetry_source.h"

#include <cctype>
#include <cstdio>
#include <cstring>
#include <vector>

namespace kiln::telemetry {
namespace {

using nvml_return = int;  // nvmlReturn_t: 0 = NVML_SUCCESS
using nvml_device = void*;
constexpr nvml_return k_success = 0;
constexpr nvml_return k_insufficient_size = 7;
constexpr unsigned k_nvlink_max_links = 18;

struct nvml_pci_info {  // nvmlPciInfo_t (v3)
    char bus_id_legacy[16];
    unsigned domain, bus, device, pci_device_id, pci_subsystem_id;
    char bus_id[32];
};
struct nvml_memory {  // nvmlMemory_t
    unsigned long long total, free, used;
};
struct nvml_utilization {  // nvmlUtilization_t
    unsigned gpu, memory;
};

struct nvml_api {
    nvml_return (*init)();
    nvml_return (*shutdown)();
    const char* (*error_string)(nvml_return);
    nvml_return (*driver_version)(char*, unsigned);
    nvml_return (*count)(unsigned*);
    nvml_return (*handle)(unsigned, nvml_device*);
    nvml_return (*name)(nvml_device, char*, unsigned);
    nvml_return (*uuid)(nvml_device, char*, unsigned);
    nvml_return (*serial)(nvml_device, char*, unsigned);
    nvml_return (*vbios)(nvml_device, char*, unsigned);
    nvml_return (*pci_info)(nvml_device, nvml_pci_info*);
    nvml_return (*persistence)(nvml_device, int*);
    nvml_return (*ecc_mode)(nvml_device, int*, int*);
    nvml_return (*ecc_total)(nvml_device, int, int, unsigned long long*);
    nvml_return (*retired_pages)(nvml_device, int, unsigned*, unsigned long long*);
    nvml_return (*retired_pending)(nvml_device, int*);
    nvml_return (*remapped_rows)(nvml_device, unsigned*, unsigned*, unsigned*, unsigned*);
    nvml_return (*throttle)(nvml_device, unsigned long long*);
    nvml_return (*temperature)(nvml_device, int, unsigned*);
    nvml_return (*temperature_threshold)(nvml_device, int, unsigned*);
    nvml_return (*power)(nvml_device, unsigned*);
    nvml_return (*power_limit)(nvml_device, unsigned*);
    nvml_return (*clock)(nvml_device, int, unsigned*);
    nvml_return (*pcie_gen)(nvml_device, unsigned*);
    nvml_return (*pcie_gen_max)(nvml_device, unsigned*);
    nvml_return (*pcie_width)(nvml_device, unsigned*);
    nvml_return (*pcie_width_max)(nvml_device, unsigned*);
    nvml_return (*pcie_replay)(nvml_device, unsigned*);
    nvml_return (*nvlink_state)(nvml_device, unsigned, int*);
    nvml_return (*nvlink_error)(nvml_device, unsigned, int, unsigned long long*);
    nvml_return (*processes)(nvml_device, unsigned*, void*);
    nvml_return (*memory)(nvml_device, nvml_memory*);
    nvml_return (*utilization)(nvml_device, nvml_utilization*);
};

// "00000000:3B:00.0" -> "0000:3b:00.0", the form sysfs and the kernel log use.
std::string normalize_bus_id(const char* raw) {
    std::string id = raw;
    for (char& c : id) c = static_cast<char>(tolower(static_cast<unsigned char>(c)));
    const size_t colon = id.find(':');
    if (colon != std::string::npos && colon > 4) id = id.substr(colon - 4);
    return id;
}

class nvml_source final : public source {
public:
    nvml_source(void* lib, const nvml_api& api) : lib_(lib), api_(api) {
        unsigned n = 0;
        if (api_.count(&n) == k_success)
            for (unsigned i = 0; i < n; ++i) {
                nvml_device d = nullptr;
                devices_.push_back(api_.handle(i, &d) == k_success ? d : nullptr);
            }
    }
    ~nvml_source() override {
        api_.shutdown();
        dlclose(lib_);
    }

    std::string driver_version() const override {
        char buf[96] = {0};
        return api_.driver_version && api_.driver_version(buf, sizeof buf) == k_success ? buf : "";
    }
    int32_t device_count() const override { return static_cast<int32_t>(devices_.size()); }

    kiln_status health(int32_t index, kiln_gpu_health* h) override {
        nvml_device d = devices_[static_cast<size_t>(index)];
        if (!d) return fail(KILN_BACKEND_ERROR, "GPU %d: NVML gave no handle (GPU lost?)", index);
        text(api_.name, d, h->name, sizeof h->name);
        text(api_.uuid, d, h->uuid, sizeof h->uuid);
        text(api_.serial, d, h->serial, sizeof h->serial);
        text(api_.vbios, d, h->vbios_version, sizeof h->vbios_version);
        nvml_pci_info pci{};
        if (api_.pci_info && api_.pci_info(d, &pci) == k_success)
            copy_text(h->pci_bus_id, sizeof h->pci_bus_id, normalize_bus_id(pci.bus_id));
        int state = 0, pending = 0;
        if (api_.persistence && api_.persistence(d, &state) == k_success) h->persistence_mode = state;
        if (api_.ecc_mode && api_.ecc_mode(d, &state, &pending) == k_success) h->ecc_enabled = state;
        h->pcie_gen_current = u32(api_.pcie_gen, d);
        h->pcie_gen_max = u32(api_.pcie_gen_max, d);
        h->pcie_width_current = u32(api_.pcie_width, d);
        h->pcie_width_max = u32(api_.pcie_width_max, d);
        h->ecc_aggregate_corrected = ecc(d, 0, 1);
        h->ecc_aggregate_uncorrected = ecc(d, 1, 1);
        h->retired_pages_sbe = retired(d, 0);
        h->retired_pages_dbe = retired(d, 1);
        if (api_.retired_pending && api_.retired_pending(d, &state) == k_success) h->retired_pages_pending = state;
        unsigned corr = 0, unc = 0, rpending = 0, rfailed = 0;
        if (api_.remapped_rows && api_.remapped_rows(d, &corr, &unc, &rpending, &rfailed) == k_success) {
            h->remapped_rows_correctable = static_cast<int32_t>(corr);
            h->remapped_rows_uncorrectable = static_cast<int32_t>(unc);
            h->remap_pending = rpending ? 1 : 0;
            h->remap_failed = rfailed ? 1 : 0;
        }
        nvlink(d, h);
        unsigned procs = 0;
        if (api_.processes) {
            const nvml_return r = api_.processes(d, &procs, nullptr);
            if (r == k_success || r == k_insufficient_size) h->compute_processes = static_cast<int32_t>(procs);
        }
        nvml_memory mem{};
        if (api_.memory && api_.memory(d, &mem) == k_success) h->memory_total_bytes = mem.total;
        unsigned v = 0;
        if (api_.temperature_threshold && api_.temperature_threshold(d, 1, &v) == k_success) h->temperature_slowdown_c = v;
        if (api_.power_limit && api_.power_limit(d, &v) == k_success) h->power_limit_w = v / 1000.0;
        return KILN_OK;
    }

    kiln_status sample(int32_t index, kiln_gpu_sample* s) override {
        nvml_device d = devices_[static_cast<size_t>(index)];
        if (!d) return fail(KILN_BACKEND_ERROR, "GPU %d: NVML gave no handle (GPU lost?)", index);
        unsigned v = 0;
        if (api_.temperature && api_.temperature(d, 0, &v) == k_success) s->temperature_c = v;
        if (api_.power && api_.power(d, &v) == k_success) s->power_w = v / 1000.0;
        if (api_.clock && api_.clock(d, 1, &v) == k_success) s->sm_clock_mhz = v;
        if (api_.clock && api_.clock(d, 2, &v) == k_success) s->memory_clock_mhz = v;
        nvml_utilization u{};
        if (api_.utilization && api_.utilization(d, &u) == k_success) s->utilization_pct = u.gpu;
        unsigned long long reasons = 0;
        if (api_.throttle && api_.throttle(d, &reasons) == k_success) s->throttle_reasons = reasons;
        s->ecc_volatile_corrected = ecc(d, 0, 0);
        s->ecc_volatile_uncorrected = ecc(d, 1, 0);
        if (api_.pcie_replay && api_.pcie_replay(d, &v) == k_success) s->pcie_replay_count = v;
        return KILN_OK;
    }

private:
    static void text(nvml_return (*fn)(nvml_device, char*, unsigned), nvml_device d, char* out, size_t bytes) {
        if (fn && fn(d, out, static_cast<unsigned>(bytes)) != k_success) out[0] = '\0';
        out[bytes - 1] = '\0';
    }
    static int32_t u32(nvml_return (*fn)(nvml_device, unsigned*), nvml_device d) {
        unsigned v = 0;
        return fn && fn(d, &v) == k_success ? static_cast<int32_t>(v) : -1;
    }
    int64_t ecc(nvml_device d, int error_type, int counter_type) const {
        unsigned long long v = 0;
        return api_.ecc_total && api_.ecc_total(d, error_type, counter_type, &v) == k_success ? static_cast<int64_t>(v) : -1;
    }
    int64_t retired(nvml_device d, int cause) const {
        unsigned count = 0;
        if (!api_.retired_pages) return -1;
        const nvml_return r = api_.retired_pages(d, cause, &count, nullptr);
        return (r == k_success || r == k_insufficient_size) ? static_cast<int64_t>(count) : -1;
    }
    void nvlink(nvml_device d, kiln_gpu_health* h) const {
        if (!api_.nvlink_state) return;
        int32_t total = 0, active = 0;
        int64_t crc = 0, replay = 0, recovery = 0;
        for (unsigned link = 0; link < k_nvlink_max_links; ++link) {
            int is_active = 0;
            if (api_.nvlink_state(d, link, &is_active) != k_success) continue;  // no such link
            ++total;
            active += is_active ? 1 : 0;
            unsigned long long v = 0;
            if (!api_.nvlink_error) continue;
            if (api_.nvlink_error(d, link, 0, &v) == k_success) replay += static_cast<int64_t>(v);
            if (api_.nvlink_error(d, link, 1, &v) == k_success) recovery += static_cast<int64_t>(v);
            if (api_.nvlink_error(d, link, 2, &v) == k_success) crc += static_cast<int64_t>(v);
            if (api_.nvlink_error(d, link, 3, &v) == k_success) crc += static_cast<int64_t>(v);
        }
        h->nvlink_links_total = total;
        h->nvlink_links_active = active;
        h->nvlink_crc_errors = total ? crc : 0;
        h->nvlink_replay_errors = total ? replay : 0;
        h->nvlink_recovery_errors = total ? recovery : 0;
    }

    void* lib_;
    nvml_api api_;
    std::vector<nvml_device> devices_;
};

}  // namespace

std::unique_ptr<source> open_nvml(const std::string& library, std::string* why) {
    void* lib = open_library(library, "no NVIDIA driver", why);
    if (!lib) return nullptr;
    nvml_api api{};
    const bool required = resolve(lib, "nvmlInit_v2", &api.init) && resolve(lib, "nvmlShutdown", &api.shutdown) &&
                          resolve(lib, "nvmlDeviceGetCount_v2", &api.count) &&
                          resolve(lib, "nvmlDeviceGetHandleByIndex_v2", &api.handle);
    if (!required) {
        *why = library + ": not a usable NVML (nvmlInit_v2 and device enumeration missing)";
        dlclose(lib);
        return nullptr;
    }
    resolve(lib, "nvmlErrorString", &api.error_string);
    resolve(lib, "nvmlSystemGetDriverVersion", &api.driver_version);
    resolve(lib, "nvmlDeviceGetName", &api.name);
    resolve(lib, "nvmlDeviceGetUUID", &api.uuid);
    resolve(lib, "nvmlDeviceGetSerial", &api.serial);
    resolve(lib, "nvmlDeviceGetVbiosVersion", &api.vbios);
    resolve(lib, "nvmlDeviceGetPciInfo_v3", &api.pci_info);
    resolve(lib, "nvmlDeviceGetPersistenceMode", &api.persistence);
    resolve(lib, "nvmlDeviceGetEccMode", &api.ecc_mode);
    resolve(lib, "nvmlDeviceGetTotalEccErrors", &api.ecc_total);
    resolve(lib, "nvmlDeviceGetRetiredPages", &api.retired_pages);
    resolve(lib, "nvmlDeviceGetRetiredPagesPendingStatus", &api.retired_pending);
    resolve(lib, "nvmlDeviceGetRemappedRows", &api.remapped_rows);
    if (!resolve(lib, "nvmlDeviceGetCurrentClocksEventReasons", &api.throttle))
        resolve(lib, "nvmlDeviceGetCurrentClocksThrottleReasons", &api.throttle);
    resolve(lib, "nvmlDeviceGetTemperature", &api.temperature);
    resolve(lib, "nvmlDeviceGetTemperatureThreshold", &api.temperature_threshold);
    resolve(lib, "nvmlDeviceGetPowerUsage", &api.power);
    resolve(lib, "nvmlDeviceGetEnforcedPowerLimit", &api.power_limit);
    resolve(lib, "nvmlDeviceGetClockInfo", &api.clock);
    resolve(lib, "nvmlDeviceGetCurrPcieLinkGeneration", &api.pcie_gen);
    resolve(lib, "nvmlDeviceGetMaxPcieLinkGeneration", &api.pcie_gen_max);
    resolve(lib, "nvmlDeviceGetCurrPcieLinkWidth", &api.pcie_width);
    resolve(lib, "nvmlDeviceGetMaxPcieLinkWidth", &api.pcie_width_max);
    resolve(lib, "nvmlDeviceGetPcieReplayCounter", &api.pcie_replay);
    resolve(lib, "nvmlDeviceGetNvLinkState", &api.nvlink_state);
    resolve(lib, "nvmlDeviceGetNvLinkErrorCounter", &api.nvlink_error);
    if (!resolve(lib, "nvmlDeviceGetComputeRunningProcesses_v3", &api.processes))
        resolve(lib, "nvmlDeviceGetComputeRunningProcesses", &api.processes);
    resolve(lib, "nvmlDeviceGetMemoryInfo", &api.memory);
    resolve(lib, "nvmlDeviceGetUtilizationRates", &api.utilization);

    const nvml_return r = api.init();
    if (r != k_success) {
        const char* text = api.error_string ? api.error_string(r) : nullptr;
        *why = "NVML could not start (no CUDA driver loaded?): " + std::string(text ? text : "error " + std::to_string(r));
        dlclose(lib);
        return nullptr;
    }
    return std::make_unique<nvml_source>(lib, api);
}

}  // namespace kiln::telemetry
