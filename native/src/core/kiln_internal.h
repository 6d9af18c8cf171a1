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

}  // namespace kiln
