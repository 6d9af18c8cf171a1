// error.cpp - the thread-local last-error text behind kiln_last_error, and small text helpers.
#include "kiln_internal.h"

#include <cstdio>
#include <cstring>

namespace kiln {
namespace {
thread_local std::string t_last_error;

void host_set_error(const char* message) { t_last_error = message ? message : ""; }
const kiln_host_services k_host_services = {host_set_error};
}  // namespace

void set_error_text(const char* message) { host_set_error(message); }

kiln_status fail(kiln_status status, const char* format, ...) {
    va_list args;
    va_start(args, format);
    fail_through(&k_host_services, status, format, args);
    va_end(args);
    return status;
}

const kiln_host_services* host_services() { return &k_host_services; }

}  // namespace kiln

extern "C" size_t kiln_last_error(char* buf, size_t buf_bytes) {
    const std::string& text = kiln::t_last_error;
    if (buf && buf_bytes) kiln::copy_text(buf, buf_bytes, text);
    return text.size() + 1;
}
