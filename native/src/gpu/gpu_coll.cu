// gpu_coll.cu - collectives across GPUs through NCCL (cuda), RCCL (hip) or the emulated device's own
// NCCL (emu: emu/emu_nccl.cpp), loaded at run time with its version checked. One process drives
// its devices as consecutive ranks of one communicator (ncclCommInitRank for each inside a group, so
// the same path serves one node alone and many processes over nodes). Each op runs warm-up then
// timed iterations, launched back to back and waited for together, as nccl-tests does; busbw is
// nccl-tests' (REFERENCE.md). Every result is then verified on its device: the inputs are small
// integers, so every sum is exact in fp32 and any wrong word is a data error naming op, rank,
// device and offset. A wait past timeout_ms, or a cancel, aborts the communicators (ncclCommAbort).
#include "gpu_backend.h"
#include "../common/kiln_names.h"

#include <dlfcn.h>
#include <sched.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>
#include <vector>

namespace kiln::gpu {

// The value rank r's input holds at element i: a(i) + b(r), both below 512, so a sum over up to
// 16384 ranks stays below 2^24 and is exact in fp32 in any order of addition.
__host__ __device__ inline uint32_t coll_a(uint64_t i) { return static_cast<uint32_t>((i * 0x9E3779B97F4A7C15ull) >> 55); }
__host__ __device__ inline uint32_t coll_b(uint32_t rank) { return (rank * 37u + 11u) & 511u; }

namespace {

constexpr int k_max_verified_ranks = 16384;
constexpr int k_min_version = 21000;  // NCCL 2.10.0; RCCL reports the NCCL version it implements
constexpr uint64_t k_default_size = 16ull << 30;  // the acceptance floors' size (REFERENCE.md)

// NCCL's C ABI as Kiln calls it. nccl.h is not packaged here, so the few types and values used are
// declared from NCCL's documentation (stable since NCCL 2.0): ncclResult_t codes, ncclFloat32 = 7,
// ncclSum = 0, ncclUniqueId of 128 bytes passed by value.
typedef struct nccl_comm_opaque* nccl_comm;
struct nccl_unique_id {
    char internal[KILN_COLL_ID_BYTES];
};
enum : int { nccl_success = 0, nccl_system_error = 2, nccl_remote_error = 6, nccl_in_progress = 7 };
constexpr int k_nccl_float32 = 7;
constexpr int k_nccl_sum = 0;

struct nccl_api {
    std::string path, name, version_text, error;  // error: why it cannot be used ("" when it can)
    int version = 0;
    int (*get_version)(int*) = nullptr;
    int (*get_unique_id)(nccl_unique_id*) = nullptr;
    int (*comm_init_rank)(nccl_comm*, int, nccl_unique_id, int) = nullptr;
    int (*comm_destroy)(nccl_comm) = nullptr;
    int (*comm_abort)(nccl_comm) = nullptr;
    int (*comm_get_async_error)(nccl_comm, int*) = nullptr;
    const char* (*get_error_string)(int) = nullptr;
    int (*group_start)() = nullptr;
    int (*group_end)() = nullptr;
    int (*all_reduce)(const void*, void*, size_t, int, int, nccl_comm, cudaStream_t) = nullptr;
    int (*all_gather)(const void*, void*, size_t, int, nccl_comm, cudaStream_t) = nullptr;
    int (*reduce_scatter)(const void*, void*, size_t, int, int, nccl_comm, cudaStream_t) = nullptr;
};

std::string nccl_version_text(int code) {
    // 2.9 and later: major*10000 + minor*100 + patch; before: major*1000 + minor*100 + patch.
    char buf[32];
    if (code >= 10000)
        snprintf(buf, sizeof buf, "%d.%d.%d", code / 10000, (code / 100) % 100, code % 100);
    else
        snprintf(buf, sizeof buf, "%d.%d.%d", code / 1000, (code / 100) % 10, code % 100);
    return buf;
}

// The library this backend loads, by default: its vendor's, or the emulated device's own.
std::string default_library(std::string* name) {
#if defined(KILN_GPU_EMU)
    *name = "emulated NCCL";
    Dl_info info{};
    if (dladdr(reinterpret_cast<const void*>(&default_library), &info) && info.dli_fname) return info.dli_fname;
    return "libkiln-emu.so";
#elif defined(KILN_GPU_HIP)
    *name = "RCCL";
    return "librccl.so.1";
#else
    *name = "NCCL";
    return "libnccl.so.2";
#endif
}

template <typename F>
bool resolve(void* library, const char* symbol, F* out, std::string* missing) {
    *out = reinterpret_cast<F>(dlsym(library, symbol));
    if (!*out) *missing += (missing->empty() ? "" : ", ") + std::string(symbol);
    return *out != nullptr;
}

// Loaded once per process and never unloaded (NCCL keeps threads of its own).
const nccl_api& api() {
    static nccl_api a;
    static std::once_flag once;
    std::call_once(once, [] {
        std::string name;
        a.path = default_library(&name);
        a.name = name;
        if (const char* env = getenv("KILN_NCCL_LIBRARY"); env && *env) a.path = env;
        void* library = dlopen(a.path.c_str(), RTLD_NOW | RTLD_LOCAL);
        if (!library) {
            const char* why = dlerror();
            a.error = "no " + a.name + ": " + (why ? why : a.path + ": cannot be loaded");
            return;
        }
        std::string missing;
        resolve(library, "ncclGetVersion", &a.get_version, &missing);
        resolve(library, "ncclGetUniqueId", &a.get_unique_id, &missing);
        resolve(library, "ncclCommInitRank", &a.comm_init_rank, &missing);
        resolve(library, "ncclCommDestroy", &a.comm_destroy, &missing);
        resolve(library, "ncclCommAbort", &a.comm_abort, &missing);
        resolve(library, "ncclCommGetAsyncError", &a.comm_get_async_error, &missing);
        resolve(library, "ncclGetErrorString", &a.get_error_string, &missing);
        resolve(library, "ncclGroupStart", &a.group_start, &missing);
        resolve(library, "ncclGroupEnd", &a.group_end, &missing);
        resolve(library, "ncclAllReduce", &a.all_reduce, &missing);
        resolve(library, "ncclAllGather", &a.all_gather, &missing);
        resolve(library, "ncclReduceScatter", &a.reduce_scatter, &missing);
        if (!missing.empty()) {
            a.error = a.path + " is not a " + a.name + " library Kiln can use: it lacks " + missing;
            return;
        }
        if (a.get_version(&a.version) != nccl_success) {
            a.error = a.path + ": ncclGetVersion failed";
            return;
        }
        a.version_text = nccl_version_text(a.version);
        if (a.version < k_min_version)
            a.error = a.name + " " + a.version_text + " (" + a.path + ") is older than " + nccl_version_text(k_min_version) +
                      ", the oldest Kiln runs";
    });
    return a;
}

// A failed NCCL call: a peer that went away (or a socket that broke) is the peer's; the rest is
// the backend's.
kiln_status nccl_fail(int rc, const char* call, const std::string& where) {
    const char* text = api().get_error_string ? api().get_error_string(rc) : "";
    const kiln_status st = rc == nccl_remote_error || rc == nccl_system_error ? KILN_PEER_ERROR : KILN_BACKEND_ERROR;
    return fail(st, "%s%s: %s (NCCL error %d)", where.c_str(), call, text ? text : "", rc);
}

#define KILN_NCCL_TRY(call, where)                                    \
    do {                                                              \
        const int kiln_nccl_rc_ = (call);                             \
        if (kiln_nccl_rc_ != nccl_success && kiln_nccl_rc_ != nccl_in_progress) \
            return nccl_fail(kiln_nccl_rc_, #call, where);            \
    } while (0)

// ---- kernels ------------------------------------------------------------------------------------

__global__ void coll_fill(float* p, uint64_t n, uint32_t rank) {
    const uint64_t stride = static_cast<uint64_t>(gridDim.x) * blockDim.x;
    for (uint64_t j = static_cast<uint64_t>(blockIdx.x) * blockDim.x + threadIdx.x; j < n; j += stride)
        p[j] = static_cast<float>(coll_a(j) + coll_b(rank));
}

// A sum over nranks of rank inputs at element base + j: nranks * a(base + j) + sum of b.
__global__ void coll_verify_sum(const float* p, uint64_t n, uint64_t base, uint32_t nranks, uint32_t b_sum, error_log_ref log) {
    const uint64_t stride = static_cast<uint64_t>(gridDim.x) * blockDim.x;
    for (uint64_t j = static_cast<uint64_t>(blockIdx.x) * blockDim.x + threadIdx.x; j < n; j += stride) {
        const float want = static_cast<float>(nranks * coll_a(base + j) + b_sum);
        const uint32_t w = static_cast<uint32_t>(__float_as_int(want)), got = static_cast<uint32_t>(__float_as_int(p[j]));
        if (w != got) record_error(log, j * 4, w, got);
    }
}

// Every rank's input of count elements, in rank order.
__global__ void coll_verify_gather(const float* p, uint64_t count, uint32_t nranks, error_log_ref log) {
    const uint64_t n = count * nranks, stride = static_cast<uint64_t>(gridDim.x) * blockDim.x;
    for (uint64_t j = static_cast<uint64_t>(blockIdx.x) * blockDim.x + threadIdx.x; j < n; j += stride) {
        const uint32_t r = static_cast<uint32_t>(j / count);
        const float want = static_cast<float>(coll_a(j % count) + coll_b(r));
        const uint32_t w = static_cast<uint32_t>(__float_as_int(want)), got = static_cast<uint32_t>(__float_as_int(p[j]));
        if (w != got) record_error(log, j * 4, w, got);
    }
}

// ---- the run ------------------------------------------------------------------------------------

struct op_desc {
    kiln_coll_op bit;
    const char* key;     // metric prefix and data-error pattern
    double bus_factor;   // busbw / algbw at this run's rank count (nccl-tests)
};

// One local rank: its device, its global rank, buffers, stream and error log.
struct rank_slot {
    int device = 0;
    int rank = 0;
    const device_props* props = nullptr;
    device_buffer send, recv;
    error_log errors;
    cudaStream_t stream = nullptr;
    nccl_comm comm = nullptr;
    std::string pattern[3];  // per op: "allreduce rank 3 (device 3)"; outlives the sink_writer's reports
};

// Streams and communicators, released on every path: destroyed after a clean run, aborted after a
// failure, a timeout or a cancel (a communicator with work in flight cannot be destroyed).
struct rank_set {
    std::vector<rank_slot> slots;
    bool clean = false;
    ~rank_set() {
        for (rank_slot& s : slots) {
            (void)cudaSetDevice(s.device);
            if (s.comm) (clean ? api().comm_destroy : api().comm_abort)(s.comm);
            if (s.stream) (void)cudaStreamDestroy(s.stream);
        }
    }
};

unsigned grid_for(const device_props& props, uint64_t n) {
    const uint64_t blocks = (n + 255) / 256, cap = static_cast<uint64_t>(props.sms > 0 ? props.sms : 1) * 16;
    return static_cast<unsigned>(blocks < 1 ? 1 : (blocks < cap ? blocks : cap));
}

// Waits until every rank's stream has drained, polling NCCL's asynchronous errors, until deadline.
kiln_status wait_all(rank_set& set, std::chrono::steady_clock::time_point deadline, uint64_t timeout_ms, const char* what,
                     const volatile int32_t* cancel) {
    for (;;) {
        bool done = true;
        for (rank_slot& s : set.slots) {
            KILN_GPU_TRY(cudaSetDevice(s.device));
            const cudaError_t q = cudaStreamQuery(s.stream);
            if (q == cudaErrorNotReady) {
                done = false;
            } else if (q != cudaSuccess) {
                return fail_call(q, "cudaStreamQuery");
            }
            int async = nccl_success;
            if (api().comm_get_async_error(s.comm, &async) == nccl_success && async != nccl_success && async != nccl_in_progress)
                return nccl_fail(async, "ncclCommGetAsyncError", std::string(what) + ": rank " + std::to_string(s.rank) + ": ");
        }
        if (done) return KILN_OK;
        if (was_cancelled(cancel)) return fail(KILN_CANCELLED, "%s: cancelled", what);
        if (std::chrono::steady_clock::now() > deadline)
            return fail(KILN_PEER_ERROR, "%s: not finished after %llu ms: another rank did not take part, or a link hung", what,
                        static_cast<unsigned long long>(timeout_ms));
        sched_yield();
    }
}

// One iteration of op on every local rank, in one group.
kiln_status launch_op(rank_set& set, kiln_coll_op op, uint64_t elements, int nranks) {
    const nccl_api& a = api();
    KILN_NCCL_TRY(a.group_start(), std::string());
    for (rank_slot& s : set.slots) {
        int rc = nccl_success;
        switch (op) {
        case KILN_COLL_ALLREDUCE:
            rc = a.all_reduce(s.send.as<float>(), s.recv.as<float>(), elements, k_nccl_float32, k_nccl_sum, s.comm, s.stream);
            break;
        case KILN_COLL_ALLGATHER:
            rc = a.all_gather(s.send.as<float>(), s.recv.as<float>(), elements / static_cast<uint64_t>(nranks), k_nccl_float32, s.comm,
                              s.stream);
            break;
        default:
            rc = a.reduce_scatter(s.send.as<float>(), s.recv.as<float>(), elements / static_cast<uint64_t>(nranks), k_nccl_float32,
                                  k_nccl_sum, s.comm, s.stream);
            break;
        }
        if (rc != nccl_success && rc != nccl_in_progress) {
            a.group_end();
            return nccl_fail(rc, "ncclAllReduce/AllGather/ReduceScatter", "rank " + std::to_string(s.rank) + ": ");
        }
    }
    KILN_NCCL_TRY(a.group_end(), std::string());
    return KILN_OK;
}

}  // namespace

kiln_status coll_library(kiln_coll_library_info* out) {
    const nccl_api& a = api();
    copy_text(out->path, sizeof out->path, a.path);
    copy_text(out->name, sizeof out->name, a.name);
    copy_text(out->version_text, sizeof out->version_text, a.version_text);
    out->version = a.version;
    if (!a.error.empty()) return fail(KILN_UNSUPPORTED, "%s", a.error.c_str());
    return KILN_OK;
}

kiln_status coll_unique_id(uint8_t* out_id) {
    const nccl_api& a = api();
    if (!a.error.empty()) return fail(KILN_UNSUPPORTED, "%s", a.error.c_str());
    nccl_unique_id id;
    memset(&id, 0, sizeof id);
    KILN_NCCL_TRY(a.get_unique_id(&id), std::string());
    memcpy(out_id, id.internal, KILN_COLL_ID_BYTES);
    return KILN_OK;
}

kiln_status run_coll(const std::vector<const device_props*>& props, const int32_t* indices, int32_t count,
                     const kiln_coll_params* p, const kiln_sink* sink, const volatile int32_t* cancel) {
    const nccl_api& a = api();
    if (!a.error.empty()) return fail(KILN_UNSUPPORTED, "%s", a.error.c_str());
    const uint32_t ops = p->op_mask ? p->op_mask : static_cast<uint32_t>(KILN_COLL_ALL);
    if (ops & ~static_cast<uint32_t>(KILN_COLL_ALL)) return fail(KILN_INVALID_ARGUMENT, "op_mask: 0x%x has bits outside 0x7", ops);
    if (p->iterations < 1 || p->iterations > 100000)
        return fail(KILN_INVALID_ARGUMENT, "iterations: %d is outside 1..100000", p->iterations);
    if (p->warmup_iterations < 0 || p->warmup_iterations > 1000)
        return fail(KILN_INVALID_ARGUMENT, "warmup_iterations: %d is outside 0..1000", p->warmup_iterations);
    const bool alone = p->nranks == 0;
    const int nranks = alone ? count : p->nranks;
    const int first = alone ? 0 : p->first_rank;
    if (nranks < count || nranks > k_max_verified_ranks)
        return fail(KILN_INVALID_ARGUMENT, "nranks: %d is outside %d..%d", nranks, count, k_max_verified_ranks);
    if (first < 0 || first + count > nranks)
        return fail(KILN_INVALID_ARGUMENT, "first_rank: %d with %d devices does not fit in %d ranks", first, count, nranks);

    // The size: fp32 elements a multiple of the rank count (all-gather's and reduce-scatter's slices);
    // each device holds an input and an output of at most size bytes.
    uint64_t smallest_free = UINT64_MAX;
    for (int32_t i = 0; i < count; ++i) {
        KILN_GPU_TRY(cudaSetDevice(indices[i]));
        size_t free_b = 0, total_b = 0;
        KILN_GPU_TRY(cudaMemGetInfo(&free_b, &total_b));
        smallest_free = std::min<uint64_t>(smallest_free, free_b);
    }
    const uint64_t quantum = 4ull * static_cast<uint64_t>(nranks);
    uint64_t size = p->size_bytes ? p->size_bytes : std::min<uint64_t>(k_default_size, smallest_free * 2 / 5);
    size -= size % quantum;
    if (size == 0)
        return fail(KILN_INVALID_ARGUMENT, "size_bytes: %llu is less than one fp32 element per rank (%llu bytes for %d ranks)",
                    static_cast<unsigned long long>(p->size_bytes), static_cast<unsigned long long>(quantum), nranks);
    if (2 * size + (8u << 20) > smallest_free)
        return fail(KILN_INVALID_ARGUMENT, "size_bytes: an input and an output of %s do not fit in a device's free memory (%s)",
                    format_bytes(static_cast<double>(size)).c_str(), format_bytes(static_cast<double>(smallest_free)).c_str());
    const uint64_t elements = size / 4;

    sink_writer out(sink, kiln_test_key(KILN_TEST_ALLREDUCE), p->max_error_reports, false);
    rank_set set;
    set.slots.resize(static_cast<size_t>(count));
    const op_desc all_ops[3] = {{KILN_COLL_ALLREDUCE, "allreduce", 2.0 * (nranks - 1) / nranks},
                                {KILN_COLL_ALLGATHER, "allgather", 1.0 * (nranks - 1) / nranks},
                                {KILN_COLL_REDUCESCATTER, "reducescatter", 1.0 * (nranks - 1) / nranks}};
    for (int32_t i = 0; i < count; ++i) {
        rank_slot& s = set.slots[static_cast<size_t>(i)];
        s.device = indices[i];
        s.rank = first + i;
        s.props = props[static_cast<size_t>(i)];
        for (int k = 0; k < 3; ++k)
            s.pattern[k] = std::string(all_ops[k].key) + " rank " + std::to_string(s.rank) + " (device " + std::to_string(s.device) + ")";
        KILN_GPU_TRY(cudaSetDevice(s.device));
        KILN_GPU_CHECK(s.send.allocate(size, "the collectives' input"));
        KILN_GPU_CHECK(s.recv.allocate(size, "the collectives' output"));
        KILN_GPU_CHECK(s.errors.allocate(p->max_error_reports ? p->max_error_reports : 1));
        KILN_GPU_TRY(cudaStreamCreateWithFlags(&s.stream, cudaStreamNonBlocking));
    }

    // The communicator: this process's ranks join inside one group (the call returns once every
    // rank of every process has).
    nccl_unique_id id;
    if (alone) {
        KILN_NCCL_TRY(a.get_unique_id(&id), std::string());
    } else {
        memcpy(id.internal, p->unique_id, KILN_COLL_ID_BYTES);
    }
    const uint64_t timeout_ms = p->timeout_ms ? p->timeout_ms : 5 * 60 * 1000;
    KILN_NCCL_TRY(a.group_start(), std::string());
    for (rank_slot& s : set.slots) {
        KILN_GPU_TRY(cudaSetDevice(s.device));
        const int rc = a.comm_init_rank(&s.comm, nranks, id, s.rank);
        if (rc != nccl_success && rc != nccl_in_progress) {
            a.group_end();
            return nccl_fail(rc, "ncclCommInitRank", "rank " + std::to_string(s.rank) + ": ");
        }
    }
    KILN_NCCL_TRY(a.group_end(), std::string("communicator of ") + std::to_string(nranks) + " ranks: ");
    out.metric("ranks", nranks, "count");
    out.metric("size_bytes", static_cast<double>(size), "bytes");

    uint32_t b_sum = 0;
    for (int r = 0; r < nranks; ++r) b_sum += coll_b(static_cast<uint32_t>(r));
    const int planned = __builtin_popcount(ops);  // progress: one step per op
    int step = 0;
    for (int k = 0; k < 3; ++k) {
        const op_desc& op = all_ops[k];
        if (!(ops & op.bit)) continue;
        const std::string what = op.key;
        // Inputs (all-gather's is one slice per rank), and outputs poisoned: a result never written is wrong.
        const uint64_t in_elements = op.bit == KILN_COLL_ALLGATHER ? elements / static_cast<uint64_t>(nranks) : elements;
        for (rank_slot& s : set.slots) {
            KILN_GPU_TRY(cudaSetDevice(s.device));
            KILN_GPU_CHECK(launch("coll_fill", coll_fill, dim3(grid_for(*s.props, in_elements)), dim3(256), s.stream,
                                  s.send.as<float>(), in_elements, static_cast<uint32_t>(s.rank)));
            KILN_GPU_TRY(cudaMemsetAsync(s.recv.as<void>(), 0xff, size, s.stream));
            KILN_GPU_CHECK(s.errors.reset(s.stream));
        }
        for (rank_slot& s : set.slots) {
            KILN_GPU_TRY(cudaSetDevice(s.device));
            KILN_GPU_TRY(cudaStreamSynchronize(s.stream));
        }
        auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
        for (int it = 0; it < p->warmup_iterations; ++it) KILN_GPU_CHECK(launch_op(set, op.bit, elements, nranks));
        KILN_GPU_CHECK(wait_all(set, deadline, timeout_ms, (what + " warm-up").c_str(), cancel));
        deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
        const auto t0 = std::chrono::steady_clock::now();
        for (int it = 0; it < p->iterations; ++it) {
            if (was_cancelled(cancel)) return fail(KILN_CANCELLED, "%s: cancelled", op.key);
            KILN_GPU_CHECK(launch_op(set, op.bit, elements, nranks));
        }
        KILN_GPU_CHECK(wait_all(set, deadline, timeout_ms, what.c_str(), cancel));
        const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / p->iterations;
        const double algbw = static_cast<double>(size) / seconds / 1e9;
        out.metric(what + "_time_us", seconds * 1e6, "us");
        out.metric(what + "_algbw_gbps", algbw, "GB/s");
        out.metric(what + "_busbw_gbps", algbw * op.bus_factor, "GB/s");

        // The last iteration's results, on each device.
        uint64_t wrong = 0;
        for (rank_slot& s : set.slots) {
            KILN_GPU_TRY(cudaSetDevice(s.device));
            const float* result = s.recv.as<float>();
            if (op.bit == KILN_COLL_ALLREDUCE) {
                KILN_GPU_CHECK(launch("coll_verify_sum", coll_verify_sum, dim3(grid_for(*s.props, elements)), dim3(256), s.stream, result,
                                      elements, uint64_t{0}, static_cast<uint32_t>(nranks), b_sum, s.errors.ref()));
            } else if (op.bit == KILN_COLL_ALLGATHER) {
                KILN_GPU_CHECK(launch("coll_verify_gather", coll_verify_gather, dim3(grid_for(*s.props, elements)), dim3(256), s.stream,
                                      result, elements / static_cast<uint64_t>(nranks), static_cast<uint32_t>(nranks), s.errors.ref()));
            } else {
                const uint64_t slice = elements / static_cast<uint64_t>(nranks);
                KILN_GPU_CHECK(launch("coll_verify_sum", coll_verify_sum, dim3(grid_for(*s.props, slice)), dim3(256), s.stream, result,
                                      slice, slice * static_cast<uint64_t>(s.rank), static_cast<uint32_t>(nranks), b_sum,
                                      s.errors.ref()));
            }
            uint64_t found = 0;
            KILN_GPU_CHECK(s.errors.drain(s.stream, s.pattern[k].c_str(), out, &found, 4));
            wrong += found;
        }
        out.metric(what + "_errors", static_cast<double>(wrong), "count");
        out.progress(static_cast<double>(++step) / planned);
    }
    set.clean = true;
    return KILN_OK;
}

}  // namespace kiln::gpu
