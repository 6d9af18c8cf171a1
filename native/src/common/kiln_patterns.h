/* kiln_patterns.h - per-element logic shared by the CPU backend and the GPU kernels: seeded
 * random numbers, memtest pattern words, injection positions and the stream recurrence.
 * Everything here is inline and usable from host and device code (KILN_HD). */
#ifndef KILN_PATTERNS_H
#define KILN_PATTERNS_H

#include <stdint.h>

#if defined(__CUDACC__) || defined(__HIPCC__)
#define KILN_HD __host__ __device__ __forceinline__
#else
#define KILN_HD static inline
#endif

/* splitmix64: one step of the generator; the state advances by the golden-ratio increment. */
KILN_HD uint64_t kiln_splitmix64_next(uint64_t* state) {
    uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* A stateless hash of x: the value splitmix64 would return from state x. */
KILN_HD uint64_t kiln_mix64(uint64_t x) {
    uint64_t state = x;
    return kiln_splitmix64_next(&state);
}

/* Pattern ids match kiln_memtest_pattern in kiln.h. */
enum {
    KILN_P_WALKING_ONES = 0,
    KILN_P_WALKING_ZEROS = 1,
    KILN_P_OWN_ADDRESS = 2,
    KILN_P_MOVING_INV_FIXED = 3,
    KILN_P_MOVING_INV_RANDOM = 4,
    KILN_P_MODULO_20 = 5
};

/* Write-then-verify phases one round of a pattern has. */
KILN_HD uint32_t kiln_pattern_phases(int pattern) {
    switch (pattern) {
    case KILN_P_OWN_ADDRESS: return 2;        /* offset, then ~offset */
    case KILN_P_MOVING_INV_FIXED: return 4;   /* 0, ~0, 0x55.., 0xAA.. */
    case KILN_P_MOVING_INV_RANDOM: return 2;  /* r, ~r */
    case KILN_P_MODULO_20: return 20;         /* p at i%20==k, for k = 0..19 */
    default: return 1;                        /* walking ones/zeros: rotation changes per round */
    }
}

/* Period of the pattern in words (the word at i equals the word at i+period), or 0 when the
 * word depends on its address (own-address). */
KILN_HD uint32_t kiln_pattern_period_words(int pattern) {
    switch (pattern) {
    case KILN_P_WALKING_ONES:
    case KILN_P_WALKING_ZEROS: return 64;
    case KILN_P_OWN_ADDRESS: return 0;
    case KILN_P_MODULO_20: return 20;
    default: return 1;
    }
}

/* Moving inversions sweep odd phases from high addresses to low, so a fault coupled to a
 * neighbour is seen in both directions. Other patterns always go up. */
KILN_HD int kiln_pattern_descending(int pattern, uint32_t phase) {
    return (pattern == KILN_P_MOVING_INV_FIXED || pattern == KILN_P_MOVING_INV_RANDOM) && (phase & 1u);
}

/* The word written at word_index (offset = 8 * word_index from the region start). */
KILN_HD uint64_t kiln_pattern_word(int pattern, uint32_t phase, uint32_t round, uint64_t word_index,
                                   uint64_t seed) {
    switch (pattern) {
    case KILN_P_WALKING_ONES:
        return 1ull << ((word_index + round) & 63u);
    case KILN_P_WALKING_ZEROS:
        return ~(1ull << ((word_index + round) & 63u));
    case KILN_P_OWN_ADDRESS:
        return (phase & 1u) ? ~(word_index * 8u) : word_index * 8u;
    case KILN_P_MOVING_INV_FIXED: {
        const uint64_t base = (phase < 2u) ? 0ull : 0x5555555555555555ull;
        return (phase & 1u) ? ~base : base;
    }
    case KILN_P_MOVING_INV_RANDOM: {
        const uint64_t r = kiln_mix64(seed + 0x6D6F76696E67ull + round);
        return (phase & 1u) ? ~r : r;
    }
    case KILN_P_MODULO_20: {
        const uint64_t p = kiln_mix64(seed ^ (0x6D6F643230ull + round));
        return (word_index % 20u == phase) ? p : ~p;
    }
    default:
        return 0;
    }
}

/* Injection positions: the k-th flip takes r = next() from a splitmix64 stream seeded with seed,
 * word = r % words (drawn again if already taken), bit = next() % 64. Used by the CPU and GPU
 * memtests and by tests that predict what a verify pass must find. Returns the flips placed
 * (fewer than count only when the region has fewer words). */
KILN_HD int kiln_injection_position(uint64_t* state, uint64_t words, const uint64_t* taken, int taken_count,
                                    uint64_t* out_word, uint32_t* out_bit) {
    if (words == 0 || (uint64_t)taken_count >= words) return 0;
    for (;;) {
        const uint64_t w = kiln_splitmix64_next(state) % words;
        int dup = 0;
        for (int i = 0; i < taken_count; ++i) dup |= (taken[i] == w);
        if (!dup) {
            *out_word = w;
            *out_bit = (uint32_t)(kiln_splitmix64_next(state) % 64u);
            return 1;
        }
    }
}

/* The stream recurrence on one element: copy c=a, scale b=s*c, add c=a+b, triad a=b+s*c.
 * The scalar s = sqrt(2)-1 makes s*(2+s) ~ 1, so values stay near 1 over millions of
 * iterations and the expected result can be replayed exactly on one element. */
#define KILN_STREAM_SCALAR 0.41421356237309515
typedef struct kiln_stream_values {
    double a, b, c;
} kiln_stream_values;

KILN_HD kiln_stream_values kiln_stream_initial(void) {
    kiln_stream_values v;
    v.a = 1.0;
    v.b = 2.0;
    v.c = 0.0;
    return v;
}

/* One iteration of the ops selected by op_mask (kiln_stream_op bits) on one element. */
KILN_HD kiln_stream_values kiln_stream_step(kiln_stream_values v, uint32_t op_mask) {
    const double s = KILN_STREAM_SCALAR;
    if (op_mask & 1u) v.c = v.a;
    if (op_mask & 2u) v.b = s * v.c;
    if (op_mask & 4u) v.c = v.a + v.b;
    if (op_mask & 8u) v.a = v.b + s * v.c;
    return v;
}

#endif /* KILN_PATTERNS_H */
