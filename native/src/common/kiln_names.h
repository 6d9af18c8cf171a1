/* kiln_names.h - the stable keys of tests, memtest patterns and number formats (the names written
 * to CSV), in one place for libkiln (names.cpp) and the GPU plugins, which do not link libkiln. */
#ifndef KILN_NAMES_H
#define KILN_NAMES_H

#include <stdint.h>

/* Not every includer uses every name. */
#define KILN_NAMES_FN static inline __attribute__((unused))

KILN_NAMES_FN const char* kiln_test_key(int32_t test) {
    static const char* const names[] = {"stream", "memtest", "gemm", "power", "copy", "launch", "tcp", "rdma", "allreduce"};
    return (test >= 0 && test < (int32_t)(sizeof names / sizeof names[0])) ? names[test] : "unknown";
}

KILN_NAMES_FN const char* kiln_pattern_key(int32_t pattern) {
    static const char* const names[] = {"walking_ones",     "walking_zeros",     "own_address",
                                        "moving_inv_fixed", "moving_inv_random", "modulo_20"};
    return (pattern >= 0 && pattern < (int32_t)(sizeof names / sizeof names[0])) ? names[pattern] : "unknown";
}

/* Key of one kiln_dtype bit (KILN_DTYPE_FP64 -> "fp64"); metric names are built from it
 * ("fp64_tflops", "errors_fp64"). */
KILN_NAMES_FN const char* kiln_dtype_key(uint32_t dtype_bit) {
    switch (dtype_bit) {
    case 1: return "fp64";
    case 2: return "fp32";
    case 4: return "tf32";
    case 8: return "bf16";
    case 16: return "fp16";
    default: return "unknown";
    }
}

#endif /* KILN_NAMES_H */
