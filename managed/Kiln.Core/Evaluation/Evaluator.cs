// Turns a test's outcome on one device into its verdict row (PASS, WARN, FAIL, SKIP) against the
// profile's thresholds, says when a result is too close to call (re-measure it), and folds a run's
// rows into the node verdict. Every rule here can fail, and says why in the reason.
using Kiln.Core.Profiles;
using Kiln.Core.Results;
using Kiln.Native;

namespace Kiln.Core.Evaluation;

public enum NodeVerdict { PASS, FAIL, INCOMPLETE }

/// <summary>One threshold applied to one outcome: the worst value of the metrics it covers against its limit.</summary>
public sealed record Assessment(Threshold Threshold, string Metric, double Value, double Limit, string Basis, double Margin);

public static class Evaluator
{
    /// <summary>Tests whose kernels verify every value they move or compute: with no threshold, verified data is a PASS.</summary>
    private static readonly HashSet<TestKind> VerifyingTests =
        [TestKind.Stream, TestKind.Memtest, TestKind.Gemm, TestKind.Copy,
         TestKind.Power];  // the burner checks every register it ends on

    public static VerdictRow Judge(TestOutcome o, string host, Profile profile)
    {
        var j = o.End switch
        {
            TestEnd.Completed => JudgeCompleted(o, profile),
            // Data errors found before a cancel or a timeout are real: the memory is still bad.
            TestEnd.Cancelled or TestEnd.TimedOut when DataErrors(o) > 0 => Errors(o, o.End == TestEnd.TimedOut ? o.Detail : "cancelled before the end"),
            TestEnd.TimedOut => new Judgement(VerdictStatus.FAIL, "", null, null, "", o.Detail),
            TestEnd.Cancelled or TestEnd.NotRun => Skip("cancelled"),
            TestEnd.Unsupported => Skip($"unsupported: {o.Detail}"),
            TestEnd.Skipped => Skip(o.Detail),
            // A hang, a crash or a broken worker fails the device, data errors found before it or not.
            TestEnd.Hung or TestEnd.Crashed or TestEnd.Protocol => new Judgement(VerdictStatus.FAIL, "", null, null, "",
                DataErrors(o) > 0 ? $"{o.Detail}; {DataErrors(o)} data error(s) before it" : o.Detail),
            _ => new Judgement(VerdictStatus.FAIL, "", null, null, "", $"could not run: {o.Detail}"),
        };
        if (o.Attempts > 1 && o.End == TestEnd.Completed && DataErrors(o) == 0) j = EveryAttempt(o, profile);
        var reason = j.Reason;
        if (o.Injected) reason += " (injected)";
        return new VerdictRow(host, o.TestKey, o.Device.Backend, o.Device.Index, j.Status, j.Metric, j.Value,
            j.Threshold, j.Unit, reason);
    }

    /// <summary>
    /// Too close to call: the worst margin lies within the WARN band above the limit or the same
    /// distance below it ([1 - band, 1 + band)). Such a result is measured again (plan retest) before
    /// it is called; a clear PASS or a clear FAIL, data errors, or a test that did not complete are not.
    /// </summary>
    public static bool IsBorderline(TestOutcome o, Profile profile)
    {
        if (o.End != TestEnd.Completed || DataErrors(o) > 0) return false;
        var worst = Assess(o, profile).Judged.MinBy(a => a.Margin);
        return worst != null && worst.Margin >= 1 - profile.WarnBand && worst.Margin < 1 + profile.WarnBand;
    }

    /// <summary>
    /// FAIL if any row failed (health checks included); INCOMPLETE if cancelled or no test on a device
    /// passed (a passing health check alone tested nothing); else PASS.
    /// </summary>
    public static NodeVerdict Overall(IReadOnlyCollection<VerdictRow> rows, bool cancelled)
    {
        if (rows.Any(r => r.Status == VerdictStatus.FAIL)) return NodeVerdict.FAIL;
        if (cancelled || !rows.Any(r => r.Device >= 0 && r.Status is VerdictStatus.PASS or VerdictStatus.WARN)) return NodeVerdict.INCOMPLETE;
        return NodeVerdict.PASS;
    }

    public static int ExitCode(NodeVerdict verdict) => verdict == NodeVerdict.PASS ? ExitCodes.Passed : ExitCodes.Failed;

    /// <summary>Status from a margin (value/floor or ceiling/value): below 1 FAIL, within the band WARN, else PASS.</summary>
    public static VerdictStatus StatusOf(double margin, double warnBand) =>
        margin < 1 ? VerdictStatus.FAIL : margin < 1 + warnBand ? VerdictStatus.WARN : VerdictStatus.PASS;

    /// <summary>The best GB/s an op reached: the max over its per-iteration (copy_gbps) and best-of (copy_gbps_best) metrics.</summary>
    public static double? StreamBest(TestOutcome o, string op)
    {
        var values = new[] { $"{op}_gbps", $"{op}_gbps_best" }
            .SelectMany(name => o.Metrics.TryGetValue(name, out var v) ? v : []).ToList();
        return values.Count > 0 ? values.Max() : null;
    }

    /// <summary>
    /// Every threshold of the profile for this test and device class, applied: judged ones with their
    /// margin, and the ones that could not be (reason). Thresholds of stream ops the plan deselected are left out.
    /// </summary>
    public static (IReadOnlyList<Assessment> Judged, IReadOnlyList<(Threshold Threshold, string Problem, bool Fails)> Unjudged)
        Assess(TestOutcome o, Profile profile)
    {
        var judged = new List<Assessment>();
        var unjudged = new List<(Threshold, string, bool)>();
        foreach (var t in profile.For(o.TestKey, Profile.ClassOf(o.Device)).Where(t => Selected(o, t.Metric)))
        {
            var limit = t.Resolve(o.Device);
            if (limit is not { } l)
            {
                unjudged.Add((t, $"{t.Metric}: no limit (device peak unknown, no fallback min in {t.Origin})", false));
                continue;
            }
            var covered = o.Metrics.Where(m => t.Covers(m.Key) && m.Value.Count > 0).ToList();
            if (covered.Count == 0)
            {
                // A matrix on a node with one device has no pairs: the test says so with <metric>_pairs = 0.
                if (o.Last($"{t.Metric}_pairs") is 0) continue;
                unjudged.Add((t, $"{o.TestKey} reported no {t.Metric}", true));
                continue;
            }
            Assessment? worst = null;
            foreach (var (name, values) in covered)
            {
                var q = Units.Convert(t.Best(values), o.UnitOf(name));
                if (q is not { } value || value.Kind != t.Kind)
                {
                    unjudged.Add((t, $"{name} is in '{o.UnitOf(name)}', not a {Units.Describe(t.Kind)} unit: not judged", false));
                    continue;
                }
                var a = new Assessment(t, name, value.Value, l.Limit, l.Basis, t.Margin(value.Value, l.Limit));
                if (worst is null || a.Margin < worst.Margin) worst = a;
            }
            if (worst != null) judged.Add(worst);
        }
        return (judged, unjudged);
    }

    /// <summary>Stream thresholds on ops the plan did not run (ops: [triad]) do not apply.</summary>
    private static bool Selected(TestOutcome o, string metric)
    {
        if (o.Test != TestKind.Stream) return true;
        var op = metric.Split('_')[0];
        return !Catalog.StreamOps.ContainsKey(op) || Catalog.OpsIn(o.Parameters.OpMask).Contains(op);
    }

    private static Judgement JudgeCompleted(TestOutcome o, Profile profile)
    {
        if (DataErrors(o) > 0) return Errors(o, null);
        var verified = "";
        if (o.Test == TestKind.Memtest)
        {
            if (o.Last("errors_total") is null)
                return new(VerdictStatus.FAIL, "errors_total", null, 0, "count", "memtest reported no errors_total: nothing was verified");
            verified = $"no data errors ({string.Join(", ", Catalog.PatternsIn(o.Parameters.PatternMask))})";
        }
        else if (VerifyingTests.Contains(o.Test) && (o.Test != TestKind.Power || o.Last("errors_total") is not null))
        {
            // The burner's registers count as verified only when it said how many were wrong.
            verified = "no data errors";
        }

        var (judged, unjudged) = Assess(o, profile);
        if (unjudged.FirstOrDefault(u => u.Fails) is { Threshold: { } missing } fail)
            return new(VerdictStatus.FAIL, missing.Metric, null, missing.Resolve(o.Device)?.Limit, missing.Unit, fail.Problem);
        var notes = unjudged.Select(u => u.Problem).ToList();
        if (judged.Count == 0)
        {
            var why = $"no threshold for {Profile.ClassOf(o.Device).ToString().ToLowerInvariant()} {o.TestKey} in profile {profile.Name}";
            if (notes.Count > 0) why = string.Join("; ", notes);
            if (o.Test == TestKind.Memtest)
                return new(VerdictStatus.PASS, "errors_total", 0, 0, "count", verified);
            return verified.Length > 0
                ? new(VerdictStatus.PASS, "errors_total", 0, 0, "count", $"{verified}; performance not judged: {why}")
                : Skip($"measured, not judged: {why}");
        }

        // A threshold of severity warn never fails a run: past its limit it is WARN. The worst status
        // decides before the smallest margin, so a FAIL is never hidden behind a warn-only threshold.
        VerdictStatus StatusOfAssessment(Assessment a) =>
            StatusOf(a.Margin, profile.WarnBand) is var s && s == VerdictStatus.FAIL && a.Threshold.Severity == ThresholdSeverity.Warn ? VerdictStatus.WARN : s;
        var worst = judged.OrderBy(a => Rank(StatusOfAssessment(a))).ThenBy(a => a.Margin).First();
        var status = StatusOfAssessment(worst);
        var t = worst.Threshold;
        var relation = (t.Direction, status) switch
        {
            (Direction.AtLeast, VerdictStatus.FAIL) => "is below the floor",
            (Direction.AtLeast, VerdictStatus.WARN) when worst.Margin < 1 => "is below the warn-only floor",
            (Direction.AtMost, VerdictStatus.WARN) when worst.Margin < 1 => "is above the warn-only ceiling",
            (Direction.AtLeast, VerdictStatus.WARN) => $"is within {profile.WarnBand * 100:0.#}% above the floor",
            (Direction.AtLeast, _) => "clears the floor",
            (_, VerdictStatus.FAIL) => "is above the ceiling",
            (_, VerdictStatus.WARN) => $"is within {profile.WarnBand * 100:0.#}% under the ceiling",
            _ => "is under the ceiling",
        };
        var reason = $"{worst.Metric} {Units.Format(worst.Value, t.Kind)} {relation} {Units.Format(worst.Limit, t.Kind)} ({worst.Basis})";
        if (judged.Count > 1)
            reason += "; all: " + string.Join(", ", judged.Select(a => $"{a.Metric} {Units.Format(a.Value, a.Threshold.Kind)}"));
        if (verified.Length > 0) reason += $"; {verified}";
        if (notes.Count > 0) reason += "; " + string.Join("; ", notes);
        return new(status, worst.Metric, worst.Value, worst.Limit, t.Unit, reason, worst.Margin);
    }

    /// <summary>
    /// A re-measured result is judged on every attempt, never on the best one alone: a FAIL that a
    /// later attempt did not repeat is WARN "intermittent" with both values (slowness that comes and
    /// goes is a finding); otherwise the worst attempt decides.
    /// </summary>
    private static Judgement EveryAttempt(TestOutcome o, Profile profile)
    {
        var attempts = o.AttemptOutcomes.Select(a => a.End == TestEnd.Completed ? JudgeCompleted(a, profile) : (Judgement?)null)
            .Where(j => j != null).Select(j => j!.Value).ToList();
        string Value(Judgement j) => j.Value is { } v ? $"{j.Metric} {v:G4} {j.Unit}".TrimEnd() : j.Status.ToString();
        var list = string.Join(", ", attempts.Select((j, i) => $"attempt {i + 1} {j.Status} ({Value(j)})"));
        var worst = attempts.OrderBy(j => Rank(j.Status)).ThenBy(j => j.Margin).First();
        if (worst.Status == VerdictStatus.FAIL && attempts.Any(j => j.Status != VerdictStatus.FAIL))
        {
            var fail = worst;
            return fail with { Status = VerdictStatus.WARN, Reason = $"intermittent: {list}; {fail.Reason}" };
        }
        return worst with { Reason = $"{worst.Reason}; judged on every attempt: {list}" };
    }

    // FAIL first, then WARN, PASS, SKIP.
    private static int Rank(VerdictStatus s) => s switch
    {
        VerdictStatus.FAIL => 0,
        VerdictStatus.WARN => 1,
        VerdictStatus.PASS => 2,
        _ => 3,
    };

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

    /// <param name="Margin">How far the judged value cleared its limit (below 1 fails); infinite when nothing was judged.</param>
    private readonly record struct Judgement(VerdictStatus Status, string Metric, double? Value, double? Threshold,
        string Unit, string Reason, double Margin = double.PositiveInfinity);
}
