// names.cpp - the stable names of statuses, tests and patterns (the keys written to CSV).
#include "kiln_internal.h"

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

const char* kiln_test_name(int32_t test) {
    static const char* const names[KILN_TEST_COUNT] = {"stream", "memtest", "gemm", "power", "copy", "launch"};
    return (test >= 0 && test < KILN_TEST_COUNT) ? names[test] : "unknown";
}

const char* kiln_pattern_name(int32_t pattern) {
    static const char* const names[KILN_PATTERN_COUNT] = {
        "walking_ones", "walking_zeros", "own_address", "moving_inv_fixed", "moving_inv_random", "modulo_20"};
    return (pattern >= 0 && pattern < KILN_PATTERN_COUNT) ? names[pattern] : "unknown";
}

}  // extern "C"
