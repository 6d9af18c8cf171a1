/* kiln.h - the whole C ABI of Kiln: backend registry, devices, tests and the sink through which
 * a test streams what it measures. Managed bindings are generated from this file; keep it flat C. */
#ifndef KILN_KILN_H
#define KILN_KILN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define KILN_API __attribute__((visibility("default")))
#else
#define KILN_API
#endif

/* Constants the managed side needs; an enum so the binding generator sees their values. */
typedef enum kiln_constants {
    KILN_ABI_VERSION = 6,         /* bumped on any incompatible change of this header */
    KILN_PLUGIN_API_VERSION = 4,  /* version a backend plugin must report from its entry point */
    KILN_NAME_BYTES = 128,        /* size of the fixed name buffers below, NUL included */
    KILN_SHORT_BYTES = 32,        /* size of short fixed buffers (backend name, PCI address) */
    KILN_PATH_BYTES = 512,        /* size of fixed path buffers */
    KILN_COLL_ID_BYTES = 128,     /* a communicator's unique id (NCCL_UNIQUE_ID_BYTES) */
    KILN_COLL_MAX_DEVICES = 64    /* local devices one kiln_coll_run drives at most */
} kiln_constants;

/* Every call that can fail returns one of these; the text is fetched with kiln_last_error. */
typedef enum kiln_status {
    KILN_OK = 0,
    KILN_CANCELLED = 1,         /* stopped by the cancel flag; what was measured was reported */
    KILN_INVALID_ARGUMENT = 2,  /* a parameter is out of range; the error text names it and the limit */
    KILN_NOT_FOUND = 3,         /* no such backend or device */
    KILN_UNSUPPORTED = 4,       /* this backend cannot run this test */
    KILN_OUT_OF_MEMORY = 5,     /* the test buffers could not be allocated */
    KILN_BACKEND_ERROR = 6,     /* the driver or runtime below the backend failed */
    KILN_INTERNAL = 7,          /* a bug in Kiln */
    KILN_PEER_ERROR = 8         /* the network peer: unreachable, refused, busy, sent garbage, stopped or
                                   went silent past the timeout; the error text says which */
} kiln_status;

/* The tests a backend may implement; names (kiln_test_name) are the stable keys used in CSV. */
typedef enum kiln_test_kind {
    KILN_TEST_STREAM = 0,   /* memory bandwidth: copy, scale, add, triad (verified) */
    KILN_TEST_MEMTEST = 1,  /* memory patterns: write pass, then a separate verify pass */
    KILN_TEST_GEMM = 2,     /* verified compute stress */
    KILN_TEST_POWER = 3,    /* register-resident power burner */
    KILN_TEST_COPY = 4,     /* host/device and peer copies */
    KILN_TEST_LAUNCH = 5,   /* kernel launch latency */
    KILN_TEST_TCP = 6,      /* network: TCP to a peer, N-stream bandwidth each way, request/response
                               latency (kiln_net_probe; not run on a device) */
    KILN_TEST_RDMA = 7,     /* network: RDMA RC queue pairs through libkiln-rdma.so (kiln_rdma_*) */
    KILN_TEST_ALLREDUCE = 8,/* collectives through NCCL/RCCL: all-reduce, all-gather, reduce-scatter */
    KILN_TEST_COUNT = 9
} kiln_test_kind;

/* Bits of kiln_test_params.op_mask for the stream test. */
typedef enum kiln_stream_op {
    KILN_STREAM_COPY = 1,   /* c = a        : 16 bytes counted per element */
    KILN_STREAM_SCALE = 2,  /* b = s*c      : 16 bytes */
    KILN_STREAM_ADD = 4,    /* c = a+b      : 24 bytes */
    KILN_STREAM_TRIAD = 8,  /* a = b+s*c    : 24 bytes */
    KILN_STREAM_READ = 16,  /* read c, compare with its expected value (the write op's): 8 bytes; runs last */
    KILN_STREAM_WRITE = 32, /* c = a value new each iteration, written without reading: 8 bytes */
    KILN_STREAM_ALL = 63
} kiln_stream_op;

/* Bits of kiln_test_params.dtype_mask: the number formats gemm and power run. */
typedef enum kiln_dtype {
    KILN_DTYPE_FP64 = 1,    /* double, FMA units */
    KILN_DTYPE_FP32 = 2,    /* float, FMA units */
    KILN_DTYPE_TF32 = 4,    /* tensor cores, tf32 inputs, fp32 accumulate */
    KILN_DTYPE_BF16 = 8,    /* tensor/matrix cores, bf16 inputs, fp32 accumulate */
    KILN_DTYPE_FP16 = 16,   /* tensor/matrix cores, fp16 inputs, fp32 accumulate */
    KILN_DTYPE_ALL = 31
} kiln_dtype;

/* Memtest patterns; bit (1 << pattern) of kiln_test_params.pattern_mask selects one. */
typedef enum kiln_memtest_pattern {
    KILN_PATTERN_WALKING_ONES = 0,   /* one bit set per word, position walking with the word index */
    KILN_PATTERN_WALKING_ZEROS = 1,  /* one bit clear per word */
    KILN_PATTERN_OWN_ADDRESS = 2,    /* each word holds its own offset, then its complement */
    KILN_PATTERN_MOVING_INV_FIXED = 3,  /* all-zeros, all-ones, 0x55.., 0xAA.. alternating direction */
    KILN_PATTERN_MOVING_INV_RANDOM = 4, /* seeded random word and its complement */
    KILN_PATTERN_MODULO_20 = 5,      /* word i%20==k holds p, the rest ~p, for k in 0..19 */
    KILN_PATTERN_COUNT = 6
} kiln_memtest_pattern;

/* Opaque handles. Every *_destroy(NULL) is a no-op. */
typedef struct kiln_registry kiln_registry;
typedef struct kiln_device kiln_device;

/* One backend the registry loaded. */
typedef struct kiln_backend_info {
    char name[KILN_SHORT_BYTES];          /* "cpu", "cuda", "hip", ... */
    char library_path[KILN_PATH_BYTES];   /* file it came from; "" for the built-in cpu backend */
    char runtime_version[KILN_NAME_BYTES];/* driver/runtime version text, or the kernel for cpu */
    int32_t device_count;                 /* devices this backend can open */
    uint32_t plugin_api_version;          /* the API version the plugin reported */
} kiln_backend_info;

/* One plugin candidate that was not loaded, and why. */
typedef struct kiln_plugin_skip {
    char path[KILN_PATH_BYTES];      /* the file considered */
    char reason[KILN_PATH_BYTES];    /* "no CUDA driver", "API version 7, want 1", dlerror text ... */
    int32_t status;                  /* kiln_status: KILN_UNSUPPORTED (nothing to run here), or
                                        KILN_INVALID_ARGUMENT (its configuration is malformed: a usage error) */
    int32_t reserved;                /* zero */
} kiln_plugin_skip;

/* What a device is; filled by kiln_device_get_info. */
typedef struct kiln_device_info {
    char backend[KILN_SHORT_BYTES];     /* backend that owns it */
    char name[KILN_NAME_BYTES];         /* CPU model or GPU product name */
    char uuid[KILN_NAME_BYTES];         /* GPU UUID; machine id for the CPU */
    char pci_bus_id[KILN_SHORT_BYTES];  /* "0000:3b:00.0"; "" for the CPU */
    int32_t index;                      /* index within its backend */
    int32_t compute_units;              /* logical CPUs, SMs or CUs */
    int32_t numa_nodes;                 /* NUMA nodes the device's memory spans (1 without NUMA) */
    int32_t threads_per_unit;           /* hardware threads per core, or max threads per SM */
    uint64_t total_memory_bytes;        /* physical memory of the device */
    uint64_t available_memory_bytes;    /* what a test can take now */
    uint64_t last_level_cache_bytes;    /* L3 for the CPU, L2 for a GPU */
    double clock_mhz;                   /* nominal core clock, 0 when unknown */
    double peak_memory_bandwidth_gbps;  /* theoretical, 1e9 bytes/s; 0 when unknown */
    double peak_fp64_tflops;            /* theoretical FP64 FMA rate; 0 when unknown */
    double peak_fp32_tflops;            /* theoretical FP32 FMA rate; 0 when unknown */
    double peak_tf32_tflops;            /* theoretical dense tensor/matrix rates; 0 when unknown or absent */
    double peak_bf16_tflops;
    double peak_fp16_tflops;
    char peak_memory_basis[KILN_PATH_BYTES]; /* how peak_memory_bandwidth_gbps was found ("SMBIOS: 16 x DDR5-4800 on
                                                16 channels ..."), or why it is unknown ("peak unknown: ...") */
} kiln_device_info;

/* Everything a test run needs. Fill with kiln_test_params_init, then override. */
typedef struct kiln_test_params {
    int32_t test;                 /* kiln_test_kind */
    int32_t threads;              /* worker threads for the CPU backend; 0 = every allowed CPU */
    uint64_t size_bytes;          /* bytes to test (memtest) or per array (stream); 0 = use size_fraction */
    double size_fraction;         /* fraction of available memory when size_bytes is 0 */
    int32_t iterations;           /* timed repetitions (stream), pattern rounds (memtest), launches timed (launch); >= 1 */
    uint32_t op_mask;             /* kiln_stream_op bits; 0 = all */
    uint32_t pattern_mask;        /* bits (1 << kiln_memtest_pattern); 0 = all */
    uint32_t max_error_reports;   /* data errors reported through the sink; all are counted */
    uint64_t seed;                /* seed of random patterns */
    uint64_t duration_ms;         /* repeat until this much time passed; 0 = iterations only (power: 10 s) */
    int32_t block;                /* GPU threads per block; 0 = backend default */
    int32_t grid;                 /* GPU blocks; 0 = backend default */
    int32_t vec;                  /* elements per access; 0 = backend default */
    int32_t unroll;               /* independent accesses in flight per thread; 0 = default */
    int32_t inject_flips;         /* memtest: bits flipped between the first write and verify */
    int32_t inject_corrupt;       /* stream, gemm, power, copy: result words corrupted before their check */
    uint64_t inject_seed;         /* seed choosing the injected positions */
    double inject_slowdown;       /* run at this fraction of full speed; 0 or 1 = no slowdown */
    int32_t matrix_n;             /* gemm: rows = columns = inner dimension of the n x n product; 0 = default */
    uint32_t dtype_mask;          /* gemm, power: kiln_dtype bits; 0 = the backend's default set */
    int32_t inject_hang;          /* 1: the test reports its start, then never returns and ignores cancel
                                     (a hung kernel or driver call), for the burn engine's deadline */
    int32_t inject_crash;         /* 1: the test reports its start, then the process dies of SIGSEGV */
} kiln_test_params;

/* One measured value, as it is measured. */
typedef struct kiln_metric {
    const char* test;     /* "stream", "memtest" ... */
    const char* metric;   /* "triad_gbps", "errors_walking_ones" ... */
    const char* unit;     /* "GB/s", "count", "s" ... */
    double value;
    int32_t injected;     /* 1 when fault injection was active for the run that made it */
    int32_t reserved;     /* zero */
} kiln_metric;

/* One wrong word found by a verify pass. */
typedef struct kiln_data_error {
    const char* test;       /* "memtest", "stream" ... */
    const char* pattern;    /* pattern or operation that found it */
    uint64_t offset_bytes;  /* from the start of the tested region */
    uint64_t expected;      /* the word that was written */
    uint64_t actual;        /* the word that was read */
    uint32_t word_bytes;    /* width of expected/actual in bytes (8; 4 for an fp32 gemm result) */
    int32_t injected;       /* 1 when fault injection was active */
    int32_t sm;             /* the SM (CUDA %smid) or CU (AMD hardware id) whose check found it; -1 when
                               the host checked, or on the CPU */
    int32_t reserved;       /* zero */
} kiln_data_error;

/* Callbacks may come from any thread, never concurrently; they must be cheap and must not call
 * back into the library. The strings and structs they receive are valid only during the call. */
typedef void (*kiln_metric_fn)(void* ctx, const kiln_metric* metric);
typedef void (*kiln_data_error_fn)(void* ctx, const kiln_data_error* error);
typedef void (*kiln_progress_fn)(void* ctx, double fraction);

/* Where a test streams its results. Any callback may be NULL. */
typedef struct kiln_sink {
    void* ctx;                        /* passed back to every callback */
    kiln_metric_fn on_metric;         /* one measured value */
    kiln_data_error_fn on_data_error; /* one wrong word, up to max_error_reports of them */
    kiln_progress_fn on_progress;     /* fraction 0..1 of the planned work */
} kiln_sink;

/* Telemetry sources: vendor management libraries, dlopen'ed at run time, never linked. */
typedef enum kiln_telemetry_source {
    KILN_TELEMETRY_NVML = 0,      /* libnvidia-ml.so.1 */
    KILN_TELEMETRY_ROCM_SMI = 1,  /* librocm_smi64.so */
    KILN_TELEMETRY_EMU = 2        /* the emulated devices (libkiln-emu.so beside libkiln.so), when KILN_EMU_DEVICES is set */
} kiln_telemetry_source;

/* Clock throttle reasons, NVML's bit values; ROCm SMI readings are mapped onto the same bits. */
typedef enum kiln_throttle_reason {
    KILN_THROTTLE_GPU_IDLE = 0x1,
    KILN_THROTTLE_APP_CLOCKS = 0x2,
    KILN_THROTTLE_SW_POWER_CAP = 0x4,
    KILN_THROTTLE_HW_SLOWDOWN = 0x8,
    KILN_THROTTLE_SYNC_BOOST = 0x10,
    KILN_THROTTLE_SW_THERMAL = 0x20,
    KILN_THROTTLE_HW_THERMAL = 0x40,
    KILN_THROTTLE_HW_POWER_BRAKE = 0x80
} kiln_throttle_reason;

typedef struct kiln_telemetry kiln_telemetry;

/* State and counters of one GPU, for health checks. A value the source cannot give is -1. */
typedef struct kiln_gpu_health {
    char name[KILN_NAME_BYTES];          /* product name */
    char uuid[KILN_NAME_BYTES];          /* "GPU-..." */
    char serial[KILN_NAME_BYTES];        /* board serial, for RMA */
    char pci_bus_id[KILN_SHORT_BYTES];   /* "0000:3b:00.0", lower case */
    char vbios_version[KILN_NAME_BYTES]; /* VBIOS / firmware version */
    int32_t index;                       /* index in the source's enumeration */
    int32_t persistence_mode;            /* 1 on, 0 off */
    int32_t ecc_enabled;                 /* 1 on, 0 off */
    int32_t pcie_gen_current;            /* link generation now */
    int32_t pcie_gen_max;                /* highest generation the device and slot support */
    int32_t pcie_width_current;          /* lanes now */
    int32_t pcie_width_max;              /* lanes supported */
    int32_t retired_pages_pending;       /* 1 when a page retirement waits for a reset */
    int64_t retired_pages_sbe;           /* pages retired for repeated single-bit errors */
    int64_t retired_pages_dbe;           /* pages retired for double-bit errors */
    int64_t ecc_volatile_corrected;      /* since the last driver load */
    int64_t ecc_volatile_uncorrected;
    int64_t ecc_aggregate_corrected;     /* over the device's life */
    int64_t ecc_aggregate_uncorrected;
    int32_t remapped_rows_correctable;   /* rows remapped for correctable errors */
    int32_t remapped_rows_uncorrectable; /* rows remapped for uncorrectable errors */
    int32_t remap_pending;               /* 1 when a remap waits for a reset */
    int32_t remap_failed;                /* 1 when a remap failed: the GPU needs service */
    int32_t nvlink_links_total;          /* links the device has (0 without NVLink) */
    int32_t nvlink_links_active;         /* links up */
    int64_t nvlink_crc_errors;           /* sum over links of CRC flit + data errors */
    int64_t nvlink_replay_errors;        /* sum over links */
    int64_t nvlink_recovery_errors;      /* sum over links */
    int32_t compute_processes;           /* processes holding the GPU now */
    int32_t reserved;                    /* zero */
    uint64_t throttle_reasons;           /* kiln_throttle_reason bits active now */
    uint64_t memory_total_bytes;
    double temperature_c;                /* GPU core temperature */
    double temperature_slowdown_c;       /* the temperature at which the GPU slows down */
    double power_w;                      /* power draw now */
    double power_limit_w;                /* enforced power limit */
} kiln_gpu_health;

/* One fast sample during a burn (at >= 10 Hz); -1 where unknown. */
typedef struct kiln_gpu_sample {
    double temperature_c;
    double power_w;
    double sm_clock_mhz;
    double memory_clock_mhz;
    double utilization_pct;           /* GPU busy percent */
    uint64_t throttle_reasons;        /* kiln_throttle_reason bits */
    int64_t ecc_volatile_corrected;
    int64_t ecc_volatile_uncorrected;
    int64_t pcie_replay_count;
} kiln_gpu_sample;

/* Which way a metric is better, for plots, baselines and the fleet report. */
typedef enum kiln_better {
    KILN_BETTER_NEITHER = 0,  /* a count or setting: block, array_bytes ... */
    KILN_BETTER_HIGHER = 1,   /* bandwidth, TFLOP/s */
    KILN_BETTER_LOWER = 2     /* latency, errors */
} kiln_better;

/* Bits of kiln_metric_info.backends. */
typedef enum kiln_backend_bit {
    KILN_BACKEND_CPU = 1,
    KILN_BACKEND_CUDA = 2,
    KILN_BACKEND_HIP = 4,
    KILN_BACKEND_EMU = 8,
    KILN_BACKEND_GPU = 14,    /* cuda, hip and emu: the one GPU source */
    KILN_BACKEND_NET = 16     /* the network probes (tcp, rdma, allreduce): the host measures, no device backend */
} kiln_backend_bit;

/* One entry of the metric catalog: every metric a test can emit, declared once. A name may hold
 * placeholders: {op} (stream ops), {pattern} (memtest patterns), {dtype} (number formats), and
 * {src}_{dst} at its end for a member of a device-to-device matrix (p2p_ce_gbps_{src}_{dst}). */
typedef struct kiln_metric_info {
    const char* test;     /* "stream", "copy" ... */
    const char* name;     /* "triad_gbps_best", "errors_{pattern}" ... */
    const char* unit;     /* "GB/s", "count" ... */
    int32_t better;       /* kiln_better */
    uint32_t backends;    /* kiln_backend_bit: the backends whose tests emit it */
    int32_t from_host;    /* 1: the host measures it around the test (telemetry), not the kernel */
    int32_t reserved;     /* zero */
} kiln_metric_info;

/* One entry of the knob catalog: a kernel knob of kiln_test_params that a test reads, declared once.
 * Plans take it under `params:`, `kiln bench TEST` as `--NAME N`, and kiln_test_validate refuses a
 * nonzero value outside it (or on a test or backend that does not read it). 0 always means "the
 * backend's default"; device limits (threads per block, warp size) are checked by the backend. */
typedef struct kiln_knob_info {
    const char* test;          /* "stream", "gemm" ... */
    const char* name;          /* "block", "grid", "vec", "unroll", "matrix_n": the kiln_test_params field */
    const char* description;   /* one line for help and docs */
    int64_t min;               /* inclusive range of a nonzero value */
    int64_t max;
    int64_t default_value;     /* what 0 means; -1 when the backend computes it from the device */
    const char* values;        /* "1,2": the only nonzero values allowed; "" when any in [min, max] */
    uint32_t backends;         /* kiln_backend_bit: the backends whose kernels read it */
    int32_t reserved;          /* zero */
} kiln_knob_info;

/* Version handshake: the managed side checks this before any other call. */
KILN_API uint32_t kiln_abi_version(void);
/* The library's version text ("0.1.0"); static storage. */
KILN_API const char* kiln_version(void);
/* Copies the calling thread's last error text into buf (truncated, NUL-terminated);
 * returns the bytes the whole text needs, NUL included. */
KILN_API size_t kiln_last_error(char* buf, size_t buf_bytes);
/* Stable names; static storage; "unknown" for an out-of-range value. */
KILN_API const char* kiln_status_name(int32_t status);
KILN_API const char* kiln_test_name(int32_t test);
KILN_API const char* kiln_pattern_name(int32_t pattern);

/* Loads the cpu backend and every libkiln-<name>.so plugin in plugin_dir (NULL: the folder of
 * libkiln.so, or $KILN_PLUGIN_DIR when set). A plugin that fails to load is recorded as a skip. */
KILN_API kiln_status kiln_registry_create(const char* plugin_dir, kiln_registry** out_registry);
KILN_API void kiln_registry_destroy(kiln_registry* registry);
KILN_API int32_t kiln_registry_backend_count(const kiln_registry* registry);
KILN_API kiln_status kiln_registry_backend_info(const kiln_registry* registry, int32_t index,
                                               kiln_backend_info* out_info);
KILN_API int32_t kiln_registry_skip_count(const kiln_registry* registry);
KILN_API kiln_status kiln_registry_skip_info(const kiln_registry* registry, int32_t index,
                                            kiln_plugin_skip* out_skip);

/* Opens device device_index of the named backend. The registry must outlive the device. */
KILN_API kiln_status kiln_device_open(kiln_registry* registry, const char* backend_name,
                                      int32_t device_index, kiln_device** out_device);
KILN_API void kiln_device_destroy(kiln_device* device);
KILN_API kiln_status kiln_device_get_info(const kiln_device* device, kiln_device_info* out_info);

/* Defaults for a test: sizes, iterations, all ops and patterns, 1000 error reports. */
KILN_API kiln_status kiln_test_params_init(int32_t test, kiln_test_params* out_params);
/* Checks params against the device (sizes against memory, knobs against limits) without running. */
KILN_API kiln_status kiln_test_validate(const kiln_device* device, const kiln_test_params* params);
/* Runs one test. Results stream through sink as they are measured; a data error is not a failed
 * call. Returns KILN_CANCELLED soon (< 1 s) after *cancel becomes non-zero. */
KILN_API kiln_status kiln_run(kiln_device* device, const kiln_test_params* params,
                              const kiln_sink* sink, const volatile int32_t* cancel);

/* Opens a telemetry source. library_path NULL: the vendor's usual name (libnvidia-ml.so.1,
 * librocm_smi64.so), or $KILN_NVML_LIBRARY / $KILN_ROCM_SMI_LIBRARY when set. A missing library or
 * driver returns KILN_UNSUPPORTED and the reason ("libnvidia-ml.so.1: cannot open ..."). */
KILN_API kiln_status kiln_telemetry_open(int32_t source, const char* library_path, kiln_telemetry** out_telemetry);
KILN_API void kiln_telemetry_destroy(kiln_telemetry* telemetry);
/* Driver version text ("535.183.01") into buf. */
KILN_API kiln_status kiln_telemetry_driver_version(const kiln_telemetry* telemetry, char* buf, size_t buf_bytes);
KILN_API int32_t kiln_telemetry_device_count(const kiln_telemetry* telemetry);
/* Everything a health check reads about one GPU. Slow (tens of ms): not for sampling loops. */
KILN_API kiln_status kiln_telemetry_health(kiln_telemetry* telemetry, int32_t index, kiln_gpu_health* out_health);
/* One cheap sample for the telemetry loop. */
KILN_API kiln_status kiln_telemetry_sample(kiln_telemetry* telemetry, int32_t index, kiln_gpu_sample* out_sample);

/* The metric catalog (static storage). */
KILN_API int32_t kiln_metric_count(void);
KILN_API kiln_status kiln_metric_at(int32_t index, kiln_metric_info* out_info);
/* The knob catalog (static storage). */
KILN_API int32_t kiln_knob_count(void);
KILN_API kiln_status kiln_knob_at(int32_t index, kiln_knob_info* out_info);

/* Positions fault injection will flip for (seed, count) over a region of region_bytes: fills
 * count offsets (bytes, word aligned) and bit numbers, so tools can predict what a verify finds. */
KILN_API kiln_status kiln_injection_positions(uint64_t seed, int32_t count, uint64_t region_bytes,
                                              uint64_t* out_offsets, uint32_t* out_bits);

/* ---- Network probes (native/src/net, docs/NETWORK.md) ------------------------------------------
 * A probe runs between this host and a peer running kiln_net_server_run. It streams its metrics
 * (test "tcp") through a kiln_sink as each phase ends. Any fault of the peer (unreachable, refused,
 * busy with another client, garbage, a stop mid-test, silence past timeout_ms) returns
 * KILN_PEER_ERROR with the reason, within duration + timeout; never a hang. */

/* Bits of kiln_net_params.phase_mask. */
typedef enum kiln_net_phase {
    KILN_NET_SEND = 1,      /* this host sends to the peer on every stream */
    KILN_NET_RECV = 2,      /* the peer sends to this host on every stream */
    KILN_NET_LATENCY = 4,   /* request/response round trips on one connection */
    KILN_NET_ALL = 7
} kiln_net_phase;

/* Knobs of one probe; fill with kiln_net_params_init, then override. */
typedef struct kiln_net_params {
    int32_t streams;              /* parallel connections of the bandwidth phases, 1..128 */
    uint32_t phase_mask;          /* kiln_net_phase bits; 0 = all */
    uint64_t duration_ms;         /* length of each bandwidth phase, 100 ms .. 1 h */
    uint64_t latency_duration_ms; /* time budget of the latency phase, 100 ms .. 1 h */
    uint64_t timeout_ms;          /* longest wait on the peer (connect, a reply, a stalled stream) */
    uint32_t message_bytes;       /* bytes per send of the bandwidth phases, 1 KiB .. 16 MiB */
    uint32_t latency_bytes;       /* request = response size of the latency phase, 1 .. 64 KiB */
    int32_t latency_samples;      /* round trips to time at most, >= 1 */
    int32_t reserved;             /* zero */
} kiln_net_params;

/* A line the server says about a session ("session from 10.0.0.2:41234: done"); valid during the call. */
typedef void (*kiln_text_fn)(void* ctx, const char* text);

/* Where a server reports its sessions. The callback may be NULL. */
typedef struct kiln_net_log {
    void* ctx;
    kiln_text_fn on_text;
} kiln_net_log;

typedef struct kiln_net_server kiln_net_server;

/* Defaults: 4 streams, every phase, 5 s each bandwidth phase, 2 s latency, 5 s timeout, 128 KiB messages. */
KILN_API kiln_status kiln_net_params_init(kiln_net_params* out_params);
/* Binds and listens on address:port. address NULL or "" is 127.0.0.1 (never every address unless
 * "0.0.0.0" or "::" is given); port 0 takes a free one (kiln_net_server_port says which). */
KILN_API kiln_status kiln_net_server_create(const char* address, int32_t port, kiln_net_server** out_server);
KILN_API void kiln_net_server_destroy(kiln_net_server* server);
/* The port the server listens on. */
KILN_API int32_t kiln_net_server_port(const kiln_net_server* server);
/* Serves one client's test at a time until *cancel is non-zero (or after max_sessions sessions,
 * when > 0); a client that comes while a test runs is told the server is busy. A session's fault
 * is logged and ends that session only. Returns KILN_OK or KILN_CANCELLED. */
KILN_API kiln_status kiln_net_server_run(kiln_net_server* server, int32_t max_sessions, const kiln_net_log* log,
                                         const volatile int32_t* cancel);
/* Runs one probe against host:port (a name or an address), streaming "tcp" metrics through sink. */
KILN_API kiln_status kiln_net_probe(const char* host, int32_t port, const kiln_net_params* params,
                                    const kiln_sink* sink, const volatile int32_t* cancel);

/* ---- RDMA probe: libkiln-rdma.so beside libkiln.so, linked to libibverbs (docs/NETWORK.md) ------
 * A node without rdma-core, or without an HCA, runs everything else: kiln_rdma_open says why not
 * (KILN_UNSUPPORTED, "no RDMA devices"). Tests stream "rdma" metrics through a kiln_sink. */

/* Bits of kiln_rdma_params.op_mask: the RC queue-pair operations measured. */
typedef enum kiln_rdma_op {
    KILN_RDMA_WRITE = 1,   /* RDMA write into the peer's registered buffer */
    KILN_RDMA_READ = 2,    /* RDMA read from the peer's registered buffer */
    KILN_RDMA_SEND = 4,    /* send / receive */
    KILN_RDMA_ALL = 7
} kiln_rdma_op;

/* One port of one verbs device. */
typedef struct kiln_rdma_port_info {
    char device[KILN_SHORT_BYTES];      /* verbs device name, "mlx5_0" */
    char firmware[KILN_SHORT_BYTES];    /* firmware version text */
    char node_guid[KILN_SHORT_BYTES];   /* "0c42:a103:0065:e6a0" */
    char gid[KILN_NAME_BYTES];          /* GID index 0 of the port, "fe80:0000:0000:0000:0c42:a103:0065:e6a0" */
    char link_layer[KILN_SHORT_BYTES];  /* "InfiniBand" or "Ethernet" */
    char state[KILN_SHORT_BYTES];       /* "ACTIVE", "DOWN", "INIT", "ARMED" ... */
    int32_t port;                       /* port number, from 1 */
    int32_t numa_node;                  /* NUMA node of the HCA's PCI function; -1 when unknown */
    int32_t lid;                        /* InfiniBand LID; 0 on Ethernet (RoCE) */
    int32_t active_mtu_bytes;           /* active path MTU */
    double rate_gbits;                  /* active width x per-lane speed, 1e9 bits/s */
} kiln_rdma_port_info;

/* Knobs of one RDMA test; fill with kiln_rdma_params_init, then override. */
typedef struct kiln_rdma_params {
    int32_t port_index;          /* kiln_rdma_port_at index of the local port */
    uint32_t op_mask;            /* kiln_rdma_op bits; 0 = all */
    uint64_t min_message_bytes;  /* message-size sweep from this power of two ... */
    uint64_t max_message_bytes;  /* ... doubling up to this one */
    int32_t iterations;          /* messages per size and operation, >= 1 */
    int32_t queue_depth;         /* work requests in flight, 1..1024 */
    int32_t bidirectional;       /* 1: write and read also both ways at once (write_bidir_gbits, read_bidir_gbits:
                                    both directions' bytes); send is one way */
    int32_t latency_samples;     /* ping-pong round trips timed per operation, >= 1 */
    uint64_t timeout_ms;         /* longest wait on the side channel or a completion */
    int32_t gid_index;           /* RoCE: the local GID index the queue pair is addressed by */
    int32_t reserved;            /* zero */
} kiln_rdma_params;

typedef struct kiln_rdma kiln_rdma;

/* Defaults: every operation, 2 B .. 8 MiB, 1000 messages per size, queue depth 128, one way, 10000 samples, 5 s. */
KILN_API kiln_status kiln_rdma_params_init(kiln_rdma_params* out_params);
/* Loads libkiln-rdma.so from plugin_dir (NULL: beside libkiln.so, or $KILN_PLUGIN_DIR) and opens
 * every verbs device. KILN_UNSUPPORTED with the reason when the plugin, libibverbs or any RDMA
 * device is missing ("no RDMA devices"). */
KILN_API kiln_status kiln_rdma_open(const char* plugin_dir, kiln_rdma** out_rdma);
KILN_API void kiln_rdma_destroy(kiln_rdma* rdma);
KILN_API int32_t kiln_rdma_port_count(const kiln_rdma* rdma);
KILN_API kiln_status kiln_rdma_port_at(const kiln_rdma* rdma, int32_t index, kiln_rdma_port_info* out_info);
/* GPUDirect RDMA: later tests of rdma use device's memory as their buffers, registered through its
 * dma-buf (ibv_reg_dmabuf_mr), else as peer memory (nvidia-peermem, amdgpu's); NULL: host memory
 * again. The device must outlive rdma's tests. KILN_UNSUPPORTED with the reason when its backend cannot
 * hand out memory an HCA can reach (the cpu backend, the emulated device). */
KILN_API kiln_status kiln_rdma_use_gpu(kiln_rdma* rdma, const kiln_device* device);
/* Serves one host-to-host test on address:port (NULL address: 127.0.0.1): the queue pairs are
 * exchanged over this TCP side channel, then the client drives every operation; returns after it. */
KILN_API kiln_status kiln_rdma_serve(kiln_rdma* rdma, const char* address, int32_t port, const kiln_rdma_params* params,
                                     const volatile int32_t* cancel);
/* Host to host against kiln_rdma_serve at host:port: for each operation the bandwidth over the size
 * sweep ("write_gbits", the best size) and the latency of the smallest size ("write_lat_us_p99" ...). */
KILN_API kiln_status kiln_rdma_probe(kiln_rdma* rdma, const char* host, int32_t port, const kiln_rdma_params* params,
                                     const kiln_sink* sink, const volatile int32_t* cancel);
/* The same between two local ports (params->port_index and peer_port_index), through the fabric. */
KILN_API kiln_status kiln_rdma_loopback(kiln_rdma* rdma, int32_t peer_port_index, const kiln_rdma_params* params,
                                        const kiln_sink* sink, const volatile int32_t* cancel);

/* ---- Collectives: NCCL / RCCL through a GPU backend (docs/NETWORK.md) -------------------------
 * The backend loads its collectives library at run time (libnccl.so.2 on cuda, librccl.so.1 on hip,
 * the emulated device's own on emu; $KILN_NCCL_LIBRARY overrides) and checks its version. A test
 * streams "allreduce" metrics: busbw as nccl-tests defines it, every result verified on the device
 * (a wrong word is a data error naming the op, rank and device). Across processes (nodes) every
 * process passes the same unique id, which kiln_coll_rendezvous_* carry over a TCP side channel. */

/* Bits of kiln_coll_params.op_mask. */
typedef enum kiln_coll_op {
    KILN_COLL_ALLREDUCE = 1,      /* sum of every rank's buffer, on every rank: busbw = algbw x 2(n-1)/n */
    KILN_COLL_ALLGATHER = 2,      /* every rank's buffer, concatenated on every rank: busbw = algbw x (n-1)/n */
    KILN_COLL_REDUCESCATTER = 4,  /* rank r gets the sum of every rank's r-th slice: busbw = algbw x (n-1)/n */
    KILN_COLL_ALL = 7
} kiln_coll_op;

/* Knobs of one collectives test; fill with kiln_coll_params_init, then override. */
typedef struct kiln_coll_params {
    uint32_t op_mask;             /* kiln_coll_op bits; 0 = all */
    int32_t iterations;           /* timed iterations of each op, 1..100000 */
    int32_t warmup_iterations;    /* untimed iterations before them, 0..1000 */
    int32_t nranks;               /* ranks over every process; 0 = this process's devices alone */
    int32_t first_rank;           /* global rank of the first device given; the others follow */
    uint32_t max_error_reports;   /* wrong words reported per op (all are counted) */
    uint64_t size_bytes;          /* nccl-tests' size: all-reduce's buffer per rank, all-gather's whole
                                     output, reduce-scatter's whole input; 0 = 16 GiB, less to fit */
    uint64_t timeout_ms;          /* longest wait on an op (or on another rank) before the communicator is
                                     aborted and the test fails; 0 = 5 min */
    uint8_t unique_id[KILN_COLL_ID_BYTES]; /* from kiln_coll_unique_id, the same in every process; unused
                                     when nranks is 0 */
} kiln_coll_params;

/* The collectives library a backend loaded. */
typedef struct kiln_coll_library_info {
    char path[KILN_PATH_BYTES];         /* what was dlopen'ed ("libnccl.so.2") */
    char name[KILN_SHORT_BYTES];        /* "NCCL", "RCCL", "emulated NCCL" */
    char version_text[KILN_SHORT_BYTES];/* "2.18.3" */
    int32_t version;                    /* ncclGetVersion's code (21803) */
    int32_t reserved;                   /* zero */
} kiln_coll_library_info;

/* Defaults: every op, 20 iterations after 5 warm-up ones, this process alone, 16 GiB, 5 min timeout. */
KILN_API kiln_status kiln_coll_params_init(kiln_coll_params* out_params);
/* The collectives library of device's backend: KILN_UNSUPPORTED with the reason when there is none
 * (not installed, too old, the cpu backend). */
KILN_API kiln_status kiln_coll_library(const kiln_device* device, kiln_coll_library_info* out_info);
/* A new communicator id (ncclGetUniqueId) through device's backend's library: made by the process of
 * rank 0, passed to every other (kiln_coll_rendezvous_serve does). */
KILN_API kiln_status kiln_coll_unique_id(const kiln_device* device, uint8_t* out_id, size_t id_bytes);
/* Runs the ops over devices[0..device_count) (one backend), as ranks first_rank.. of nranks. Metrics
 * stream through sink as each op ends; a wrong result is a data error, not a failed call. Another
 * rank that does not come, or stops, is KILN_PEER_ERROR with the reason within timeout_ms. */
KILN_API kiln_status kiln_coll_run(kiln_device* const* devices, int32_t device_count, const kiln_coll_params* params,
                                   const kiln_sink* sink, const volatile int32_t* cancel);

/* Where the other processes of a multi-process run learn the unique id and their ranks. */
typedef struct kiln_coll_rendezvous_result {
    int32_t nranks;       /* ranks over every process */
    int32_t first_rank;   /* this process's first rank */
    int32_t processes;    /* processes that joined */
    int32_t reserved;     /* zero */
} kiln_coll_rendezvous_result;

/* The process of index 0: listens on address:port (NULL address: 127.0.0.1, never every address unless
 * asked), waits for the other processes - 1 to join (each says its index and device count), then tells
 * each its first rank (ranks in process-index order) and the unique id. KILN_PEER_ERROR naming the
 * processes missing after timeout_ms. */
KILN_API kiln_status kiln_coll_rendezvous_serve(const char* address, int32_t port, int32_t processes, int32_t local_ranks,
                                                const uint8_t* unique_id, size_t id_bytes, uint64_t timeout_ms,
                                                kiln_coll_rendezvous_result* out_result, const volatile int32_t* cancel);
/* Any other process: joins the rendezvous at host:port as process index with local_ranks devices, and
 * receives the unique id into out_id (retrying the connection until timeout_ms: the server may start later). */
KILN_API kiln_status kiln_coll_rendezvous_join(const char* host, int32_t port, int32_t index, int32_t local_ranks,
                                               uint64_t timeout_ms, uint8_t* out_id, size_t id_bytes,
                                               kiln_coll_rendezvous_result* out_result, const volatile int32_t* cancel);

/* Layout of the public structs as this library was compiled: sizeof, and offsetof a field.
 * Return 0 / (size_t)-1 for an unknown struct or field. */
KILN_API size_t kiln_struct_size(const char* struct_name);
KILN_API size_t kiln_struct_field_offset(const char* struct_name, const char* field_name);

#ifdef __cplusplus
}
#endif

#endif /* KILN_KILN_H */
