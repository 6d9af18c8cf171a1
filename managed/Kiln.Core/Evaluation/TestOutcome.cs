// Everything one test run on one device produced, gathered as the sink streams it: the input of
// the evaluation. Filled from native threads (never concurrently) and read after the run.
using Kiln.Native;
using Kiln.Native.Interop;

namespace Kiln.Core.Evaluation;

public enum TestEnd
{
    NotRun,        // never started: the run was cancelled before it
    Completed,     // the native test returned KILN_OK
    Cancelled,     // stopped part way by Ctrl-C / SIGTERM
    Unsupported,   // the backend cannot run this test
    Failed,        // the test could not run (out of memory, backend error ...)
}

public sealed class TestOutcome(kiln_test_kind test, DeviceInfo device, TestParams parameters)
{
    private readonly Dictionary<string, List<double>> _metrics = new(StringComparer.Ordinal);

    public kiln_test_kind Test { get; } = test;
    public string TestKey => Catalog.Key(Test);
    public DeviceInfo Device { get; } = device;
    public TestParams Parameters { get; } = parameters;
    public bool Injected => Parameters.Injected || _anyInjected;

    public TestEnd End { get; set; } = TestEnd.NotRun;
    /// <summary>Why the test ended as it did when it did not complete (the native error text).</summary>
    public string Detail { get; set; } = "";

    public IReadOnlyDictionary<string, List<double>> Metrics => _metrics;
    public long DataErrorsReported { get; private set; }
    public DataError? FirstError { get; private set; }

    private bool _anyInjected;

    public void Add(in Metric metric)
    {
        if (!_metrics.TryGetValue(metric.Name, out var values))
            _metrics[metric.Name] = values = [];
        values.Add(metric.Value);
        _anyInjected |= metric.Injected;
    }

    public void Add(in DataError error)
    {
        FirstError ??= error;
        DataErrorsReported++;
        _anyInjected |= error.Injected;
    }

    /// <summary>The last value reported for a metric (counters like errors_total), or null.</summary>
    public double? Last(string metric) => _metrics.TryGetValue(metric, out var v) && v.Count > 0 ? v[^1] : null;

    /// <summary>The sum of every value reported for a metric (per-round counts like errors_walking_ones), or null.</summary>
    public double? Sum(string metric) => _metrics.TryGetValue(metric, out var v) && v.Count > 0 ? v.Sum() : null;
}
