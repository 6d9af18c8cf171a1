// kiln burn with plans and profiles, end to end on the cpu backend: a user plan and profile from
// files, a borderline result measured again before it is called, a hung test stopped by its
// timeout, a soak that loops until its duration, and plan show printing what ships.
using System.Text.Json;
using Kiln.Core.Plans;
using Kiln.Tests.Cli;
using Kiln.Tests.Core;

namespace Kiln.Tests.Evaluation;

[NonParallelizable]  // each burn takes both cores of a CI machine
public class BurnPlanTests
{
    private string _dir = "";
    private string _out = "";

    [SetUp]
    public void SetUp()
    {
        _dir = TestEnvironment.NewTempFolder("kiln-burn-plans");
        _out = Path.Combine(_dir, "out");
    }

    [TearDown]
    public void TearDown() => Directory.Delete(_dir, recursive: true);

    [Test]
    public void A_floor_the_hardware_cannot_reach_fails_the_node_naming_the_profile_line()
    {
        var plan = Write("plan.yaml", "name: short\ntests:\n  - test: stream\n    size: 64MiB\n    iterations: 2\n");
        var profile = Write("profile.yaml", "name: strict\nthresholds:\n  cpu:\n    stream:\n      copy_gbps_best: { min: 15 TB/s }\n");
        var run = KilnCli.Run("burn", "--plan", plan, "--profile", profile, "--backend", "cpu", "--out", _out);
        Assert.That(run.ExitCode, Is.EqualTo(1), run.ToString());
        var stream = Csv("verdicts.csv").Rows.Single();
        Assert.That((stream["status"], stream["metric"], stream["threshold"], stream["unit"]), Is.EqualTo(("FAIL", "copy_gbps_best", "15000", "GB/s")));
        Assert.That(stream["reason"], Does.Contain($"is below the floor 15000 GB/s ({profile}:5)"));
        using var summary = Summary();
        Assert.That((summary.RootElement.GetProperty("plan").GetString(), summary.RootElement.GetProperty("profile").GetString(),
            summary.RootElement.GetProperty("profile_source").GetString()), Is.EqualTo(("short", "strict", profile)));
        Assert.That(summary.RootElement.GetProperty("schema_version").GetInt32(), Is.EqualTo(1));
        foreach (var file in new[] { "junit.xml", "kiln.prom", "report.html", "plots/stream_cpu0.png" })
            Assert.That(File.Exists(Path.Combine(_out, file)), file);
    }

    [Test]
    public void A_profile_with_a_threshold_in_the_wrong_unit_stops_the_burn_before_it_starts()
    {
        var profile = Write("profile.yaml", "name: typo\nthresholds:\n  cpu:\n    stream:\n      copy_gbps_best: { min: 20 Gb/s }\n");
        var run = KilnCli.Run("burn", "--profile", profile, "--backend", "cpu", "--out", _out);
        Assert.That(run.ExitCode, Is.EqualTo(2), run.ToString());
        Assert.That(run.StderrLines, Is.EqualTo(new[]
        {
            $"kiln: error: {profile}:5: thresholds.cpu.stream.copy_gbps_best: unit 'Gb/s' is not a bandwidth unit (MB/s, GB/s, TB/s)",
        }));
        Assert.That(Directory.Exists(_out), Is.False, "nothing ran, no folder was made");
    }

    [Test]
    public void A_borderline_result_is_measured_again_before_it_is_called()
    {
        // A floor exactly at a value the test reports exactly (its iteration count): margin 1, inside
        // the WARN band on every attempt, whatever the speed of the machine - so it is measured 1 + retest times.
        var plan = Write("plan.yaml", "name: retest\nretest: 2\ntests:\n  - test: stream\n    size: 64MiB\n    iterations: 2\n    ops: [copy]\n");
        var profile = Write("profile.yaml", "name: tight\nthresholds:\n  cpu:\n    stream:\n      iterations: { min: 2 count }\n");
        var run = KilnCli.Run("burn", "--plan", plan, "--profile", profile, "--backend", "cpu", "--out", _out);
        var verdict = Csv("verdicts.csv").Rows.Single();
        Assert.That((verdict["status"], verdict["metric"]), Is.EqualTo(("WARN", "iterations")), run.ToString());
        Assert.That(verdict["reason"], Does.Contain("; judged on every attempt: attempt 1 WARN (iterations 2 count), attempt 2 WARN (iterations 2 count), attempt 3 WARN (iterations 2 count)"));
        Assert.That(Csv("metrics.csv").Rows.Count(r => r["metric"] == "copy_gbps_best"), Is.EqualTo(3), "every attempt's values are kept");
        Assert.That(run.Stdout.Split('\n').Count(l => l.Contains("start  stream cpu0")), Is.EqualTo(3));
    }

    [Test]
    public void A_test_past_its_timeout_is_stopped_and_fails()
    {
        var plan = Write("plan.yaml", "name: slow\ntests:\n  - test: memtest\n    size: 2GiB\n    size_cap: 25%\n    iterations: 4\n    timeout: 1s\n");
        var run = KilnCli.Run("burn", "--plan", plan, "--backend", "cpu", "--out", _out);
        Assert.That(run.ExitCode, Is.EqualTo(1), run.ToString());
        Assert.That(run.Elapsed, Is.LessThan(TimeSpan.FromSeconds(30)));
        var verdict = Csv("verdicts.csv").Rows.Single();
        Assert.That((verdict["status"], verdict["reason"]), Is.EqualTo(("FAIL", "timed out: still running after 1s (plan timeout), stopped")));
    }

    [Test]
    public void A_soak_loops_until_its_duration_and_keeps_each_tests_worst_pass()
    {
        var plan = Write("soak.yaml", "name: mini-soak\nloop: true\nduration: 1h\ntests:\n  - test: stream\n    size: 32MiB\n    iterations: 2\n");
        var run = KilnCli.Run("burn", "--plan", plan, "--duration", "3s", "--backend", "cpu", "--out", _out);
        Assert.That(run.ExitCode, Is.Zero, run.ToString());
        Assert.That(run.Stdout, Does.Contain("plan mini-soak for 3s"));
        using var summary = Summary();
        var passes = summary.RootElement.GetProperty("passes").GetInt32();
        Assert.That(passes, Is.GreaterThanOrEqualTo(2), "3 s of a sub-second pass");
        var verdict = Csv("verdicts.csv").Rows.Single();
        Assert.That(verdict["reason"], Does.Match($"; worst of {passes} passes: pass \\d+$"));
        Assert.That(Csv("metrics.csv").Rows.Count(r => r["metric"] == "copy_gbps_best"), Is.EqualTo(passes));
    }

    [Test]
    public void Plan_show_prints_the_built_in_yaml_and_validates_a_file()
    {
        var quick = KilnCli.Run("plan", "show", "quick");
        Assert.That((quick.ExitCode, quick.Stdout), Is.EqualTo((0, PlanLoader.BuiltInText("quick"))));
        var bad = Write("bad.yaml", "name: bad\ntests:\n  - test: stream\n    iterations: many\n");
        var run = KilnCli.Run("plan", "show", bad);
        Assert.That(run.ExitCode, Is.EqualTo(2), run.ToString());
        Assert.That(run.StderrLines, Is.EqualTo(new[] { $"kiln: error: {bad}:4: tests[0].iterations: 'many' is not a whole number" }));
        var good = KilnCli.Run("plan", "show", Write("good.yaml", "name: good\ntests:\n  - test: memtest\n"));
        Assert.That(good.Stdout, Does.StartWith("# ").And.Contain("valid plan 'good', 1 tests (memtest)"));
        var profile = KilnCli.Run("profile", "show", Write("p.yaml", "name: p\nthresholds:\n  gpu:\n    stream:\n      copy_gbps_best: { min: 2400 GB }\n"));
        Assert.That(profile.ExitCode, Is.EqualTo(2));
        Assert.That(profile.StderrLines.Single(), Does.EndWith("p.yaml:5: thresholds.gpu.stream.copy_gbps_best: unit 'GB' is not a bandwidth unit (MB/s, GB/s, TB/s)"));
    }

    private string Write(string name, string text)
    {
        var path = Path.Combine(_dir, name);
        File.WriteAllText(path, text);
        return path;
    }

    private CsvFile Csv(string name) => CsvFile.Read(Path.Combine(_out, name));

    private JsonDocument Summary() => JsonDocument.Parse(File.ReadAllText(Path.Combine(_out, "summary.json")));
}
