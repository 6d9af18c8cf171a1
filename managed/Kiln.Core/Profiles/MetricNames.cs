// The naming rules of metrics that kiln relies on beyond units (docs/PROFILES.md): a matrix member is
// named <family>_<source>_<destination> (p2p_gbps_0_3), and a family's threshold, statistics and
// heatmap cover all its members.
namespace Kiln.Core.Profiles;

public static class MetricNames
{
    /// <summary>"p2p_gbps_0_3" -> ("p2p_gbps", 0, 3); null for a metric that is not a matrix member.</summary>
    public static (string Family, int Source, int Destination)? Pair(string metric)
    {
        var last = metric.LastIndexOf('_');
        if (last <= 0) return null;
        var middle = metric.LastIndexOf('_', last - 1);
        if (middle <= 0) return null;
        return int.TryParse(metric.AsSpan(middle + 1, last - middle - 1), System.Globalization.NumberStyles.None, null, out var source)
               && int.TryParse(metric.AsSpan(last + 1), System.Globalization.NumberStyles.None, null, out var destination)
            ? (metric[..middle], source, destination)
            : null;
    }

    /// <summary>The family a metric belongs to: itself, or the matrix it is a member of.</summary>
    public static string Family(string metric) => Pair(metric)?.Family ?? metric;
}
