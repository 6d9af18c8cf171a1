// Runs one test on one device: streams every metric and data error into the CSV files and the
// observer as the native side reports them, and records how the test ended.
using System.Security.Cryptography;
using Kiln.Core.Evaluation;
using Kiln.Core.Plans;
using Kiln.Core.Results;
using Kiln.Native;

namespace Kiln.Core.Runs;

/// <summary>Identity of a run and where its rows go; Files is null when nothing is written (bench without --out).</summary>
public sealed record RunContext(string Host, string RunId, ResultFiles? Files, IRunObserver Observer)
{
    /// <summary>The burn's telemetry, when it samples: the power test's draw comes from it.</summary>
    public Kiln.Core.Telemetry.BurnTelemetry? Telemetry { get; init; }

    /// <summary>A burn's record of a results disk that failed; null outside a burn.</summary>
    public BurnRunner.ResultsLost? Lost { get; init; }

    /// <summary>The start time and 24 random bits: unique even for two runs in the same second.</summary>
    public static string NewRunId(DateTimeOffset start) =>
        $"{start.UtcDateTime:yyyyMMdd'T'HHmmss'Z'}-{Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(3))}";
}

/// <summary>A test ready to run on one device, with its validated parameters.</summary>
public sealed record PlannedTest(TestSpec Spec, Device Device, TestParams Parameters)
{
    /// <summary>Set when validation found the backend cannot run this test: it is skipped, with this reason.</summary>
    public string? Unsupported { get; init; }
}

public static class TestExecutor
{
    /// <summary>Runs one planned test through runner (in this process, or the device's worker) under timeout.</summary>
    public static TestOutcome Execute(PlannedTest planned, RunContext context, int ordinal, int total, CancellationToken cancel,
        ITestRunner? runner = null, TimeSpan? timeout = null)
    {
        var outcome = new TestOutcome(planned.Spec.Test, planned.Device.Info, planned.Parameters);
        if (planned.Unsupported is { } why)
        {
            (outcome.End, outcome.Detail) = (TestEnd.Unsupported, why);
            return outcome;
        }
        if (cancel.IsCancellationRequested) return outcome;   // NotRun
        if (runner?.Retired is { } retired)
        {
            (outcome.End, outcome.Detail) = (TestEnd.Skipped, retired);
            return outcome;
        }

        context.Observer.TestStarted(outcome, ordinal, total);
        // What telemetry sees of the device while the test runs: the burner's power draw is the
        // board's, every data error cites the SM clock of its moment, and a hang or crash its state.
        using var window = context.Telemetry?.Watch(planned.Device.Info.PciBusId);
        var recorder = new Recorder(context, outcome, window);
        (outcome.End, outcome.Detail) = (runner ?? InProcessRunner.Instance).Run(planned, recorder, timeout, cancel);
        outcome.TelemetryAtEnd = window?.Describe();
        if (outcome.End is TestEnd.Hung or TestEnd.Crashed && outcome.TelemetryAtEnd is { } seen)
            outcome.Detail += $"; device telemetry then: {seen}";
        if (window != null && outcome.End == TestEnd.Completed && planned.Spec.Test == TestKind.Power)
            foreach (var (name, value, unit) in window.Metrics())
                recorder.OnMetric(new Metric(Catalog.Key(planned.Spec.Test), name, value, unit, outcome.Injected));
        return outcome;
    }

    /// <summary>The sink handed to the native test (and to the network probes): each callback becomes a flushed row at once.</summary>
    internal sealed class Recorder(RunContext context, TestOutcome outcome, Kiln.Core.Telemetry.TelemetryWindow? window) : ITestSink
    {
        public void OnMetric(in Metric metric)
        {
            outcome.Add(metric);
            context.Files?.Metrics.Write(new MetricRow(DateTimeOffset.UtcNow, context.Host, context.RunId, metric.Test,
                outcome.Device.Backend, outcome.Device.Index, metric.Name, metric.Value, metric.Unit, metric.Injected));
            context.Observer.MetricMeasured(outcome, metric);
        }

        public void OnDataError(in DataError error)
        {
            outcome.Add(error);
            context.Files?.Errors.Write(new ErrorRow(DateTimeOffset.UtcNow, context.Host, error.Test, outcome.Device.Backend,
                outcome.Device.Index, error.Pattern, error.OffsetBytes, error.Expected, error.Actual, error.FlippedBits,
                error.Sm >= 0 ? error.Sm : null, window?.LatestSmClockMhz));
            context.Observer.DataErrorFound(outcome, error);
        }

        public void OnProgress(double fraction) => context.Observer.Progress(outcome, fraction);
    }
}
