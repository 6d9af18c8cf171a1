/* kiln_patterns.h - per-element logic shared by the CPU backend and the GPU kernels: seeded
 * random numbers, memtest pattern words, injection positions, the stream recurrence, the gemm
 * inputs and their exact product, and the power burner's operands.
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

/* The memtest's schedule: every phase of each pattern in mask (bits 1 << pattern; 0 = all), pattern
 * after pattern in id order, round after round. Shared so the CPU and GPU walk the same sequence. */
typedef struct kiln_memtest_step {
    uint32_t round;
    int pattern;
    uint32_t phase;
} kiln_memtest_step;

KILN_HD uint32_t kiln_memtest_mask(uint32_t mask) { return (mask & 63u) ? (mask & 63u) : 63u; }

KILN_HD uint32_t kiln_memtest_phases_per_round(uint32_t mask) {
    uint32_t phases = 0;
    for (int pat = 0; pat <= KILN_P_MODULO_20; ++pat)
        if (kiln_memtest_mask(mask) & (1u << pat)) phases += kiln_pattern_phases(pat);
    return phases;
}

KILN_HD kiln_memtest_step kiln_memtest_first(uint32_t mask) {
    kiln_memtest_step s;
    s.round = 0;
    s.phase = 0;
    s.pattern = 0;
    while (!(kiln_memtest_mask(mask) & (1u << s.pattern))) ++s.pattern;
    return s;
}

KILN_HD kiln_memtest_step kiln_memtest_next(kiln_memtest_step s, uint32_t mask) {
    if (++s.phase < kiln_pattern_phases(s.pattern)) return s;
    s.phase = 0;
    for (++s.pattern; s.pattern <= KILN_P_MODULO_20; ++s.pattern)
        if (kiln_memtest_mask(mask) & (1u << s.pattern)) return s;
    const uint32_t round = s.round + 1;
    s = kiln_memtest_first(mask);
    s.round = round;
    return s;
}

/* The order in which a memtest sweep visits a region of `words` words. Ascending from `start`:
 * start .. words-1, then 0 .. start-1; descending from `start`: start-1 down to 0, then words-1
 * down to start. Sweep n verifies what sweep n-1 wrote. When the moving inversions turn the
 * direction and the start stays, sweep n begins where sweep n-1 ended, so the first words it
 * verifies are the last ones written: still in the cache (a GPU's L2, a CPU's last level) and
 * verified from there, not from memory. So on a turn the start moves by half the region, and every
 * word is verified at least half a region of traffic after it was written; sweeps that keep their
 * direction keep their start (a whole region between a word's write and its verify). Shared so the
 * CPU and GPU sweeps, and the test that checks the claim, walk the same order. */
typedef struct kiln_sweep_order {
    uint64_t start;  /* a multiple of the caller's alignment, below words */
    int descending;
} kiln_sweep_order;

KILN_HD kiln_sweep_order kiln_sweep_first(int descending) {
    kiln_sweep_order o;
    o.start = 0;
    o.descending = descending;
    return o;
}

/* The next sweep's order, from the previous one's and the direction of the phase it writes (or,
 * for the last sweep, verifies). align: the granularity of the start in words (chunk pieces, blocks). */
KILN_HD kiln_sweep_order kiln_sweep_next(kiln_sweep_order prev, int descending, uint64_t words, uint64_t align) {
    kiln_sweep_order o = prev;
    o.descending = descending;
    if (descending == prev.descending) return o;
    const uint64_t span = align ? words / align * align : words;    /* starts stay below it, aligned */
    const uint64_t half = align ? words / 2 / align * align : words / 2;
    o.start = span ? (prev.start + half) % span : 0;
    return o;
}

/* The sweep's t-th word (0 <= t < words). */
KILN_HD uint64_t kiln_sweep_word(kiln_sweep_order o, uint64_t words, uint64_t t) {
    return o.descending ? (o.start + words - 1 - t) % words : (o.start + t) % words;
}

/* When (0 .. words-1) the sweep visits word w: the inverse of kiln_sweep_word. */
KILN_HD uint64_t kiln_sweep_time(kiln_sweep_order o, uint64_t words, uint64_t w) {
    return o.descending ? (o.start + words - 1 - w) % words : (w + words - o.start) % words;
}

/* The sweep as two ranges [lo, hi) of words, visited in this order, each in the sweep's direction
 * (one is empty when start is 0). A GPU launches each range's chunk pieces; a CPU worker sweeps
 * each range of its slice. */
KILN_HD void kiln_sweep_ranges(kiln_sweep_order o, uint64_t words, uint64_t lo[2], uint64_t hi[2]) {
    if (o.descending) {
        lo[0] = 0, hi[0] = o.start, lo[1] = o.start, hi[1] = words;
    } else {
        lo[0] = o.start, hi[0] = words, lo[1] = 0, hi[1] = o.start;
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

/* The first count positions for seed over a region of `words` words: kiln_injection_position in
 * sequence. Fills out_words and out_bits (count entries each); returns how many were placed. */
KILN_HD int kiln_injection_positions_fill(uint64_t seed, int count, uint64_t words, uint64_t* out_words, uint32_t* out_bits) {
    uint64_t state = seed;
    int placed = 0;
    while (placed < count && kiln_injection_position(&state, words, out_words, placed, &out_words[placed], &out_bits[placed]))
        ++placed;
    return placed;
}

/* The stream recurrence on one element: copy c=a, scale b=q*c, add c=a+b, triad a=b+q*c, write
 * c=w, read (checks c). Iteration k's scalar q alternates between sqrt(5/2)-1 and sqrt(5/3)-1:
 * q*(2+q) is then 3/2 and 2/3, so a grows by half and shrinks back, staying near 1 over millions of
 * iterations, while every value differs from the last iteration's by a tenth or more. A store that
 * is lost therefore leaves a value that is wrong now (it cannot be healed by rounding, as it was
 * with one scalar, when values moved by an ulp per iteration), and the error stays in a to the end.
 * The write op's value w changes every iteration and is negative (no other op leaves one), and the
 * read op checks it, so each op's effect is visible at its own check or in the last verify. */
#define KILN_STREAM_SCALAR_EVEN 0.58113883008418976 /* sqrt(2.5) - 1 */
#define KILN_STREAM_SCALAR_ODD 0.29099444873580560  /* sqrt(5/3) - 1 */
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

/* Iteration k's scalar (k from 0) and the value its write op stores. */
KILN_HD double kiln_stream_scalar(uint64_t k) { return (k & 1u) ? KILN_STREAM_SCALAR_ODD : KILN_STREAM_SCALAR_EVEN; }
KILN_HD double kiln_stream_write_value(uint64_t k) { return -1.0 - (double)(k % 4096u); }

/* The ops on one element. Compiled without contraction (-ffp-contract=off, nvcc -fmad=false) so
 * q*c + b rounds twice everywhere, as the replay does. */
KILN_HD double kiln_stream_scale(double q, double c) { return q * c; }
KILN_HD double kiln_stream_add(double a, double b) { return a + b; }
KILN_HD double kiln_stream_triad(double q, double b, double c) { return b + q * c; }

/* Iteration k of the ops selected by op_mask (kiln_stream_op bits) on one element, in the order
 * the tests run them: copy, scale, add, triad, write, read (read changes nothing). */
KILN_HD kiln_stream_values kiln_stream_step(kiln_stream_values v, uint32_t op_mask, uint64_t k) {
    const double q = kiln_stream_scalar(k);
    if (op_mask & 1u) v.c = v.a;
    if (op_mask & 2u) v.b = kiln_stream_scale(q, v.c);
    if (op_mask & 4u) v.c = kiln_stream_add(v.a, v.b);
    if (op_mask & 8u) v.a = kiln_stream_triad(q, v.b, v.c);
    if (op_mask & 32u) v.c = kiln_stream_write_value(k);
    return v;
}

/* The order the ops run in within an iteration (kiln_stream_op bit numbers): write before read. */
#define KILN_STREAM_ORDER_INIT {0, 1, 2, 3, 5, 4}

/* gemm inputs: A (n x n) and B (n x n) hold integers in -4..4 taken from two seeded tables of
 * KILN_GEMM_PERIOD entries: A[i][k] = ta[(row_phase(i) + k) % P], B[k][j] = tb[(k + col_phase(j)) % P].
 * Every input is exact in fp16, bf16 and tf32, and every partial sum (|sum| <= 16 n) is an exact
 * integer in an fp32 accumulator for n <= 2^20, whatever the order of the additions. So the
 * product is known exactly: C[i][j] = E[row_phase(i)][col_phase(j)] with
 * E[r][s] = sum_{k<n} ta[(r+k)%P] * tb[(s+k)%P], a P x P table computed in O(P^3). A prime P and
 * the steps 7 and 13 make neighbouring rows and columns differ, so a misplaced row, column or k
 * offset changes the result. */
#define KILN_GEMM_PERIOD 61u
#define KILN_GEMM_ROW_STEP 7u
#define KILN_GEMM_COL_STEP 13u
#define KILN_GEMM_MAX_N 1048576 /* 16 * n must stay below 2^24 (fp32 accumulators) */

/* Entry t of input table `matrix` (0 = A, 1 = B) for seed. */
KILN_HD int32_t kiln_gemm_table_value(uint64_t seed, uint32_t matrix, uint32_t t) {
    const uint64_t tag = matrix ? 0x47454D4D42ull : 0x47454D4D41ull; /* "GEMMB", "GEMMA" */
    return (int32_t)(kiln_mix64(seed ^ (tag << 16) ^ t) % 9u) - 4;
}

KILN_HD uint32_t kiln_gemm_row_phase(uint64_t i) { return (uint32_t)((i % KILN_GEMM_PERIOD) * KILN_GEMM_ROW_STEP % KILN_GEMM_PERIOD); }
KILN_HD uint32_t kiln_gemm_col_phase(uint64_t j) { return (uint32_t)((j % KILN_GEMM_PERIOD) * KILN_GEMM_COL_STEP % KILN_GEMM_PERIOD); }

/* A[i][k] and B[k][j] of the product, from tables ta and tb of KILN_GEMM_PERIOD entries. */
KILN_HD int32_t kiln_gemm_a(const int8_t* ta, uint64_t i, uint64_t k) {
    return ta[(kiln_gemm_row_phase(i) + k % KILN_GEMM_PERIOD) % KILN_GEMM_PERIOD];
}
KILN_HD int32_t kiln_gemm_b(const int8_t* tb, uint64_t k, uint64_t j) {
    return tb[(k % KILN_GEMM_PERIOD + kiln_gemm_col_phase(j)) % KILN_GEMM_PERIOD];
}

/* Fills ta and tb (KILN_GEMM_PERIOD entries each) for seed. */
KILN_HD void kiln_gemm_tables(uint64_t seed, int8_t* ta, int8_t* tb) {
    for (uint32_t t = 0; t < KILN_GEMM_PERIOD; ++t) {
        ta[t] = (int8_t)kiln_gemm_table_value(seed, 0, t);
        tb[t] = (int8_t)kiln_gemm_table_value(seed, 1, t);
    }
}

/* E (KILN_GEMM_PERIOD^2 entries, row r = row phase, column s = column phase) for inner dimension k. */
KILN_HD void kiln_gemm_expected_table(const int8_t* ta, const int8_t* tb, uint64_t k, int64_t* e) {
    const uint64_t p = KILN_GEMM_PERIOD, full = k / p, rest = k % p;
    for (uint64_t r = 0; r < p; ++r)
        for (uint64_t s = 0; s < p; ++s) {
            int64_t period_sum = 0, rest_sum = 0;
            for (uint64_t t = 0; t < p; ++t) {
                const int64_t prod = (int64_t)ta[(r + t) % p] * tb[(s + t) % p];
                period_sum += prod;
                if (t < rest) rest_sum += prod;
            }
            e[r * p + s] = (int64_t)full * period_sum + rest_sum;
        }
}

/* The exact value of product element (i, j). */
KILN_HD int64_t kiln_gemm_expected(const int64_t* e, uint64_t i, uint64_t j) {
    return e[kiln_gemm_row_phase(i) * KILN_GEMM_PERIOD + kiln_gemm_col_phase(j)];
}

/* gemm's random full-mantissa inputs: element (r, k) of matrix 0 (A) or 1 (B, transposed on the
 * GPU), uniform in [-1, 1) with 53 random bits from (seed, matrix, r, k). Every fraction bit of the
 * format is driven; the product has no known exact value, but repeats bit for bit. */
KILN_HD double kiln_gemm_random_unit(uint64_t seed, int matrix, uint64_t r, uint64_t k) {
    const uint64_t bits = kiln_mix64(seed ^ (0x72616E646F6D0000ull + (uint64_t)matrix) ^ (r * 0x9E3779B97F4A7C15ull) ^ (k << 32));
    return (double)(bits >> 11) * (2.0 / 9007199254740992.0) - 1.0;
}

/* The power burner's step on one accumulator: x -> fma(a, b, x) -> fma(-a, b, x). The operands are
 * built so that both sums are exact: a, b in [1, 2) with few enough significant bits that a*b is
 * exact and its last bit is no finer than the ulp of x + a*b, and x in [8, 12) so x + a*b < 16
 * stays in x's binade or the next. So the pair returns x exactly, a burn of any number of pairs
 * ends on the values it started from, and a wrong bit anywhere along the way stays visible.
 * fp64: a, b carry 25 significant bits (a*b: 50 bits, last bit 2^-48 >= ulp 2^-49 below 16);
 * fp32: 11 bits (a*b: 22 bits, last bit 2^-20 = ulp below 16). Index j picks one of many triples. */
KILN_HD double kiln_power_fp64_operand(uint64_t seed, uint32_t j, uint32_t which) {
    const uint64_t r = kiln_mix64(seed ^ ((uint64_t)j << 8) ^ which);
    if (which == 2) return 8.0 + (double)(r >> 11) * (4.0 / 9007199254740992.0); /* x in [8, 12), 53 bits */
    return 1.0 + (double)(r >> 40) / 16777216.0;                                   /* [1, 2), 25 bits */
}
KILN_HD float kiln_power_fp32_operand(uint64_t seed, uint32_t j, uint32_t which) {
    const uint64_t r = kiln_mix64(seed ^ ((uint64_t)j << 8) ^ which ^ 0x3332ull);
    if (which == 2) return 8.0f + (float)(r >> 40) * (4.0f / 16777216.0f); /* x in [8, 12), 24 bits */
    return 1.0f + (float)(r >> 54) / 1024.0f;                              /* [1, 2), 11 bits */
}

/* The burner's closing step, x0 -> fma(a, b, x0), whose exact result is known: computed here with
 * integers only, so no floating-point unit (the one under test, or a twin with the same fault) takes
 * part. Every pair before it returns x0, so a wrong multiplier that errs the same way for a*b and
 * -a*b (and cancels in the pairs), a unit that returns 0 or leaves x unchanged, all miss this value.
 * fp64: a, b = a_int / 2^24 (25 bits), x0 = x_int / 2^49 in [8, 12); x0 + a*b = (x_int + 2 a_int b_int) / 2^49 < 16.
 * fp32: a, b = a_int / 2^10 (11 bits), x0 = x_int / 2^20 in [8, 12); x0 + a*b = (x_int + a_int b_int) / 2^20 < 16. */
KILN_HD uint64_t kiln_power_fp64_final_bits(uint64_t x0_bits, uint64_t a_bits, uint64_t b_bits) {
    const uint64_t frac = (1ull << 52) - 1;
    const uint64_t a_int = ((1ull << 52) | (a_bits & frac)) >> 28, b_int = ((1ull << 52) | (b_bits & frac)) >> 28;
    const uint64_t x_int = (1ull << 52) | (x0_bits & frac);
    const uint64_t sum = x_int + 2 * a_int * b_int; /* in [2^52, 2^53): exponent 3 */
    return ((uint64_t)(1023 + 3) << 52) | (sum & frac);
}
KILN_HD uint32_t kiln_power_fp32_final_bits(uint32_t x0_bits, uint32_t a_bits, uint32_t b_bits) {
    const uint32_t frac = (1u << 23) - 1;
    const uint32_t a_int = ((1u << 23) | (a_bits & frac)) >> 13, b_int = ((1u << 23) | (b_bits & frac)) >> 13;
    const uint32_t x_int = (1u << 23) | (x0_bits & frac);
    const uint32_t sum = x_int + a_int * b_int; /* in [2^23, 2^24): exponent 3 */
    return ((uint32_t)(127 + 3) << 23) | (sum & frac);
}

#endif /* KILN_PATTERNS_H */
