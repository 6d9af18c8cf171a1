// One opened device: what it is, parameter validation, and running a test with results streamed
// to an ITestSink and a CancellationToken turned into the native cancel flag.
using System.Runtime.InteropServices;
using Kiln.Native.Interop;

namespace Kiln.Native;

public sealed record DeviceInfo(string Backend, string Name, string Uuid, string PciBusId, int Index,
    int ComputeUnits, int NumaNodes, int ThreadsPerUnit, ulong TotalMemoryBytes, ulong AvailableMemoryBytes,
    ulong LastLevelCacheBytes, double ClockMhz, double PeakMemoryBandwidthGbps, double PeakFp64Tflops, double PeakFp32Tflops,
    double PeakTf32Tflops = 0, double PeakBf16Tflops = 0, double PeakFp16Tflops = 0)
{
    /// <summary>How PeakMemoryBandwidthGbps was found (the CPU's from SMBIOS), or "peak unknown: why"; "" when not said.</summary>
    public string PeakMemoryBasis { get; init; } = "";
}

public sealed class Device : IDisposable
{
    private readonly KilnDeviceHandle _handle;

    internal Device(KilnDeviceHandle handle, KilnRegistryHandle registry)
    {
        Info = ReadInfo(handle);
        handle.KeepOwnerAlive(registry);  // the native device points into its registry
        _handle = handle;
    }

    public DeviceInfo Info { get; }

    /// <summary>Checks the parameters against this device without running anything.</summary>
    /// <exception cref="KilnException">KILN_INVALID_ARGUMENT; the message names the parameter and its limit.</exception>
    public unsafe void Validate(TestParams p)
    {
        ArgumentNullException.ThrowIfNull(p);
        var native = p.ToNative();
        KilnException.Check(KilnNative.kiln_test_validate(_handle, &native));
    }

    /// <summary>
    /// Runs one test synchronously on the calling thread. Results reach <paramref name="sink"/> as they are
    /// measured. Returns Ok, or Cancelled once <paramref name="cancel"/> fired (what was measured
    /// until then was reported). An exception thrown by the sink stops the test and is rethrown here.
    /// </summary>
    /// <exception cref="KilnException">Any other status.</exception>
    public unsafe KilnStatus Run(TestParams p, ITestSink sink, CancellationToken cancel)
    {
        ArgumentNullException.ThrowIfNull(p);
        var native = p.ToNative();
        var parameters = (nint)(&native);
        return SinkCall.Run(sink, cancel, nameof(KilnNative.kiln_run), (nativeSink, flag) =>
            KilnNative.kiln_run(_handle, (kiln_test_params*)parameters, (kiln_sink*)nativeSink, (int*)flag));
    }

    /// <summary>The native handle, for a call over several devices (kiln_coll_run); valid while this device is.</summary>
    internal KilnDeviceHandle Handle => _handle;

    public void Dispose() => _handle.Dispose();

    private static unsafe DeviceInfo ReadInfo(KilnDeviceHandle handle)
    {
        const int ShortBytes = (int)kiln_constants.KILN_SHORT_BYTES;
        const int NameBytes = (int)kiln_constants.KILN_NAME_BYTES;
        kiln_device_info info;
        KilnException.Check(KilnNative.kiln_device_get_info(handle, &info));
        return new DeviceInfo(NativeText.FromBuffer(info.backend, ShortBytes), NativeText.FromBuffer(info.name, NameBytes),
            NativeText.FromBuffer(info.uuid, NameBytes), NativeText.FromBuffer(info.pci_bus_id, ShortBytes), info.index,
            info.compute_units, info.numa_nodes, info.threads_per_unit, info.total_memory_bytes, info.available_memory_bytes,
            info.last_level_cache_bytes, info.clock_mhz, info.peak_memory_bandwidth_gbps, info.peak_fp64_tflops,
            info.peak_fp32_tflops, info.peak_tf32_tflops, info.peak_bf16_tflops, info.peak_fp16_tflops)
        {
            PeakMemoryBasis = NativeText.FromBuffer(info.peak_memory_basis, (int)kiln_constants.KILN_PATH_BYTES),
        };
    }
}
