// knobs.cpp - the knob catalog: every kernel knob of kiln_test_params a test reads, with its range,
// default and the backends whose kernels read it, in one place. Plans (params:), `kiln bench TEST`
// options and docs/PLANS.md's table take it through kiln_knob_at; kiln_test_validate and kiln_run
// refuse a value it does not allow (validate_knobs) before the backend's own, device-specific checks.
#include "kiln_internal.h"
#include "../common/kiln_patterns.h"

#include <cstdlib>
#include <cstring>
#include <string>

namespace {

constexpr uint32_t cpu = KILN_BACKEND_CPU, gpu = KILN_BACKEND_GPU, all = cpu | gpu;
constexpr int64_t computed = -1;  // the backend derives it from the device

const kiln_knob_info k_knobs[] = {
    {"stream", "block", "GPU threads per block (a multiple of the warp size, at most the device's limit)", 1, 1024, 256, "", gpu, 0},
    {"stream", "grid", "GPU blocks (default: enough to fill every SM)", 1, 2147483647, computed, "", gpu, 0},
    {"stream", "vec", "elements per access: 1 (8-byte) or 2 (16-byte)", 1, 2, 2, "1,2", gpu, 0},
    {"stream", "unroll", "independent accesses in flight per thread", 1, 8, 4, "1,2,4,8", gpu, 0},
    {"memtest", "block", "GPU threads per block (a multiple of the warp size)", 1, 1024, 256, "", gpu, 0},
    {"memtest", "grid", "GPU blocks (default: enough to fill every SM)", 1, 2147483647, computed, "", gpu, 0},
    {"memtest", "vec", "elements per access: memtest always makes 16-byte accesses", 2, 2, 2, "2", gpu, 0},
    {"memtest", "unroll", "independent accesses in flight per thread", 1, 8, 4, "1,2,4,8", gpu, 0},
    {"gemm", "matrix_n", "n of the n x n x n product (cpu: fp64)", 1, KILN_GEMM_MAX_N, 2048, "", cpu, 0},
    {"gemm", "matrix_n", "n of the n x n x n product (default 8192, less on a device too slow for it)", 1, KILN_GEMM_MAX_N, computed, "", gpu, 0},
    {"power", "block", "GPU threads per block: the burners run 256 (set grid instead)", 256, 256, 256, "256", gpu, 0},
    {"power", "grid", "GPU blocks (default: enough to fill every SM)", 1, 2147483647, computed, "", gpu, 0},
    {"copy", "block", "GPU threads per block of the SM copy kernel (a multiple of the warp size)", 1, 1024, 256, "", gpu, 0},
    {"copy", "grid", "GPU blocks of the SM copy kernel (default: enough to fill every SM)", 1, 2147483647, computed, "", gpu, 0},
};

constexpr int32_t k_count = static_cast<int32_t>(sizeof k_knobs / sizeof k_knobs[0]);

bool allowed(const kiln_knob_info& k, int64_t v) {
    if (!*k.values) return v >= k.min && v <= k.max;
    std::string list = std::string(",") + k.values + ",";
    return list.find("," + std::to_string(v) + ",") != std::string::npos;
}

// The knobs `test` reads on backends `bits`, as "block, grid" (or "none").
std::string knob_names(const char* test, uint32_t bits) {
    std::string names;
    for (const kiln_knob_info& k : k_knobs)
        if (strcmp(k.test, test) == 0 && (k.backends & bits) && names.find(k.name) == std::string::npos)
            names += (names.empty() ? "" : ", ") + std::string(k.name);
    return names.empty() ? "none" : names;
}

}  // namespace

namespace kiln {

uint32_t backend_bit(const char* backend) {
    if (strcmp(backend, "cpu") == 0) return KILN_BACKEND_CPU;
    if (strcmp(backend, "cuda") == 0) return KILN_BACKEND_CUDA;
    if (strcmp(backend, "hip") == 0) return KILN_BACKEND_HIP;
    if (strcmp(backend, "emu") == 0) return KILN_BACKEND_EMU;
    return 0;
}

kiln_status validate_knobs(const char* backend, const kiln_test_params* p) {
    const uint32_t bits = backend_bit(backend);
    if (bits == 0) return KILN_OK;  // a plugin the catalog does not know (tests' fakes): its own validate decides
    const char* test = kiln_test_name(p->test);
    const struct {
        const char* name;
        int64_t value;
    } given[] = {{"block", p->block}, {"grid", p->grid}, {"vec", p->vec}, {"unroll", p->unroll}, {"matrix_n", p->matrix_n}};
    for (const auto& g : given) {
        if (g.value == 0) continue;  // the backend's default
        if (g.value < 0) return fail(KILN_INVALID_ARGUMENT, "%s: %lld is negative", g.name, static_cast<long long>(g.value));
        const kiln_knob_info* knob = nullptr;
        bool any_backend = false;
        for (const kiln_knob_info& k : k_knobs)
            if (strcmp(k.test, test) == 0 && strcmp(k.name, g.name) == 0) {
                any_backend = true;
                if (k.backends & bits) knob = &k;
            }
        if (!any_backend)
            return fail(KILN_INVALID_ARGUMENT, "%s: %s does not read it (its knobs: %s); leave it at 0", g.name, test,
                        knob_names(test, all).c_str());
        // Another backend's knob (a GPU launch shape on the cpu): one plan serves every device.
        if (!knob) continue;
        if (!allowed(*knob, g.value)) {
            if (*knob->values)
                return fail(KILN_INVALID_ARGUMENT, "%s: %lld; %s takes %s (%s)", g.name, static_cast<long long>(g.value), test,
                            knob->values, knob->description);
            const bool above = g.value > knob->max;
            return fail(KILN_INVALID_ARGUMENT, "%s: %lld is %s %lld (%s: %s)", g.name, static_cast<long long>(g.value),
                        above ? "above" : "below", static_cast<long long>(above ? knob->max : knob->min), test, knob->description);
        }
    }
    return KILN_OK;
}

}  // namespace kiln

extern "C" {

int32_t kiln_knob_count(void) { return k_count; }

kiln_status kiln_knob_at(int32_t index, kiln_knob_info* out_info) {
    if (!out_info) return kiln::fail(KILN_INVALID_ARGUMENT, "out_info must not be NULL");
    if (index < 0 || index >= k_count) return kiln::fail(KILN_NOT_FOUND, "knob %d: the catalog has %d (0..%d)", index, k_count, k_count - 1);
    *out_info = k_knobs[index];
    return KILN_OK;
}

}  // extern "C"
