// kiln_internal.h - helpers libkiln's own sources share: the thread-local error text and the
// built-in cpu backend's table.
#pragma once

#include <kiln/kiln.h>
#include <kiln/kiln_plugin.h>

#include "../common/kiln_host_util.h"

#include <cstdarg>
#include <string>

namespace kiln {

// Where the plugins are looked for: $KILN_PLUGIN_DIR, else the folder libkiln.so was loaded from.
std::string default_plugin_dir();

// Sets the calling thread's last error (printf-style) and returns status, so a failing path
// reads `return fail(KILN_INVALID_ARGUMENT, "size_bytes: ...")`.
kiln_status fail(kiln_status status, const char* format, ...) __attribute__((format(printf, 2, 3)));
void set_error_text(const char* message);
const kiln_host_services* host_services();

const kiln_backend_ops* cpu_backend_ops();

// The kiln_backend_bit of a backend name ("cpu" -> KILN_BACKEND_CPU); 0 for a plugin the knob
// catalog does not know.
uint32_t backend_bit(const char* backend);
// The knob catalog's check of a test's block, grid, vec, unroll and matrix_n (knobs.cpp): a knob the
// test does not read, or a value outside its range, is KILN_INVALID_ARGUMENT naming it.
kiln_status validate_knobs(const char* backend, const kiln_test_params* p);

// A device's memory for another library to reach (GPUDirect RDMA, registry.cpp): through its backend's
// export_memory; KILN_UNSUPPORTED with the reason when the backend has none. device_label: "cuda 0".
kiln_status gpu_export_memory(const kiln_device* device, uint64_t bytes, kiln_gpu_memory* out_memory);
void gpu_release_memory(const kiln_device* device, kiln_gpu_memory* memory);
bool gpu_can_export(const kiln_device* device);
std::string device_label(const kiln_device* device);

}  // namespace kiln
