/* kiln_plugin.h - the interface between libkiln and a backend (the built-in cpu backend and the
 * dlopen'ed libkiln-<name>.so plugins). Not part of the managed ABI: only native code sees it. */
#ifndef KILN_PLUGIN_H
#define KILN_PLUGIN_H

#include "kiln.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Services libkiln lends a backend. */
typedef struct kiln_host_services {
    /* Sets the calling thread's last error text (what kiln_last_error returns). */
    void (*set_error)(const char* message);
} kiln_host_services;

/* Device memory a backend hands out for another library to reach (GPUDirect RDMA). */
typedef struct kiln_gpu_memory {
    void* pointer;       /* the device address of the range */
    uint64_t bytes;      /* its length */
    int32_t dmabuf_fd;   /* a dma-buf of the range (the caller does not close it), or -1: peer memory only */
    int32_t reserved;    /* zero */
    char via[KILN_NAME_BYTES]; /* how an HCA reaches it, for messages: "dma-buf", or why not and "peer memory" */
} kiln_gpu_memory;

/* A backend: a table of functions over an opaque state made by init. */
typedef struct kiln_backend_ops {
    uint32_t api_version;   /* KILN_PLUGIN_API_VERSION the backend was built against */
    const char* name;       /* "cpu", "cuda", "hip" ... */
    /* Creates the backend state. A backend that cannot run here (no driver, no device) returns
     * KILN_UNSUPPORTED and writes why into reason; the registry records that as a skip. */
    kiln_status (*init)(const kiln_host_services* host, void** out_state, char* reason, size_t reason_bytes);
    void (*shutdown)(void* state);
    int32_t (*device_count)(void* state);
    /* Driver/runtime version text; static or state-owned storage. */
    const char* (*runtime_version)(void* state);
    kiln_status (*device_info)(void* state, int32_t index, kiln_device_info* out_info);
    kiln_status (*validate)(void* state, int32_t index, const kiln_test_params* params);
    kiln_status (*run)(void* state, int32_t index, const kiln_test_params* params, const kiln_sink* sink,
                       const volatile int32_t* cancel);
    /* Collectives (kiln_coll_*); NULL on a backend without them (the registry says so). */
    kiln_status (*coll_library)(void* state, kiln_coll_library_info* out_info);
    kiln_status (*coll_unique_id)(void* state, uint8_t* out_id);
    kiln_status (*coll_run)(void* state, const int32_t* indices, int32_t count, const kiln_coll_params* params,
                            const kiln_sink* sink, const volatile int32_t* cancel);
    /* GPUDirect RDMA (kiln_rdma_use_gpu): device memory an HCA can reach, and its release; NULL (or
     * KILN_UNSUPPORTED with the reason) on a backend whose memory no HCA reaches. */
    kiln_status (*export_memory)(void* state, int32_t index, uint64_t bytes, kiln_gpu_memory* out_memory);
    void (*release_memory)(void* state, int32_t index, kiln_gpu_memory* memory);
} kiln_backend_ops;

/* Every plugin exports this symbol. */
typedef const kiln_backend_ops* (*kiln_plugin_entry_fn)(void);
#define KILN_PLUGIN_ENTRY_SYMBOL "kiln_plugin_entry"

#ifdef __cplusplus
}
#endif

#endif /* KILN_PLUGIN_H */
