// injection.cpp - where fault injection flips bits, exported so tools can predict what a verify
// pass must find. The positions come from the shared inline logic in kiln_patterns.h.
#include "kiln_internal.h"
#include "../common/kiln_patterns.h"

extern "C" kiln_status kiln_injection_positions(uint64_t seed, int32_t count, uint64_t region_bytes,
                                                uint64_t* out_offsets, uint32_t* out_bits) {
    if (count < 0) return kiln::fail(KILN_INVALID_ARGUMENT, "count: %d is negative", count);
    if (count > 0 && (!out_offsets || !out_bits))
        return kiln::fail(KILN_INVALID_ARGUMENT, "out_offsets and out_bits must not be NULL");
    const uint64_t words = region_bytes / 8u;
    if (static_cast<uint64_t>(count) > words)
        return kiln::fail(KILN_INVALID_ARGUMENT, "count: %d flips do not fit in %llu words", count,
                          static_cast<unsigned long long>(words));
    kiln_injection_positions_fill(seed, count, words, out_offsets, out_bits);
    for (int32_t i = 0; i < count; ++i) out_offsets[i] *= 8u;  // words -> byte offsets
    return KILN_OK;
}
