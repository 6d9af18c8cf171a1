// One opened telemetry source (NVML or ROCm SMI, dlopen'ed by libkiln): driver version, device
// count, the slow per-GPU health read for checks and the cheap sample for the burn-time loop.
using Kiln.Native.Interop;

namespace Kiln.Native;

public enum TelemetrySource
{
    Nvml = kiln_telemetry_source.KILN_TELEMETRY_NVML,
    RocmSmi = kiln_telemetry_source.KILN_TELEMETRY_ROCM_SMI,
    /// <summary>The emulated devices (libkiln-emu.so), present only when KILN_EMU_DEVICES is set.</summary>
    Emu = kiln_telemetry_source.KILN_TELEMETRY_EMU,
}

/// <summary>Clock throttle reasons (NVML's bits; ROCm SMI readings are mapped onto them by the library).</summary>
[Flags]
public enum ThrottleReasons : ulong
{
    None = 0,
    GpuIdle = kiln_throttle_reason.KILN_THROTTLE_GPU_IDLE,
    AppClocks = kiln_throttle_reason.KILN_THROTTLE_APP_CLOCKS,
    SwPowerCap = kiln_throttle_reason.KILN_THROTTLE_SW_POWER_CAP,
    HwSlowdown = kiln_throttle_reason.KILN_THROTTLE_HW_SLOWDOWN,
    SyncBoost = kiln_throttle_reason.KILN_THROTTLE_SYNC_BOOST,
    SwThermal = kiln_throttle_reason.KILN_THROTTLE_SW_THERMAL,
    HwThermal = kiln_throttle_reason.KILN_THROTTLE_HW_THERMAL,
    HwPowerBrake = kiln_throttle_reason.KILN_THROTTLE_HW_POWER_BRAKE,
}

/// <summary>What a health check reads about one GPU; a value the source cannot give is -1 (null for flags).</summary>
public sealed record GpuHealth(
    int Index, string Name, string Uuid, string Serial, string PciBusId, string VbiosVersion,
    bool? PersistenceMode, bool? EccEnabled,
    int PcieGenCurrent, int PcieGenMax, int PcieWidthCurrent, int PcieWidthMax,
    bool? RetiredPagesPending, long RetiredPagesSbe, long RetiredPagesDbe,
    long EccVolatileCorrected, long EccVolatileUncorrected, long EccAggregateCorrected, long EccAggregateUncorrected,
    int RemappedRowsCorrectable, int RemappedRowsUncorrectable, bool? RemapPending, bool? RemapFailed,
    int NvlinkLinksTotal, int NvlinkLinksActive, long NvlinkCrcErrors, long NvlinkReplayErrors, long NvlinkRecoveryErrors,
    int ComputeProcesses, ThrottleReasons Throttle, ulong MemoryTotalBytes,
    double TemperatureC, double TemperatureSlowdownC, double PowerW, double PowerLimitW);

/// <summary>One fast sample; -1 where unknown.</summary>
public readonly record struct GpuSample(
    double TemperatureC, double PowerW, double SmClockMhz, double MemoryClockMhz, double UtilizationPct,
    ThrottleReasons Throttle, long EccVolatileCorrected, long EccVolatileUncorrected, long PcieReplayCount);

public sealed class GpuTelemetry : IDisposable
{
    private const int ShortBytes = (int)kiln_constants.KILN_SHORT_BYTES;
    private const int NameBytes = (int)kiln_constants.KILN_NAME_BYTES;

    private readonly KilnTelemetryHandle _handle;

    private GpuTelemetry(KilnTelemetryHandle handle, TelemetrySource source, string driverVersion, int deviceCount)
    {
        _handle = handle;
        Source = source;
        DriverVersion = driverVersion;
        DeviceCount = deviceCount;
    }

    public TelemetrySource Source { get; }
    public string DriverVersion { get; }
    public int DeviceCount { get; }

    /// <summary>
    /// Opens a source; null when its library or driver is absent, with the library's reason
    /// ("libnvidia-ml.so.1: cannot open shared object file ...") in <paramref name="unavailableReason"/>.
    /// </summary>
    /// <param name="libraryPath">null: the vendor's usual name, or $KILN_NVML_LIBRARY / $KILN_ROCM_SMI_LIBRARY.</param>
    /// <exception cref="KilnException">Any failure other than KILN_UNSUPPORTED (a library that loads but misbehaves).</exception>
    public static unsafe GpuTelemetry? TryOpen(TelemetrySource source, string? libraryPath, out string unavailableReason)
    {
        KilnLibrary.EnsureLoaded();
        unavailableReason = "";
        KilnTelemetryHandle? handle = null;
        try
        {
            var status = KilnNative.kiln_telemetry_open((int)source, libraryPath, out handle);
            if (status == kiln_status.KILN_UNSUPPORTED)
            {
                unavailableReason = KilnException.LastErrorText();
                handle.Dispose();
                return null;
            }
            KilnException.Check(status);
            byte* buffer = stackalloc byte[NameBytes];
            KilnException.Check(KilnNative.kiln_telemetry_driver_version(handle, buffer, NameBytes));
            string driver = NativeText.FromBuffer(buffer, NameBytes);
            return new GpuTelemetry(handle, source, driver, KilnNative.kiln_telemetry_device_count(handle));
        }
        catch
        {
            handle?.Dispose();
            throw;
        }
    }

    /// <summary>Everything a check reads about GPU <paramref name="index"/>; slow (tens of ms), not for sampling loops.</summary>
    public unsafe GpuHealth Health(int index)
    {
        ObjectDisposedException.ThrowIf(_handle.IsClosed, this);
        kiln_gpu_health h;
        KilnException.Check(KilnNative.kiln_telemetry_health(_handle, index, &h));
        return new GpuHealth(h.index, NativeText.FromBuffer(h.name, NameBytes), NativeText.FromBuffer(h.uuid, NameBytes),
            NativeText.FromBuffer(h.serial, NameBytes), NativeText.FromBuffer(h.pci_bus_id, ShortBytes),
            NativeText.FromBuffer(h.vbios_version, NameBytes),
            Flag(h.persistence_mode), Flag(h.ecc_enabled),
            h.pcie_gen_current, h.pcie_gen_max, h.pcie_width_current, h.pcie_width_max,
            Flag(h.retired_pages_pending), h.retired_pages_sbe, h.retired_pages_dbe,
            h.ecc_volatile_corrected, h.ecc_volatile_uncorrected, h.ecc_aggregate_corrected, h.ecc_aggregate_uncorrected,
            h.remapped_rows_correctable, h.remapped_rows_uncorrectable, Flag(h.remap_pending), Flag(h.remap_failed),
            h.nvlink_links_total, h.nvlink_links_active, h.nvlink_crc_errors, h.nvlink_replay_errors, h.nvlink_recovery_errors,
            h.compute_processes, (ThrottleReasons)h.throttle_reasons, h.memory_total_bytes,
            h.temperature_c, h.temperature_slowdown_c, h.power_w, h.power_limit_w);
    }

    /// <summary>One cheap sample of GPU <paramref name="index"/>, for the telemetry loop.</summary>
    public unsafe GpuSample Sample(int index)
    {
        ObjectDisposedException.ThrowIf(_handle.IsClosed, this);
        kiln_gpu_sample s;
        KilnException.Check(KilnNative.kiln_telemetry_sample(_handle, index, &s));
        return new GpuSample(s.temperature_c, s.power_w, s.sm_clock_mhz, s.memory_clock_mhz, s.utilization_pct,
            (ThrottleReasons)s.throttle_reasons, s.ecc_volatile_corrected, s.ecc_volatile_uncorrected, s.pcie_replay_count);
    }

    public void Dispose() => _handle.Dispose();

    // The ABI's flags are 1 / 0, or -1 when the source cannot tell.
    private static bool? Flag(int value) => value < 0 ? null : value != 0;
}
