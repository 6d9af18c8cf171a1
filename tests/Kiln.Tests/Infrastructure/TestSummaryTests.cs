// The test run itself must not pass when it should not: scripts/test-summary.sh (the end of
// scripts/test.sh) on result files written here counts NUnit's inconclusive and ignored tests as
// skipped (the TRX counters leave them out) and fails a run with fewer tests than the floor in
// tests/test-floor.txt; and a test whose prerequisite is missing fails under CI (.ci/run sets CI=true).
using System.Diagnostics;
using NUnit.Framework.Interfaces;
using NUnit.Framework.Internal;
using Kiln.Tests.Core;

namespace Kiln.Tests.Infrastructure;

public sealed class TestSummaryTests
{
    private static string Script => Path.Combine(TestEnvironment.RepoRoot, "scripts", "test-summary.sh");

    /// <summary>A CTest JUnit file with these counts, laid out as CTest writes it: one attribute a line, after a tab.</summary>
    private static string Junit(int tests, int failures, int skipped) =>
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuite name=\"(empty)\"\n" +
        $"\ttests=\"{tests}\"\n\tfailures=\"{failures}\"\n\tdisabled=\"0\"\n\tskipped=\"{skipped}\"\n\thostname=\"\"\n\ttime=\"1\"\n\ttimestamp=\"2026-12-02T10:00:00\"\n\t>\n</testsuite>\n";

    /// <summary>A TRX file whose results have these outcomes, and counters the way vstest writes them: NotExecuted in none.</summary>
    private static string Trx(params string[] outcomes)
    {
        var results = string.Concat(outcomes.Select((o, i) =>
            $"    <UnitTestResult executionId=\"{Guid.NewGuid()}\" testId=\"{Guid.NewGuid()}\" testName=\"T{i}\" computerName=\"ci\" duration=\"00:00:00.01\" outcome=\"{o}\" testListId=\"x\" />\n"));
        var passed = outcomes.Count(o => o == "Passed");
        var failed = outcomes.Count(o => o == "Failed");
        return "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<TestRun id=\"1\" name=\"run\" xmlns=\"http://microsoft.com/schemas/VisualStudio/TeamTest/2010\">\n  <Results>\n" +
               results + "  </Results>\n  <ResultSummary outcome=\"Completed\">\n" +
               $"    <Counters total=\"{outcomes.Length}\" executed=\"{passed + failed}\" passed=\"{passed}\" failed=\"{failed}\" error=\"0\" timeout=\"0\" aborted=\"0\" inconclusive=\"0\" passedButRunAborted=\"0\" notRunnable=\"0\" notExecuted=\"0\" disconnected=\"0\" warning=\"0\" completed=\"0\" inProgress=\"0\" pending=\"0\" />\n" +
               "  </ResultSummary>\n</TestRun>\n";
    }

    private static (int Exit, string Output) Summary(string junit, string trx, string floor)
    {
        var dir = TestEnvironment.NewTempFolder("kiln-summary");
        try
        {
            File.WriteAllText(Path.Combine(dir, "native.xml"), junit);
            File.WriteAllText(Path.Combine(dir, "managed.trx"), trx);
            File.WriteAllText(Path.Combine(dir, "floor.txt"), floor);
            var info = new ProcessStartInfo("bash") { RedirectStandardOutput = true, RedirectStandardError = true };
            foreach (var a in new[] { Script, dir, Path.Combine(dir, "floor.txt") }) info.ArgumentList.Add(a);
            using var p = Process.Start(info)!;
            var output = p.StandardOutput.ReadToEnd() + p.StandardError.ReadToEnd();
            p.WaitForExit();
            return (p.ExitCode, output);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Test]
    public void Inconclusive_and_ignored_managed_tests_are_counted_as_skipped()
    {
        var (exit, output) = Summary(Junit(5, 0, 1), Trx("Passed", "Passed", "NotExecuted", "NotExecuted", "Inconclusive"), "native 4\nmanaged 2\n");

        Assert.That(exit, Is.Zero, output);
        Assert.That(output, Does.Contain("native: 4 passed, 0 failed, 1 skipped; managed: 2 passed, 0 failed, 3 skipped"));
        Assert.That(output.TrimEnd().Split('\n')[^1], Is.EqualTo("6 passed, 0 failed, 4 skipped"));
    }

    [Test]
    public void A_failed_managed_test_fails_the_run()
    {
        var (exit, output) = Summary(Junit(1, 0, 0), Trx("Passed", "Failed"), "native 1\nmanaged 1\n");
        Assert.That(exit, Is.EqualTo(1), output);
        Assert.That(output, Does.Contain("managed: 1 passed, 1 failed, 0 skipped"));
    }

    [TestCase("native 6\nmanaged 2\n", "only 5 native tests ran, fewer than the floor of 6")]
    [TestCase("native 5\nmanaged 3\n", "only 2 managed tests ran, fewer than the floor of 3")]
    public void Fewer_tests_than_the_floor_fail_the_run_even_when_all_passed(string floor, string message)
    {
        var (exit, output) = Summary(Junit(5, 0, 0), Trx("Passed", "Passed", "NotExecuted"), floor);
        Assert.That(exit, Is.EqualTo(1), output);
        Assert.That(output, Does.Contain(message));
        Assert.That(output, Does.Contain("7 passed, 1 failed, 1 skipped"));
    }

    [Test]
    public void The_repository_keeps_a_floor_for_both_suites()
    {
        var lines = File.ReadAllLines(Path.Combine(TestEnvironment.RepoRoot, "tests", "test-floor.txt"))
            .Where(l => l.Length > 0 && !l.StartsWith('#')).Select(l => l.Split(' ', StringSplitOptions.RemoveEmptyEntries)).ToList();
        Assert.That(lines.Select(l => l[0]), Is.EquivalentTo(new[] { "native", "managed" }));
        Assert.That(lines.Select(l => int.Parse(l[1], System.Globalization.CultureInfo.InvariantCulture)), Has.All.GreaterThan(50));
    }

    [Test]
    public void A_missing_prerequisite_fails_under_ci_and_is_ignored_elsewhere()
    {
        var saved = Environment.GetEnvironmentVariable("CI");
        try
        {
            foreach (var (ci, expected) in new[] { ("true", ResultState.Failure), ("", ResultState.Ignored) })
            {
                Environment.SetEnvironmentVariable("CI", ci);
                ResultState? state = null;
                // Isolated: the failure Missing reports belongs to the probe, not to this test.
                using (new TestExecutionContext.IsolatedContext())
                {
                    try
                    {
                        TestEnvironment.Missing("the probe is not built");
                    }
                    catch (ResultStateException e)
                    {
                        state = e.ResultState;
                    }
                }
                Assert.That(state?.Status, Is.EqualTo(expected.Status), $"CI={ci}");
            }
        }
        finally
        {
            Environment.SetEnvironmentVariable("CI", saved);
        }
    }

    [Test]
    public void Ci_runs_the_tests_with_ci_set()
    {
        var run = File.ReadAllText(Path.Combine(TestEnvironment.RepoRoot, ".ci", "run"));
        Assert.That(run.IndexOf("export CI=true", StringComparison.Ordinal), Is.GreaterThanOrEqualTo(0).And.LessThan(run.IndexOf("scripts/test.sh", StringComparison.Ordinal)));
    }
}
