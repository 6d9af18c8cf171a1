// emu_smi.cpp - the emulated devices' management library: what NVML would say about them, read by
// libkiln's telemetry (source KILN_TELEMETRY_EMU) through these exported functions, so telemetry
// rules, the power metric and the health checks run on emu as on a GPU. Power follows the device's
// busy fraction (idle to its limit), temperature follows power; KILN_EMU_FAULTS sets ECC growth, a
// thermal throttle, a power brake, remapped rows and retired pages.
#include "emu_device.h"

#include <kiln/kiln.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>

namespace kiln::emu {
namespace {

device* at(int32_t index) {
    auto& all = devices();
    return index >= 0 && index < static_cast<int32_t>(all.size()) ? all[static_cast<size_t>(index)].get() : nullptr;
}

void copy(char* dst, size_t bytes, const std::string& text) { snprintf(dst, bytes, "%s", text.c_str()); }

}  // namespace
}  // namespace kiln::emu

#define KILN_EMU_EXPORT extern "C" __attribute__((visibility("default")))

// NULL when the emulated devices are on; else why not (KILN_EMU_DEVICES unset or malformed).
KILN_EMU_EXPORT const char* kiln_emu_smi_unavailable(void) {
    return kiln::emu::devices().empty() ? kiln::emu::config_error().c_str() : nullptr;
}

KILN_EMU_EXPORT int32_t kiln_emu_smi_device_count(void) { return static_cast<int32_t>(kiln::emu::devices().size()); }

KILN_EMU_EXPORT kiln_status kiln_emu_smi_sample(int32_t index, kiln_gpu_sample* out) {
    using namespace kiln::emu;
    device* d = at(index);
    if (!d) return KILN_NOT_FOUND;
    const auto now = std::chrono::steady_clock::now();
    const double busy = d->utilization(now, 0.2);
    double power = d->cfg.idle_power_w + (d->cfg.power_limit_w - d->cfg.idle_power_w) * busy;
    double clock = d->cfg.clock_mhz;
    double temperature = 35 + 45 * power / d->cfg.power_limit_w;
    uint64_t throttle = busy < 0.05 ? KILN_THROTTLE_GPU_IDLE : 0;
    if (d->find(fault_kind::powerbrake)) {
        power = std::min(power, 0.25 * d->cfg.power_limit_w);
        clock *= 0.5;
        throttle |= KILN_THROTTLE_HW_POWER_BRAKE | KILN_THROTTLE_HW_SLOWDOWN;
    }
    if (const fault* f = d->find(fault_kind::thermal)) {
        temperature = f->temperature_c;
        clock *= 0.6;
        throttle |= KILN_THROTTLE_SW_THERMAL | KILN_THROTTLE_HW_THERMAL;
    }
    int64_t corrected = 0, uncorrected = 0;
    if (const fault* f = d->find(fault_kind::ecc)) {
        // Grown since the device came up: corrected at a steady rate, the uncorrected ones all at
        // once a second in (so a burn's telemetry sees them appear).
        const double up_s = std::chrono::duration<double>(now - d->created).count();
        corrected = static_cast<int64_t>(f->rate_per_s * up_s);
        uncorrected = up_s >= 1.0 ? f->count : 0;
    }
    out->temperature_c = temperature;
    out->power_w = power;
    out->sm_clock_mhz = clock;
    out->memory_clock_mhz = d->cfg.memory_clock_mhz;
    out->utilization_pct = 100 * busy;
    out->throttle_reasons = throttle;
    out->ecc_volatile_corrected = corrected;
    out->ecc_volatile_uncorrected = uncorrected;
    out->pcie_replay_count = 0;
    return KILN_OK;
}

// What only a health check reads (kiln_telemetry_health takes the rest from the sample).
KILN_EMU_EXPORT kiln_status kiln_emu_smi_health(int32_t index, kiln_gpu_health* out) {
    using namespace kiln::emu;
    device* d = at(index);
    if (!d) return KILN_NOT_FOUND;
    copy(out->name, sizeof out->name, d->cfg.name);
    char uuid[64];
    const std::string id = uuid_bytes(index);
    const unsigned char* u = reinterpret_cast<const unsigned char*>(id.data());
    snprintf(uuid, sizeof uuid, "GPU-%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", u[0], u[1], u[2], u[3], u[4],
             u[5], u[6], u[7], u[8], u[9], u[10], u[11], u[12], u[13], u[14], u[15]);
    copy(out->uuid, sizeof out->uuid, uuid);
    copy(out->serial, sizeof out->serial, "EMU" + std::to_string(1000 + index));
    copy(out->pci_bus_id, sizeof out->pci_bus_id, pci_bus_id(index));
    copy(out->vbios_version, sizeof out->vbios_version, "emulated");
    out->persistence_mode = 1;
    out->ecc_enabled = 1;
    out->pcie_gen_current = out->pcie_gen_max = 5;
    out->pcie_width_current = out->pcie_width_max = 16;
    out->retired_pages_pending = 0;
    out->retired_pages_sbe = out->retired_pages_dbe = 0;
    if (const fault* f = d->find(fault_kind::retired)) {
        out->retired_pages_sbe = f->count;
        out->retired_pages_dbe = f->count2;
        out->retired_pages_pending = f->pending;
    }
    out->ecc_aggregate_corrected = out->ecc_volatile_corrected >= 0 ? out->ecc_volatile_corrected : 0;
    out->ecc_aggregate_uncorrected = out->ecc_volatile_uncorrected >= 0 ? out->ecc_volatile_uncorrected : 0;
    out->remapped_rows_correctable = out->remapped_rows_uncorrectable = out->remap_pending = out->remap_failed = 0;
    if (const fault* f = d->find(fault_kind::remap)) {
        out->remapped_rows_correctable = static_cast<int32_t>(f->count);
        out->remapped_rows_uncorrectable = static_cast<int32_t>(f->count2);
        out->remap_pending = f->pending;
    }
    out->nvlink_links_total = out->nvlink_links_active = 0;
    out->nvlink_crc_errors = out->nvlink_replay_errors = out->nvlink_recovery_errors = 0;
    out->compute_processes = d->busy_now() ? 1 : 0;
    out->memory_total_bytes = d->cfg.memory_bytes;
    out->temperature_slowdown_c = 87;
    out->power_limit_w = d->cfg.power_limit_w;
    return KILN_OK;
}
