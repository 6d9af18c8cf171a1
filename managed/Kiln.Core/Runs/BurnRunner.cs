// A burn: the plan's health checks, then the planned tests, every device at once, each in its own
// worker process (DeviceLane) running its tests in plan order (a soak plan: pass after pass until
// its duration is spent), re-measuring borderline results and stopping a test at its deadline from
// outside, each verdict written as its test ends; then the devices compared with each other
// (Consensus), the closing health checks, the plots,
// junit.xml, kiln.prom, the final summary and report.html (from what the burn holds, not its files).
// Cancellation stops the running test and skips the rest.
using Kiln.Core.Evaluation;
using Kiln.Core.Plans;
using Kiln.Core.Profiles;
using Kiln.Core.Results;
using Kiln.Core.Telemetry;

namespace Kiln.Core.Runs;

public sealed record BurnResult(IReadOnlyList<TestOutcome> Outcomes, IReadOnlyList<VerdictRow> Verdicts,
    NodeVerdict Verdict, int ExitCode, IReadOnlyList<string> Plots);

/// <param name="Duration">How long a looping plan runs (--duration, else the plan's); ignored by one-pass plans.</param>
/// <param name="KernelLogFile">--kmsg: the kernel log telemetry follows for Xids instead of /dev/kmsg.</param>
public sealed record BurnSettings(Plan Plan, Profile Profile, TimeSpan? Duration = null, string? KernelLogFile = null)
{
    /// <summary>How to start the device workers; null runs every test in this process, one after another.</summary>
    public WorkerLaunch? Workers { get; init; }

    /// <summary>One device at a time (--serial, for debugging); otherwise every device at once.</summary>
    public bool Serial { get; init; }

    /// <summary>The burn's devices, for the tests that span several (allreduce over the node's GPUs).</summary>
    public IReadOnlyList<Kiln.Native.Device> Devices { get; init; } = [];
}

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
        // A results disk that fills (or fails) stops the run: what was measured stays on disk, the
        // node verdict is FAIL, and nothing written after it claims to be complete.
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancel);
        var lost = new ResultsLost(stop, context.Observer.Warning);
        context = context with { Lost = lost };
        var userCancel = cancel;
        cancel = stop.Token;
        List<TestOutcome> outcomes;
        List<VerdictRow> tested;
        int passes;
        using (var lanes = new Lanes(settings.Workers))
            (outcomes, tested, passes) = settings.Plan.Loop
                ? Soak(tests, context, settings, before, lanes, cancel)
                : OnePass(tests, context, settings, before, lanes, cancel);
        // The network tests, once per node, after the devices' (docs/NETWORK.md).
        foreach (var (outcome, verdict) in Net.NetworkTests.Run(settings.Plan, settings.Devices, context, settings.Profile, cancel))
        {
            outcomes.Add(outcome);
            tested.Add(verdict);
        }
        // The devices against each other: gemm's random product must be the same bytes on each.
        var compared = Consensus.Verdicts(outcomes, context.Host);
        if (!settings.Plan.Loop) lost.Keep(() => { foreach (var row in compared) files.Verdicts!.Write(row); });
        tested.AddRange(compared);
        // Telemetry's verdicts (test=telemetry: new ECC, Xids, sustained throttling) join the tests'.
        var watched = telemetry.Finish();
        lost.Keep(() =>
        {
            if (settings.Plan.Loop) VerdictFile.Write(files.Folder.File("verdicts.csv"), [.. before is null ? [] : new[] { before }, .. tested, .. watched]);
            else foreach (var row in watched) files.Verdicts!.Write(row);
        });
        var after = HealthPhase(health, "after", settings.Plan.HealthAfter, context, cancel);
        List<VerdictRow> verdicts = [.. before is null ? [] : new[] { before }, .. tested, .. watched, .. after is null ? [] : new[] { after }];
        if (after != null)
        {
            lost.Keep(() =>
            {
                if (settings.Plan.Loop) VerdictFile.Write(files.Folder.File("verdicts.csv"), verdicts);
                else files.Verdicts!.Write(after);
            });
        }
        if (lost.Error is { } io)
            verdicts.Add(new VerdictRow(context.Host, "results", "node", PlanHealth.NodeLevel, VerdictStatus.FAIL, "", null, null, "",
                $"results could not be written ({io.Message}): the run stopped there; what was measured before it is on disk"));

        var cancelled = userCancel.IsCancellationRequested || outcomes.Any(o => o.End is TestEnd.Cancelled or TestEnd.NotRun);
        // A telemetry PASS proves no test ran: it must not turn INCOMPLETE into PASS.
        var node = Evaluator.Overall(verdicts.Where(v => !(v.Test == TelemetryRules.TestName && v.Status == VerdictStatus.PASS)).ToList(), cancelled);
        var exitCode = Evaluator.ExitCode(node);
        // Figures and pages are evidence, not the verdict: a missing font or drawing library must not
        // turn a measured verdict into a crash.
        IReadOnlyList<string> plots = Guard(context, "plots", () => Plots.Write(files.Folder, outcomes, settings.Profile, context.Host)) ?? [];
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
        // On a full disk these fail too, and summary.json keeps saying INCOMPLETE.
        lost.Keep(() => JUnitWriter.Write(files.Folder.File("junit.xml"), final, verdicts));
        lost.Keep(() => VerdictExposition.Write(files.Folder.File("kiln.prom"), final, verdicts));
        if (lost.Error is null) lost.Keep(() => SummaryJson.Write(summaryPath, final));
        if (lost.Error is null) Guard(context, "report.html", () => RunPage.Write(files.Folder, final, verdicts, outcomes, health.Findings, plots));
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
        BurnSettings settings, VerdictRow? before, Lanes lanes, CancellationToken cancel)
    {
        if (before != null) context.Files!.Verdicts!.Write(before);
        var (outcomes, verdicts) = Pass(tests, context, settings, lanes, cancel, context.Files!.Verdicts!.Write);
        return (outcomes, verdicts, 1);
    }

    /// <summary>
    /// Pass after pass until the duration is spent (checked between passes, so every test runs as
    /// often as the others). Each (test, device) keeps its worst pass; verdicts.csv is rewritten
    /// after every pass, so a killed soak keeps the verdicts of the passes it finished.
    /// </summary>
    private static (List<TestOutcome>, List<VerdictRow>, int) Soak(IReadOnlyList<PlannedTest> tests, RunContext context,
        BurnSettings settings, VerdictRow? before, Lanes lanes, CancellationToken cancel)
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
            var (outcomes, verdicts) = Pass(tests, context, settings, lanes, cancel, _ => { });
            for (var i = 0; i < tests.Count; i++)
                if (worst[i].Verdict is null || Severity(verdicts[i].Status) > Severity(worst[i].Verdict.Status))
                    worst[i] = (outcomes[i], verdicts[i], pass);
            VerdictFile.Write(context.Files!.Folder.File("verdicts.csv"), before is null ? Rows() : [before, .. Rows()]);
        }
        while (!cancel.IsCancellationRequested && DateTimeOffset.UtcNow < deadline);
        return (worst.Select(w => w.Outcome).ToList(), Rows(), pass);
    }

    /// <summary>
    /// Every planned test once: each device's tests in plan order on that device's lane, the devices
    /// at once (one after another with --serial, or without workers). Results in plan order.
    /// </summary>
    private static (List<TestOutcome>, List<VerdictRow>) Pass(IReadOnlyList<PlannedTest> tests, RunContext context,
        BurnSettings settings, Lanes lanes, CancellationToken cancel, Action<VerdictRow> judged)
    {
        var outcomes = new TestOutcome[tests.Count];
        var verdicts = new VerdictRow[tests.Count];
        var gate = new Lock();
        var byDevice = tests.Select((t, i) => (Test: t, Index: i)).GroupBy(x => Lanes.Key(x.Test.Device.Info)).ToList();
        void RunDevice(List<(PlannedTest Test, int Index)> mine)
        {
            for (var k = 0; k < mine.Count; k++)
            {
                TestOutcome outcome;
                VerdictRow verdict;
                try
                {
                    (outcome, verdict) = RunTest(mine[k].Test, context, settings, lanes.For(mine[k].Test.Device.Info), k + 1, mine.Count, cancel);
                }
                catch (IOException e)
                {
                    // The results disk: recorded, the run stops, this test's row says why.
                    context.Lost!.Stop(e);
                    var planned = mine[k].Test;
                    outcome = new TestOutcome(planned.Spec.Test, planned.Device.Info, planned.Parameters)
                    {
                        End = TestEnd.Failed, Detail = $"results could not be written: {e.Message}",
                    };
                    verdict = Evaluator.Judge(outcome, context.Host, settings.Profile);
                }
                lock (gate)
                {
                    context.Lost!.Keep(() => judged(verdict));
                    (outcomes[mine[k].Index], verdicts[mine[k].Index]) = (outcome, verdict);
                }
            }
        }
        if (settings.Serial || settings.Workers is null)
            foreach (var device in byDevice) RunDevice(device.ToList());
        else
        {
            var threads = byDevice.Select(device => new Thread(() => RunDevice(device.ToList()))
            {
                IsBackground = true, Name = $"kiln burn {device.Key}",
            }).ToList();
            foreach (var t in threads) t.Start();
            foreach (var t in threads) t.Join();
        }
        return (outcomes.ToList(), verdicts.ToList());
    }

    // SKIP (a cancelled last pass) never hides what earlier passes found.
    private static int Severity(VerdictStatus s) => s switch
    {
        VerdictStatus.FAIL => 3,
        VerdictStatus.WARN => 2,
        VerdictStatus.PASS => 1,
        _ => 0,
    };

    /// <summary>A test with no timeout of its own still has one: a hang must end some time.</summary>
    public static TimeSpan DeadlineOf(TestSpec spec) =>
        spec.Timeout ?? TimeSpan.FromTicks(Math.Max(TimeSpan.FromHours(1).Ticks, 3 * TimeSpan.FromMilliseconds(spec.DurationMs ?? 0).Ticks));

    /// <summary>One test on one device: run under its deadline, judged, and re-measured while borderline.</summary>
    private static (TestOutcome, VerdictRow) RunTest(PlannedTest planned, RunContext context, BurnSettings settings, ITestRunner runner,
        int ordinal, int total, CancellationToken cancel)
    {
        var deadline = DeadlineOf(planned.Spec);
        var outcome = TestExecutor.Execute(planned, context, ordinal, total, cancel, runner, deadline);
        for (var retest = 0; retest < settings.Plan.Retest && !cancel.IsCancellationRequested
                             && Evaluator.IsBorderline(outcome, settings.Profile); retest++)
        {
            var repeat = TestExecutor.Execute(planned, context, ordinal, total, cancel, runner, deadline);
            // A repeat cut short adds nothing to judge, unless it found wrong data.
            if (repeat.End != TestEnd.Completed && Evaluator.DataErrors(repeat) == 0) break;
            outcome.Absorb(repeat);
        }
        var verdict = Evaluator.Judge(outcome, context.Host, settings.Profile);
        // A FAIL cites its device's state at the time: the temperature and clocks a vendor asks for.
        if (verdict.Status == VerdictStatus.FAIL && outcome.TelemetryAtEnd is { } seen && !verdict.Reason.Contains("device telemetry then", StringComparison.Ordinal))
            verdict = verdict with { Reason = $"{verdict.Reason}; device telemetry then: {seen}" };
        context.Observer.TestFinished(outcome, verdict);
        return (outcome, verdict);
    }

    /// <summary>The first failure to write results; it stops the run.</summary>
    public sealed class ResultsLost(CancellationTokenSource stop, Action<string> warn)
    {
        private readonly Lock _gate = new();
        public IOException? Error { get; private set; }

        public void Stop(IOException e)
        {
            lock (_gate)
            {
                if (Error is not null) return;
                Error = e;
            }
            warn($"results could not be written: {e.Message}; stopping the run");
            stop.Cancel();
        }

        /// <summary>Runs a write; an IOException stops the run instead of crashing it.</summary>
        public void Keep(Action write)
        {
            try { write(); }
            catch (IOException e) { Stop(e); }
        }
    }

    /// <summary>The runner of each device: its worker lane, or this process.</summary>
    private sealed class Lanes(WorkerLaunch? launch) : IDisposable
    {
        private readonly Dictionary<string, DeviceLane> _lanes = new(StringComparer.Ordinal);

        public static string Key(Kiln.Native.DeviceInfo d) => $"{d.Backend}{d.Index}";

        public ITestRunner For(Kiln.Native.DeviceInfo device)
        {
            if (launch is null) return InProcessRunner.Instance;
            lock (_lanes)
            {
                if (!_lanes.TryGetValue(Key(device), out var lane)) _lanes[Key(device)] = lane = new DeviceLane(launch, device);
                return lane;
            }
        }

        public void Dispose()
        {
            foreach (var lane in _lanes.Values) lane.Dispose();
        }
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
