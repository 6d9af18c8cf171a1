// What a run tells the console while it runs (progress bar or log lines); implemented by the CLI.
// Calls come from native threads, one at a time per test.
using Kiln.Core.Evaluation;
using Kiln.Core.Results;
using Kiln.Native;

namespace Kiln.Core.Runs;

public interface IRunObserver
{
    /// <summary>Test number <paramref name="ordinal"/> (1-based) of <paramref name="total"/> starts.</summary>
    void TestStarted(TestOutcome test, int ordinal, int total);
    void MetricMeasured(TestOutcome test, in Metric metric);
    void DataErrorFound(TestOutcome test, in DataError error);
    void Progress(TestOutcome test, double fraction);
    /// <summary>The test ended; verdict is null where the command does not judge (bench).</summary>
    void TestFinished(TestOutcome test, VerdictRow? verdict);
    /// <summary>Something went wrong that does not change the verdict (a plot could not be drawn).</summary>
    void Warning(string message);
}
