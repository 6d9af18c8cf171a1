// rocm_smi.cpp - AMD telemetry through librocm_smi64.so, opened with dlopen and never linked. The
// types, enums and every function pointer's type come from the real rocm_smi.h (librocm-smi-dev).
// Where ROCm SMI has no counterpart of an NVML reading (row remapping, NVLink, throttle bitmask)
// the value stays unknown.
// rsmi_init prints to stderr on a node without amdgpu ("Failed to open drm root directory ...",
// "Exception caught: rsmi_init"), and Debian's slurm-wlm installs the library on every Slurm node:
// so ROCm SMI is opened only with an AMD GPU on the PCI bus, and what it prints while it starts is
// captured into the reason instead of reaching the terminal.
#include "telemetry_source.h"

#include <rocm_smi/rocm_smi.h>

#include <dirent.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>

namespace kiln::telemetry {
namespace {

// Each pointer has the type of the header's declaration.
struct rsmi_api {
    decltype(&rsmi_init) init = nullptr;
    decltype(&rsmi_shut_down) shut_down = nullptr;
    decltype(&rsmi_num_monitor_devices) num_devices = nullptr;
    decltype(&rsmi_dev_name_get) name = nullptr;
    decltype(&rsmi_dev_serial_number_get) serial = nullptr;
    decltype(&rsmi_dev_vbios_version_get) vbios = nullptr;
    decltype(&rsmi_dev_unique_id_get) unique_id = nullptr;
    decltype(&rsmi_dev_pci_id_get) pci_id = nullptr;
    decltype(&rsmi_dev_temp_metric_get) temp = nullptr;
    decltype(&rsmi_dev_power_ave_get) power_ave = nullptr;
    decltype(&rsmi_dev_power_cap_get) power_cap = nullptr;
    decltype(&rsmi_dev_memory_total_get) memory_total = nullptr;
    decltype(&rsmi_dev_ecc_enabled_get) ecc_enabled = nullptr;
    decltype(&rsmi_dev_ecc_count_get) ecc_count = nullptr;
    decltype(&rsmi_dev_pci_replay_counter_get) replay = nullptr;
    decltype(&rsmi_dev_busy_percent_get) busy = nullptr;
    decltype(&rsmi_version_str_get) version_str = nullptr;
};

class rocm_smi_source final : public source {
public:
    rocm_smi_source(void* lib, const rsmi_api& api) : lib_(lib), api_(api) {
        uint32_t n = 0;
        if (api_.num_devices(&n) == RSMI_STATUS_SUCCESS) count_ = static_cast<int32_t>(n);
    }
    ~rocm_smi_source() override {
        api_.shut_down();
        dlclose(lib_);
    }
    std::string driver_version() const override {
        char buf[96] = {0};
        return api_.version_str && api_.version_str(RSMI_SW_COMP_DRIVER, buf, sizeof buf) == RSMI_STATUS_SUCCESS ? buf : "";
    }
    int32_t device_count() const override { return count_; }

    kiln_status health(int32_t index, kiln_gpu_health* h) override {
        const uint32_t d = static_cast<uint32_t>(index);
        if (api_.name && api_.name(d, h->name, sizeof h->name) != RSMI_STATUS_SUCCESS) h->name[0] = '\0';
        if (api_.serial && api_.serial(d, h->serial, sizeof h->serial) != RSMI_STATUS_SUCCESS) h->serial[0] = '\0';
        if (api_.vbios && api_.vbios(d, h->vbios_version, sizeof h->vbios_version) != RSMI_STATUS_SUCCESS) h->vbios_version[0] = '\0';
        uint64_t v = 0;
        if (api_.unique_id && api_.unique_id(d, &v) == RSMI_STATUS_SUCCESS) snprintf(h->uuid, sizeof h->uuid, "0x%016llx", static_cast<unsigned long long>(v));
        if (api_.pci_id && api_.pci_id(d, &v) == RSMI_STATUS_SUCCESS)  // BDFID: domain << 32 | bus << 8 | device << 3 | function
            snprintf(h->pci_bus_id, sizeof h->pci_bus_id, "%04llx:%02llx:%02llx.%llx", (unsigned long long)(v >> 32),
                     (unsigned long long)((v >> 8) & 0xff), (unsigned long long)((v >> 3) & 0x1f), (unsigned long long)(v & 0x7));
        if (api_.ecc_enabled && api_.ecc_enabled(d, &v) == RSMI_STATUS_SUCCESS) h->ecc_enabled = v ? 1 : 0;
        if (api_.memory_total && api_.memory_total(d, RSMI_MEM_TYPE_VRAM, &v) == RSMI_STATUS_SUCCESS) h->memory_total_bytes = v;
        int64_t t = 0;
        if (api_.temp && api_.temp(d, RSMI_TEMP_TYPE_JUNCTION, RSMI_TEMP_CRITICAL, &t) == RSMI_STATUS_SUCCESS) h->temperature_slowdown_c = t / 1000.0;
        if (api_.power_cap && api_.power_cap(d, 0, &v) == RSMI_STATUS_SUCCESS) h->power_limit_w = v / 1e6;
        return KILN_OK;
    }

    kiln_status sample(int32_t index, kiln_gpu_sample* s) override {
        const uint32_t d = static_cast<uint32_t>(index);
        int64_t t = 0;
        uint64_t v = 0;
        uint32_t busy = 0;
        if (api_.temp && (api_.temp(d, RSMI_TEMP_TYPE_JUNCTION, RSMI_TEMP_CURRENT, &t) == RSMI_STATUS_SUCCESS || api_.temp(d, RSMI_TEMP_TYPE_EDGE, RSMI_TEMP_CURRENT, &t) == RSMI_STATUS_SUCCESS))
            s->temperature_c = t / 1000.0;
        if (api_.power_ave && api_.power_ave(d, 0, &v) == RSMI_STATUS_SUCCESS) s->power_w = v / 1e6;
        if (api_.busy && api_.busy(d, &busy) == RSMI_STATUS_SUCCESS) s->utilization_pct = busy;
        if (api_.replay && api_.replay(d, &v) == RSMI_STATUS_SUCCESS) s->pcie_replay_count = static_cast<int64_t>(v);
        ecc(d, &s->ecc_volatile_corrected, &s->ecc_volatile_uncorrected);
        return KILN_OK;
    }

private:
    // Sum of correctable / uncorrectable counts over every RAS block.
    void ecc(uint32_t d, int64_t* corrected, int64_t* uncorrected) const {
        if (!api_.ecc_count) return;
        int64_t c = 0, u = 0;
        bool any = false;
        for (uint64_t block = RSMI_GPU_BLOCK_FIRST; block <= RSMI_GPU_BLOCK_LAST; block <<= 1) {
            rsmi_error_count_t e{};
            if (api_.ecc_count(d, static_cast<rsmi_gpu_block_t>(block), &e) != RSMI_STATUS_SUCCESS) continue;
            any = true;
            c += static_cast<int64_t>(e.correctable_err);
            u += static_cast<int64_t>(e.uncorrectable_err);
        }
        if (any) {
            *corrected = c;
            *uncorrected = u;
        }
    }

    void* lib_;
    rsmi_api api_;
    int32_t count_ = 0;
};

std::string first_line(const std::string& path) {
    FILE* f = fopen(path.c_str(), "r");
    if (!f) return "";
    char buf[64] = {0};
    const bool ok = fgets(buf, sizeof buf, f) != nullptr;
    fclose(f);
    return ok ? std::string(buf) : "";
}

// An AMD (0x1002) display (0x03xxxx) or processing-accelerator (0x12xxxx) function under
// ROOT/sys/bus/pci/devices, ROOT being KILN_SYSFS_ROOT or /. Writes the folder looked at to *where.
bool amd_gpu_on_pci_bus(std::string* where) {
    const char* root = getenv("KILN_SYSFS_ROOT");
    *where = std::string(root && *root ? root : "") + "/sys/bus/pci/devices";
    DIR* dir = opendir(where->c_str());
    if (!dir) return false;
    bool found = false;
    while (dirent* e = readdir(dir)) {
        if (e->d_name[0] == '.') continue;
        const std::string device = *where + "/" + e->d_name;
        const std::string cls = first_line(device + "/class");
        if (first_line(device + "/vendor").rfind("0x1002", 0) == 0 && (cls.rfind("0x03", 0) == 0 || cls.rfind("0x12", 0) == 0)) {
            found = true;
            break;
        }
    }
    closedir(dir);
    return found;
}

// Sends fd 2 to a temporary file for the lifetime of the object; text() restores it and returns
// what was written, lines joined by "; ". Process-wide while it lasts: only around rsmi_init.
class stderr_capture {
public:
    stderr_capture() {
        fflush(stderr);
        file_ = tmpfile();
        saved_ = file_ ? dup(2) : -1;
        if (saved_ >= 0 && dup2(fileno(file_), 2) < 0) {
            close(saved_);
            saved_ = -1;
        }
    }
    stderr_capture(const stderr_capture&) = delete;
    stderr_capture& operator=(const stderr_capture&) = delete;
    ~stderr_capture() { text(); }

    std::string text() {
        std::string out;
        if (saved_ >= 0) {
            fflush(stderr);
            dup2(saved_, 2);
            close(saved_);
            saved_ = -1;
        }
        if (!file_) return out;
        rewind(file_);
        char buf[512];
        while (fgets(buf, sizeof buf, file_) && out.size() < 2000) {
            std::string line(buf);
            while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.pop_back();
            if (line.empty()) continue;
            out += (out.empty() ? "" : "; ") + line;
        }
        fclose(file_);
        file_ = nullptr;
        return out;
    }

private:
    FILE* file_ = nullptr;
    int saved_ = -1;
};

}  // namespace

std::unique_ptr<source> open_rocm_smi(const std::string& library, std::string* why) {
    std::string bus;
    if (!amd_gpu_on_pci_bus(&bus)) {
        *why = "no AMD GPU (vendor 0x1002) on the PCI bus (" + bus + "): ROCm SMI not started";
        return nullptr;
    }
    void* lib = open_library(library, "no ROCm", why);
    if (!lib) return nullptr;
    rsmi_api api{};
    if (!resolve(lib, "rsmi_init", &api.init) || !resolve(lib, "rsmi_shut_down", &api.shut_down) ||
        !resolve(lib, "rsmi_num_monitor_devices", &api.num_devices)) {
        *why = library + ": not a usable ROCm SMI (rsmi_init and device enumeration missing)";
        dlclose(lib);
        return nullptr;
    }
    resolve(lib, "rsmi_dev_name_get", &api.name);
    resolve(lib, "rsmi_dev_serial_number_get", &api.serial);
    resolve(lib, "rsmi_dev_vbios_version_get", &api.vbios);
    resolve(lib, "rsmi_dev_unique_id_get", &api.unique_id);
    resolve(lib, "rsmi_dev_pci_id_get", &api.pci_id);
    resolve(lib, "rsmi_dev_temp_metric_get", &api.temp);
    resolve(lib, "rsmi_dev_power_ave_get", &api.power_ave);
    resolve(lib, "rsmi_dev_power_cap_get", &api.power_cap);
    resolve(lib, "rsmi_dev_memory_total_get", &api.memory_total);
    resolve(lib, "rsmi_dev_ecc_enabled_get", &api.ecc_enabled);
    resolve(lib, "rsmi_dev_ecc_count_get", &api.ecc_count);
    resolve(lib, "rsmi_dev_pci_replay_counter_get", &api.replay);
    resolve(lib, "rsmi_dev_busy_percent_get", &api.busy);
    resolve(lib, "rsmi_version_str_get", &api.version_str);
    stderr_capture capture;
    const rsmi_status_t r = api.init(0);
    const std::string said = capture.text();
    if (r != RSMI_STATUS_SUCCESS) {
        *why = "ROCm SMI could not start (amdgpu driver not loaded?): status " + std::to_string(r) + (said.empty() ? "" : "; it printed: " + said);
        dlclose(lib);
        return nullptr;
    }
    return std::make_unique<rocm_smi_source>(lib, api);
}

}  // namespace kiln::telemetry
