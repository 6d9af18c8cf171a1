// A SKU profile: which devices it is for, what healthy means for kiln check (the HealthPolicy), and
// the thresholds with units that turn measured values into verdicts (docs/PROFILES.md).
using Kiln.Core.Health;
using Kiln.Native;

namespace Kiln.Core.Profiles;

/// <summary>
/// Which devices a threshold applies to: the host CPU (the cpu backend), any accelerator, or the
/// host's network (the tcp, rdma and allreduce probes, whose rows carry backend "net").
/// </summary>
public enum DeviceClass { Cpu, Gpu, Net }

/// <summary>A floor (higher is better: bandwidth, TFLOP/s) or a ceiling (lower is better: latency, errors).</summary>
public enum Direction { AtLeast, AtMost }

/// <summary>Which theoretical peak of the device a fraction_of_peak threshold is a fraction of.</summary>
public enum PeakKind { MemoryBandwidth, Fp64, Fp32, Tf32, Bf16, Fp16 }

/// <summary>
/// What crossing a threshold makes of the verdict: FAIL (the default: the hardware is out of spec) or
/// WARN (the run proved less than it should, e.g. a memtest that covered too little memory).
/// </summary>
public enum ThresholdSeverity { Fail, Warn }

public sealed record Threshold(DeviceClass Class, string Test, string Metric, Direction Direction, QuantityKind Kind)
{
    /// <summary>Fail unless the profile wrote severity: warn; then a value past the limit is WARN, never FAIL.</summary>
    public ThresholdSeverity Severity { get; init; } = ThresholdSeverity.Fail;

    /// <summary>The absolute floor or ceiling in canonical units; with FractionOfPeak, the fallback when the peak is unknown.</summary>
    public double? Value { get; init; }
    public double? FractionOfPeak { get; init; }
    public PeakKind Peak { get; init; }
    /// <summary>Where it was written ("profiles/h100.yaml:12"), for reasons that send the reader to the file.</summary>
    public string Origin { get; init; } = "";

    public string Unit => Units.Canonical(Kind);

    /// <summary>
    /// True for the threshold's own metric and its family members: "p2p_gbps" covers "p2p_gbps_0_3"
    /// (the copy matrix, docs/PROFILES.md), so one line judges every pair.
    /// </summary>
    public bool Covers(string metric) => metric == Metric || MetricNames.Pair(metric)?.Family == Metric;

    /// <summary>The limit for this device in canonical units and how it was chosen; null when neither peak nor fallback is known.</summary>
    public (double Limit, string Basis)? Resolve(DeviceInfo device)
    {
        if (FractionOfPeak is { } fraction)
        {
            var peak = PeakOf(device);
            var basis = Peak == PeakKind.MemoryBandwidth ? device.PeakMemoryBasis : "";
            if (peak > 0)
                return (fraction * peak, $"{fraction * 100:0.##}% of peak {Units.Format(peak, Kind)}" + (basis.Length > 0 ? $" ({basis})" : ""));
            // No peak from the machine (a VM has no SMBIOS DIMM speeds): the profile's own min judges, which
            // is a fleet baseline's floor when the profile came from kiln report --generate-baseline.
            var unknown = basis.StartsWith("peak unknown", StringComparison.Ordinal) ? basis : "peak unknown";
            if (Value is { } fallback) return (fallback, $"{unknown}; judged against the min {Units.Format(fallback, Kind)}" + (Origin.Length > 0 ? $" of {Origin}" : ""));
            return null;
        }
        return Value is { } v ? (v, Origin.Length > 0 ? Origin : "profile") : null;
    }

    public double PeakOf(DeviceInfo device) => Peak switch
    {
        PeakKind.MemoryBandwidth => device.PeakMemoryBandwidthGbps,
        PeakKind.Fp64 => device.PeakFp64Tflops,
        PeakKind.Fp32 => device.PeakFp32Tflops,
        PeakKind.Tf32 => device.PeakTf32Tflops,
        PeakKind.Bf16 => device.PeakBf16Tflops,
        _ => device.PeakFp16Tflops,
    };

    /// <summary>
    /// How far a value clears its limit: value/floor or ceiling/value. Below 1 fails, [1, 1 + band)
    /// warns. A ceiling of 0 (no errors allowed) has no band: 0 clears it, anything else fails.
    /// </summary>
    public double Margin(double value, double limit) => Direction == Direction.AtLeast
        ? (limit > 0 ? value / limit : double.PositiveInfinity)
        : (limit == 0 ? (value <= 0 ? double.PositiveInfinity : 0) : value <= 0 ? double.PositiveInfinity : limit / value);

    /// <summary>The better of two measurements of this metric: the higher for a floor, the lower for a ceiling.</summary>
    public double Best(IEnumerable<double> values) => Direction == Direction.AtLeast ? values.Max() : values.Min();
}

public sealed record Profile(string Name, string Description)
{
    public const double DefaultWarnBand = 0.05;

    /// <summary>"built-in" or the file's path.</summary>
    public string Source { get; init; } = "built-in";
    public string Text { get; init; } = "";

    /// <summary>Device model substrings (case-insensitive) that make --profile auto pick this profile.</summary>
    public IReadOnlyList<string> Match { get; init; } = [];

    /// <summary>A margin in [1, 1 + WarnBand) over the limit is WARN (REFERENCE.md: floor..1.05 x floor).</summary>
    public double WarnBand { get; init; } = DefaultWarnBand;

    /// <summary>Expected inventory and every health threshold kiln check applies.</summary>
    public HealthPolicy Health { get; init; } = HealthPolicy.Default;

    public IReadOnlyList<Threshold> Thresholds { get; init; } = [];

    public static DeviceClass ClassOf(DeviceInfo device) => ClassOf(device.Backend);

    /// <summary>The backend name the network probes' rows and verdicts carry.</summary>
    public const string NetBackend = "net";

    public static DeviceClass ClassOf(string backend) =>
        backend == "cpu" ? DeviceClass.Cpu : backend == NetBackend ? DeviceClass.Net : DeviceClass.Gpu;

    /// <summary>The thresholds for one test on one kind of device.</summary>
    public IEnumerable<Threshold> For(string test, DeviceClass cls) => Thresholds.Where(t => t.Class == cls && t.Test == test);
}
