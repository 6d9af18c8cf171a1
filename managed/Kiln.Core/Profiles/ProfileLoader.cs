// Profiles from YAML (docs/PROFILES.md). Strict: unknown keys, thresholds without a unit, units of
// the wrong kind for the metric's name and values outside a sane range are refused with the file,
// line and field, so a threshold typo can never pass a slow GPU.
using Kiln.Core.Health;

namespace Kiln.Core.Profiles;

public static class ProfileLoader
{
    private static readonly string[] ProfileKeys = ["name", "description", "match", "warn_band", "health", "thresholds"];
    private static readonly string[] ThresholdKeys = ["min", "max", "fraction_of_peak", "peak", "severity"];

    public static Profile Load(string path, string option) =>
        Parse(YamlConfig.Load(path, option), Path.GetFileNameWithoutExtension(path)) with { Source = path };

    public static Profile Parse(YamlConfig config, string defaultName)
    {
        var root = config.Root;
        root.Only(ProfileKeys);
        var thresholds = new List<Threshold>();
        if (root.Map("thresholds") is { } byClass)
        {
            byClass.Only("cpu", "gpu", "net");
            foreach (var (className, _, _) in byClass.Entries)
            {
                var cls = className switch { "cpu" => DeviceClass.Cpu, "net" => DeviceClass.Net, _ => DeviceClass.Gpu };
                var byTest = byClass.Map(className)!.Value;
                // Device classes judge device tests; net judges the network tests.
                byTest.Only([.. Catalog.Tests.Where(t => Catalog.IsNetwork(t.Value) == (cls == DeviceClass.Net)).Select(t => t.Key)]);
                foreach (var (test, _, _) in byTest.Entries)
                {
                    var byMetric = byTest.Map(test)!.Value;
                    foreach (var (metric, node, _) in byMetric.Entries)
                    {
                        if (node is not YamlDotNet.RepresentationModel.YamlMappingNode)
                            throw config.Error(node, byMetric.Field(metric), "expected { min: VALUE UNIT }, { max: VALUE UNIT } or { fraction_of_peak: F }");
                        // A threshold on a metric its test never emits would FAIL every healthy node.
                        if (Metrics.Find(test, cls, metric) is null)
                            throw config.Error(byMetric.Get(metric) ?? node, byMetric.Field(metric),
                                $"{className} {test} emits no metric '{metric}' (known: {string.Join(", ", Metrics.NamesFor(test, cls))})");
                        thresholds.Add(ParseThreshold(byMetric.Map(metric)!.Value, cls, test, metric));
                    }
                }
            }
        }
        return new Profile(root.String("name") ?? defaultName, root.String("description") ?? "")
        {
            Text = config.Text,
            Match = root.List("match").Select(m => m.Text).ToList(),
            WarnBand = root.Number("warn_band", 0, 0.5) ?? Profile.DefaultWarnBand,
            Health = root.Map("health") is { } health ? HealthBinder.Bind(health) : HealthPolicy.Default,
            Thresholds = thresholds,
        };
    }

    private static Threshold ParseThreshold(YamlMap t, DeviceClass cls, string test, string metric)
    {
        t.Only(ThresholdKeys);
        var config = t.Config;
        var expected = Units.KindOfMetric(metric);
        var min = Quantity(t, "min", expected);
        var max = Quantity(t, "max", expected);
        var fraction = t.Number("fraction_of_peak", 0, 1);
        if (fraction is 0) throw config.Error(t.Require("fraction_of_peak"), t.Field("fraction_of_peak"), "0 is not a fraction of a peak above 0");
        if (min is null && max is null && fraction is null)
            throw config.Error(t.Node, t.Path, "a threshold needs min, max or fraction_of_peak");
        if (max != null && (min != null || fraction != null))
            throw config.Error(t.Require("max"), t.Field("max"), "a threshold is a floor (min, fraction_of_peak) or a ceiling (max), not both");

        var kind = (min ?? max)?.Kind ?? expected;
        var peak = PeakKind.MemoryBandwidth;
        if (fraction != null)
        {
            var peakNode = t.Get("peak");
            var peakText = t.String("peak");
            (peak, kind) = (peakText, kind) switch
            {
                (null or "memory_bandwidth", null or QuantityKind.Bandwidth) => (PeakKind.MemoryBandwidth, QuantityKind.Bandwidth),
                ("fp64", null or QuantityKind.Compute) => (PeakKind.Fp64, QuantityKind.Compute),
                ("fp32", null or QuantityKind.Compute) => (PeakKind.Fp32, QuantityKind.Compute),
                ("tf32", null or QuantityKind.Compute) => (PeakKind.Tf32, QuantityKind.Compute),
                ("bf16", null or QuantityKind.Compute) => (PeakKind.Bf16, QuantityKind.Compute),
                ("fp16", null or QuantityKind.Compute) => (PeakKind.Fp16, QuantityKind.Compute),
                (null, QuantityKind.Compute) => throw config.Error(t.Require("fraction_of_peak"), t.Field("peak"),
                    "a compute threshold must name its peak (peak: fp64, fp32, tf32, bf16 or fp16)"),
                (null, { } other) => throw config.Error(t.Require("fraction_of_peak"), t.Field("fraction_of_peak"),
                    $"devices report no theoretical peak of {Units.Describe(other)}; give min or max with a unit"),
                _ => throw config.Error(peakNode ?? t.Node, t.Field("peak"),
                    $"'{peakText}' is not a peak of {Units.Describe(kind ?? QuantityKind.Bandwidth)} (known: memory_bandwidth, fp64, fp32, tf32, bf16, fp16)"),
            };
        }
        else if (t.Get("peak") is { } stray)
        {
            throw config.Error(stray, t.Field("peak"), "peak only goes with fraction_of_peak");
        }

        var severity = t.String("severity") switch
        {
            null or "fail" => ThresholdSeverity.Fail,
            "warn" => ThresholdSeverity.Warn,
            var other => throw config.Error(t.Get("severity")!, t.Field("severity"), $"'{other}' is not a severity (fail, warn)"),
        };
        var node = t.Get("min") ?? t.Get("max") ?? t.Get("fraction_of_peak")!;
        return new Threshold(cls, test, metric, max != null ? Direction.AtMost : Direction.AtLeast, kind!.Value)
        {
            Severity = severity,
            Value = (min ?? max)?.Value,
            FractionOfPeak = fraction,
            Peak = peak,
            Origin = $"{config.Display}:{node.Start.Line}",
        };
    }

    private static Quantity? Quantity(YamlMap t, string key, QuantityKind? expected)
    {
        if (t.Get(key) is not { } node) return null;
        // The field named is the threshold's (thresholds.gpu.stream.copy_gbps), as the reader writes it.
        return Units.Parse(t.Scalar(node, t.Field(key)), expected, out var problem)
               ?? throw t.Config.Error(node, t.Path, problem);
    }
}
