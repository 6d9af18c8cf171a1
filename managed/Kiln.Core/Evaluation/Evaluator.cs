// Turns a test's outcome on one device into its verdict row (PASS, WARN, FAIL, SKIP) and a run's
// rows into the node verdict. Every rule here can fail, and says why in the reason.
using System.Globalization;
using Kiln.Core.Results;
using Kiln.Native.Interop;

namespace Kiln.Core.Evaluation;

public enum NodeVerdict { PASS, FAIL, INCOMPLETE }

public static class Evaluator
{
    /// <summary>Stream's floor is this fraction of the device's theoretical memory bandwidth.</summary>
    public const double StreamPeakFraction = 0.25;
    /// <summary>Floor when the peak is unknown: only proves the memory moves at all.</summary>
    public const double StreamSanityFloorGbps = 1.0;
    /// <summary>A best result within [floor, floor x this) is WARN: passing, but too close to call.</summary>
    public const double WarnBand = 1.05;

    public static VerdictRow Judge(TestOutcome o, string host)
    {
        var j = o.End switch
        {
            TestEnd.Completed => o.Test switch
            {
                kiln_test_kind.KILN_TEST_MEMTEST => JudgeMemtest(o),
                kiln_test_kind.KILN_TEST_STREAM => JudgeStream(o),
                _ => Skip($"no verdict rule for {o.TestKey} yet"),
            },
            // Data errors found before a cancel are real: the run was cut short, the memory is still bad.
            TestEnd.Cancelled when DataErrors(o) > 0 => Errors(o, "cancelled before the end"),
            TestEnd.Cancelled or TestEnd.NotRun => Skip("cancelled"),
            TestEnd.Unsupported => Skip($"unsupported: {o.Detail}"),
            _ => new Judgement(VerdictStatus.FAIL, "", null, null, "", $"could not run: {o.Detail}"),
        };
        var reason = o.Injected ? j.Reason + " (injected)" : j.Reason;
        return new VerdictRow(host, o.TestKey, o.Device.Backend, o.Device.Index, j.Status, j.Metric, j.Value,
            j.Threshold, j.Unit, reason);
    }

    /// <summary>FAIL if any row failed; INCOMPLETE if cancelled or nothing was verified; else PASS.</summary>
    public static NodeVerdict Overall(IReadOnlyCollection<VerdictRow> rows, bool cancelled)
    {
        if (rows.Any(r => r.Status == VerdictStatus.FAIL)) return NodeVerdict.FAIL;
        if (cancelled || !rows.Any(r => r.Status is VerdictStatus.PASS or VerdictStatus.WARN)) return NodeVerdict.INCOMPLETE;
        return NodeVerdict.PASS;
    }

    public static int ExitCode(NodeVerdict verdict) => verdict == NodeVerdict.PASS ? ExitCodes.Passed : ExitCodes.Failed;

    /// <summary>The GB/s each stream op must reach on this device, and how the floor was chosen.</summary>
    public static (double FloorGbps, string Basis) StreamFloor(Kiln.Native.DeviceInfo device) =>
        device.PeakMemoryBandwidthGbps > 0
            ? (StreamPeakFraction * device.PeakMemoryBandwidthGbps,
               $"{StreamPeakFraction * 100:0}% of peak {Gbps(device.PeakMemoryBandwidthGbps)}")
            : (StreamSanityFloorGbps, "a sanity floor: device peak unknown");

    /// <summary>The best GB/s an op reached: the max over its per-iteration (copy_gbps) and best-of (copy_gbps_best) metrics.</summary>
    public static double? StreamBest(TestOutcome o, string op)
    {
        var values = new[] { $"{op}_gbps", $"{op}_gbps_best" }
            .SelectMany(name => o.Metrics.TryGetValue(name, out var v) ? v : []).ToList();
        return values.Count > 0 ? values.Max() : null;
    }

    private static Judgement JudgeMemtest(TestOutcome o)
    {
        if (DataErrors(o) > 0) return Errors(o, null);
        if (o.Last("errors_total") is null)
            return new(VerdictStatus.FAIL, "errors_total", null, 0, "count", "memtest reported no errors_total: nothing was verified");
        var patterns = string.Join(", ", Catalog.PatternsIn(o.Parameters.PatternMask));
        return new(VerdictStatus.PASS, "errors_total", 0, 0, "count", $"no data errors ({patterns})");
    }

    private static Judgement JudgeStream(TestOutcome o)
    {
        if (DataErrors(o) > 0) return Errors(o, null);
        var (floor, basis) = StreamFloor(o.Device);
        var ops = Catalog.OpsIn(o.Parameters.OpMask).Select(op => (Op: op, Best: StreamBest(o, op))).ToList();
        var missing = ops.FirstOrDefault(x => x.Best is null);
        if (missing.Op != null)
            return new(VerdictStatus.FAIL, $"{missing.Op}_gbps", null, floor, "GB/s", $"stream reported no {missing.Op} bandwidth");

        var (worstOp, worstBest) = ops.MinBy(x => x.Best!.Value);
        var worst = worstBest!.Value;
        var all = string.Join(", ", ops.Select(x => $"{x.Op} {Gbps(x.Best!.Value)}"));
        var status = worst < floor ? VerdictStatus.FAIL : worst < floor * WarnBand ? VerdictStatus.WARN : VerdictStatus.PASS;
        var relation = status switch
        {
            VerdictStatus.FAIL => "is below the floor",
            VerdictStatus.WARN => $"is within {(WarnBand - 1) * 100:0}% of the floor",
            _ => "clears the floor",
        };
        return new(status, $"{worstOp}_gbps", worst, floor, "GB/s",
            $"slowest: {worstOp} {Gbps(worst)} {relation} {Gbps(floor)} ({basis}); best per op: {all}");
    }

    /// <summary>Wrong words a test found: every one is counted natively, even past the reporting cap.</summary>
    public static long DataErrors(TestOutcome o) =>
        Math.Max(o.DataErrorsReported, (long)(o.Last("errors_total") ?? 0));

    private static Judgement Errors(TestOutcome o, string? note)
    {
        var count = DataErrors(o);
        var reason = $"{count} data error{(count == 1 ? "" : "s")}";
        if (o.FirstError is { } first)
            reason += $", first at offset 0x{first.OffsetBytes:x} ({first.Pattern}, bits {string.Join(';', first.FlippedBits)})";
        if (note != null) reason += $"; {note}";
        return new(VerdictStatus.FAIL, "errors_total", count, 0, "count", reason);
    }

    private static Judgement Skip(string reason) => new(VerdictStatus.SKIP, "", null, null, "", reason);

    private static string Gbps(double value) => value.ToString("0.0", CultureInfo.InvariantCulture) + " GB/s";

    private readonly record struct Judgement(VerdictStatus Status, string Metric, double? Value, double? Threshold,
        string Unit, string Reason);
}
