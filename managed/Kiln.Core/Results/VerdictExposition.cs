// The verdict families of kiln.prom (through PrometheusWriter): the node verdict, every (test,
// device) verdict with the value and threshold it turned on, and when the run ended - so an alert
// fires on a node whose last burn failed, or whose last burn is too old.
using Kiln.Core.Evaluation;

namespace Kiln.Core.Results;

public static class VerdictExposition
{
    /// <summary>Adds the verdict families to <paramref name="prom"/> (other families may share the file).</summary>
    public static void AddTo(PrometheusWriter prom, RunSummary summary, IReadOnlyList<VerdictRow> verdicts)
    {
        var host = ("host", summary.Host);
        var node = prom.Gauge("kiln_burn_node_verdict", "Node verdict of the last burn: 1 for the status it ended with (PASS, FAIL, INCOMPLETE), 0 for the others");
        foreach (var status in Enum.GetNames<NodeVerdict>())
            prom.Add(node, status == summary.Verdict ? 1 : 0, host, ("status", status), ("plan", summary.Plan ?? ""), ("profile", summary.Profile ?? ""));
        var verdict = prom.Gauge("kiln_burn_verdict", "Verdict of one test on one device: 1 for its status, 0 for the others");
        var value = prom.Gauge("kiln_burn_value", "The measured value a verdict turned on, in the unit label's unit");
        var threshold = prom.Gauge("kiln_burn_threshold", "The threshold that value was judged against, same unit");
        foreach (var v in verdicts)
        {
            var where = new[] { host, ("test", v.Test), ("backend", v.Backend), ("device", v.Device.ToString(System.Globalization.CultureInfo.InvariantCulture)) };
            foreach (var status in Enum.GetNames<VerdictStatus>())
                prom.Add(verdict, status == v.Status.ToString() ? 1 : 0, [.. where, ("status", status)]);
            if (v.Value is { } x) prom.Add(value, x, [.. where, ("metric", v.Metric), ("unit", v.Unit)]);
            if (v.Threshold is { } t) prom.Add(threshold, t, [.. where, ("metric", v.Metric), ("unit", v.Unit)]);
        }
        if (summary.EndUtc is { } end)
            prom.Add(prom.Gauge("kiln_burn_end_timestamp_seconds", "When the last burn ended, Unix time"),
                new DateTimeOffset(end, TimeSpan.Zero).ToUnixTimeMilliseconds() / 1000.0, host);
    }

    public static void Write(string path, RunSummary summary, IReadOnlyList<VerdictRow> verdicts)
    {
        var prom = new PrometheusWriter();
        AddTo(prom, summary, verdicts);
        prom.Write(path);
    }
}
