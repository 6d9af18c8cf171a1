// layout.cpp - sizeof/offsetof of every public struct, so the managed side proves its mirrors
// match what this library was compiled with. A struct added to kiln.h must be added here; the
// managed layout test fails on any struct or field this table does not know.
#include "kiln_internal.h"

#include <cstddef>
#include <cstring>

namespace {
struct field_entry {
    const char* struct_name;
    const char* field_name;  // nullptr: the row gives sizeof(struct)
    size_t value;
};

#define KILN_SIZE(s) {#s, nullptr, sizeof(s)}
#define KILN_FIELD(s, f) {#s, #f, offsetof(s, f)}

const field_entry k_layout[] = {
    KILN_SIZE(kiln_backend_info),
    KILN_FIELD(kiln_backend_info, name),
    KILN_FIELD(kiln_backend_info, library_path),
    KILN_FIELD(kiln_backend_info, runtime_version),
    KILN_FIELD(kiln_backend_info, device_count),
    KILN_FIELD(kiln_backend_info, plugin_api_version),

    KILN_SIZE(kiln_plugin_skip),
    KILN_FIELD(kiln_plugin_skip, path),
    KILN_FIELD(kiln_plugin_skip, reason),
    KILN_FIELD(kiln_plugin_skip, status),
    KILN_FIELD(kiln_plugin_skip, reserved),

    KILN_SIZE(kiln_device_info),
    KILN_FIELD(kiln_device_info, backend),
    KILN_FIELD(kiln_device_info, name),
    KILN_FIELD(kiln_device_info, uuid),
    KILN_FIELD(kiln_device_info, pci_bus_id),
    KILN_FIELD(kiln_device_info, index),
    KILN_FIELD(kiln_device_info, compute_units),
    KILN_FIELD(kiln_device_info, numa_nodes),
    KILN_FIELD(kiln_device_info, threads_per_unit),
    KILN_FIELD(kiln_device_info, total_memory_bytes),
    KILN_FIELD(kiln_device_info, available_memory_bytes),
    KILN_FIELD(kiln_device_info, last_level_cache_bytes),
    KILN_FIELD(kiln_device_info, clock_mhz),
    KILN_FIELD(kiln_device_info, peak_memory_bandwidth_gbps),
    KILN_FIELD(kiln_device_info, peak_fp64_tflops),
    KILN_FIELD(kiln_device_info, peak_fp32_tflops),
    KILN_FIELD(kiln_device_info, peak_tf32_tflops),
    KILN_FIELD(kiln_device_info, peak_bf16_tflops),
    KILN_FIELD(kiln_device_info, peak_fp16_tflops),
    KILN_FIELD(kiln_device_info, peak_memory_basis),

    KILN_SIZE(kiln_test_params),
    KILN_FIELD(kiln_test_params, test),
    KILN_FIELD(kiln_test_params, inject_hang),
    KILN_FIELD(kiln_test_params, inject_crash),
    KILN_FIELD(kiln_test_params, threads),
    KILN_FIELD(kiln_test_params, size_bytes),
    KILN_FIELD(kiln_test_params, size_fraction),
    KILN_FIELD(kiln_test_params, iterations),
    KILN_FIELD(kiln_test_params, op_mask),
    KILN_FIELD(kiln_test_params, pattern_mask),
    KILN_FIELD(kiln_test_params, max_error_reports),
    KILN_FIELD(kiln_test_params, seed),
    KILN_FIELD(kiln_test_params, duration_ms),
    KILN_FIELD(kiln_test_params, block),
    KILN_FIELD(kiln_test_params, grid),
    KILN_FIELD(kiln_test_params, vec),
    KILN_FIELD(kiln_test_params, unroll),
    KILN_FIELD(kiln_test_params, inject_flips),
    KILN_FIELD(kiln_test_params, inject_corrupt),
    KILN_FIELD(kiln_test_params, inject_seed),
    KILN_FIELD(kiln_test_params, inject_slowdown),
    KILN_FIELD(kiln_test_params, matrix_n),
    KILN_FIELD(kiln_test_params, dtype_mask),

    KILN_SIZE(kiln_metric),
    KILN_FIELD(kiln_metric, test),
    KILN_FIELD(kiln_metric, metric),
    KILN_FIELD(kiln_metric, unit),
    KILN_FIELD(kiln_metric, value),
    KILN_FIELD(kiln_metric, injected),
    KILN_FIELD(kiln_metric, reserved),

    KILN_SIZE(kiln_metric_info),
    KILN_FIELD(kiln_metric_info, test),
    KILN_FIELD(kiln_metric_info, name),
    KILN_FIELD(kiln_metric_info, unit),
    KILN_FIELD(kiln_metric_info, better),
    KILN_FIELD(kiln_metric_info, backends),
    KILN_FIELD(kiln_metric_info, from_host),
    KILN_FIELD(kiln_metric_info, reserved),

    KILN_SIZE(kiln_knob_info),
    KILN_FIELD(kiln_knob_info, test),
    KILN_FIELD(kiln_knob_info, name),
    KILN_FIELD(kiln_knob_info, description),
    KILN_FIELD(kiln_knob_info, min),
    KILN_FIELD(kiln_knob_info, max),
    KILN_FIELD(kiln_knob_info, default_value),
    KILN_FIELD(kiln_knob_info, values),
    KILN_FIELD(kiln_knob_info, backends),
    KILN_FIELD(kiln_knob_info, reserved),

    KILN_SIZE(kiln_data_error),
    KILN_FIELD(kiln_data_error, test),
    KILN_FIELD(kiln_data_error, pattern),
    KILN_FIELD(kiln_data_error, offset_bytes),
    KILN_FIELD(kiln_data_error, expected),
    KILN_FIELD(kiln_data_error, actual),
    KILN_FIELD(kiln_data_error, word_bytes),
    KILN_FIELD(kiln_data_error, injected),
    KILN_FIELD(kiln_data_error, sm),
    KILN_FIELD(kiln_data_error, reserved),

    KILN_SIZE(kiln_sink),
    KILN_FIELD(kiln_sink, ctx),
    KILN_FIELD(kiln_sink, on_metric),
    KILN_FIELD(kiln_sink, on_data_error),
    KILN_FIELD(kiln_sink, on_progress),

    KILN_SIZE(kiln_gpu_health),
    KILN_FIELD(kiln_gpu_health, name),
    KILN_FIELD(kiln_gpu_health, uuid),
    KILN_FIELD(kiln_gpu_health, serial),
    KILN_FIELD(kiln_gpu_health, pci_bus_id),
    KILN_FIELD(kiln_gpu_health, vbios_version),
    KILN_FIELD(kiln_gpu_health, index),
    KILN_FIELD(kiln_gpu_health, persistence_mode),
    KILN_FIELD(kiln_gpu_health, ecc_enabled),
    KILN_FIELD(kiln_gpu_health, pcie_gen_current),
    KILN_FIELD(kiln_gpu_health, pcie_gen_max),
    KILN_FIELD(kiln_gpu_health, pcie_width_current),
    KILN_FIELD(kiln_gpu_health, pcie_width_max),
    KILN_FIELD(kiln_gpu_health, retired_pages_pending),
    KILN_FIELD(kiln_gpu_health, retired_pages_sbe),
    KILN_FIELD(kiln_gpu_health, retired_pages_dbe),
    KILN_FIELD(kiln_gpu_health, ecc_volatile_corrected),
    KILN_FIELD(kiln_gpu_health, ecc_volatile_uncorrected),
    KILN_FIELD(kiln_gpu_health, ecc_aggregate_corrected),
    KILN_FIELD(kiln_gpu_health, ecc_aggregate_uncorrected),
    KILN_FIELD(kiln_gpu_health, remapped_rows_correctable),
    KILN_FIELD(kiln_gpu_health, remapped_rows_uncorrectable),
    KILN_FIELD(kiln_gpu_health, remap_pending),
    KILN_FIELD(kiln_gpu_health, remap_failed),
    KILN_FIELD(kiln_gpu_health, nvlink_links_total),
    KILN_FIELD(kiln_gpu_health, nvlink_links_active),
    KILN_FIELD(kiln_gpu_health, nvlink_crc_errors),
    KILN_FIELD(kiln_gpu_health, nvlink_replay_errors),
    KILN_FIELD(kiln_gpu_health, nvlink_recovery_errors),
    KILN_FIELD(kiln_gpu_health, compute_processes),
    KILN_FIELD(kiln_gpu_health, reserved),
    KILN_FIELD(kiln_gpu_health, throttle_reasons),
    KILN_FIELD(kiln_gpu_health, memory_total_bytes),
    KILN_FIELD(kiln_gpu_health, temperature_c),
    KILN_FIELD(kiln_gpu_health, temperature_slowdown_c),
    KILN_FIELD(kiln_gpu_health, power_w),
    KILN_FIELD(kiln_gpu_health, power_limit_w),

    KILN_SIZE(kiln_gpu_sample),
    KILN_FIELD(kiln_gpu_sample, temperature_c),
    KILN_FIELD(kiln_gpu_sample, power_w),
    KILN_FIELD(kiln_gpu_sample, sm_clock_mhz),
    KILN_FIELD(kiln_gpu_sample, memory_clock_mhz),
    KILN_FIELD(kiln_gpu_sample, utilization_pct),
    KILN_FIELD(kiln_gpu_sample, throttle_reasons),
    KILN_FIELD(kiln_gpu_sample, ecc_volatile_corrected),
    KILN_FIELD(kiln_gpu_sample, ecc_volatile_uncorrected),
    KILN_FIELD(kiln_gpu_sample, pcie_replay_count),

    KILN_SIZE(kiln_net_params),
    KILN_FIELD(kiln_net_params, streams),
    KILN_FIELD(kiln_net_params, phase_mask),
    KILN_FIELD(kiln_net_params, duration_ms),
    KILN_FIELD(kiln_net_params, latency_duration_ms),
    KILN_FIELD(kiln_net_params, timeout_ms),
    KILN_FIELD(kiln_net_params, message_bytes),
    KILN_FIELD(kiln_net_params, latency_bytes),
    KILN_FIELD(kiln_net_params, latency_samples),
    KILN_FIELD(kiln_net_params, reserved),

    KILN_SIZE(kiln_net_log),
    KILN_FIELD(kiln_net_log, ctx),
    KILN_FIELD(kiln_net_log, on_text),

    KILN_SIZE(kiln_rdma_port_info),
    KILN_FIELD(kiln_rdma_port_info, device),
    KILN_FIELD(kiln_rdma_port_info, firmware),
    KILN_FIELD(kiln_rdma_port_info, node_guid),
    KILN_FIELD(kiln_rdma_port_info, gid),
    KILN_FIELD(kiln_rdma_port_info, link_layer),
    KILN_FIELD(kiln_rdma_port_info, state),
    KILN_FIELD(kiln_rdma_port_info, port),
    KILN_FIELD(kiln_rdma_port_info, numa_node),
    KILN_FIELD(kiln_rdma_port_info, lid),
    KILN_FIELD(kiln_rdma_port_info, active_mtu_bytes),
    KILN_FIELD(kiln_rdma_port_info, rate_gbits),

    KILN_SIZE(kiln_rdma_params),
    KILN_FIELD(kiln_rdma_params, port_index),
    KILN_FIELD(kiln_rdma_params, op_mask),
    KILN_FIELD(kiln_rdma_params, min_message_bytes),
    KILN_FIELD(kiln_rdma_params, max_message_bytes),
    KILN_FIELD(kiln_rdma_params, iterations),
    KILN_FIELD(kiln_rdma_params, queue_depth),
    KILN_FIELD(kiln_rdma_params, bidirectional),
    KILN_FIELD(kiln_rdma_params, latency_samples),
    KILN_FIELD(kiln_rdma_params, timeout_ms),
    KILN_FIELD(kiln_rdma_params, gid_index),
    KILN_FIELD(kiln_rdma_params, reserved),

    KILN_SIZE(kiln_coll_params),
    KILN_FIELD(kiln_coll_params, op_mask),
    KILN_FIELD(kiln_coll_params, iterations),
    KILN_FIELD(kiln_coll_params, warmup_iterations),
    KILN_FIELD(kiln_coll_params, nranks),
    KILN_FIELD(kiln_coll_params, first_rank),
    KILN_FIELD(kiln_coll_params, max_error_reports),
    KILN_FIELD(kiln_coll_params, size_bytes),
    KILN_FIELD(kiln_coll_params, timeout_ms),
    KILN_FIELD(kiln_coll_params, unique_id),

    KILN_SIZE(kiln_coll_library_info),
    KILN_FIELD(kiln_coll_library_info, path),
    KILN_FIELD(kiln_coll_library_info, name),
    KILN_FIELD(kiln_coll_library_info, version_text),
    KILN_FIELD(kiln_coll_library_info, version),
    KILN_FIELD(kiln_coll_library_info, reserved),

    KILN_SIZE(kiln_coll_rendezvous_result),
    KILN_FIELD(kiln_coll_rendezvous_result, nranks),
    KILN_FIELD(kiln_coll_rendezvous_result, first_rank),
    KILN_FIELD(kiln_coll_rendezvous_result, processes),
    KILN_FIELD(kiln_coll_rendezvous_result, reserved),
};

const field_entry* find(const char* struct_name, const char* field_name) {
    if (!struct_name) return nullptr;
    for (const field_entry& e : k_layout) {
        if (strcmp(e.struct_name, struct_name) != 0) continue;
        if (field_name == nullptr ? e.field_name == nullptr
                                  : (e.field_name != nullptr && strcmp(e.field_name, field_name) == 0))
            return &e;
    }
    return nullptr;
}
}  // namespace

extern "C" size_t kiln_struct_size(const char* struct_name) {
    const field_entry* e = find(struct_name, nullptr);
    return e ? e->value : 0;
}

extern "C" size_t kiln_struct_field_offset(const char* struct_name, const char* field_name) {
    if (!field_name) return static_cast<size_t>(-1);
    const field_entry* e = find(struct_name, field_name);
    return e ? e->value : static_cast<size_t>(-1);
}
