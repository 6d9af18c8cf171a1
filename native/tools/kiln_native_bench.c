/* kiln_native_bench.c - one kernel through the C ABI with every knob, no .NET: for performance
 * engineers iterating on a kernel (and `allreduce`: the collectives over every device of a backend,
 * as nccl-tests' all_reduce_perf at one size). Prints one "test metric value unit" line per measured value,
 * with "(N% of peak)" where the device's theoretical peak for that value is known, and one line per
 * data error. Exit: 0 ran clean, 1 data errors found, 2 bad input (the device's limit is named),
 * 3 the run failed. */
#include <kiln/kiln.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_PEAKS 32

/* Peaks the run itself reported ("peak_bf16_tflops" names the peak of "bf16_tflops"). */
struct bench_ctx {
    kiln_device_info info;
    char peak_names[MAX_PEAKS][64];
    double peak_values[MAX_PEAKS];
    int peaks;
    uint64_t errors;
};

static int ends_with(const char* s, const char* suffix) {
    const size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

/* The theoretical peak that metric m is a fraction of, or 0 when none is known. */
static double peak_for(const struct bench_ctx* ctx, const kiln_metric* m) {
    for (int i = 0; i < ctx->peaks; ++i)
        if (strcmp(ctx->peak_names[i], m->metric) == 0) return ctx->peak_values[i];
    if (strcmp(m->unit, "GB/s") == 0 && (strcmp(m->test, "stream") == 0 || strcmp(m->test, "memtest") == 0 ||
                                         strncmp(m->metric, "d2d_gbps", 8) == 0))
        return ctx->info.peak_memory_bandwidth_gbps;
    if (strcmp(m->unit, "TFLOP/s") == 0 && strncmp(m->metric, "fp64_", 5) == 0) return ctx->info.peak_fp64_tflops;
    if (strcmp(m->unit, "TFLOP/s") == 0 && strncmp(m->metric, "fp32_", 5) == 0) return ctx->info.peak_fp32_tflops;
    /* The tensor formats' peaks come with the device, before any rate (the run's peak_ rows come after it). */
    if (strcmp(m->unit, "TFLOP/s") == 0 && strncmp(m->metric, "tf32_", 5) == 0) return ctx->info.peak_tf32_tflops;
    if (strcmp(m->unit, "TFLOP/s") == 0 && strncmp(m->metric, "bf16_", 5) == 0) return ctx->info.peak_bf16_tflops;
    if (strcmp(m->unit, "TFLOP/s") == 0 && strncmp(m->metric, "fp16_", 5) == 0) return ctx->info.peak_fp16_tflops;
    return 0;
}

static void on_metric(void* opaque, const kiln_metric* m) {
    struct bench_ctx* ctx = opaque;
    if (strncmp(m->metric, "peak_", 5) == 0 && ctx->peaks < MAX_PEAKS) {
        snprintf(ctx->peak_names[ctx->peaks], sizeof ctx->peak_names[0], "%s", m->metric + 5);
        ctx->peak_values[ctx->peaks++] = m->value;
    }
    if (strcmp(m->metric, "errors_total") == 0 && m->value > 0) ctx->errors += (uint64_t)m->value;
    const double peak = peak_for(ctx, m);
    printf("%s %s %.6g %s", m->test, m->metric, m->value, m->unit);
    if (peak > 0 && (ends_with(m->metric, "_gbps") || ends_with(m->metric, "_gbps_best") ||
                     ends_with(m->metric, "_tflops") || ends_with(m->metric, "_tflops_best")))
        printf(" (%.1f%% of peak %.6g)", 100.0 * m->value / peak, peak);
    printf("%s\n", m->injected ? " (injected)" : "");
}

static void on_error(void* opaque, const kiln_data_error* e) {
    struct bench_ctx* ctx = opaque;
    ++ctx->errors;
    printf("error %s offset=0x%" PRIx64 " expected=0x%0*" PRIx64 " actual=0x%0*" PRIx64, e->pattern, e->offset_bytes,
           (int)(2 * e->word_bytes), e->expected, (int)(2 * e->word_bytes), e->actual);
    if (e->sm >= 0) printf(" sm=%d", e->sm);
    printf("%s\n", e->injected ? " (injected)" : "");
}

static int usage(const char* what) {
    fprintf(stderr, "kiln-native-bench: error: %s\n"
                    "usage: kiln-native-bench stream|memtest|gemm|power|copy|launch|allreduce [--backend cpu|cuda|hip|emu]\n"
                    "       [--device N] [--size BYTES] [--threads N] [--iterations N] [--duration MS]\n"
                    "       [--ops MASK] [--patterns MASK] [--n N] [--dtypes MASK] [--seed N]\n"
                    "       [--block N] [--grid N] [--vec N] [--unroll N] [--flips N] [--corrupt N]\n"
                    "       [--max-errors N]\n"
                    "  --dtypes: 1 fp64, 2 fp32, 4 tf32, 8 bf16, 16 fp16 (gemm, power)\n"
                    "  allreduce: every device of the backend; --size, --iterations, --ops (1 all-reduce, 2 all-gather, 4 reduce-scatter)\n", what);
    return 2;
}

static int parse_u64(const char* text, uint64_t* out) {
    char* end = NULL;
    if (!text || *text == '-') return 0;
    *out = strtoull(text, &end, 0);
    return end && *end == '\0';
}

/* The exit code of a run that ended with st and found errors wrong words (the file comment's table). */
static int exit_code(kiln_status st, uint64_t errors) {
    if (st == KILN_INVALID_ARGUMENT || st == KILN_NOT_FOUND) return 2;
    if (st != KILN_OK) return 3;
    return errors ? 1 : 0;
}

/* allreduce: the collectives over every device of the backend, one communicator. */
static int run_collectives(int argc, char** argv) {
    kiln_coll_params p;
    kiln_coll_params_init(&p);
    const char* backend = "cuda";
    for (int i = 2; i < argc; i += 2) {
        const char* key = argv[i];
        const char* val = i + 1 < argc ? argv[i + 1] : NULL;
        uint64_t v = 0;
        if (strcmp(key, "--backend") == 0 && val) { backend = val; continue; }
        if (!parse_u64(val, &v)) return usage(key);
        if (strcmp(key, "--size") == 0) p.size_bytes = v;
        else if (strcmp(key, "--iterations") == 0) p.iterations = (int32_t)v;
        else if (strcmp(key, "--ops") == 0) p.op_mask = (uint32_t)v;
        else if (strcmp(key, "--max-errors") == 0) p.max_error_reports = (uint32_t)v;
        else return usage(key);
    }
    char err[512];
    kiln_registry* reg = NULL;
    kiln_device* devices[KILN_COLL_MAX_DEVICES];
    int count = 0;
    struct bench_ctx ctx;
    memset(&ctx, 0, sizeof ctx);
    kiln_status st = kiln_registry_create(NULL, &reg);
    while (st == KILN_OK && count < KILN_COLL_MAX_DEVICES && kiln_device_open(reg, backend, count, &devices[count]) == KILN_OK) ++count;
    kiln_coll_library_info lib;
    if (st == KILN_OK && count == 0) {
        st = KILN_NOT_FOUND;
        snprintf(err, sizeof err, "no %s device", backend);
    } else if (st == KILN_OK && (st = kiln_coll_library(devices[0], &lib)) == KILN_OK) {
        printf("# %s %s (%s) over %d %s device(s)\n", lib.name, lib.version_text, lib.path, count, backend);
        const kiln_sink sink = {&ctx, on_metric, on_error, NULL};
        st = kiln_coll_run(devices, count, &p, &sink, NULL);
    }
    if (st != KILN_OK) {
        if (st != KILN_NOT_FOUND || count > 0) kiln_last_error(err, sizeof err);
        fprintf(stderr, "kiln-native-bench: %s: %s\n", kiln_status_name(st), err);
    }
    for (int i = 0; i < count; ++i) kiln_device_destroy(devices[i]);
    kiln_registry_destroy(reg);
    return exit_code(st, ctx.errors);
}

int main(int argc, char** argv) {
    static const char* const kernels[] = {"stream", "memtest", "gemm", "power", "copy", "launch"};
    if (argc < 2) return usage("which kernel?");
    if (strcmp(argv[1], "allreduce") == 0) return run_collectives(argc, argv);
    int test = -1;
    for (int k = 0; k < (int)(sizeof kernels / sizeof kernels[0]); ++k)
        if (strcmp(argv[1], kernels[k]) == 0) test = k;
    if (test < 0) return usage("unknown kernel (stream, memtest, gemm, power, copy, launch, allreduce)");

    kiln_test_params p;
    kiln_test_params_init(test, &p);
    const char* backend = "cpu";
    uint64_t device = 0;
    for (int i = 2; i < argc; i += 2) {
        const char* key = argv[i];
        const char* val = i + 1 < argc ? argv[i + 1] : NULL;
        uint64_t v = 0;
        if (strcmp(key, "--backend") == 0 && val) { backend = val; continue; }
        if (!parse_u64(val, &v)) return usage(key);
        if (strcmp(key, "--device") == 0) device = v;
        else if (strcmp(key, "--size") == 0) p.size_bytes = v;
        else if (strcmp(key, "--threads") == 0) p.threads = (int32_t)v;
        else if (strcmp(key, "--iterations") == 0) p.iterations = (int32_t)v;
        else if (strcmp(key, "--duration") == 0) p.duration_ms = v;
        else if (strcmp(key, "--ops") == 0) p.op_mask = (uint32_t)v;
        else if (strcmp(key, "--patterns") == 0) p.pattern_mask = (uint32_t)v;
        else if (strcmp(key, "--n") == 0) p.matrix_n = (int32_t)v;
        else if (strcmp(key, "--dtypes") == 0) p.dtype_mask = (uint32_t)v;
        else if (strcmp(key, "--seed") == 0) p.seed = v;
        else if (strcmp(key, "--block") == 0) p.block = (int32_t)v;
        else if (strcmp(key, "--grid") == 0) p.grid = (int32_t)v;
        else if (strcmp(key, "--vec") == 0) p.vec = (int32_t)v;
        else if (strcmp(key, "--unroll") == 0) p.unroll = (int32_t)v;
        else if (strcmp(key, "--flips") == 0) { p.inject_flips = (int32_t)v; p.inject_seed = 7; }
        else if (strcmp(key, "--corrupt") == 0) { p.inject_corrupt = (int32_t)v; p.inject_seed = 7; }
        else if (strcmp(key, "--max-errors") == 0) p.max_error_reports = (uint32_t)v;
        else return usage(key);
    }

    char err[512];
    kiln_registry* reg = NULL;
    kiln_device* dev = NULL;
    struct bench_ctx ctx;
    memset(&ctx, 0, sizeof ctx);
    kiln_status st = kiln_registry_create(NULL, &reg);
    if (st == KILN_OK) st = kiln_device_open(reg, backend, (int32_t)device, &dev);
    if (st == KILN_NOT_FOUND && reg) {
        /* Say why a GPU backend is missing: the registry kept the reason its plugin was skipped. */
        for (int i = 0; i < kiln_registry_skip_count(reg); ++i) {
            kiln_plugin_skip skip;
            if (kiln_registry_skip_info(reg, i, &skip) == KILN_OK)
                fprintf(stderr, "kiln-native-bench: skipped plugin %s: %s\n", skip.path, skip.reason);
        }
        kiln_last_error(err, sizeof err);
        fprintf(stderr, "kiln-native-bench: %s: %s\n", kiln_status_name(st), err);
        kiln_registry_destroy(reg);
        return 2;
    }
    if (st == KILN_OK) st = kiln_device_get_info(dev, &ctx.info);
    if (st == KILN_OK) {
        printf("# %s device %d: %s, %d units, %.0f MHz, peak %.6g GB/s, fp64 %.6g, fp32 %.6g, tf32 %.6g, bf16 %.6g, fp16 %.6g TFLOP/s\n",
               ctx.info.backend, ctx.info.index, ctx.info.name, ctx.info.compute_units, ctx.info.clock_mhz,
               ctx.info.peak_memory_bandwidth_gbps, ctx.info.peak_fp64_tflops, ctx.info.peak_fp32_tflops, ctx.info.peak_tf32_tflops,
               ctx.info.peak_bf16_tflops, ctx.info.peak_fp16_tflops);
        const kiln_sink sink = {&ctx, on_metric, on_error, NULL};
        st = kiln_run(dev, &p, &sink, NULL);
    }
    if (st != KILN_OK) {
        kiln_last_error(err, sizeof err);
        fprintf(stderr, "kiln-native-bench: %s: %s\n", kiln_status_name(st), err);
    }
    kiln_device_destroy(dev);
    kiln_registry_destroy(reg);
    return exit_code(st, ctx.errors);
}
