/* fake_nvml.c - a test double of NVML behind the same dlopen seam: built as libnvidia-ml.so.1 in a
 * test folder, it answers the NVML calls Kiln makes from a configuration in $KILN_FAKE_NVML:
 * "key=value" pairs separated by ';' or newlines (or "@/path/file" to read them from a file).
 * Keys: gpus, driver, init_error; per GPU "gpuN.<field>" with the fields of struct fake_gpu below.
 * Defaults describe a healthy 8x H100 SXM node. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_GPUS 16
typedef struct fake_gpu {
    char name[96], uuid[96], serial[64], bus_id[32], vbios[64];
    long long persistence, ecc_mode, pcie_gen, pcie_gen_max, pcie_width, pcie_width_max;
    long long ecc_volatile_corrected, ecc_volatile_uncorrected, ecc_aggregate_corrected, ecc_aggregate_uncorrected;
    long long ecc_uncorrected_step; /* added to the volatile uncorrected count on every read */
    long long ecc_corrected_step;   /* added to the volatile corrected count on every read */
    long long retired_sbe, retired_dbe, retired_pending;
    long long remap_correctable, remap_uncorrectable, remap_pending, remap_failed;
    long long nvlinks, nvlinks_down, nvlink_crc, nvlink_replay, nvlink_recovery;
    long long processes, throttle, temperature, slowdown, power_mw, power_limit_mw, sm_clock, mem_clock, util, replay;
} fake_gpu;

static fake_gpu g_gpus[MAX_GPUS];
static int g_count = 8;
static char g_driver[64] = "535.183.01";
static int g_init_error = 0;
static const char* const k_bus[8] = {"00000000:18:00.0", "00000000:2A:00.0", "00000000:3A:00.0", "00000000:5D:00.0",
                                     "00000000:9A:00.0", "00000000:AB:00.0", "00000000:BA:00.0", "00000000:DB:00.0"};

static void set_defaults(void) {
    for (int i = 0; i < MAX_GPUS; ++i) {
        fake_gpu* g = &g_gpus[i];
        memset(g, 0, sizeof *g);
        snprintf(g->name, sizeof g->name, "NVIDIA H100 80GB HBM3");
        snprintf(g->uuid, sizeof g->uuid, "GPU-0000fake-0000-0000-0000-%012d", i);
        snprintf(g->serial, sizeof g->serial, "16520230%05d", i);
        snprintf(g->bus_id, sizeof g->bus_id, "%s", i < 8 ? k_bus[i] : "00000000:E0:00.0");
        snprintf(g->vbios, sizeof g->vbios, "96.00.99.00.01");
        g->persistence = 1; g->ecc_mode = 1;
        g->pcie_gen = 5; g->pcie_gen_max = 5; g->pcie_width = 16; g->pcie_width_max = 16;
        g->nvlinks = 18;
        g->temperature = 35; g->slowdown = 87; g->power_mw = 70000; g->power_limit_mw = 700000;
        g->sm_clock = 1980; g->mem_clock = 2619;
    }
}

static void set_field(fake_gpu* g, const char* key, const char* value) {
    const long long v = strtoll(value, NULL, 0);
#define TEXT(f) if (strcmp(key, #f) == 0) { snprintf(g->f, sizeof g->f, "%s", value); return; }
#define NUM(f) if (strcmp(key, #f) == 0) { g->f = v; return; }
    TEXT(name) TEXT(uuid) TEXT(serial) TEXT(bus_id) TEXT(vbios)
    NUM(persistence) NUM(ecc_mode) NUM(pcie_gen) NUM(pcie_gen_max) NUM(pcie_width) NUM(pcie_width_max)
    NUM(ecc_volatile_corrected) NUM(ecc_volatile_uncorrected) NUM(ecc_aggregate_corrected) NUM(ecc_aggregate_uncorrected)
    NUM(ecc_uncorrected_step) NUM(ecc_corrected_step) NUM(retired_sbe) NUM(retired_dbe) NUM(retired_pending)
    NUM(remap_correctable) NUM(remap_uncorrectable) NUM(remap_pending) NUM(remap_failed)
    NUM(nvlinks) NUM(nvlinks_down) NUM(nvlink_crc) NUM(nvlink_replay) NUM(nvlink_recovery)
    NUM(processes) NUM(throttle) NUM(temperature) NUM(slowdown) NUM(power_mw) NUM(power_limit_mw)
    NUM(sm_clock) NUM(mem_clock) NUM(util) NUM(replay)
#undef TEXT
#undef NUM
}

static void apply(char* text) {
    for (char* item = strtok(text, ";\n"); item; item = strtok(NULL, ";\n")) {
        char* eq = strchr(item, '=');
        if (!eq) continue;
        *eq = '\0';
        const char* key = item;
        const char* value = eq + 1;
        int index = 0, used = 0;
        if (strcmp(key, "gpus") == 0) g_count = atoi(value);
        else if (strcmp(key, "driver") == 0) snprintf(g_driver, sizeof g_driver, "%s", value);
        else if (strcmp(key, "init_error") == 0) g_init_error = atoi(value);
        else if (sscanf(key, "gpu%d.%n", &index, &used) == 1 && used > 0 && index >= 0 && index < MAX_GPUS)
            set_field(&g_gpus[index], key + used, value);
    }
}

static void load_config(void) {
    set_defaults();
    const char* env = getenv("KILN_FAKE_NVML");
    if (!env) return;
    static char buf[1 << 16];
    if (env[0] == '@') {
        FILE* f = fopen(env + 1, "r");
        if (!f) return;
        const size_t n = fread(buf, 1, sizeof buf - 1, f);
        buf[n] = '\0';
        fclose(f);
    } else {
        snprintf(buf, sizeof buf, "%s", env);
    }
    apply(buf);
}

typedef int nvmlReturn_t;
typedef struct { int index; } * nvmlDevice_t;
static struct { int index; } g_handles[MAX_GPUS];
#define DEV(d) (&g_gpus[((struct { int index; }*)(void*)(d))->index])

nvmlReturn_t nvmlInit_v2(void) { load_config(); return g_init_error; }
nvmlReturn_t nvmlShutdown(void) { return 0; }
const char* nvmlErrorString(nvmlReturn_t r) { return r == 9 ? "Driver Not Loaded" : "Unknown Error"; }
nvmlReturn_t nvmlSystemGetDriverVersion(char* v, unsigned n) { snprintf(v, n, "%s", g_driver); return 0; }
nvmlReturn_t nvmlDeviceGetCount_v2(unsigned* n) { *n = (unsigned)g_count; return 0; }
nvmlReturn_t nvmlDeviceGetHandleByIndex_v2(unsigned i, void** d) {
    if (i >= (unsigned)g_count || i >= MAX_GPUS) return 2;
    g_handles[i].index = (int)i;
    *d = &g_handles[i];
    return 0;
}
nvmlReturn_t nvmlDeviceGetName(void* d, char* s, unsigned n) { snprintf(s, n, "%s", DEV(d)->name); return 0; }
nvmlReturn_t nvmlDeviceGetUUID(void* d, char* s, unsigned n) { snprintf(s, n, "%s", DEV(d)->uuid); return 0; }
nvmlReturn_t nvmlDeviceGetSerial(void* d, char* s, unsigned n) { snprintf(s, n, "%s", DEV(d)->serial); return 0; }
nvmlReturn_t nvmlDeviceGetVbiosVersion(void* d, char* s, unsigned n) { snprintf(s, n, "%s", DEV(d)->vbios); return 0; }
typedef struct { char legacy[16]; unsigned domain, bus, device, id, sub; char bus_id[32]; } pci_v3;
nvmlReturn_t nvmlDeviceGetPciInfo_v3(void* d, pci_v3* p) {
    memset(p, 0, sizeof *p);
    snprintf(p->bus_id, sizeof p->bus_id, "%s", DEV(d)->bus_id);
    return 0;
}
nvmlReturn_t nvmlDeviceGetPersistenceMode(void* d, int* m) { *m = (int)DEV(d)->persistence; return 0; }
nvmlReturn_t nvmlDeviceGetEccMode(void* d, int* c, int* p) { *c = *p = (int)DEV(d)->ecc_mode; return 0; }
nvmlReturn_t nvmlDeviceGetTotalEccErrors(void* d, int type, int counter, unsigned long long* v) {
    fake_gpu* g = DEV(d);
    if (counter == 0 && type == 1) g->ecc_volatile_uncorrected += g->ecc_uncorrected_step;
    if (counter == 0 && type == 0) g->ecc_volatile_corrected += g->ecc_corrected_step;
    *v = (unsigned long long)(counter == 0 ? (type == 0 ? g->ecc_volatile_corrected : g->ecc_volatile_uncorrected)
                                           : (type == 0 ? g->ecc_aggregate_corrected : g->ecc_aggregate_uncorrected));
    return 0;
}
nvmlReturn_t nvmlDeviceGetRetiredPages(void* d, int cause, unsigned* count, unsigned long long* addrs) {
    *count = (unsigned)(cause == 0 ? DEV(d)->retired_sbe : DEV(d)->retired_dbe);
    (void)addrs;
    return 0;
}
nvmlReturn_t nvmlDeviceGetRetiredPagesPendingStatus(void* d, int* p) { *p = (int)DEV(d)->retired_pending; return 0; }
nvmlReturn_t nvmlDeviceGetRemappedRows(void* d, unsigned* c, unsigned* u, unsigned* p, unsigned* f) {
    *c = (unsigned)DEV(d)->remap_correctable; *u = (unsigned)DEV(d)->remap_uncorrectable;
    *p = (unsigned)DEV(d)->remap_pending; *f = (unsigned)DEV(d)->remap_failed;
    return 0;
}
nvmlReturn_t nvmlDeviceGetCurrentClocksEventReasons(void* d, unsigned long long* r) { *r = (unsigned long long)DEV(d)->throttle; return 0; }
nvmlReturn_t nvmlDeviceGetTemperature(void* d, int s, unsigned* t) { (void)s; *t = (unsigned)DEV(d)->temperature; return 0; }
nvmlReturn_t nvmlDeviceGetTemperatureThreshold(void* d, int s, unsigned* t) { (void)s; *t = (unsigned)DEV(d)->slowdown; return 0; }
nvmlReturn_t nvmlDeviceGetPowerUsage(void* d, unsigned* p) { *p = (unsigned)DEV(d)->power_mw; return 0; }
nvmlReturn_t nvmlDeviceGetEnforcedPowerLimit(void* d, unsigned* p) { *p = (unsigned)DEV(d)->power_limit_mw; return 0; }
nvmlReturn_t nvmlDeviceGetClockInfo(void* d, int type, unsigned* c) { *c = (unsigned)(type == 2 ? DEV(d)->mem_clock : DEV(d)->sm_clock); return 0; }
nvmlReturn_t nvmlDeviceGetCurrPcieLinkGeneration(void* d, unsigned* v) { *v = (unsigned)DEV(d)->pcie_gen; return 0; }
nvmlReturn_t nvmlDeviceGetMaxPcieLinkGeneration(void* d, unsigned* v) { *v = (unsigned)DEV(d)->pcie_gen_max; return 0; }
nvmlReturn_t nvmlDeviceGetCurrPcieLinkWidth(void* d, unsigned* v) { *v = (unsigned)DEV(d)->pcie_width; return 0; }
nvmlReturn_t nvmlDeviceGetMaxPcieLinkWidth(void* d, unsigned* v) { *v = (unsigned)DEV(d)->pcie_width_max; return 0; }
nvmlReturn_t nvmlDeviceGetPcieReplayCounter(void* d, unsigned* v) { *v = (unsigned)DEV(d)->replay; return 0; }
nvmlReturn_t nvmlDeviceGetNvLinkState(void* d, unsigned link, int* active) {
    if (link >= (unsigned)DEV(d)->nvlinks) return 2;
    *active = link < (unsigned)(DEV(d)->nvlinks - DEV(d)->nvlinks_down);
    return 0;
}
nvmlReturn_t nvmlDeviceGetNvLinkErrorCounter(void* d, unsigned link, int counter, unsigned long long* v) {
    /* Everything on link 0, so sums are easy to predict. */
    *v = 0;
    if (link == 0) *v = (unsigned long long)(counter == 0 ? DEV(d)->nvlink_replay : counter == 1 ? DEV(d)->nvlink_recovery
                                                         : counter == 2 ? DEV(d)->nvlink_crc : 0);
    return 0;
}
nvmlReturn_t nvmlDeviceGetComputeRunningProcesses_v3(void* d, unsigned* count, void* infos) {
    const unsigned have = (unsigned)DEV(d)->processes;
    const int enough = *count >= have;
    *count = have;
    (void)infos;
    return (have && !enough) ? 7 : 0;
}
typedef struct { unsigned long long total, free, used; } mem_t;
nvmlReturn_t nvmlDeviceGetMemoryInfo(void* d, mem_t* m) { (void)d; m->total = 85899345920ull; m->used = 0; m->free = m->total; return 0; }
typedef struct { unsigned gpu, memory; } util_t;
nvmlReturn_t nvmlDeviceGetUtilizationRates(void* d, util_t* u) { u->gpu = (unsigned)DEV(d)->util; u->memory = 0; return 0; }
