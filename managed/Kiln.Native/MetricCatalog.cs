// The metric catalog as libkiln declares it (kiln_metric_at): every metric a test can emit, with
// its unit, which way is better and the backends that emit it. Read once.
using Kiln.Native.Interop;

namespace Kiln.Native;

public enum Better { Neither = kiln_better.KILN_BETTER_NEITHER, Higher = kiln_better.KILN_BETTER_HIGHER, Lower = kiln_better.KILN_BETTER_LOWER }

[Flags]
public enum BackendBits : uint
{
    Cpu = kiln_backend_bit.KILN_BACKEND_CPU,
    Cuda = kiln_backend_bit.KILN_BACKEND_CUDA,
    Hip = kiln_backend_bit.KILN_BACKEND_HIP,
    Emu = kiln_backend_bit.KILN_BACKEND_EMU,
    Gpu = kiln_backend_bit.KILN_BACKEND_GPU,
    Net = kiln_backend_bit.KILN_BACKEND_NET,
}

/// <param name="Name">May hold placeholders: {op}, {pattern}, {dtype}, and a trailing {src}_{dst} for a matrix member.</param>
/// <param name="FromHost">Measured by the host around the test (telemetry), not by the kernel.</param>
public sealed record MetricInfo(string Test, string Name, string Unit, Better Better, BackendBits Backends, bool FromHost);

public static class MetricCatalog
{
    private static readonly Lazy<IReadOnlyList<MetricInfo>> Loaded = new(Read);

    public static IReadOnlyList<MetricInfo> Entries => Loaded.Value;

    private static unsafe IReadOnlyList<MetricInfo> Read()
    {
        KilnLibrary.EnsureLoaded();
        var entries = new List<MetricInfo>();
        var count = KilnNative.kiln_metric_count();
        for (var i = 0; i < count; i++)
        {
            kiln_metric_info m;
            KilnException.Check(KilnNative.kiln_metric_at(i, &m));
            entries.Add(new MetricInfo(NativeText.FromStatic(m.test), NativeText.FromStatic(m.name), NativeText.FromStatic(m.unit),
                (Better)m.better, (BackendBits)m.backends, m.from_host != 0));
        }
        return entries;
    }
}
