// A burn: the plan's health checks, then the planned tests one after another (a soak plan: pass
// after pass until its duration is spent), re-measuring borderline results and stopping a test at
// its timeout, each verdict written as its test ends; then the devices compared with each other
// (Consensus), the closing health checks, the plots,
// junit.xml, kiln.prom, the final summary and report.html.
// Cancellation stops the running test and skips the rest.
using Kiln.Core.Evaluation;
using Kiln.Core.Plans;
using Kiln.Core.Profiles;
using Kiln.Core.Report;
using Kiln.Core.Results;
using Kiln.Core.Telemetry;

namespace Kiln.Core.Runs;

public sealed record BurnResult(IReadOnlyList<TestOutcome> Outcomes, IReadOnlyList<VerdictRow> Verdicts,
    NodeVerdict Verdict, int ExitCode, IReadOnlyList<string> Plots);

/// <param name="Duration">How long a looping plan runs (--duration, else the plan's); ignored by one-pass plans.</param>
/// <param name="KernelLogFile">--kmsg: the kernel log telemetry follows for Xids instead of /dev/kmsg.</param>
public sealed record BurnSettings(Plan Plan, Profile Profile, TimeSpan? Duration = null, string? KernelLogFile = null);

public static class BurnRunner
{
    /// <param name="summary">The run's identity; written now as INCOMPLETE, replaced at the end.</param>
    public static BurnResult Run(IReadOnlyList<PlannedTest> tests, RunContext context, RunSummary summary,
        BurnSettings settings, CancellationToken cancel)
    {
        var files = context.Files ?? throw new ArgumentException("a burn writes its results", nameof(context));
        var summaryPath = files.Folder.File("summary.json");
        SummaryJson.Write(summaryPath, summary with { Verdict = nameof(NodeVerdict.INCOMPLETE) });

        using var health = new PlanHealth(files.Folder, settings.Profile, context.Host, new DateTimeOffset(summary.StartUtc, TimeSpan.Zero));
        var before = HealthPhase(health, "before", settings.Plan.HealthBefore, context, cancel);
        using var telemetry = BurnTelemetry.Start(files.Folder,
            new TelemetryOptions(context.Host, settings.Profile.Health, KernelLogFile: settings.KernelLogFile), context.Observer.Warning);
        context = context with { Telemetry = telemetry };
        var (outcomes, tested, passes) = settings.Plan.Loop
            ? Soak(tests, context, settings, before, cancel)
            : OnePass(tests, context, settings, before, cancel);
        // The devices against each other: gemm's random product must be the same bytes on each.
        var compared = Consensus.Verdicts(outcomes, context.Host);
        if (!settings.Plan.Loop) foreach (var row in compared) files.Verdicts!.Write(row);
        tested.AddRange(compared);
        // Telemetry's verdicts (test=telemetry: new ECC, Xids, sustained throttling) join the tests'.
        var watched = telemetry.Finish();
        if (settings.Plan.Loop) VerdictFile.Write(files.Folder.File("verdicts.csv"), [.. before is null ? [] : new[] { before }, .. tested, .. watched]);
        else foreach (var row in watched) files.Verdicts!.Write(row);
        var after = HealthPhase(health, "after", settings.Plan.HealthAfter, context, cancel);
        List<VerdictRow> verdicts = [.. before is null ? [] : new[] { before }, .. tested, .. watched, .. after is null ? [] : new[] { after }];
        if (after != null)
        {
            if (settings.Plan.Loop) VerdictFile.Write(files.Folder.File("verdicts.csv"), verdicts);
            else files.Verdicts!.Write(after);
        }

        var cancelled = cancel.IsCancellationRequested || outcomes.Any(o => o.End is TestEnd.Cancelled or TestEnd.NotRun);
        // A telemetry PASS proves no test ran: it must not turn INCOMPLETE into PASS.
        var node = Evaluator.Overall(verdicts.Where(v => !(v.Test == TelemetryRules.TestName && v.Status == VerdictStatus.PASS)).ToList(), cancelled);
        var exitCode = Evaluator.ExitCode(node);
        // Figures and pages are evidence, not the verdict: a missing font or drawing library must not
        // turn a measured verdict into a crash.
        IReadOnlyList<string> plots = Guard(context, "plots", () => Plots.Write(files.Folder, outcomes, settings.Profile)) ?? [];
        plots = [.. plots, .. Guard(context, "telemetry plots", () => telemetry.WritePlots(files.Folder)) ?? []];
        var final = summary with
        {
            EndUtc = DateTime.UtcNow,
            Verdict = node.ToString(),
            ExitCode = exitCode,
            Passes = settings.Plan.Loop ? passes : null,
            Counts = new SummaryCounts(
                Pass: verdicts.Count(v => v.Status == VerdictStatus.PASS),
                Warn: verdicts.Count(v => v.Status == VerdictStatus.WARN),
                Fail: verdicts.Count(v => v.Status == VerdictStatus.FAIL),
                Skip: verdicts.Count(v => v.Status == VerdictStatus.SKIP),
                Metrics: files.Metrics.RowCount,
                DataErrors: outcomes.Sum(Evaluator.DataErrors)),
        };
        JUnitWriter.Write(files.Folder.File("junit.xml"), final, verdicts);
        VerdictExposition.Write(files.Folder.File("kiln.prom"), final, verdicts);
        SummaryJson.Write(summaryPath, final);
        Guard(context, "report.html", () => RunReport.Write(files.Folder.Path));
        return new BurnResult(outcomes, verdicts, node, exitCode, plots);
    }

    /// <summary>A phase of the plan's health checks, or null when the plan lists none (or the burn was cancelled).</summary>
    private static VerdictRow? HealthPhase(PlanHealth health, string phase, IReadOnlyList<string> sources, RunContext context, CancellationToken cancel)
    {
        if (sources.Count == 0 || cancel.IsCancellationRequested) return null;
        VerdictRow row;
        try
        {
            row = health.Run(phase, sources);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            // A plan that asks for health checks never passes without them.
            row = new VerdictRow(context.Host, $"health_{phase}", "node", PlanHealth.NodeLevel, VerdictStatus.FAIL, "", null, null, "",
                $"health checks could not run: {e.GetType().Name}: {e.Message}");
        }
        if (row is { Status: VerdictStatus.FAIL or VerdictStatus.WARN })
            context.Observer.Warning($"health {phase}: {row.Status}: {row.Reason}");
        return row;
    }

    private static (List<TestOutcome>, List<VerdictRow>, int) OnePass(IReadOnlyList<PlannedTest> tests, RunContext context,
        BurnSettings settings, VerdictRow? before, CancellationToken cancel)
    {
        if (before != null) context.Files!.Verdicts!.Write(before);
        var outcomes = new List<TestOutcome>();
        var verdicts = new List<VerdictRow>();
        for (var i = 0; i < tests.Count; i++)
        {
            var (outcome, verdict) = RunTest(tests[i], context, settings, i + 1, tests.Count, cancel);
            context.Files!.Verdicts!.Write(verdict);
            outcomes.Add(outcome);
            verdicts.Add(verdict);
        }
        return (outcomes, verdicts, 1);
    }

    /// <summary>
    /// Pass after pass until the duration is spent (checked between passes, so every test runs as
    /// often as the others). Each (test, device) keeps its worst pass; verdicts.csv is rewritten
    /// after every pass, so a killed soak keeps the verdicts of the passes it finished.
    /// </summary>
    private static (List<TestOutcome>, List<VerdictRow>, int) Soak(IReadOnlyList<PlannedTest> tests, RunContext context,
        BurnSettings settings, VerdictRow? before, CancellationToken cancel)
    {
        var duration = settings.Duration ?? settings.Plan.Duration
            ?? throw new UsageException(OptionNames.Duration, $"plan '{settings.Plan.Name}' loops: give --duration (e.g. 24h)");
        var deadline = DateTimeOffset.UtcNow + duration;
        var worst = new (TestOutcome Outcome, VerdictRow Verdict, int Pass)[tests.Count];
        var pass = 0;
        List<VerdictRow> Rows() => worst.Select(w => w.Verdict with
        {
            Reason = $"{w.Verdict.Reason}; worst of {pass} pass{(pass == 1 ? "" : "es")}: pass {w.Pass}",
        }).ToList();
        do
        {
            pass++;
            for (var i = 0; i < tests.Count; i++)
            {
                var (outcome, verdict) = RunTest(tests[i], context, settings, i + 1, tests.Count, cancel);
                if (worst[i].Verdict is null || Severity(verdict.Status) > Severity(worst[i].Verdict.Status))
                    worst[i] = (outcome, verdict, pass);
            }
            VerdictFile.Write(context.Files!.Folder.File("verdicts.csv"), before is null ? Rows() : [before, .. Rows()]);
        }
        while (!cancel.IsCancellationRequested && DateTimeOffset.UtcNow < deadline);
        return (worst.Select(w => w.Outcome).ToList(), Rows(), pass);
    }

    // SKIP (a cancelled last pass) never hides what earlier passes found.
    private static int Severity(VerdictStatus s) => s switch
    {
        VerdictStatus.FAIL => 3,
        VerdictStatus.WARN => 2,
        VerdictStatus.PASS => 1,
        _ => 0,
    };

    /// <summary>One test on one device: run under its timeout, judged, and re-measured while borderline.</summary>
    private static (TestOutcome, VerdictRow) RunTest(PlannedTest planned, RunContext context, BurnSettings settings,
        int ordinal, int total, CancellationToken cancel)
    {
        var outcome = RunWithTimeout(planned, context, ordinal, total, cancel);
        for (var retest = 0; retest < settings.Plan.Retest && !cancel.IsCancellationRequested
                             && Evaluator.IsBorderline(outcome, settings.Profile); retest++)
        {
            var repeat = RunWithTimeout(planned, context, ordinal, total, cancel);
            // A repeat cut short adds nothing to judge, unless it found wrong data.
            if (repeat.End != TestEnd.Completed && Evaluator.DataErrors(repeat) == 0) break;
            outcome.Absorb(repeat);
        }
        var verdict = Evaluator.Judge(outcome, context.Host, settings.Profile);
        context.Observer.TestFinished(outcome, verdict);
        return (outcome, verdict);
    }

    private static TestOutcome RunWithTimeout(PlannedTest planned, RunContext context, int ordinal, int total, CancellationToken cancel)
    {
        if (planned.Spec.Timeout is not { } timeout) return TestExecutor.Execute(planned, context, ordinal, total, cancel);
        using var limit = CancellationTokenSource.CreateLinkedTokenSource(cancel);
        limit.CancelAfter(timeout);
        var outcome = TestExecutor.Execute(planned, context, ordinal, total, limit.Token);
        if (outcome.End == TestEnd.Cancelled && !cancel.IsCancellationRequested)
            (outcome.End, outcome.Detail) = (TestEnd.TimedOut, $"timed out: still running after {Durations.Format(timeout)} (plan timeout), stopped");
        return outcome;
    }

    private static T? Guard<T>(RunContext context, string what, Func<T> write) where T : class
    {
        try
        {
            return write();
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            context.Observer.Warning($"{what} not written: {e.GetType().Name}: {e.Message}");
            return null;
        }
    }

    private static void Guard(RunContext context, string what, Action write) =>
        Guard<object>(context, what, () => { write(); return new object(); });
}
