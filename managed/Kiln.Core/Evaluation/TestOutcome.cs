// Everything one test run on one device produced, gathered as the sink streams it: the input of
// the evaluation. Filled from native threads (never concurrently) and read after the run. A
// borderline result's re-measurements are absorbed into the same outcome.
using Kiln.Native;

namespace Kiln.Core.Evaluation;

public enum TestEnd
{
    NotRun,        // never started: the run was cancelled before it
    Completed,     // the native test returned KILN_OK
    Cancelled,     // stopped part way by Ctrl-C / SIGTERM
    TimedOut,      // stopped by the plan's per-test timeout: a hang or a crawl, judged FAIL
    Unsupported,   // the backend cannot run this test
    Failed,        // the test could not run (out of memory, backend error ...)
    Hung,          // its worker did not stop after the deadline and the cancel, and was killed
    Crashed,       // its worker died (a signal, an exit) while the test ran
    Protocol,      // its worker wrote something that is not a worker event
    Skipped,       // not run: the device was retired after an earlier hang, crash or protocol failure
}

public sealed class TestOutcome(TestKind test, DeviceInfo device, TestParams parameters)
{
    private readonly Dictionary<string, List<double>> _metrics = new(StringComparer.Ordinal);
    private readonly Dictionary<string, string> _units = new(StringComparer.Ordinal);

    public TestKind Test { get; } = test;
    public string TestKey => Catalog.Key(Test);
    public DeviceInfo Device { get; } = device;
    public TestParams Parameters { get; } = parameters;
    public bool Injected => Parameters.Injected || _anyInjected;

    public TestEnd End { get; set; } = TestEnd.NotRun;
    /// <summary>Why the test ended as it did when it did not complete (the native error text).</summary>
    public string Detail { get; set; } = "";

    /// <summary>The device's latest telemetry sample when the test ended, in words; null where none was sampled.</summary>
    public string? TelemetryAtEnd { get; set; }

    /// <summary>How many times the test ran on this device: 1, plus each re-measurement of a borderline result.</summary>
    public int Attempts { get; private set; } = 1;

    public IReadOnlyDictionary<string, List<double>> Metrics => _metrics;
    public long DataErrorsReported { get; private set; }
    public DataError? FirstError { get; private set; }

    private bool _anyInjected;
    private readonly List<TestOutcome> _attempts = [];

    /// <summary>Each attempt as it was measured (this outcome alone until a re-measurement is absorbed).</summary>
    public IReadOnlyList<TestOutcome> AttemptOutcomes => _attempts.Count > 0 ? _attempts : [this];

    public void Add(in Metric metric) => Add(metric.Name, metric.Value, metric.Unit, metric.Injected);

    public void Add(string name, double value, string unit, bool injected = false)
    {
        if (!_metrics.TryGetValue(name, out var values))
            _metrics[name] = values = [];
        values.Add(value);
        _units[name] = unit;
        _anyInjected |= injected;
    }

    public void Add(in DataError error)
    {
        FirstError ??= error;
        DataErrorsReported++;
        _anyInjected |= error.Injected;
    }

    /// <summary>The unit the native side reported a metric in ("GB/s"), or "" when never reported.</summary>
    public string UnitOf(string metric) => _units.GetValueOrDefault(metric, "");

    /// <summary>
    /// Takes in a re-measurement: its values join this outcome's (so the best of all attempts is judged),
    /// its data errors count as this test's, and a repeat that did not complete leaves the first ending.
    /// </summary>
    public void Absorb(TestOutcome repeat)
    {
        if (_attempts.Count == 0) _attempts.Add(Snapshot());
        _attempts.Add(repeat);
        foreach (var (name, values) in repeat._metrics)
        {
            foreach (var v in values) Add(name, v, repeat._units[name]);
        }
        if (repeat.FirstError is { } first) FirstError ??= first;
        DataErrorsReported += repeat.DataErrorsReported;
        _anyInjected |= repeat._anyInjected;
        Attempts++;
    }

    // This outcome as it stands: the first attempt, before any re-measurement joins it.
    private TestOutcome Snapshot()
    {
        var copy = new TestOutcome(Test, Device, Parameters) { End = End, Detail = Detail };
        foreach (var (name, values) in _metrics)
            foreach (var v in values) copy.Add(name, v, _units[name]);
        copy.DataErrorsReported = DataErrorsReported;
        copy.FirstError = FirstError;
        copy._anyInjected = _anyInjected;
        return copy;
    }

    /// <summary>The last value reported for a metric (counters like errors_total), or null.</summary>
    public double? Last(string metric) => _metrics.TryGetValue(metric, out var v) && v.Count > 0 ? v[^1] : null;

    /// <summary>The sum of every value reported for a metric (per-round counts like errors_walking_ones), or null.</summary>
    public double? Sum(string metric) => _metrics.TryGetValue(metric, out var v) && v.Count > 0 ? v.Sum() : null;
}
