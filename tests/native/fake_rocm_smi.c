/* fake_rocm_smi.c - a test double of ROCm SMI behind the same dlopen seam: built as librocm_smi64.so
 * in a test folder and compiled against the real rocm_smi.h, so every entry point has the header's
 * signature. It answers the calls Kiln makes from a configuration in $KILN_FAKE_ROCM_SMI:
 * "key=value" pairs separated by ';' or newlines. Keys: gpus, driver, init_error (rsmi_init then
 * prints what the real one prints on a node without amdgpu and fails with that status); per GPU
 * "gpuN.<field>" with the fields of struct fake_gpu below (temperatures in C, power in W).
 * Defaults describe a healthy 8x MI300X node. */
#define _POSIX_C_SOURCE 200809L
#include <rocm_smi/rocm_smi.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_GPUS 16
typedef struct fake_gpu {
    char name[96], serial[64], vbios[64];
    long long bus, ecc_enabled, ecc_correctable, ecc_uncorrectable, ecc_uncorrectable_step;
    long long temperature, temp_critical, power_w, power_cap_w, busy, replay, vram_gib;
} fake_gpu;

static fake_gpu g_gpus[MAX_GPUS];
static int g_count = 8;
static char g_driver[64] = "6.7.0";
static int g_init_error = 0;
/* An MI300X platform's GPU buses (domain 0, device 0, function 0). */
static const int k_bus[8] = {0x05, 0x15, 0x65, 0x75, 0x85, 0x95, 0xe5, 0xf5};

static void set_defaults(void) {
    for (int i = 0; i < MAX_GPUS; ++i) {
        fake_gpu* g = &g_gpus[i];
        memset(g, 0, sizeof *g);
        snprintf(g->name, sizeof g->name, "AMD Instinct MI300X");
        snprintf(g->serial, sizeof g->serial, "FAKE%012d", i);
        snprintf(g->vbios, sizeof g->vbios, "113-M3000100-102");
        g->bus = i < 8 ? k_bus[i] : 0xa0 + i;
        g->ecc_enabled = 1;
        g->temperature = 40;
        g->temp_critical = 100;
        g->power_w = 300;
        g->power_cap_w = 750;
        g->vram_gib = 192;
    }
}

static void set(const char* key, const char* value) {
    if (strcmp(key, "gpus") == 0) g_count = atoi(value);
    else if (strcmp(key, "driver") == 0) snprintf(g_driver, sizeof g_driver, "%s", value);
    else if (strcmp(key, "init_error") == 0) g_init_error = atoi(value);
    else if (strncmp(key, "gpu", 3) == 0) {
        char* dot = NULL;
        const long idx = strtol(key + 3, &dot, 10);
        if (!dot || *dot != '.' || idx < 0 || idx >= MAX_GPUS) return;
        fake_gpu* g = &g_gpus[idx];
        const char* f = dot + 1;
        const long long v = strtoll(value, NULL, 0);
#define TEXT(name) if (strcmp(f, #name) == 0) { snprintf(g->name, sizeof g->name, "%s", value); return; }
#define NUM(name) if (strcmp(f, #name) == 0) { g->name = v; return; }
        TEXT(name) TEXT(serial) TEXT(vbios)
        NUM(bus) NUM(ecc_enabled) NUM(ecc_correctable) NUM(ecc_uncorrectable) NUM(ecc_uncorrectable_step)
        NUM(temperature) NUM(temp_critical) NUM(power_w) NUM(power_cap_w) NUM(busy) NUM(replay) NUM(vram_gib)
#undef TEXT
#undef NUM
    }
}

static void load_config(void) {
    set_defaults();
    const char* text = getenv("KILN_FAKE_ROCM_SMI");
    if (!text) return;
    char buf[8192];
    snprintf(buf, sizeof buf, "%s", text);
    for (char* save = NULL, *pair = strtok_r(buf, ";\n", &save); pair; pair = strtok_r(NULL, ";\n", &save)) {
        char* eq = strchr(pair, '=');
        if (!eq) continue;
        *eq = '\0';
        set(pair, eq + 1);
    }
}

static fake_gpu* gpu(uint32_t d) { return d < (uint32_t)g_count && d < MAX_GPUS ? &g_gpus[d] : NULL; }
#define GPU_OR_FAIL(d) fake_gpu* g = gpu(d); if (!g) return RSMI_STATUS_INVALID_ARGS

rsmi_status_t rsmi_init(uint64_t flags) {
    (void)flags;
    load_config();
    if (g_init_error) {
        fprintf(stderr, "Failed to open drm root directory /sys/class/drm.\n");
        fprintf(stderr, "Exception caught: rsmi_init.\n");
    }
    return (rsmi_status_t)g_init_error;
}
rsmi_status_t rsmi_shut_down(void) { return RSMI_STATUS_SUCCESS; }
rsmi_status_t rsmi_num_monitor_devices(uint32_t* count) {
    *count = (uint32_t)g_count;
    return RSMI_STATUS_SUCCESS;
}
rsmi_status_t rsmi_version_str_get(rsmi_sw_component_t component, char* out, uint32_t len) {
    if (component != RSMI_SW_COMP_DRIVER) return RSMI_STATUS_INVALID_ARGS;
    snprintf(out, len, "%s", g_driver);
    return RSMI_STATUS_SUCCESS;
}
rsmi_status_t rsmi_dev_name_get(uint32_t d, char* out, size_t len) { GPU_OR_FAIL(d); snprintf(out, len, "%s", g->name); return RSMI_STATUS_SUCCESS; }
rsmi_status_t rsmi_dev_serial_number_get(uint32_t d, char* out, uint32_t len) { GPU_OR_FAIL(d); snprintf(out, len, "%s", g->serial); return RSMI_STATUS_SUCCESS; }
rsmi_status_t rsmi_dev_vbios_version_get(uint32_t d, char* out, uint32_t len) { GPU_OR_FAIL(d); snprintf(out, len, "%s", g->vbios); return RSMI_STATUS_SUCCESS; }
rsmi_status_t rsmi_dev_unique_id_get(uint32_t d, uint64_t* id) { GPU_OR_FAIL(d); *id = 0x1f00000000000000ull + d; (void)g; return RSMI_STATUS_SUCCESS; }
/* BDFID: domain << 32 | bus << 8 | device << 3 | function. */
rsmi_status_t rsmi_dev_pci_id_get(uint32_t d, uint64_t* bdfid) { GPU_OR_FAIL(d); *bdfid = (uint64_t)g->bus << 8; return RSMI_STATUS_SUCCESS; }
/* Millidegrees C; only the junction (hotspot) and edge sensors exist. */
rsmi_status_t rsmi_dev_temp_metric_get(uint32_t d, uint32_t sensor, rsmi_temperature_metric_t metric, int64_t* t) {
    GPU_OR_FAIL(d);
    if (sensor != RSMI_TEMP_TYPE_JUNCTION && sensor != RSMI_TEMP_TYPE_EDGE) return RSMI_STATUS_NOT_SUPPORTED;
    if (metric == RSMI_TEMP_CURRENT) *t = g->temperature * 1000;
    else if (metric == RSMI_TEMP_CRITICAL) *t = g->temp_critical * 1000;
    else return RSMI_STATUS_NOT_SUPPORTED;
    return RSMI_STATUS_SUCCESS;
}
/* Microwatts. */
rsmi_status_t rsmi_dev_power_ave_get(uint32_t d, uint32_t sensor, uint64_t* p) { GPU_OR_FAIL(d); (void)sensor; *p = (uint64_t)g->power_w * 1000000u; return RSMI_STATUS_SUCCESS; }
rsmi_status_t rsmi_dev_power_cap_get(uint32_t d, uint32_t sensor, uint64_t* p) { GPU_OR_FAIL(d); (void)sensor; *p = (uint64_t)g->power_cap_w * 1000000u; return RSMI_STATUS_SUCCESS; }
rsmi_status_t rsmi_dev_memory_total_get(uint32_t d, rsmi_memory_type_t type, uint64_t* total) {
    GPU_OR_FAIL(d);
    if (type != RSMI_MEM_TYPE_VRAM) return RSMI_STATUS_NOT_SUPPORTED;
    *total = (uint64_t)g->vram_gib << 30;
    return RSMI_STATUS_SUCCESS;
}
rsmi_status_t rsmi_dev_ecc_enabled_get(uint32_t d, uint64_t* blocks) { GPU_OR_FAIL(d); *blocks = g->ecc_enabled ? RSMI_GPU_BLOCK_UMC : 0; return RSMI_STATUS_SUCCESS; }
/* Counts live on the memory controller (UMC) block and, for the corrected ones, one on SDMA, so a
 * reader that sums over every block sees correctable + 1; other blocks are not supported. */
rsmi_status_t rsmi_dev_ecc_count_get(uint32_t d, rsmi_gpu_block_t block, rsmi_error_count_t* ec) {
    GPU_OR_FAIL(d);
    if (block == RSMI_GPU_BLOCK_UMC) {
        g->ecc_uncorrectable += g->ecc_uncorrectable_step;
        ec->correctable_err = (uint64_t)g->ecc_correctable;
        ec->uncorrectable_err = (uint64_t)g->ecc_uncorrectable;
        return RSMI_STATUS_SUCCESS;
    }
    if (block == RSMI_GPU_BLOCK_SDMA) {
        ec->correctable_err = 1;
        ec->uncorrectable_err = 0;
        return RSMI_STATUS_SUCCESS;
    }
    return RSMI_STATUS_NOT_SUPPORTED;
}
rsmi_status_t rsmi_dev_pci_replay_counter_get(uint32_t d, uint64_t* n) { GPU_OR_FAIL(d); *n = (uint64_t)g->replay; return RSMI_STATUS_SUCCESS; }
rsmi_status_t rsmi_dev_busy_percent_get(uint32_t d, uint32_t* pct) { GPU_OR_FAIL(d); *pct = (uint32_t)g->busy; return RSMI_STATUS_SUCCESS; }
