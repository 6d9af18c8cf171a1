// Units of thresholds and metrics: the units a profile may write, what each measures, its factor to
// the kind's canonical unit (GB/s, Gb/s, TFLOP/s, us, W, C, count, ratio) and the sane range of a threshold.
using System.Globalization;
using System.Text.RegularExpressions;

namespace Kiln.Core.Profiles;

/// <summary>What a number measures. Bandwidth is bytes per second, LinkRate bits per second, Ratio a share of a whole (0..1).</summary>
public enum QuantityKind { Bandwidth, LinkRate, Compute, Time, Power, Temperature, Count, Ratio }

/// <summary>A unit as written ("TB/s"), its kind and its factor to the kind's canonical unit.</summary>
public sealed record Unit(string Text, QuantityKind Kind, double Factor);

/// <summary>A value in its kind's canonical unit.</summary>
public readonly record struct Quantity(double Value, QuantityKind Kind)
{
    public string Unit => Units.Canonical(Kind);

    public override string ToString() => Units.Format(Value, Kind);
}

public static partial class Units
{
    private static readonly Unit[] All =
    [
        new("MB/s", QuantityKind.Bandwidth, 1e-3), new("GB/s", QuantityKind.Bandwidth, 1), new("TB/s", QuantityKind.Bandwidth, 1e3),
        new("Mb/s", QuantityKind.LinkRate, 1e-3), new("Gb/s", QuantityKind.LinkRate, 1), new("Tb/s", QuantityKind.LinkRate, 1e3),
        new("GFLOP/s", QuantityKind.Compute, 1e-3), new("TFLOP/s", QuantityKind.Compute, 1), new("PFLOP/s", QuantityKind.Compute, 1e3),
        new("ns", QuantityKind.Time, 1e-3), new("us", QuantityKind.Time, 1), new("µs", QuantityKind.Time, 1),
        new("ms", QuantityKind.Time, 1e3), new("s", QuantityKind.Time, 1e6),
        new("W", QuantityKind.Power, 1), new("kW", QuantityKind.Power, 1e3),
        new("C", QuantityKind.Temperature, 1),
        new("count", QuantityKind.Count, 1),
        new("ratio", QuantityKind.Ratio, 1), new("%", QuantityKind.Ratio, 0.01),
    ];

    /// <summary>
    /// The range a threshold must fall in, canonical units. Generous bounds on today's hardware
    /// (8 TB/s HBM, 2.6 PFLOP/s FP8, 800 Gb/s ports) that still catch a factor-1000 typo.
    /// </summary>
    private static readonly Dictionary<QuantityKind, (double Min, bool MinInclusive, double Max)> SaneRange = new()
    {
        [QuantityKind.Bandwidth] = (0, false, 20_000),      // 20 TB/s
        [QuantityKind.LinkRate] = (0, false, 3_200),        // 3.2 Tb/s
        [QuantityKind.Compute] = (0, false, 20_000),        // 20 PFLOP/s
        [QuantityKind.Time] = (0, false, 3.6e9),            // 1 hour in us
        [QuantityKind.Power] = (0, false, 5_000),
        [QuantityKind.Temperature] = (-40, true, 150),
        [QuantityKind.Count] = (0, true, 1e15),
        [QuantityKind.Ratio] = (0, false, 1),               // a share of a whole: 90% is 0.9
    };

    public static string Canonical(QuantityKind kind) => All.First(u => u.Kind == kind && u.Factor == 1).Text;

    /// <summary>"bandwidth (GB/s)" for messages.</summary>
    public static string Describe(QuantityKind kind) => kind switch
    {
        QuantityKind.Bandwidth => "bandwidth",
        QuantityKind.LinkRate => "link rate",
        QuantityKind.Compute => "compute rate",
        QuantityKind.Time => "time",
        QuantityKind.Power => "power",
        QuantityKind.Temperature => "temperature",
        QuantityKind.Ratio => "ratio",
        _ => "count",
    };

    /// <summary>The units of a kind, for "(GB/s, TB/s)" lists.</summary>
    public static string Known(QuantityKind kind) =>
        string.Join(", ", All.Where(u => u.Kind == kind && u.Text != "µs").Select(u => u.Text));

    /// <summary>A unit by its exact text (case matters: GB/s is bytes, Gb/s bits).</summary>
    public static Unit? Find(string text) => All.FirstOrDefault(u => u.Text == text.Trim());

    /// <summary>A measured value as metrics.csv carries it (value, unit) in canonical units; null for unknown units.</summary>
    public static Quantity? Convert(double value, string unit) =>
        Find(unit) is { } u ? new Quantity(value * u.Factor, u.Kind) : null;

    /// <summary>
    /// The kind a metric's name promises, from its unit token (docs/PROFILES.md): _gbps bandwidth,
    /// _gbits link rate, _tflops compute, _ns/_us/_ms time, _w power, _c temperature, errors_ count,
    /// fraction_ ratio (fraction_of_planned).
    /// Null when the name does not say.
    /// </summary>
    public static QuantityKind? KindOfMetric(string metric)
    {
        var tokens = metric.ToLowerInvariant().Split('_');
        if (tokens[0] == "errors") return QuantityKind.Count;
        if (tokens[0] == "fraction") return QuantityKind.Ratio;
        foreach (var t in tokens)
        {
            switch (t)
            {
                case "gbps" or "tbps" or "mbps": return QuantityKind.Bandwidth;
                case "gbits" or "gbit": return QuantityKind.LinkRate;
                case "tflops" or "gflops": return QuantityKind.Compute;
                case "ns" or "us" or "ms": return QuantityKind.Time;
                case "w" or "watts": return QuantityKind.Power;
                case "c" or "celsius": return QuantityKind.Temperature;
            }
        }
        return null;
    }

    /// <summary>
    /// Higher is better for rates, and for power: kiln measures power under its burner, where a GPU
    /// that cannot draw its power is throttled. Higher is better for ratios too (the share of memory
    /// a memtest covered). Lower is better for times, temperatures and counts.
    /// </summary>
    public static bool HigherIsBetter(QuantityKind kind) =>
        kind is QuantityKind.Bandwidth or QuantityKind.LinkRate or QuantityKind.Compute or QuantityKind.Power or QuantityKind.Ratio;

    [GeneratedRegex(@"^\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*(\S*)\s*$")]
    private static partial Regex QuantityText();

    /// <summary>
    /// Parses "2.4 TB/s" into canonical units. <paramref name="expected"/> (from the metric's name)
    /// restricts the kind. Returns the problem text instead of throwing, so callers add file and line.
    /// </summary>
    public static Quantity? Parse(string text, QuantityKind? expected, out string problem)
    {
        problem = "";
        var m = QuantityText().Match(text);
        if (!m.Success)
        {
            problem = $"'{text}' is not a number with a unit (e.g. 2400 GB/s, 20 us)";
            return null;
        }
        var number = double.Parse(m.Groups[1].Value, NumberStyles.Float, CultureInfo.InvariantCulture);
        var unitText = m.Groups[2].Value;
        if (unitText.Length == 0)
        {
            problem = expected is { } k
                ? $"'{text}' has no unit ({Describe(k)}: {Known(k)})"
                : $"'{text}' has no unit (e.g. GB/s, TFLOP/s, us, W, C, Gb/s, count)";
            return null;
        }
        var unit = Find(unitText);
        if (expected is { } kind && (unit is null || unit.Kind != kind))
        {
            problem = $"unit '{unitText}' is not a {Describe(kind)} unit ({Known(kind)})";
            return null;
        }
        if (unit is null)
        {
            problem = $"unknown unit '{unitText}' (known: {string.Join(", ", All.Where(u => u.Text != "µs").Select(u => u.Text))})";
            return null;
        }
        var q = new Quantity(number * unit.Factor, unit.Kind);
        var (min, minInclusive, max) = SaneRange[unit.Kind];
        if (q.Value > max || q.Value < min || (!minInclusive && q.Value == min))
        {
            problem = $"{text.Trim()} is outside the sane range for {Describe(unit.Kind)} " +
                      $"({(minInclusive ? "" : "above ")}{Format(min, unit.Kind)} to {Format(max, unit.Kind)})";
            return null;
        }
        return q;
    }

    /// <summary>"2400 GB/s", "0.5 us": three significant digits at most, canonical unit; a ratio as a percentage ("52.6%").</summary>
    public static string Format(double value, QuantityKind kind) =>
        kind == QuantityKind.Ratio ? Number(value * 100) + "%" : Number(value) + " " + Canonical(kind);

    /// <summary>A number with up to four significant digits, no exponent for everyday magnitudes.</summary>
    public static string Number(double value)
    {
        if (value == 0 || !double.IsFinite(value)) return value.ToString(CultureInfo.InvariantCulture);
        var magnitude = Math.Abs(value);
        var text = magnitude >= 1e7 || magnitude < 1e-3
            ? value.ToString("0.###e0", CultureInfo.InvariantCulture)
            : Math.Round(value, Math.Max(0, 3 - (int)Math.Floor(Math.Log10(magnitude)))).ToString("0.####", CultureInfo.InvariantCulture);
        return text;
    }
}
