// nvml.cpp - NVIDIA telemetry through libnvidia-ml.so.1, opened with dlopen and never linked, so
// a node without the driver still runs everything else. The types, enums and every function
// pointer's type come from the real nvml.h (libnvidia-ml-dev); a function an older driver lacks
// reads as unknown (-1).
#include "telemetry_source.h"

#include <nvml.h>

#include <cctype>
#include <cstdio>
#include <cstring>
#include <vector>

namespace kiln::telemetry {
namespace {

// Each pointer has the type of the header's declaration: a signature that changes in a new nvml.h
// breaks the build here instead of the call at run time.
struct nvml_api {
    decltype(&nvmlInit_v2) init = nullptr;
    decltype(&nvmlShutdown) shutdown = nullptr;
    decltype(&nvmlErrorString) error_string = nullptr;
    decltype(&nvmlSystemGetDriverVersion) driver_version = nullptr;
    decltype(&nvmlDeviceGetCount_v2) count = nullptr;
    decltype(&nvmlDeviceGetHandleByIndex_v2) handle = nullptr;
    decltype(&nvmlDeviceGetName) name = nullptr;
    decltype(&nvmlDeviceGetUUID) uuid = nullptr;
    decltype(&nvmlDeviceGetSerial) serial = nullptr;
    decltype(&nvmlDeviceGetVbiosVersion) vbios = nullptr;
    decltype(&nvmlDeviceGetPciInfo_v3) pci_info = nullptr;
    decltype(&nvmlDeviceGetPersistenceMode) persistence = nullptr;
    decltype(&nvmlDeviceGetEccMode) ecc_mode = nullptr;
    decltype(&nvmlDeviceGetTotalEccErrors) ecc_total = nullptr;
    decltype(&nvmlDeviceGetRetiredPages) retired_pages = nullptr;
    decltype(&nvmlDeviceGetRetiredPagesPendingStatus) retired_pending = nullptr;
    decltype(&nvmlDeviceGetRemappedRows) remapped_rows = nullptr;
    // nvmlDeviceGetCurrentClocksEventReasons (drivers 535+) has the same signature under its new name.
    decltype(&nvmlDeviceGetCurrentClocksThrottleReasons) throttle = nullptr;
    decltype(&nvmlDeviceGetTemperature) temperature = nullptr;
    decltype(&nvmlDeviceGetTemperatureThreshold) temperature_threshold = nullptr;
    decltype(&nvmlDeviceGetPowerUsage) power = nullptr;
    decltype(&nvmlDeviceGetEnforcedPowerLimit) power_limit = nullptr;
    decltype(&nvmlDeviceGetClockInfo) clock = nullptr;
    decltype(&nvmlDeviceGetCurrPcieLinkGeneration) pcie_gen = nullptr;
    decltype(&nvmlDeviceGetMaxPcieLinkGeneration) pcie_gen_max = nullptr;
    decltype(&nvmlDeviceGetCurrPcieLinkWidth) pcie_width = nullptr;
    decltype(&nvmlDeviceGetMaxPcieLinkWidth) pcie_width_max = nullptr;
    decltype(&nvmlDeviceGetPcieReplayCounter) pcie_replay = nullptr;
    decltype(&nvmlDeviceGetNvLinkState) nvlink_state = nullptr;
    decltype(&nvmlDeviceGetNvLinkErrorCounter) nvlink_error = nullptr;
    // Called with no buffer, only for the count: the v1 entry point (older drivers) differs only in
    // the element type of the array it is not given.
    decltype(&nvmlDeviceGetComputeRunningProcesses_v3) processes = nullptr;
    decltype(&nvmlDeviceGetMemoryInfo) memory = nullptr;
    decltype(&nvmlDeviceGetUtilizationRates) utilization = nullptr;
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
        if (api_.count(&n) == NVML_SUCCESS)
            for (unsigned i = 0; i < n; ++i) {
                nvmlDevice_t d = nullptr;
                devices_.push_back(api_.handle(i, &d) == NVML_SUCCESS ? d : nullptr);
            }
    }
    ~nvml_source() override {
        api_.shutdown();
        dlclose(lib_);
    }

    std::string driver_version() const override {
        char buf[96] = {0};
        return api_.driver_version && api_.driver_version(buf, sizeof buf) == NVML_SUCCESS ? buf : "";
    }
    int32_t device_count() const override { return static_cast<int32_t>(devices_.size()); }

    kiln_status health(int32_t index, kiln_gpu_health* h) override {
        nvmlDevice_t d = devices_[static_cast<size_t>(index)];
        if (!d) return fail(KILN_BACKEND_ERROR, "GPU %d: NVML gave no handle (GPU lost?)", index);
        text(api_.name, d, h->name, sizeof h->name);
        text(api_.uuid, d, h->uuid, sizeof h->uuid);
        text(api_.serial, d, h->serial, sizeof h->serial);
        text(api_.vbios, d, h->vbios_version, sizeof h->vbios_version);
        nvmlPciInfo_t pci{};
        if (api_.pci_info && api_.pci_info(d, &pci) == NVML_SUCCESS)
            copy_text(h->pci_bus_id, sizeof h->pci_bus_id, normalize_bus_id(pci.busId));
        nvmlEnableState_t state = NVML_FEATURE_DISABLED, pending = NVML_FEATURE_DISABLED;
        if (api_.persistence && api_.persistence(d, &state) == NVML_SUCCESS) h->persistence_mode = state == NVML_FEATURE_ENABLED;
        if (api_.ecc_mode && api_.ecc_mode(d, &state, &pending) == NVML_SUCCESS) h->ecc_enabled = state == NVML_FEATURE_ENABLED;
        h->pcie_gen_current = u32(api_.pcie_gen, d);
        h->pcie_gen_max = u32(api_.pcie_gen_max, d);
        h->pcie_width_current = u32(api_.pcie_width, d);
        h->pcie_width_max = u32(api_.pcie_width_max, d);
        h->ecc_aggregate_corrected = ecc(d, NVML_MEMORY_ERROR_TYPE_CORRECTED, NVML_AGGREGATE_ECC);
        h->ecc_aggregate_uncorrected = ecc(d, NVML_MEMORY_ERROR_TYPE_UNCORRECTED, NVML_AGGREGATE_ECC);
        h->retired_pages_sbe = retired(d, NVML_PAGE_RETIREMENT_CAUSE_MULTIPLE_SINGLE_BIT_ECC_ERRORS);
        h->retired_pages_dbe = retired(d, NVML_PAGE_RETIREMENT_CAUSE_DOUBLE_BIT_ECC_ERROR);
        if (api_.retired_pending && api_.retired_pending(d, &state) == NVML_SUCCESS) h->retired_pages_pending = state == NVML_FEATURE_ENABLED;
        unsigned corr = 0, unc = 0, rpending = 0, rfailed = 0;
        if (api_.remapped_rows && api_.remapped_rows(d, &corr, &unc, &rpending, &rfailed) == NVML_SUCCESS) {
            h->remapped_rows_correctable = static_cast<int32_t>(corr);
            h->remapped_rows_uncorrectable = static_cast<int32_t>(unc);
            h->remap_pending = rpending ? 1 : 0;
            h->remap_failed = rfailed ? 1 : 0;
        }
        nvlink(d, h);
        unsigned procs = 0;
        if (api_.processes) {
            const nvmlReturn_t r = api_.processes(d, &procs, nullptr);
            if (r == NVML_SUCCESS || r == NVML_ERROR_INSUFFICIENT_SIZE) h->compute_processes = static_cast<int32_t>(procs);
        }
        nvmlMemory_t mem{};
        if (api_.memory && api_.memory(d, &mem) == NVML_SUCCESS) h->memory_total_bytes = mem.total;
        unsigned v = 0;
        if (api_.temperature_threshold && api_.temperature_threshold(d, NVML_TEMPERATURE_THRESHOLD_SLOWDOWN, &v) == NVML_SUCCESS) h->temperature_slowdown_c = v;
        if (api_.power_limit && api_.power_limit(d, &v) == NVML_SUCCESS) h->power_limit_w = v / 1000.0;
        return KILN_OK;
    }

    kiln_status sample(int32_t index, kiln_gpu_sample* s) override {
        nvmlDevice_t d = devices_[static_cast<size_t>(index)];
        if (!d) return fail(KILN_BACKEND_ERROR, "GPU %d: NVML gave no handle (GPU lost?)", index);
        unsigned v = 0;
        if (api_.temperature && api_.temperature(d, NVML_TEMPERATURE_GPU, &v) == NVML_SUCCESS) s->temperature_c = v;
        if (api_.power && api_.power(d, &v) == NVML_SUCCESS) s->power_w = v / 1000.0;
        if (api_.clock && api_.clock(d, NVML_CLOCK_SM, &v) == NVML_SUCCESS) s->sm_clock_mhz = v;
        if (api_.clock && api_.clock(d, NVML_CLOCK_MEM, &v) == NVML_SUCCESS) s->memory_clock_mhz = v;
        nvmlUtilization_t u{};
        if (api_.utilization && api_.utilization(d, &u) == NVML_SUCCESS) s->utilization_pct = u.gpu;
        unsigned long long reasons = 0;
        if (api_.throttle && api_.throttle(d, &reasons) == NVML_SUCCESS) s->throttle_reasons = reasons;
        s->ecc_volatile_corrected = ecc(d, NVML_MEMORY_ERROR_TYPE_CORRECTED, NVML_VOLATILE_ECC);
        s->ecc_volatile_uncorrected = ecc(d, NVML_MEMORY_ERROR_TYPE_UNCORRECTED, NVML_VOLATILE_ECC);
        if (api_.pcie_replay && api_.pcie_replay(d, &v) == NVML_SUCCESS) s->pcie_replay_count = v;
        return KILN_OK;
    }

private:
    static void text(decltype(&nvmlDeviceGetName) fn, nvmlDevice_t d, char* out, size_t bytes) {
        if (fn && fn(d, out, static_cast<unsigned>(bytes)) != NVML_SUCCESS) out[0] = '\0';
        out[bytes - 1] = '\0';
    }
    static int32_t u32(decltype(&nvmlDeviceGetCurrPcieLinkGeneration) fn, nvmlDevice_t d) {
        unsigned v = 0;
        return fn && fn(d, &v) == NVML_SUCCESS ? static_cast<int32_t>(v) : -1;
    }
    int64_t ecc(nvmlDevice_t d, nvmlMemoryErrorType_t error_type, nvmlEccCounterType_t counter_type) const {
        unsigned long long v = 0;
        return api_.ecc_total && api_.ecc_total(d, error_type, counter_type, &v) == NVML_SUCCESS ? static_cast<int64_t>(v) : -1;
    }
    int64_t retired(nvmlDevice_t d, nvmlPageRetirementCause_t cause) const {
        unsigned count = 0;
        if (!api_.retired_pages) return -1;
        const nvmlReturn_t r = api_.retired_pages(d, cause, &count, nullptr);
        return (r == NVML_SUCCESS || r == NVML_ERROR_INSUFFICIENT_SIZE) ? static_cast<int64_t>(count) : -1;
    }
    void nvlink(nvmlDevice_t d, kiln_gpu_health* h) const {
        if (!api_.nvlink_state) return;
        int32_t total = 0, active = 0;
        int64_t crc = 0, replay = 0, recovery = 0;
        for (unsigned link = 0; link < NVML_NVLINK_MAX_LINKS; ++link) {
            nvmlEnableState_t is_active = NVML_FEATURE_DISABLED;
            if (api_.nvlink_state(d, link, &is_active) != NVML_SUCCESS) continue;  // no such link
            ++total;
            active += is_active == NVML_FEATURE_ENABLED ? 1 : 0;
            unsigned long long v = 0;
            if (!api_.nvlink_error) continue;
            if (api_.nvlink_error(d, link, NVML_NVLINK_ERROR_DL_REPLAY, &v) == NVML_SUCCESS) replay += static_cast<int64_t>(v);
            if (api_.nvlink_error(d, link, NVML_NVLINK_ERROR_DL_RECOVERY, &v) == NVML_SUCCESS) recovery += static_cast<int64_t>(v);
            if (api_.nvlink_error(d, link, NVML_NVLINK_ERROR_DL_CRC_FLIT, &v) == NVML_SUCCESS) crc += static_cast<int64_t>(v);
            if (api_.nvlink_error(d, link, NVML_NVLINK_ERROR_DL_CRC_DATA, &v) == NVML_SUCCESS) crc += static_cast<int64_t>(v);
        }
        h->nvlink_links_total = total;
        h->nvlink_links_active = active;
        h->nvlink_crc_errors = total ? crc : 0;
        h->nvlink_replay_errors = total ? replay : 0;
        h->nvlink_recovery_errors = total ? recovery : 0;
    }

    void* lib_;
    nvml_api api_;
    std::vector<nvmlDevice_t> devices_;
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

    const nvmlReturn_t r = api.init();
    if (r != NVML_SUCCESS) {
        const char* text = api.error_string ? api.error_string(r) : nullptr;
        *why = "NVML could not start (no CUDA driver loaded?): " + std::string(text ? text : "error " + std::to_string(r));
        dlclose(lib);
        return nullptr;
    }
    return std::make_unique<nvml_source>(lib, api);
}

}  // namespace kiln::telemetry
