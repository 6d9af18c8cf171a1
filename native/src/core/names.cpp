// names.cpp - the stable names of statuses, tests and patterns (the keys written to CSV).
#include "kiln_internal.h"
#include "../common/kiln_names.h"

extern "C" {

uint32_t kiln_abi_version(void) { return KILN_ABI_VERSION; }

const char* kiln_version(void) { return KILN_VERSION_STRING; }

const char* kiln_status_name(int32_t status) {
    switch (status) {
    case KILN_OK: return "ok";
    case KILN_CANCELLED: return "cancelled";
    case KILN_INVALID_ARGUMENT: return "invalid_argument";
    case KILN_NOT_FOUND: return "not_found";
    case KILN_UNSUPPORTED: return "unsupported";
    case KILN_OUT_OF_MEMORY: return "out_of_memory";
    case KILN_BACKEND_ERROR: return "backend_error";
    case KILN_INTERNAL: return "internal";
    default: return "unknown";
    }
}

const char* kiln_test_name(int32_t test) { return kiln_test_key(test); }

const char* kiln_pattern_name(int32_t pattern) { return kiln_pattern_key(pattern); }

}  // extern "C"
