// emu_runtime.cpp - the emulated device behind kiln_emu_runtime.h: devices from KILN_EMU_DEVICES,
// one memory arena each, synchronous streams, the launch engine (blocks on a pool of host threads,
// a fiber per GPU thread), the time model, and the faults of KILN_EMU_FAULTS planted below the
// kernels.
//
// Time model: a block's cost is the host CPU time its fibers used (CLOCK_THREAD_CPUTIME_ID, so a
// loaded CI machine does not look like a slow GPU); block b runs on SM b mod sms; a launch takes
// as long as its busiest SM (sum of its blocks' costs, times the SM's slow factor) plus 2 us; copies
// and memsets take the CPU time of the copy. Each device has its own clock that these advance;
// events read it. Wall time is what host-side timers (launch latency, bidirectional copies) see.
#include "kiln_emu_runtime.h"
#include "emu_config.h"
#include "emu_device.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace kiln::emu {

thread_local thread_place tl_place{};
bool g_unit_faults = false;

namespace {

thread_local int tl_device = 0;
// The last error of each device as this thread saw it: a sticky error of one device is that
// device's (its context's), never its neighbour's.
constexpr int k_max_devices = 16;
thread_local cudaError_t tl_last_error[k_max_devices] = {};

constexpr double k_launch_overhead_s = 2e-6;
constexpr size_t k_fiber_stack_bytes = 128u << 10;
constexpr int k_max_threads_per_block = 1024;

double thread_cpu_seconds() {
    timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return static_cast<double>(ts.tv_sec) + ts.tv_nsec * 1e-9;
}

// ---- devices ----------------------------------------------------------------------------------

std::once_flag g_devices_once;
std::vector<std::unique_ptr<device>> g_devices;

void create_devices() {
    const config& c = current_config();
    if (!c.enabled) return;
    for (size_t i = 0; i < c.devices.size(); ++i) {
        auto d = std::make_unique<device>();
        d->index = static_cast<int>(i);
        d->cfg = c.devices[i];
        void* base = mmap(nullptr, d->cfg.memory_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (base == MAP_FAILED) break;
        d->base = static_cast<unsigned char*>(base);
        for (const fault& f : c.faults)
            if (f.device == d->index) d->faults.push_back(f);
        for (const fault& f : d->faults) g_unit_faults = g_unit_faults || f.kind == fault_kind::fma || f.kind == fault_kind::mma;
        d->created = std::chrono::steady_clock::now();
        d->shared = shared_activity_of(d->index);
        g_devices.push_back(std::move(d));
    }
}

cudaError_t set_error(cudaError_t e, int device) {
    if (e != cudaSuccess && device >= 0 && device < k_max_devices) tl_last_error[device] = e;
    return e;
}
cudaError_t set_error(cudaError_t e) { return set_error(e, tl_device); }

// The device whose arena holds p, or null for host memory.
device* owner_of(const void* p) {
    for (auto& d : g_devices)
        if (p >= d->base && p < d->base + d->cfg.memory_bytes) return d.get();
    return nullptr;
}

device* current_device() {
    std::call_once(g_devices_once, create_devices);
    if (tl_device < 0 || tl_device >= static_cast<int>(g_devices.size())) return nullptr;
    return g_devices[static_cast<size_t>(tl_device)].get();
}

device* device_of(cudaStream_t s) { return s ? devices()[static_cast<size_t>(reinterpret_cast<stream*>(s)->device)].get() : current_device(); }

// ---- fibers: the GPU threads of one block on one host thread ---------------------------------

// Switching fibers: saves the callee-saved registers on the current stack, stores the stack pointer
// in *save_sp, and resumes the fiber whose stack pointer is load_sp. No system call (ucontext's
// swapcontext makes one per switch for the signal mask, and a tensor-core kernel switches millions
// of times). A new fiber's stack is laid out as if it had switched away just before fiber_main.
extern "C" void kiln_emu_switch(void** save_sp, void* load_sp);
#if defined(__x86_64__)
asm(R"(
.text
.p2align 4
.type kiln_emu_switch,@function
kiln_emu_switch:
    pushq %rbp
    pushq %rbx
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    subq $8, %rsp
    stmxcsr (%rsp)
    fnstcw 4(%rsp)
    movq %rsp, (%rdi)
    movq %rsi, %rsp
    ldmxcsr (%rsp)
    fldcw 4(%rsp)
    addq $8, %rsp
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %rbx
    popq %rbp
    ret
.size kiln_emu_switch,.-kiln_emu_switch
)");
#elif defined(__aarch64__)
asm(R"(
.text
.p2align 4
.type kiln_emu_switch,%function
kiln_emu_switch:
    sub sp, sp, #160
    stp x19, x20, [sp, #0]
    stp x21, x22, [sp, #16]
    stp x23, x24, [sp, #32]
    stp x25, x26, [sp, #48]
    stp x27, x28, [sp, #64]
    stp x29, x30, [sp, #80]
    stp d8, d9, [sp, #96]
    stp d10, d11, [sp, #112]
    stp d12, d13, [sp, #128]
    stp d14, d15, [sp, #144]
    mov x2, sp
    str x2, [x0]
    mov sp, x1
    ldp x19, x20, [sp, #0]
    ldp x21, x22, [sp, #16]
    ldp x23, x24, [sp, #32]
    ldp x25, x26, [sp, #48]
    ldp x27, x28, [sp, #64]
    ldp x29, x30, [sp, #80]
    ldp d8, d9, [sp, #96]
    ldp d10, d11, [sp, #112]
    ldp d12, d13, [sp, #128]
    ldp d14, d15, [sp, #144]
    add sp, sp, #160
    ret
.size kiln_emu_switch,.-kiln_emu_switch
)");
#else
#error "the emulated device's fibers switch stacks in assembly for x86-64 and aarch64 only"
#endif

void fiber_main();

// The stack pointer of a fiber that has not run yet: kiln_emu_switch "returns" into fiber_main.
void* initial_stack(void* stack, size_t bytes) {
    auto* top = reinterpret_cast<uint64_t*>((reinterpret_cast<uintptr_t>(stack) + bytes) & ~uintptr_t{15});
#if defined(__x86_64__)
    // After the 8-byte control words and six registers are popped, ret takes fiber_main's address;
    // at its entry the stack is 16-byte aligned plus 8, as after a call.
    uint64_t* sp = top - 11;
    sp[0] = 0x037F00001F80ull;  // MXCSR default (low half), x87 control word (next 16 bits)
    for (int i = 1; i <= 6; ++i) sp[i] = 0;
    sp[7] = reinterpret_cast<uint64_t>(&fiber_main);
    sp[8] = 0;  // fiber_main never returns
    return sp;
#else
    uint64_t* sp = top - 20;  // 160 bytes of saved registers
    for (int i = 0; i < 20; ++i) sp[i] = 0;
    sp[11] = reinterpret_cast<uint64_t>(&fiber_main);  // x30, the link register
    return sp;
#endif
}

enum class fiber_state { runnable, at_block_barrier, at_warp_barrier, done };

struct fiber {
    void* sp = nullptr;
    void* stack = nullptr;
    fiber_state state = fiber_state::done;
};

// One per host thread: the fibers of the block it is running.
struct block_runner {
    std::vector<fiber> fibers;
    void* scheduler_sp = nullptr;
    const std::function<void()>* body = nullptr;
    int current = 0, count = 0, live = 0;
    int at_block = 0;
    int at_warp[k_max_threads_per_block / 32] = {};
    bool deadlock = false;
    dim3 block_dim;
    float scratch[k_max_threads_per_block / 32][2 * 256];

    ~block_runner() {
        for (fiber& f : fibers)
            if (f.stack) munmap(f.stack, k_fiber_stack_bytes);
    }

    int warp_live(int warp) const {
        int n = 0;
        for (int t = warp * 32; t < std::min(count, warp * 32 + 32); ++t) n += fibers[static_cast<size_t>(t)].state != fiber_state::done;
        return n;
    }

    // Releases every barrier whose remaining members have all arrived (also after a thread exits).
    void release_barriers() {
        if (at_block > 0 && at_block >= live) {
            for (int t = 0; t < count; ++t)
                if (fibers[static_cast<size_t>(t)].state == fiber_state::at_block_barrier) fibers[static_cast<size_t>(t)].state = fiber_state::runnable;
            at_block = 0;
        }
        for (int w = 0; w * 32 < count; ++w) {
            if (at_warp[w] == 0 || at_warp[w] < warp_live(w)) continue;
            for (int t = w * 32; t < std::min(count, w * 32 + 32); ++t)
                if (fibers[static_cast<size_t>(t)].state == fiber_state::at_warp_barrier) fibers[static_cast<size_t>(t)].state = fiber_state::runnable;
            at_warp[w] = 0;
        }
    }

    void wait(fiber_state why) {
        fiber& f = fibers[static_cast<size_t>(current)];
        f.state = why;
        if (why == fiber_state::at_block_barrier) ++at_block;
        else ++at_warp[current / 32];
        release_barriers();
        if (f.state != fiber_state::runnable) kiln_emu_switch(&f.sp, scheduler_sp);
    }

    void run(const std::function<void()>& kernel, dim3 block);
};

thread_local block_runner* tl_runner = nullptr;

void fiber_main() {
    block_runner* r = tl_runner;
    (*r->body)();
    fiber& f = r->fibers[static_cast<size_t>(r->current)];
    f.state = fiber_state::done;
    --r->live;
    r->release_barriers();
    kiln_emu_switch(&f.sp, r->scheduler_sp);  // never resumed
    __builtin_unreachable();
}

void block_runner::run(const std::function<void()>& kernel, dim3 block) {
    body = &kernel;
    block_dim = block;
    count = static_cast<int>(block.x * block.y * block.z);
    if (fibers.size() < static_cast<size_t>(count)) fibers.resize(static_cast<size_t>(count));
    for (int t = 0; t < count; ++t) {
        fiber& f = fibers[static_cast<size_t>(t)];
        if (!f.stack) {
            f.stack = mmap(nullptr, k_fiber_stack_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
            if (f.stack == MAP_FAILED) {
                f.stack = nullptr;
                deadlock = true;
                return;
            }
        }
        f.sp = initial_stack(f.stack, k_fiber_stack_bytes);
        f.state = fiber_state::runnable;
    }
    live = count;
    at_block = 0;
    std::fill(std::begin(at_warp), std::end(at_warp), 0);
    tl_runner = this;
    while (live > 0) {
        bool ran = false;
        for (int t = 0; t < count; ++t) {
            if (fibers[static_cast<size_t>(t)].state != fiber_state::runnable) continue;
            current = t;
            tl_place.thread = {static_cast<unsigned>(t) % block.x, (static_cast<unsigned>(t) / block.x) % block.y,
                               static_cast<unsigned>(t) / (block.x * block.y)};
            kiln_emu_switch(&scheduler_sp, fibers[static_cast<size_t>(t)].sp);
            ran = true;
        }
        if (!ran) {
            // Threads wait at a barrier that the others never reach: on a GPU, a hang.
            deadlock = true;
            for (int t = 0; t < count; ++t) fibers[static_cast<size_t>(t)].state = fiber_state::done;
            break;
        }
    }
}

block_runner& runner() {
    thread_local std::unique_ptr<block_runner> r;
    if (!r) r = std::make_unique<block_runner>();
    return *r;
}

// ---- the launch engine ------------------------------------------------------------------------

struct launch_job {
    const std::function<void()>* body = nullptr;
    dim3 grid, block;
    int device = 0, sms = 1;
    uint64_t blocks = 0;
    int64_t skip_block = -1;                 // the victim of a drop fault, run last and alone
    std::atomic<uint64_t> next{0};
    std::vector<double> sm_seconds;          // guarded by mutex
    std::mutex mutex;
    std::atomic<bool> deadlock{false};
};

void run_one_block(launch_job& job, uint64_t b) {
    tl_place.block = {static_cast<unsigned>(b % job.grid.x), static_cast<unsigned>((b / job.grid.x) % job.grid.y),
                      static_cast<unsigned>(b / (static_cast<uint64_t>(job.grid.x) * job.grid.y))};
    tl_place.block_dim = job.block;
    tl_place.grid_dim = job.grid;
    tl_place.device = job.device;
    tl_place.sm = static_cast<int>(b % static_cast<uint64_t>(job.sms));
    const double t0 = thread_cpu_seconds();
    block_runner& r = runner();
    r.deadlock = false;
    r.run(*job.body, job.block);
    const double cost = thread_cpu_seconds() - t0;
    if (r.deadlock) job.deadlock = true;
    std::lock_guard<std::mutex> lock(job.mutex);
    job.sm_seconds[static_cast<size_t>(tl_place.sm)] += cost;
}

void drain_blocks(launch_job& job) {
    for (;;) {
        const uint64_t b = job.next.fetch_add(1);
        if (b >= job.blocks) return;
        if (static_cast<int64_t>(b) == job.skip_block) continue;
        run_one_block(job, b);
    }
}

// Host threads that run blocks beside the launching thread; one launch at a time.
class worker_pool {
public:
    // Never destroyed: its threads wait on it until the process ends (a destructor at exit would
    // wait for them forever).
    static worker_pool& get() {
        static worker_pool* pool = new worker_pool;
        return *pool;
    }

    void run(launch_job& job) {
        std::lock_guard<std::mutex> one(launch_mutex_);
        {
            std::lock_guard<std::mutex> lock(mutex_);
            job_ = &job;
            busy_ = static_cast<int>(threads_.size());
            ++generation_;
        }
        wake_.notify_all();
        drain_blocks(job);
        std::unique_lock<std::mutex> lock(mutex_);
        idle_.wait(lock, [&] { return busy_ == 0; });
        job_ = nullptr;
    }

private:
    worker_pool() {
        const unsigned hw = std::max(1u, std::thread::hardware_concurrency());
        unsigned n = hw - 1;
        if (const char* t = getenv("KILN_EMU_THREADS")) n = static_cast<unsigned>(std::max(1, atoi(t))) - 1;
        for (unsigned i = 0; i < n; ++i) {
            threads_.emplace_back([this] { loop(); });
            threads_.back().detach();  // lives as long as the process; never joined at unload
        }
    }

    void loop() {
        uint64_t seen = 0;
        for (;;) {
            launch_job* job = nullptr;
            {
                std::unique_lock<std::mutex> lock(mutex_);
                wake_.wait(lock, [&] { return generation_ != seen; });
                seen = generation_;
                job = job_;
            }
            if (job) drain_blocks(*job);
            std::lock_guard<std::mutex> lock(mutex_);
            if (--busy_ == 0) idle_.notify_all();
        }
    }

    std::mutex launch_mutex_, mutex_;
    std::condition_variable wake_, idle_;
    std::vector<std::thread> threads_;
    launch_job* job_ = nullptr;
    uint64_t generation_ = 0;
    int busy_ = 0;
};

}  // namespace

std::vector<std::unique_ptr<device>>& devices() {
    std::call_once(g_devices_once, create_devices);
    return g_devices;
}

void device::apply_stuck_bits() {
    for (const fault& f : faults) {
        if (f.kind != fault_kind::stuck) continue;
        unsigned char& byte = base[f.address];
        byte = f.value ? static_cast<unsigned char>(byte | (1u << f.bit)) : static_cast<unsigned char>(byte & ~(1u << f.bit));
    }
}

namespace {
int64_t ns_of(std::chrono::steady_clock::time_point t) {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}

shared_activity* g_shared = nullptr;
std::once_flag g_shared_once;
std::string g_shared_path;
shared_activity g_local[k_max_devices];  // when /dev/shm cannot be used: this process alone

void map_shared() {
    const char* session = getenv("KILN_EMU_SESSION");
    const std::string id = session && *session ? session : std::to_string(getpid());
    const std::string name = "/kiln-emu-" + id;
    const size_t bytes = sizeof(shared_activity) * k_max_devices;
    const int fd = shm_open(name.c_str(), O_RDWR | O_CREAT, 0600);
    if (fd < 0) return;
    if (ftruncate(fd, static_cast<off_t>(bytes)) == 0) {
        void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        if (p != MAP_FAILED) g_shared = static_cast<shared_activity*>(p);  // a new file reads as zeros
    }
    close(fd);
    // The session's first process (its id is the session's) removes the name when it exits; the
    // mapping stays valid for the processes that have it.
    if (g_shared && id == std::to_string(getpid())) {
        g_shared_path = name;
        atexit([] { shm_unlink(g_shared_path.c_str()); });
    }
}
}  // namespace

shared_activity* shared_activity_of(int index) {
    std::call_once(g_shared_once, map_shared);
    return g_shared ? g_shared + index : g_local + index;
}

void device::begin_busy(std::chrono::steady_clock::time_point from) {
    shared->running_since_ns.store(ns_of(from));
    shared->running.fetch_add(1);
}

void device::end_busy(std::chrono::steady_clock::time_point from, std::chrono::steady_clock::time_point to) {
    shared->busy_ns.fetch_add(ns_of(to) - ns_of(from));
    shared->running.fetch_sub(1);
}

double device::utilization(std::chrono::steady_clock::time_point now, double window_s) {
    const int64_t t = ns_of(now);
    // Busy so far: finished spans, plus the one in flight (from its start, at most the window).
    int64_t busy = shared->busy_ns.load();
    if (shared->running.load() > 0) busy += std::max<int64_t>(0, t - shared->running_since_ns.load());
    std::lock_guard<std::mutex> lock(activity_mutex);
    readings.emplace_back(t, busy);
    const int64_t window = static_cast<int64_t>(window_s * 1e9);
    while (readings.size() > 2 && readings[1].first <= t - window) readings.pop_front();
    const auto [t0, b0] = readings.front();
    if (t - t0 <= 0) return shared->running.load() > 0 ? 1.0 : 0.0;
    return std::clamp(static_cast<double>(busy - b0) / static_cast<double>(t - t0), 0.0, 1.0);
}

cudaError_t launch(cudaStream_t stream, dim3 grid, dim3 block, const char* kernel, const std::function<void()>& body) {
    device* d = device_of(stream);
    if (!d) return set_error(cudaErrorInvalidDevice);
    std::lock_guard<std::mutex> lock(d->mutex);
    if (d->sticky != cudaSuccess) return set_error(d->sticky, d->index);
    const uint64_t threads = static_cast<uint64_t>(block.x) * block.y * block.z;
    if (threads == 0 || threads > k_max_threads_per_block || grid.x == 0 || grid.y == 0 || grid.z == 0 || grid.y > 65535 || grid.z > 65535)
        return set_error(cudaErrorInvalidConfiguration, d->index);
    const int64_t number = ++d->launches;
    for (const fault& f : d->faults) {
        if (f.kind == fault_kind::sticky && f.launch == number) {
            d->sticky = cudaErrorLaunchFailure;
            d->sticky_text = std::string("launch ") + std::to_string(number) + " (" + (kernel ? kernel : "kernel") + ")";
            return set_error(d->sticky, d->index);
        }
        if (f.kind == fault_kind::hang && f.launch == number) {
            d->begin_busy(std::chrono::steady_clock::now());
            for (;;) std::this_thread::sleep_for(std::chrono::seconds(1));  // a kernel that never returns
        }
    }

    launch_job job;
    job.body = &body;
    job.grid = grid;
    job.block = block;
    job.device = d->index;
    job.sms = d->cfg.sms;
    job.blocks = static_cast<uint64_t>(grid.x) * grid.y * grid.z;
    job.sm_seconds.assign(static_cast<size_t>(d->cfg.sms), 0.0);
    const fault* drop = nullptr;
    for (const fault& f : d->faults)
        if (f.kind == fault_kind::drop && static_cast<uint64_t>(f.block) < job.blocks && number >= f.launch && number <= f.last_launch) drop = &f;
    if (drop) job.skip_block = drop->block;

    const auto wall0 = std::chrono::steady_clock::now();
    d->begin_busy(wall0);
    if (job.blocks == 1 || threads * job.blocks <= 256) drain_blocks(job);  // small launches on the caller: no handoff
    else worker_pool::get().run(job);
    if (drop) {
        // The victim runs alone, last (a legal schedule); whatever it changed in the range is put back.
        std::vector<unsigned char> before(d->base + drop->address, d->base + drop->address + drop->bytes);
        run_one_block(job, static_cast<uint64_t>(drop->block));
        unsigned char* range = d->base + drop->address;
        for (uint64_t i = 0; i < drop->bytes; ++i) range[i] = before[i];
    }
    d->end_busy(wall0, std::chrono::steady_clock::now());

    double busiest = 0;
    for (int sm = 0; sm < d->cfg.sms; ++sm) {
        double factor = 1;
        for (const fault& f : d->faults)
            if (f.kind == fault_kind::slow && f.sm == sm) factor *= f.factor;
        busiest = std::max(busiest, job.sm_seconds[static_cast<size_t>(sm)] * factor);
    }
    d->clock_s += busiest + k_launch_overhead_s;
    d->apply_stuck_bits();
    for (const fault& f : d->faults)
        if (f.kind == fault_kind::flip && f.launch == number) d->base[f.address] ^= static_cast<unsigned char>(1u << f.bit);
    if (job.deadlock) {
        d->sticky = cudaErrorLaunchFailure;
        d->sticky_text = std::string("barrier deadlock in ") + (kernel ? kernel : "kernel");
        return set_error(d->sticky, d->index);
    }
    return cudaSuccess;
}

void sync_block() { tl_runner->wait(fiber_state::at_block_barrier); }
void sync_warp() { tl_runner->wait(fiber_state::at_warp_barrier); }

unsigned long long atomic_add(unsigned long long* address, unsigned long long value) {
    return __atomic_fetch_add(address, value, __ATOMIC_RELAXED);
}

// ---- planted unit faults ----------------------------------------------------------------------

namespace {

// The fault of this kind on the calling block's SM that fires for operand a, or null.
const fault* unit_fault(fault_kind kind, uint64_t a_fraction, int fraction_bits) {
    device* d = devices()[static_cast<size_t>(tl_place.device)].get();
    for (const fault& f : d->faults) {
        if (f.kind != kind || f.sm != tl_place.sm) continue;
        const int low = std::min(f.low_bits, fraction_bits);
        if (f.low_bits == 0 || (a_fraction & ((1ull << low) - 1)) != 0) return &f;
    }
    return nullptr;
}

uint64_t bits_of(double v) { return static_cast<uint64_t>(__double_as_longlong(v)); }
uint32_t bits_of(float v) { return static_cast<uint32_t>(__float_as_int(v)); }

}  // namespace

// A wrong multiplier: b's fraction bit `bit` (from the top) is misread for these operands. The
// error depends on the magnitudes only, so x + a*b - a*b still cancels: a fault only a check with
// a known result can see.
double fma_faulty(double a, double b, double c) {
    if (const fault* f = unit_fault(fault_kind::fma, bits_of(a) & ((1ull << 52) - 1), 52)) {
        uint64_t u = bits_of(b) ^ (1ull << (52 - std::min(f->bit, 52)));
        double wrong;
        memcpy(&wrong, &u, sizeof wrong);
        return std::fma(a, wrong, c);
    }
    return std::fma(a, b, c);
}

float fma_faulty(float a, float b, float c) {
    if (const fault* f = unit_fault(fault_kind::fma, bits_of(a) & ((1u << 23) - 1), 23)) {
        const uint32_t u = bits_of(b) ^ (1u << (23 - std::min(f->bit, 23)));
        return std::fma(a, __int_as_float(static_cast<int>(u)), c);
    }
    return std::fma(a, b, c);
}

float mma_product(float a, float b, int fraction_bits) {
    if (!g_unit_faults) return a * b;
    // The input format's fraction bits are the top fraction_bits of the fp32 fraction.
    const uint32_t fraction = (bits_of(a) >> (23 - fraction_bits)) & ((1u << fraction_bits) - 1);
    if (const fault* f = unit_fault(fault_kind::mma, fraction, fraction_bits)) {
        const uint32_t u = bits_of(b) ^ (1u << (23 - std::min(f->bit, fraction_bits)));
        return a * __int_as_float(static_cast<int>(u));
    }
    return a * b;
}

}  // namespace kiln::emu

namespace nvcuda::wmma {
float* warp_scratch() { return kiln::emu::tl_runner->scratch[kiln::emu::tl_runner->current / 32]; }
}  // namespace nvcuda::wmma

// ---- 16-bit formats ---------------------------------------------------------------------------

__half __float2half_rn(float v) {
    // IEEE binary16, round to nearest even; finite values in range (the kernels' inputs) exactly.
    const uint32_t u = static_cast<uint32_t>(__float_as_int(v));
    const uint32_t sign = (u >> 16) & 0x8000u;
    int exp = static_cast<int>((u >> 23) & 0xFF) - 127 + 15;
    uint32_t mant = u & 0x7FFFFFu;
    if (((u >> 23) & 0xFF) == 0xFF) return {static_cast<uint16_t>(sign | 0x7C00u | (mant ? 0x200u : 0))};
    if (exp >= 31) return {static_cast<uint16_t>(sign | 0x7C00u)};
    if (exp <= 0) {
        if (exp < -10) return {static_cast<uint16_t>(sign)};
        mant |= 0x800000u;
        const int shift = 14 - exp;
        uint32_t h = mant >> shift;
        const uint32_t rest = mant & ((1u << shift) - 1), half = 1u << (shift - 1);
        if (rest > half || (rest == half && (h & 1u))) ++h;
        return {static_cast<uint16_t>(sign | h)};
    }
    uint32_t h = (static_cast<uint32_t>(exp) << 10) | (mant >> 13);
    const uint32_t rest = mant & 0x1FFFu;
    if (rest > 0x1000u || (rest == 0x1000u && (h & 1u))) ++h;
    return {static_cast<uint16_t>(sign | h)};
}

float __half2float(__half h) {
    const uint32_t sign = (h.bits & 0x8000u) << 16;
    const uint32_t exp = (h.bits >> 10) & 0x1F, mant = h.bits & 0x3FFu;
    if (exp == 0) {
        const float v = std::ldexp(static_cast<float>(mant), -24);
        return sign ? -v : v;
    }
    if (exp == 31) return __int_as_float(static_cast<int>(sign | 0x7F800000u | (mant << 13)));
    return __int_as_float(static_cast<int>(sign | ((exp + 112) << 23) | (mant << 13)));
}

__nv_bfloat16 __float2bfloat16(float v) {
    uint32_t u = static_cast<uint32_t>(__float_as_int(v));
    if ((u & 0x7F800000u) == 0x7F800000u) return {static_cast<uint16_t>(u >> 16)};
    u += 0x7FFFu + ((u >> 16) & 1u);
    return {static_cast<uint16_t>(u >> 16)};
}

float __bfloat162float(__nv_bfloat16 b) { return __int_as_float(static_cast<int>(static_cast<uint32_t>(b.bits) << 16)); }

// ---- runtime API ------------------------------------------------------------------------------

using kiln::emu::device;
using kiln::emu::devices;

namespace {

device* checked(int index) {
    auto& all = devices();
    return index >= 0 && index < static_cast<int>(all.size()) ? all[static_cast<size_t>(index)].get() : nullptr;
}

cudaError_t fail(cudaError_t e) { return kiln::emu::set_error(e); }

// Time of a copy on a device's clock; stuck bits re-asserted in the memory it wrote.
template <typename Fn>
cudaError_t timed_copy(device* clock_owner, device* written, Fn copy) {
    for (device* d : {clock_owner, written})
        if (d && d->sticky != cudaSuccess) return fail(d->sticky);
    const auto wall0 = std::chrono::steady_clock::now();
    if (clock_owner) clock_owner->begin_busy(wall0);
    const double t0 = kiln::emu::thread_cpu_seconds();
    copy();
    const double cost = kiln::emu::thread_cpu_seconds() - t0;
    if (clock_owner) {
        clock_owner->end_busy(wall0, std::chrono::steady_clock::now());
        std::lock_guard<std::mutex> lock(clock_owner->mutex);
        clock_owner->clock_s += cost;
    }
    if (written) {
        std::lock_guard<std::mutex> lock(written->mutex);
        written->apply_stuck_bits();
    }
    return cudaSuccess;
}

}  // namespace

cudaError_t cudaGetDeviceCount(int* count) {
    *count = static_cast<int>(devices().size());
    return *count > 0 ? cudaSuccess : fail(cudaErrorNoDevice);
}

cudaError_t cudaGetDeviceProperties(cudaDeviceProp* prop, int index) {
    device* d = checked(index);
    if (!d) return fail(cudaErrorInvalidDevice);
    memset(prop, 0, sizeof *prop);
    snprintf(prop->name, sizeof prop->name, "%s", d->cfg.name.c_str());
    memcpy(prop->uuid.bytes, kiln::emu::uuid_bytes(index).data(), 16);
    prop->totalGlobalMem = d->cfg.memory_bytes;
    prop->warpSize = 32;
    prop->maxThreadsPerBlock = 1024;
    prop->maxGridSize[0] = 2147483647;
    prop->maxGridSize[1] = prop->maxGridSize[2] = 65535;
    prop->major = 0;  // arch "emu" (gpu_backend.cu sets it), not an NVIDIA compute capability
    prop->minor = 0;
    prop->multiProcessorCount = d->cfg.sms;
    prop->l2CacheSize = static_cast<int>(d->cfg.l2_bytes);
    prop->maxThreadsPerMultiProcessor = 2048;
    return cudaSuccess;
}

cudaError_t cudaDeviceGetAttribute(int* value, cudaDeviceAttr attr, int index) {
    device* d = checked(index);
    if (!d) return fail(cudaErrorInvalidDevice);
    switch (attr) {
    case cudaDevAttrClockRate: *value = static_cast<int>(d->cfg.clock_mhz * 1000); break;
    case cudaDevAttrMemoryClockRate: *value = static_cast<int>(d->cfg.memory_clock_mhz * 1000); break;
    default: *value = d->cfg.bus_bits; break;
    }
    return cudaSuccess;
}

cudaError_t cudaDeviceGetPCIBusId(char* bus, int len, int index) {
    if (!checked(index)) return fail(cudaErrorInvalidDevice);
    // A PCI domain no real machine uses, so an emulated device can never be taken for a real one.
    snprintf(bus, static_cast<size_t>(len), "%s", kiln::emu::pci_bus_id(index).c_str());
    return cudaSuccess;
}

cudaError_t cudaDeviceCanAccessPeer(int* can, int index, int peer) {
    *can = checked(index) && checked(peer) && index != peer;
    return cudaSuccess;
}

cudaError_t cudaDeviceEnablePeerAccess(int peer, unsigned) {
    device* d = kiln::emu::current_device();
    if (!d || !checked(peer)) return fail(cudaErrorInvalidDevice);
    std::lock_guard<std::mutex> lock(d->mutex);
    if (d->peers_enabled.count(peer)) return fail(cudaErrorPeerAccessAlreadyEnabled);
    d->peers_enabled.insert(peer);
    return cudaSuccess;
}

cudaError_t cudaDriverGetVersion(int* version) {
    *version = 1000;  // "1.0": the emulator's own version, shown as "driver 1.0"
    return cudaSuccess;
}

cudaError_t cudaRuntimeGetVersion(int* version) {
    *version = 1000;
    return cudaSuccess;
}

const char* cudaGetErrorName(cudaError_t e) {
    switch (e) {
    case cudaSuccess: return "cudaSuccess";
    case cudaErrorInvalidValue: return "cudaErrorInvalidValue";
    case cudaErrorMemoryAllocation: return "cudaErrorMemoryAllocation";
    case cudaErrorInvalidConfiguration: return "cudaErrorInvalidConfiguration";
    case cudaErrorNoDevice: return "cudaErrorNoDevice";
    case cudaErrorInvalidDevice: return "cudaErrorInvalidDevice";
    case cudaErrorPeerAccessAlreadyEnabled: return "cudaErrorPeerAccessAlreadyEnabled";
    case cudaErrorLaunchFailure: return "cudaErrorLaunchFailure";
    default: return "cudaErrorUnknown";
    }
}

const char* cudaGetErrorString(cudaError_t e) {
    switch (e) {
    case cudaSuccess: return "no error";
    case cudaErrorInvalidValue: return "invalid argument";
    case cudaErrorMemoryAllocation: return "out of memory";
    case cudaErrorInvalidConfiguration: return "invalid configuration argument";
    case cudaErrorNoDevice: return "no emulated device (KILN_EMU_DEVICES is not set)";
    case cudaErrorInvalidDevice: return "invalid device ordinal";
    case cudaErrorPeerAccessAlreadyEnabled: return "peer access is already enabled";
    case cudaErrorLaunchFailure: return "unspecified launch failure (emulated: the device is lost until the process ends)";
    default: return "unknown error";
    }
}

cudaError_t cudaGetLastError() {
    // A sticky error stays: every later call on that device sees it, as on a GPU.
    device* d = kiln::emu::current_device();
    if (!d) return cudaErrorInvalidDevice;
    cudaError_t& last = kiln::emu::tl_last_error[d->index];
    const cudaError_t e = last;
    last = d->sticky;  // cudaSuccess unless the device is lost
    return e;
}

cudaError_t cudaSetDevice(int index) {
    if (!checked(index)) return fail(cudaErrorInvalidDevice);
    kiln::emu::tl_device = index;
    return cudaSuccess;
}

cudaError_t cudaMemGetInfo(size_t* free_bytes, size_t* total_bytes) {
    device* d = kiln::emu::current_device();
    if (!d) return fail(cudaErrorInvalidDevice);
    if (d->sticky != cudaSuccess) return fail(d->sticky);
    std::lock_guard<std::mutex> lock(d->mutex);
    *total_bytes = d->cfg.memory_bytes;
    *free_bytes = d->cfg.memory_bytes - d->allocated_bytes;
    return cudaSuccess;
}

cudaError_t cudaMalloc(void** p, size_t bytes) {
    device* d = kiln::emu::current_device();
    if (!d) return fail(cudaErrorInvalidDevice);
    if (d->sticky != cudaSuccess) return fail(d->sticky);
    std::lock_guard<std::mutex> lock(d->mutex);
    const uint64_t size = (bytes + 255) / 256 * 256;  // 256-byte aligned, as cudaMalloc's
    // First fit from the bottom: the same sequence of allocations gets the same addresses.
    uint64_t at = 0;
    for (const auto& [offset, length] : d->allocations) {
        if (offset - at >= size) break;
        at = offset + length;
    }
    // A planted allocator limit: memory that reads as free but cannot be handed out (fragmented into
    // pieces too small for the request, or held back by the driver), as cudaMemGetInfo never says.
    const kiln::emu::fault* limit = d->find(kiln::emu::fault_kind::alloc);
    if (at + size > d->cfg.memory_bytes || (limit && d->allocated_bytes + size > limit->bytes)) {
        *p = nullptr;
        return fail(cudaErrorMemoryAllocation);
    }
    d->allocations[at] = size;
    d->allocated_bytes += size;
    *p = d->base + at;
    return cudaSuccess;
}

cudaError_t cudaFree(void* p) {
    device* d = kiln::emu::owner_of(p);
    if (!d) return p ? fail(cudaErrorInvalidValue) : cudaSuccess;
    std::lock_guard<std::mutex> lock(d->mutex);
    auto it = d->allocations.find(static_cast<uint64_t>(static_cast<unsigned char*>(p) - d->base));
    if (it == d->allocations.end()) return fail(cudaErrorInvalidValue);
    // The pages go back to the host; the memory reads as zero when allocated again.
    const uint64_t page = static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
    const uint64_t lo = (it->first + page - 1) / page * page, hi = (it->first + it->second) / page * page;
    if (hi > lo) madvise(d->base + lo, hi - lo, MADV_DONTNEED);
    d->allocated_bytes -= it->second;
    d->allocations.erase(it);
    d->apply_stuck_bits();
    return cudaSuccess;
}

cudaError_t cudaHostAlloc(void** p, size_t bytes, unsigned) {
    if (posix_memalign(p, 4096, bytes ? bytes : 1) != 0) {
        *p = nullptr;
        return fail(cudaErrorMemoryAllocation);
    }
    return cudaSuccess;
}

cudaError_t cudaFreeHost(void* p) {
    free(p);
    return cudaSuccess;
}

cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t bytes, cudaMemcpyKind, cudaStream_t stream) {
    device* to = kiln::emu::owner_of(dst);
    device* from = kiln::emu::owner_of(src);
    device* clock = stream ? kiln::emu::device_of(stream) : (to ? to : from);
    // copyloss: the device's copy engine leaves the last bytes of a counted copy unwritten (the
    // destination keeps what it held), on whichever side the destination is.
    size_t written = bytes;
    if (clock)
        if (const kiln::emu::fault* loss = clock->find(kiln::emu::fault_kind::copyloss); loss && bytes >= loss->min_bytes) {
            std::lock_guard<std::mutex> lock(clock->mutex);
            const int64_t number = ++clock->copies;
            if (number >= loss->launch && number <= loss->last_launch) written = bytes - std::min<size_t>(bytes, loss->bytes);
        }
    return timed_copy(clock, to, [&] { memmove(dst, src, written); });
}

cudaError_t cudaMemcpy(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind) {
    return cudaMemcpyAsync(dst, src, bytes, kind, nullptr);
}

cudaError_t cudaMemcpyPeerAsync(void* dst, int, const void* src, int, size_t bytes, cudaStream_t stream) {
    return cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, stream);
}

cudaError_t cudaMemsetAsync(void* p, int value, size_t bytes, cudaStream_t stream) {
    device* to = kiln::emu::owner_of(p);
    if (!to) return fail(cudaErrorInvalidValue);
    return timed_copy(stream ? kiln::emu::device_of(stream) : to, to, [&] { memset(p, value, bytes); });
}

cudaError_t cudaStreamCreateWithFlags(cudaStream_t* s, unsigned) {
    device* d = kiln::emu::current_device();
    if (!d) return fail(cudaErrorInvalidDevice);
    *s = reinterpret_cast<cudaStream_t>(new kiln::emu::stream{d->index});
    return cudaSuccess;
}

cudaError_t cudaStreamDestroy(cudaStream_t s) {
    delete reinterpret_cast<kiln::emu::stream*>(s);
    return cudaSuccess;
}

cudaError_t cudaStreamSynchronize(cudaStream_t s) {
    device* d = kiln::emu::device_of(s);
    if (!d) return fail(cudaErrorInvalidDevice);
    return d->sticky != cudaSuccess ? fail(d->sticky) : cudaSuccess;  // every operation already ran
}

cudaError_t cudaStreamQuery(cudaStream_t s) { return cudaStreamSynchronize(s); }  // nothing is ever pending

cudaError_t cudaEventCreate(cudaEvent_t* e) {
    *e = reinterpret_cast<cudaEvent_t>(new kiln::emu::event{});
    return cudaSuccess;
}

cudaError_t cudaEventDestroy(cudaEvent_t e) {
    delete reinterpret_cast<kiln::emu::event*>(e);
    return cudaSuccess;
}

cudaError_t cudaEventRecord(cudaEvent_t e, cudaStream_t s) {
    device* d = kiln::emu::device_of(s);
    if (!d) return fail(cudaErrorInvalidDevice);
    if (d->sticky != cudaSuccess) return fail(d->sticky);
    std::lock_guard<std::mutex> lock(d->mutex);
    reinterpret_cast<kiln::emu::event*>(e)->seconds = d->clock_s;
    return cudaSuccess;
}

cudaError_t cudaEventSynchronize(cudaEvent_t) { return cudaSuccess; }

cudaError_t cudaEventElapsedTime(float* ms, cudaEvent_t begin, cudaEvent_t end) {
    const double s = reinterpret_cast<kiln::emu::event*>(end)->seconds - reinterpret_cast<kiln::emu::event*>(begin)->seconds;
    *ms = static_cast<float>(s * 1000.0);
    return cudaSuccess;
}
