// metrics.cpp - the metric catalog: every metric a test can emit, with its unit, better direction
// and the backends that emit it, in one place. Profiles, plans, plots and the fleet report take
// names from here (through kiln_metric_at); tests/native/test_catalog.cpp runs every backend and
// fails on a name that is not here.
#include "kiln_internal.h"

namespace {

constexpr uint32_t cpu = KILN_BACKEND_CPU, gpu = KILN_BACKEND_GPU, all = cpu | gpu, net = KILN_BACKEND_NET;
constexpr int32_t higher = KILN_BETTER_HIGHER, lower = KILN_BETTER_LOWER, neither = KILN_BETTER_NEITHER;

const kiln_metric_info k_catalog[] = {
    // stream (bytes counted per element: docs/METRICS.md)
    {"stream", "{op}_gbps", "GB/s", higher, all, 0, 0},
    {"stream", "{op}_gbps_best", "GB/s", higher, all, 0, 0},
    {"stream", "memcpy_d2d_gbps", "GB/s", higher, gpu, 0, 0},
    {"stream", "array_bytes", "bytes", neither, all, 0, 0},
    {"stream", "iterations", "count", neither, all, 0, 0},
    {"stream", "threads", "count", neither, cpu, 0, 0},
    {"stream", "block", "count", neither, gpu, 0, 0},
    {"stream", "grid", "count", neither, gpu, 0, 0},
    {"stream", "vec", "count", neither, gpu, 0, 0},
    {"stream", "unroll", "count", neither, gpu, 0, 0},
    {"stream", "errors_total", "count", lower, all, 0, 0},
    // memtest
    {"memtest", "errors_{pattern}", "count", lower, all, 0, 0},
    {"memtest", "{pattern}_gbps", "GB/s", higher, all, 0, 0},
    {"memtest", "errors_total", "count", lower, all, 0, 0},
    {"memtest", "bytes_tested", "bytes", higher, all, 0, 0},
    {"memtest", "fraction_of_free", "ratio", higher, gpu, 0, 0},
    {"memtest", "fraction_of_planned", "ratio", higher, gpu, 0, 0},
    {"memtest", "chunks", "count", neither, gpu, 0, 0},
    {"memtest", "traffic_gbps", "GB/s", higher, all, 0, 0},
    {"memtest", "verified_gbps", "GB/s", higher, all, 0, 0},
    {"memtest", "threads", "count", neither, cpu, 0, 0},
    {"memtest", "block", "count", neither, gpu, 0, 0},
    {"memtest", "grid", "count", neither, gpu, 0, 0},
    {"memtest", "unroll", "count", neither, gpu, 0, 0},
    // gemm
    {"gemm", "{dtype}_tflops", "TFLOP/s", higher, all, 0, 0},
    {"gemm", "{dtype}_tflops_best", "TFLOP/s", higher, all, 0, 0},
    {"gemm", "peak_{dtype}_tflops", "TFLOP/s", neither, gpu, 0, 0},
    {"gemm", "errors_{dtype}", "count", lower, all, 0, 0},
    {"gemm", "products_{dtype}", "count", higher, gpu, 0, 0},
    {"gemm", "random_products_{dtype}", "count", higher, all, 0, 0},
    {"gemm", "digest_{dtype}", "digest", neither, gpu, 0, 0},
    {"gemm", "matrix_n", "count", neither, all, 0, 0},
    {"gemm", "errors_total", "count", lower, all, 0, 0},
    {"gemm", "iterations", "count", neither, cpu, 0, 0},
    {"gemm", "threads", "count", neither, cpu, 0, 0},
    {"gemm", "microkernel_avx2_fma", "flag", neither, cpu, 0, 0},
    {"gemm", "microkernel_plain", "flag", neither, cpu, 0, 0},
    // power (the board's draw comes from telemetry while the burner runs)
    {"power", "{dtype}_tflops", "TFLOP/s", higher, all, 0, 0},
    {"power", "peak_{dtype}_tflops", "TFLOP/s", neither, gpu, 0, 0},
    {"power", "errors_{dtype}", "count", lower, cpu, 0, 0},
    {"power", "errors_total", "count", lower, all, 0, 0},
    {"power", "threads", "count", neither, cpu, 0, 0},
    {"power", "power_w_mean", "W", higher, gpu, 1, 0},
    {"power", "power_w_max", "W", neither, gpu, 1, 0},
    {"power", "temperature_c_max", "C", lower, gpu, 1, 0},
    {"power", "sm_clock_mhz_mean", "MHz", higher, gpu, 1, 0},
    {"power", "power_samples", "count", neither, gpu, 1, 0},
    // copy
    {"copy", "numa_node", "index", neither, gpu, 0, 0},
    {"copy", "bytes_verified", "bytes", higher, gpu, 0, 0},
    {"copy", "h2d_gbps", "GB/s", higher, gpu, 0, 0},
    {"copy", "h2d_gbps_best", "GB/s", higher, gpu, 0, 0},
    {"copy", "d2h_gbps", "GB/s", higher, gpu, 0, 0},
    {"copy", "d2h_gbps_best", "GB/s", higher, gpu, 0, 0},
    {"copy", "bidir_gbps", "GB/s", higher, gpu, 0, 0},
    {"copy", "bidir_gbps_best", "GB/s", higher, gpu, 0, 0},
    {"copy", "d2d_gbps", "GB/s", higher, gpu, 0, 0},
    {"copy", "d2d_gbps_best", "GB/s", higher, gpu, 0, 0},
    {"copy", "p2p_access_{src}_{dst}", "flag", neither, gpu, 0, 0},
    {"copy", "p2p_skipped_{src}_{dst}", "flag", lower, gpu, 0, 0},
    {"copy", "p2p_ce_gbps_{src}_{dst}", "GB/s", higher, gpu, 0, 0},
    {"copy", "p2p_sm_gbps_{src}_{dst}", "GB/s", higher, gpu, 0, 0},
    {"copy", "p2p_ce_gbps_pairs", "count", neither, gpu, 0, 0},
    {"copy", "p2p_sm_gbps_pairs", "count", neither, gpu, 0, 0},
    {"copy", "buffer_bytes", "bytes", neither, gpu, 0, 0},
    {"copy", "errors_total", "count", lower, gpu, 0, 0},
    // launch
    {"launch", "launch_latency_us_min", "us", lower, gpu, 0, 0},
    {"launch", "launch_latency_us_median", "us", lower, gpu, 0, 0},
    {"launch", "launch_latency_us_p99", "us", lower, gpu, 0, 0},
    {"launch", "launch_latency_us_max", "us", lower, gpu, 0, 0},
    {"launch", "launch_async_us", "us", lower, gpu, 0, 0},
    {"launch", "launches", "count", neither, gpu, 0, 0},
    {"launch", "launches_timed", "count", higher, gpu, 0, 0},
    {"launch", "launch_deadline_reached", "flag", lower, gpu, 0, 0},
    {"launch", "errors_total", "count", lower, gpu, 0, 0},
    // tcp (kiln_net_probe, docs/NETWORK.md): bandwidth counted where the bytes arrive, 1e9 bits/s;
    // send = this host to the peer, recv = the peer to this host; retransmits by the phase's sender
    {"tcp", "streams", "count", neither, net, 0, 0},
    {"tcp", "message_bytes", "bytes", neither, net, 0, 0},
    {"tcp", "send_gbits", "Gb/s", higher, net, 0, 0},
    {"tcp", "send_stream_gbits_min", "Gb/s", higher, net, 0, 0},
    {"tcp", "send_bytes", "bytes", neither, net, 0, 0},
    {"tcp", "send_retransmits", "count", lower, net, 0, 0},
    {"tcp", "send_retransmit_ratio", "ratio", lower, net, 0, 0},
    {"tcp", "recv_gbits", "Gb/s", higher, net, 0, 0},
    {"tcp", "recv_stream_gbits_min", "Gb/s", higher, net, 0, 0},
    {"tcp", "recv_bytes", "bytes", neither, net, 0, 0},
    {"tcp", "recv_retransmits", "count", lower, net, 0, 0},
    {"tcp", "recv_retransmit_ratio", "ratio", lower, net, 0, 0},
    {"tcp", "rtt_us_min", "us", lower, net, 0, 0},
    {"tcp", "rtt_us_median", "us", lower, net, 0, 0},
    {"tcp", "rtt_us_p99", "us", lower, net, 0, 0},
    {"tcp", "rtt_us_p999", "us", lower, net, 0, 0},
    {"tcp", "rtt_us_max", "us", lower, net, 0, 0},
    {"tcp", "rtt_samples", "count", neither, net, 0, 0},
    // rdma (kiln_rdma_probe / _loopback): RC queue pairs; bandwidth the best of the message-size
    // sweep, latency post-to-completion of the smallest message with one in flight
    {"rdma", "write_gbits", "Gb/s", higher, net, 0, 0},
    {"rdma", "write_bidir_gbits", "Gb/s", higher, net, 0, 0},  // bidirectional: both directions' bytes at once
    {"rdma", "read_bidir_gbits", "Gb/s", higher, net, 0, 0},
    {"rdma", "write_lat_us_min", "us", lower, net, 0, 0},
    {"rdma", "write_lat_us_median", "us", lower, net, 0, 0},
    {"rdma", "write_lat_us_p99", "us", lower, net, 0, 0},
    {"rdma", "write_lat_us_p999", "us", lower, net, 0, 0},
    {"rdma", "read_gbits", "Gb/s", higher, net, 0, 0},
    {"rdma", "read_lat_us_min", "us", lower, net, 0, 0},
    {"rdma", "read_lat_us_median", "us", lower, net, 0, 0},
    {"rdma", "read_lat_us_p99", "us", lower, net, 0, 0},
    {"rdma", "read_lat_us_p999", "us", lower, net, 0, 0},
    {"rdma", "send_gbits", "Gb/s", higher, net, 0, 0},
    {"rdma", "send_lat_us_min", "us", lower, net, 0, 0},
    {"rdma", "send_lat_us_median", "us", lower, net, 0, 0},
    {"rdma", "send_lat_us_p99", "us", lower, net, 0, 0},
    {"rdma", "send_lat_us_p999", "us", lower, net, 0, 0},
    // the local port's error counters, after the run minus before (both ends' in loopback)
    {"rdma", "symbol_error_delta", "count", lower, net, 0, 0},
    {"rdma", "link_downed_delta", "count", lower, net, 0, 0},
    {"rdma", "link_error_recovery_delta", "count", lower, net, 0, 0},
    {"rdma", "port_rcv_errors_delta", "count", lower, net, 0, 0},
    {"rdma", "port_xmit_discards_delta", "count", lower, net, 0, 0},
    {"rdma", "local_link_integrity_errors_delta", "count", lower, net, 0, 0},
    {"rdma", "excessive_buffer_overrun_errors_delta", "count", lower, net, 0, 0},
    {"rdma", "port_rcv_remote_physical_errors_delta", "count", lower, net, 0, 0},
    // allreduce (kiln_coll_run, gpu_coll.cu): nccl-tests' measures at one size, fp32 sum; algbw is
    // size / time, busbw algbw x 2(n-1)/n (all-reduce) or x (n-1)/n (all-gather, reduce-scatter);
    // errors: wrong words in the verified results of every rank of this process.
    {"allreduce", "ranks", "count", neither, net, 0, 0},
    {"allreduce", "size_bytes", "bytes", neither, net, 0, 0},
    {"allreduce", "allreduce_busbw_gbps", "GB/s", higher, net, 0, 0},
    {"allreduce", "allreduce_algbw_gbps", "GB/s", higher, net, 0, 0},
    {"allreduce", "allreduce_time_us", "us", lower, net, 0, 0},
    {"allreduce", "allreduce_errors", "count", lower, net, 0, 0},
    {"allreduce", "allgather_busbw_gbps", "GB/s", higher, net, 0, 0},
    {"allreduce", "allgather_algbw_gbps", "GB/s", higher, net, 0, 0},
    {"allreduce", "allgather_time_us", "us", lower, net, 0, 0},
    {"allreduce", "allgather_errors", "count", lower, net, 0, 0},
    {"allreduce", "reducescatter_busbw_gbps", "GB/s", higher, net, 0, 0},
    {"allreduce", "reducescatter_algbw_gbps", "GB/s", higher, net, 0, 0},
    {"allreduce", "reducescatter_time_us", "us", lower, net, 0, 0},
    {"allreduce", "reducescatter_errors", "count", lower, net, 0, 0},
};

constexpr int32_t k_count = static_cast<int32_t>(sizeof k_catalog / sizeof k_catalog[0]);

}  // namespace

extern "C" {

int32_t kiln_metric_count(void) { return k_count; }

kiln_status kiln_metric_at(int32_t index, kiln_metric_info* out_info) {
    if (!out_info) return kiln::fail(KILN_INVALID_ARGUMENT, "out_info must not be NULL");
    if (index < 0 || index >= k_count) return kiln::fail(KILN_NOT_FOUND, "metric %d: the catalog has %d (0..%d)", index, k_count, k_count - 1);
    *out_info = k_catalog[index];
    return KILN_OK;
}

}  // extern "C"
