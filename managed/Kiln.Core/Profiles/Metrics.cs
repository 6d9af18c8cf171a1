// What the metric catalog (native, kiln_metric_at) says about a name a profile, plan or plot uses:
// its placeholders expanded from the stable keys ({op}, {pattern}, {dtype}), a matrix family
// (p2p_ce_gbps) standing for its members (p2p_ce_gbps_{src}_{dst}).
using Kiln.Native;

namespace Kiln.Core.Profiles;

public static class Metrics
{
    public const string MatrixSuffix = "_{src}_{dst}";

    /// <summary>Number-format keys (fp64 ... fp16), from the C enum.</summary>
    public static IReadOnlyList<string> DtypeKeys { get; } = [.. NativeKeys.Dtypes.Keys];

    private static readonly Lazy<IReadOnlyList<(MetricInfo Info, string Name)>> Expanded = new(() =>
        MetricCatalog.Entries.SelectMany(e => Expand(e.Name).Select(n => (e, n))).ToList());

    /// <summary>Every concrete name an entry stands for (a matrix member keeps its {src}_{dst}).</summary>
    public static IEnumerable<string> Expand(string name)
    {
        IEnumerable<string> names = [name];
        foreach (var (placeholder, keys) in new[] { ("{op}", Catalog.StreamOps.Keys.ToList()), ("{pattern}", Catalog.Patterns.Keys.ToList()), ("{dtype}", DtypeKeys) })
            names = names.SelectMany(n => n.Contains(placeholder, StringComparison.Ordinal) ? keys.Select(k => n.Replace(placeholder, k, StringComparison.Ordinal)) : [n]);
        return names;
    }

    /// <summary>
    /// The catalog entry a threshold on (test, class, metric) judges: the metric itself, or the
    /// matrix whose family it names. Null when no backend of that class emits it for that test.
    /// </summary>
    public static MetricInfo? Find(string test, DeviceClass cls, string metric)
    {
        var bits = BitsOf(cls);
        return Expanded.Value.FirstOrDefault(x => x.Info.Test == test && (x.Info.Backends & bits) != 0
                                                  && (x.Name == metric || x.Name == metric + MatrixSuffix)).Info;
    }

    /// <summary>True when a backend's test may emit this concrete name (a matrix member: family_3_5).</summary>
    public static bool Emittable(string test, string metric, BackendBits backend) =>
        Expanded.Value.Any(x => x.Info.Test == test && (x.Info.Backends & backend) != 0
                                && (x.Name == metric || (x.Name.EndsWith(MatrixSuffix, StringComparison.Ordinal)
                                                         && MetricNames.Pair(metric)?.Family == x.Name[..^MatrixSuffix.Length])));

    /// <summary>Names a test can emit on a class of device, for an error message.</summary>
    public static IEnumerable<string> NamesFor(string test, DeviceClass cls)
    {
        var bits = BitsOf(cls);
        return Expanded.Value.Where(x => x.Info.Test == test && (x.Info.Backends & bits) != 0)
            .Select(x => x.Name.EndsWith(MatrixSuffix, StringComparison.Ordinal) ? x.Name[..^MatrixSuffix.Length] : x.Name).Distinct();
    }

    private static BackendBits BitsOf(DeviceClass cls) => cls switch
    {
        DeviceClass.Cpu => BackendBits.Cpu,
        DeviceClass.Net => BackendBits.Net,
        _ => BackendBits.Gpu,
    };
}
