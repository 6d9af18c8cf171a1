// A burn: runs the planned tests one after another, writes each verdict as its test ends, then the
// plots and the final summary. Cancellation stops the running test and skips the rest.
using Kiln.Core.Evaluation;
using Kiln.Core.Results;

namespace Kiln.Core.Runs;

public sealed record BurnResult(IReadOnlyList<TestOutcome> Outcomes, IReadOnlyList<VerdictRow> Verdicts,
    NodeVerdict Verdict, int ExitCode, IReadOnlyList<string> Plots);

public static class BurnRunner
{
    /// <param name="summary">The run's identity; written now as INCOMPLETE, replaced at the end.</param>
    public static BurnResult Run(IReadOnlyList<PlannedTest> tests, RunContext context, RunSummary summary,
        CancellationToken cancel)
    {
        var files = context.Files ?? throw new ArgumentException("a burn writes its results", nameof(context));
        var summaryPath = files.Folder.File("summary.json");
        SummaryJson.Write(summaryPath, summary with { Verdict = nameof(NodeVerdict.INCOMPLETE) });

        var outcomes = new List<TestOutcome>();
        var verdicts = new List<VerdictRow>();
        for (var i = 0; i < tests.Count; i++)
        {
            var outcome = TestExecutor.Execute(tests[i], context, i + 1, tests.Count, cancel);
            var verdict = Evaluator.Judge(outcome, context.Host);
            files.Verdicts!.Write(verdict);
            context.Observer.TestFinished(outcome, verdict);
            outcomes.Add(outcome);
            verdicts.Add(verdict);
        }

        var cancelled = cancel.IsCancellationRequested || outcomes.Any(o => o.End is TestEnd.Cancelled or TestEnd.NotRun);
        var node = Evaluator.Overall(verdicts, cancelled);
        var exitCode = Evaluator.ExitCode(node);
        IReadOnlyList<string> plots = [];
        try
        {
            plots = Plots.Write(files.Folder, outcomes);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            // A missing font or native drawing library must not turn a measured verdict into a crash.
            context.Observer.Warning($"plots not written: {e.GetType().Name}: {e.Message}");
        }

        SummaryJson.Write(summaryPath, summary with
        {
            EndUtc = DateTime.UtcNow,
            Verdict = node.ToString(),
            ExitCode = exitCode,
            Counts = new SummaryCounts(
                Pass: verdicts.Count(v => v.Status == VerdictStatus.PASS),
                Warn: verdicts.Count(v => v.Status == VerdictStatus.WARN),
                Fail: verdicts.Count(v => v.Status == VerdictStatus.FAIL),
                Skip: verdicts.Count(v => v.Status == VerdictStatus.SKIP),
                Metrics: files.Metrics.RowCount,
                DataErrors: outcomes.Sum(Evaluator.DataErrors)),
        });
        return new BurnResult(outcomes, verdicts, node, exitCode, plots);
    }
}
