// emu_nccl.cpp - the emulated device's NCCL: the C calls Kiln's collectives make (gpu_coll.cu dlopens
// this very library on emu, through the same seam as libnccl.so.2), done on the host. Ranks meet in
// POSIX shared memory named by the unique id, so ranks of one process and ranks of other processes
// (the multi-node runs on CI) take the same path. Emulated streams are synchronous, so a collective
// runs when it is called, or when its group ends: chunk by chunk, each rank copies its part into its
// slot, all wait, each computes its result from every slot, all wait.
//
// Faults planted through KILN_EMU_FAULTS act here, below Kiln's kernels, which are never told:
// collflip (the link into a device delivers one wrong word into each of its results) and collslow
// (every collective a device takes part in runs `factor` times slower, for every rank, as a slow link
// slows a ring). A rank that does not come within KILN_EMU_NCCL_TIMEOUT_MS (default 30000) is
// ncclRemoteError for the others; KILN_EMU_NCCL_VERSION sets the version reported (default 2.19.3).
#include "emu_device.h"

#include <fcntl.h>
#include <sched.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <thread>
#include <vector>

namespace {

using clock_type = std::chrono::steady_clock;

// ncclResult_t, as NCCL documents it.
enum : int {
    ok = 0,
    unhandled_cuda_error = 1,
    system_error = 2,
    internal_error = 3,
    invalid_argument = 4,
    invalid_usage = 5,
    remote_error = 6,
    in_progress = 7,
};
constexpr int k_float32 = 7;
constexpr int k_sum = 0;
constexpr uint64_t k_magic = 0x314d4e454e4c494bull;  // "KILNENM1"
constexpr uint64_t k_slot_bytes = 4ull << 20;

struct unique_id {
    uint64_t magic;
    uint64_t token;
    char unused[112];
};
static_assert(sizeof(unique_id) == 128, "ncclUniqueId is 128 bytes");

// The communicator's shared page: who joined, a barrier, and the worst link's slowness; then one
// slot of k_slot_bytes per rank.
struct shared_header {
    std::atomic<uint32_t> nranks;
    std::atomic<uint32_t> joined;
    std::atomic<uint32_t> aborted;     // a rank gave up: every wait fails at once
    std::atomic<uint32_t> slow_milli;  // the largest collslow factor of any rank's device, x1000
    std::atomic<uint64_t> arrived;
    std::atomic<uint64_t> generation;
    char pad[4096 - 32];
};

uint64_t timeout_ms() {
    const char* env = getenv("KILN_EMU_NCCL_TIMEOUT_MS");
    const long long v = env && *env ? atoll(env) : 0;
    return v > 0 ? static_cast<uint64_t>(v) : 30000;
}

}  // namespace

struct emu_nccl_comm {
    shared_header* header = nullptr;
    size_t map_bytes = 0;
    int rank = 0, nranks = 0;
    std::string name;
    int async_error = ok;
    float* slot(int r) const {
        return reinterpret_cast<float*>(reinterpret_cast<unsigned char*>(header) + sizeof(shared_header) + k_slot_bytes * static_cast<uint64_t>(r));
    }
};

namespace {

enum class op_kind { allreduce, allgather, reducescatter };

struct pending_op {
    op_kind kind;
    emu_nccl_comm* comm;
    const float* send;
    float* recv;
    size_t count;  // allreduce: elements; allgather: sent per rank; reducescatter: received per rank
    int device;
};

thread_local int tl_group_depth = 0;
thread_local std::vector<emu_nccl_comm*> tl_joins;  // inits of this group, waited for at its end
thread_local std::vector<pending_op> tl_ops;

bool wait_until(const std::atomic<uint64_t>& value, uint64_t seen, shared_header* h, clock_type::time_point deadline) {
    int spins = 0;
    while (value.load(std::memory_order_acquire) == seen) {
        if (h->aborted.load()) return false;
        if (clock_type::now() > deadline) {
            h->aborted.store(1);
            return false;
        }
        if (++spins < 1000) sched_yield();
        else std::this_thread::sleep_for(std::chrono::microseconds(100));
    }
    return true;
}

// All ranks: `local` of them arrive from this process at once.
bool barrier(shared_header* h, uint32_t local) {
    const uint64_t seen = h->generation.load(std::memory_order_acquire);
    if (h->arrived.fetch_add(local) + local == h->nranks.load()) {
        h->arrived.store(0);
        h->generation.fetch_add(1, std::memory_order_release);
        return true;
    }
    return wait_until(h->generation, seen, h, clock_type::now() + std::chrono::milliseconds(timeout_ms()));
}

bool wait_joined(emu_nccl_comm* c) {
    shared_header* h = c->header;
    const auto deadline = clock_type::now() + std::chrono::milliseconds(timeout_ms());
    int spins = 0;
    while (h->joined.load() < static_cast<uint32_t>(c->nranks)) {
        if (h->aborted.load() || clock_type::now() > deadline) {
            h->aborted.store(1);
            shm_unlink(c->name.c_str());
            return false;
        }
        if (++spins < 1000) sched_yield();
        else std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
    shm_unlink(c->name.c_str());  // everyone has it mapped: the name is no longer needed
    return true;
}

const kiln::emu::fault* device_fault(int device, kiln::emu::fault_kind kind) {
    auto& all = kiln::emu::devices();
    if (device < 0 || device >= static_cast<int>(all.size())) return nullptr;
    return all[static_cast<size_t>(device)]->find(kind);
}

// Runs the ops of one group on one communicator: one op per local rank, all of the same kind and size.
int execute(std::vector<pending_op>& ops) {
    shared_header* h = ops[0].comm->header;
    const int n = ops[0].comm->nranks;
    const uint32_t local = static_cast<uint32_t>(ops.size());
    for (const pending_op& o : ops)
        if (o.kind != ops[0].kind || o.count != ops[0].count || o.comm->name != ops[0].comm->name) return invalid_usage;
    for (const pending_op& o : ops)
        if (const auto* f = device_fault(o.device, kiln::emu::fault_kind::collslow)) {
            const uint32_t want = static_cast<uint32_t>(f->factor * 1000);
            uint32_t have = h->slow_milli.load();
            while (have < want && !h->slow_milli.compare_exchange_weak(have, want)) {
            }
        }
    const auto start = clock_type::now();
    const uint64_t slot_elements = k_slot_bytes / 4;
    const size_t count = ops[0].count;
    switch (ops[0].kind) {
    case op_kind::allreduce:
    case op_kind::allgather:
        for (size_t off = 0; off < count; off += slot_elements) {
            const size_t len = std::min<size_t>(slot_elements, count - off);
            for (const pending_op& o : ops) memcpy(o.comm->slot(o.comm->rank), o.send + off, len * 4);
            if (!barrier(h, local)) return remote_error;
            for (const pending_op& o : ops) {
                if (o.kind == op_kind::allgather) {
                    for (int q = 0; q < n; ++q) memcpy(o.recv + static_cast<size_t>(q) * count + off, o.comm->slot(q), len * 4);
                } else {
                    for (size_t j = 0; j < len; ++j) {
                        float sum = 0;
                        for (int q = 0; q < n; ++q) sum += o.comm->slot(q)[j];
                        o.recv[off + j] = sum;
                    }
                }
            }
            if (!barrier(h, local)) return remote_error;
        }
        break;
    case op_kind::reducescatter: {
        const size_t chunk = std::max<size_t>(1, slot_elements / static_cast<size_t>(n));
        for (size_t off = 0; off < count; off += chunk) {
            const size_t len = std::min<size_t>(chunk, count - off);
            for (const pending_op& o : ops)
                for (int p = 0; p < n; ++p)
                    memcpy(o.comm->slot(o.comm->rank) + static_cast<size_t>(p) * len, o.send + static_cast<size_t>(p) * count + off, len * 4);
            if (!barrier(h, local)) return remote_error;
            for (const pending_op& o : ops)
                for (size_t j = 0; j < len; ++j) {
                    float sum = 0;
                    for (int q = 0; q < n; ++q) sum += o.comm->slot(q)[static_cast<size_t>(o.comm->rank) * len + j];
                    o.recv[off + j] = sum;
                }
            if (!barrier(h, local)) return remote_error;
        }
        break;
    }
    }
    // A bad link into a device: one word of each result it receives arrives wrong.
    for (const pending_op& o : ops)
        if (const auto* f = device_fault(o.device, kiln::emu::fault_kind::collflip)) {
            const size_t words = o.kind == op_kind::allgather ? o.count * static_cast<size_t>(n) : o.count;
            const size_t word = static_cast<size_t>(f->address / 4) % words;
            uint32_t bits;
            memcpy(&bits, o.recv + word, 4);
            bits ^= 1u << f->bit;
            memcpy(o.recv + word, &bits, 4);
        }
    if (const uint32_t slow = h->slow_milli.load(); slow > 1000) {
        const auto took = clock_type::now() - start;
        std::this_thread::sleep_for(took * (slow - 1000) / 1000);
    }
    return ok;
}

int run_ops(std::vector<pending_op> ops) {
    // Grouped by communicator (its name: each rank maps the shared page at its own address), in the
    // order first called.
    while (!ops.empty()) {
        std::vector<pending_op> same, rest;
        for (pending_op& o : ops) (o.comm->name == ops[0].comm->name ? same : rest).push_back(o);
        const int rc = execute(same);
        if (rc != ok) {
            for (pending_op& o : same) o.comm->async_error = rc;
            return rc;
        }
        ops.swap(rest);
    }
    return ok;
}

int enqueue(const pending_op& op) {
    if (!op.comm || (!op.send && op.count) || (!op.recv && op.count)) return invalid_argument;
    if (op.comm->async_error != ok) return op.comm->async_error;
    if (tl_group_depth > 0) {
        tl_ops.push_back(op);
        return ok;
    }
    return run_ops({op});
}

int stream_device(void* stream) { return stream ? reinterpret_cast<kiln::emu::stream*>(stream)->device : 0; }

}  // namespace

#define KILN_NCCL_EXPORT extern "C" __attribute__((visibility("default")))

KILN_NCCL_EXPORT int ncclGetVersion(int* version) {
    if (!version) return invalid_argument;
    const char* env = getenv("KILN_EMU_NCCL_VERSION");
    *version = env && *env ? atoi(env) : 21903;
    return ok;
}

KILN_NCCL_EXPORT const char* ncclGetErrorString(int rc) {
    switch (rc) {
    case ok: return "no error";
    case unhandled_cuda_error: return "unhandled cuda error";
    case system_error: return "unhandled system error";
    case internal_error: return "internal error";
    case invalid_argument: return "invalid argument";
    case invalid_usage: return "invalid usage";
    case remote_error: return "remote process exited or there was a network error (emulated: a rank did not come in time)";
    case in_progress: return "NCCL operation in progress";
    default: return "unknown result code";
    }
}

KILN_NCCL_EXPORT int ncclGetUniqueId(unique_id* id) {
    if (!id) return invalid_argument;
    memset(id, 0, sizeof *id);
    id->magic = k_magic;
    std::random_device random;
    id->token = (static_cast<uint64_t>(random()) << 32) ^ random() ^ static_cast<uint64_t>(getpid());
    return ok;
}

KILN_NCCL_EXPORT int ncclCommInitRank(emu_nccl_comm** out, int nranks, unique_id id, int rank) {
    if (!out || nranks < 1 || rank < 0 || rank >= nranks || id.magic != k_magic) return invalid_argument;
    auto comm = std::make_unique<emu_nccl_comm>();
    char name[64];
    snprintf(name, sizeof name, "/kiln-emu-nccl-%016llx", static_cast<unsigned long long>(id.token));
    comm->name = name;
    comm->rank = rank;
    comm->nranks = nranks;
    comm->map_bytes = sizeof(shared_header) + k_slot_bytes * static_cast<uint64_t>(nranks);
    const int fd = shm_open(name, O_CREAT | O_RDWR | O_CLOEXEC, 0600);
    if (fd < 0) return system_error;
    const bool sized = ftruncate(fd, static_cast<off_t>(comm->map_bytes)) == 0;
    void* map = sized ? mmap(nullptr, comm->map_bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0) : MAP_FAILED;
    close(fd);
    if (map == MAP_FAILED) return system_error;
    comm->header = static_cast<shared_header*>(map);
    uint32_t expected = 0;
    if (!comm->header->nranks.compare_exchange_strong(expected, static_cast<uint32_t>(nranks)) &&
        expected != static_cast<uint32_t>(nranks)) {
        munmap(map, comm->map_bytes);
        return invalid_usage;  // another rank said a different size
    }
    comm->header->joined.fetch_add(1);
    emu_nccl_comm* c = comm.release();
    *out = c;
    if (tl_group_depth > 0) {
        tl_joins.push_back(c);
        return ok;
    }
    return wait_joined(c) ? ok : remote_error;
}

KILN_NCCL_EXPORT int ncclCommDestroy(emu_nccl_comm* comm) {
    if (!comm) return ok;
    munmap(comm->header, comm->map_bytes);
    delete comm;
    return ok;
}

KILN_NCCL_EXPORT int ncclCommAbort(emu_nccl_comm* comm) {
    if (comm && comm->header) comm->header->aborted.store(1);
    return ncclCommDestroy(comm);
}

KILN_NCCL_EXPORT int ncclCommGetAsyncError(emu_nccl_comm* comm, int* result) {
    if (!comm || !result) return invalid_argument;
    *result = comm->async_error;
    return ok;
}

KILN_NCCL_EXPORT int ncclGroupStart() {
    ++tl_group_depth;
    return ok;
}

KILN_NCCL_EXPORT int ncclGroupEnd() {
    if (tl_group_depth == 0) return invalid_usage;
    if (--tl_group_depth > 0) return ok;
    std::vector<emu_nccl_comm*> joins;
    joins.swap(tl_joins);
    std::vector<pending_op> ops;
    ops.swap(tl_ops);
    for (emu_nccl_comm* c : joins)
        if (!wait_joined(c)) return remote_error;
    return run_ops(std::move(ops));
}

KILN_NCCL_EXPORT int ncclAllReduce(const void* send, void* recv, size_t count, int dtype, int op, emu_nccl_comm* comm, void* stream) {
    if (dtype != k_float32 || op != k_sum) return invalid_argument;  // what Kiln uses; the rest is not emulated
    return enqueue({op_kind::allreduce, comm, static_cast<const float*>(send), static_cast<float*>(recv), count, stream_device(stream)});
}

KILN_NCCL_EXPORT int ncclAllGather(const void* send, void* recv, size_t count, int dtype, emu_nccl_comm* comm, void* stream) {
    if (dtype != k_float32) return invalid_argument;
    return enqueue({op_kind::allgather, comm, static_cast<const float*>(send), static_cast<float*>(recv), count, stream_device(stream)});
}

KILN_NCCL_EXPORT int ncclReduceScatter(const void* send, void* recv, size_t count, int dtype, int op, emu_nccl_comm* comm,
                                       void* stream) {
    if (dtype != k_float32 || op != k_sum) return invalid_argument;
    return enqueue(
        {op_kind::reducescatter, comm, static_cast<const float*>(send), static_cast<float*>(recv), count, stream_device(stream)});
}
