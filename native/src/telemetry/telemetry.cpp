// telemetry.cpp - the kiln_telemetry_* entry points: pick the source, check arguments, and keep a
// missing library or driver a clean KILN_UNSUPPORTED with its reason.
#include "telemetry_source.h"

#include <cstdlib>
#include <cstring>

struct kiln_telemetry {
    std::unique_ptr<kiln::telemetry::source> source;
};

namespace kiln::telemetry {

void* open_library(const std::string& library, const char* absent, std::string* why) {
    void* lib = dlopen(library.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
        const char* e = dlerror();
        *why = std::string(absent) + ": " + (e ? e : library + ": cannot open");
    }
    return lib;
}

void mark_unknown(kiln_gpu_health* h) {
    memset(h, 0, sizeof *h);
    h->index = -1;
    h->persistence_mode = h->ecc_enabled = -1;
    h->pcie_gen_current = h->pcie_gen_max = h->pcie_width_current = h->pcie_width_max = -1;
    h->retired_pages_pending = -1;
    h->retired_pages_sbe = h->retired_pages_dbe = -1;
    h->ecc_volatile_corrected = h->ecc_volatile_uncorrected = -1;
    h->ecc_aggregate_corrected = h->ecc_aggregate_uncorrected = -1;
    h->remapped_rows_correctable = h->remapped_rows_uncorrectable = h->remap_pending = h->remap_failed = -1;
    h->nvlink_links_total = h->nvlink_links_active = -1;
    h->nvlink_crc_errors = h->nvlink_replay_errors = h->nvlink_recovery_errors = -1;
    h->compute_processes = -1;
    h->temperature_c = h->temperature_slowdown_c = h->power_w = h->power_limit_w = -1;
}

void mark_unknown(kiln_gpu_sample* s) {
    s->temperature_c = s->power_w = s->sm_clock_mhz = s->memory_clock_mhz = s->utilization_pct = -1;
    s->throttle_reasons = 0;
    s->ecc_volatile_corrected = s->ecc_volatile_uncorrected = s->pcie_replay_count = -1;
}

}  // namespace kiln::telemetry

extern "C" {

kiln_status kiln_telemetry_open(int32_t source, const char* library_path, kiln_telemetry** out_telemetry) {
    if (!out_telemetry) return kiln::fail(KILN_INVALID_ARGUMENT, "out_telemetry must not be NULL");
    *out_telemetry = nullptr;
    std::string library = library_path && *library_path ? library_path : "";
    std::string why;
    std::unique_ptr<kiln::telemetry::source> src;
    if (source == KILN_TELEMETRY_NVML) {
        if (library.empty()) library = getenv("KILN_NVML_LIBRARY") && *getenv("KILN_NVML_LIBRARY") ? getenv("KILN_NVML_LIBRARY") : "libnvidia-ml.so.1";
        src = kiln::telemetry::open_nvml(library, &why);
    } else if (source == KILN_TELEMETRY_ROCM_SMI) {
        if (library.empty()) library = getenv("KILN_ROCM_SMI_LIBRARY") && *getenv("KILN_ROCM_SMI_LIBRARY") ? getenv("KILN_ROCM_SMI_LIBRARY") : "librocm_smi64.so";
        src = kiln::telemetry::open_rocm_smi(library, &why);
    } else if (source == KILN_TELEMETRY_EMU) {
        if (library.empty()) library = getenv("KILN_EMU_LIBRARY") && *getenv("KILN_EMU_LIBRARY") ? getenv("KILN_EMU_LIBRARY") : kiln::telemetry::default_emu_library();
        src = kiln::telemetry::open_emu(library, &why);
    } else {
        return kiln::fail(KILN_INVALID_ARGUMENT, "source: %d is not a kiln_telemetry_source", source);
    }
    if (!src) return kiln::fail(KILN_UNSUPPORTED, "%s", why.c_str());
    *out_telemetry = new kiln_telemetry{std::move(src)};
    return KILN_OK;
}

void kiln_telemetry_destroy(kiln_telemetry* telemetry) { delete telemetry; }

kiln_status kiln_telemetry_driver_version(const kiln_telemetry* telemetry, char* buf, size_t buf_bytes) {
    if (!telemetry || !buf) return kiln::fail(KILN_INVALID_ARGUMENT, "telemetry and buf must not be NULL");
    kiln::copy_text(buf, buf_bytes, telemetry->source->driver_version());
    return KILN_OK;
}

int32_t kiln_telemetry_device_count(const kiln_telemetry* telemetry) {
    return telemetry ? telemetry->source->device_count() : 0;
}

kiln_status kiln_telemetry_health(kiln_telemetry* telemetry, int32_t index, kiln_gpu_health* out_health) {
    if (!telemetry || !out_health) return kiln::fail(KILN_INVALID_ARGUMENT, "telemetry and out_health must not be NULL");
    const int32_t count = telemetry->source->device_count();
    if (index < 0 || index >= count)
        return kiln::fail(KILN_NOT_FOUND, "device %d: the telemetry source sees %d GPUs", index, count);
    kiln::telemetry::mark_unknown(out_health);
    out_health->index = index;
    // The readings a sample also takes come from one place: the source's sample().
    kiln_gpu_sample now;
    kiln::telemetry::mark_unknown(&now);
    const kiln_status st = telemetry->source->sample(index, &now);
    if (st != KILN_OK) return st;
    out_health->temperature_c = now.temperature_c;
    out_health->power_w = now.power_w;
    out_health->throttle_reasons = now.throttle_reasons;
    out_health->ecc_volatile_corrected = now.ecc_volatile_corrected;
    out_health->ecc_volatile_uncorrected = now.ecc_volatile_uncorrected;
    return telemetry->source->health(index, out_health);
}

kiln_status kiln_telemetry_sample(kiln_telemetry* telemetry, int32_t index, kiln_gpu_sample* out_sample) {
    if (!telemetry || !out_sample) return kiln::fail(KILN_INVALID_ARGUMENT, "telemetry and out_sample must not be NULL");
    const int32_t count = telemetry->source->device_count();
    if (index < 0 || index >= count)
        return kiln::fail(KILN_NOT_FOUND, "device %d: the telemetry source sees %d GPUs", index, count);
    kiln::telemetry::mark_unknown(out_sample);
    return telemetry->source->sample(index, out_sample);
}

}  // extern "C"
