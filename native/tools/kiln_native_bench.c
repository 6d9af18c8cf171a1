/* kiln_native_bench.c - one kernel through the C ABI with every knob, no .NET: for performance
 * engineers iterating on a kernel. Prints one "test metric value unit" line per measured value. */
#include <kiln/kiln.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void on_metric(void* ctx, const kiln_metric* m) {
    (void)ctx;
    printf("%s %s %.6g %s%s\n", m->test, m->metric, m->value, m->unit, m->injected ? " (injected)" : "");
}

static void on_error(void* ctx, const kiln_data_error* e) {
    (void)ctx;
    printf("error %s offset=0x%" PRIx64 " expected=0x%016" PRIx64 " actual=0x%016" PRIx64 "\n", e->pattern,
           e->offset_bytes, e->expected, e->actual);
}

static int usage(const char* what) {
    fprintf(stderr, "kiln-native-bench: error: %s\n"
                    "usage: kiln-native-bench stream|memtest [--backend NAME] [--device N] [--size BYTES]\n"
                    "       [--threads N] [--iterations N] [--ops MASK] [--patterns MASK] [--seed N]\n"
                    "       [--block N] [--grid N] [--vec N] [--unroll N] [--flips N]\n", what);
    return 2;
}

static int parse_u64(const char* text, uint64_t* out) {
    char* end = NULL;
    if (!text || *text == '-') return 0;
    *out = strtoull(text, &end, 0);
    return end && *end == '\0';
}

int main(int argc, char** argv) {
    if (argc < 2) return usage("which kernel?");
    int test;
    if (strcmp(argv[1], "stream") == 0) test = KILN_TEST_STREAM;
    else if (strcmp(argv[1], "memtest") == 0) test = KILN_TEST_MEMTEST;
    else return usage("unknown kernel (stream, memtest)");

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
        else if (strcmp(key, "--ops") == 0) p.op_mask = (uint32_t)v;
        else if (strcmp(key, "--patterns") == 0) p.pattern_mask = (uint32_t)v;
        else if (strcmp(key, "--seed") == 0) p.seed = v;
        else if (strcmp(key, "--block") == 0) p.block = (int32_t)v;
        else if (strcmp(key, "--grid") == 0) p.grid = (int32_t)v;
        else if (strcmp(key, "--vec") == 0) p.vec = (int32_t)v;
        else if (strcmp(key, "--unroll") == 0) p.unroll = (int32_t)v;
        else if (strcmp(key, "--flips") == 0) { p.inject_flips = (int32_t)v; p.inject_seed = 7; }
        else return usage(key);
    }

    char err[512];
    kiln_registry* reg = NULL;
    kiln_device* dev = NULL;
    kiln_status st = kiln_registry_create(NULL, &reg);
    if (st == KILN_OK) st = kiln_device_open(reg, backend, (int32_t)device, &dev);
    if (st == KILN_OK) {
        const kiln_sink sink = {NULL, on_metric, on_error, NULL};
        st = kiln_run(dev, &p, &sink, NULL);
    }
    if (st != KILN_OK) {
        kiln_last_error(err, sizeof err);
        fprintf(stderr, "kiln-native-bench: %s: %s\n", kiln_status_name(st), err);
    }
    kiln_device_destroy(dev);
    kiln_registry_destroy(reg);
    return st == KILN_OK ? 0 : (st == KILN_INVALID_ARGUMENT || st == KILN_NOT_FOUND ? 2 : 3);
}
