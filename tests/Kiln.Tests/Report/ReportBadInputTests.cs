// Bad input to kiln report: corrupt and truncated CSV files, a folder from an older schema, missing
// columns, duplicate run ids, a baseline profile with a threshold in the wrong unit. Each is reported
// with its file name and skipped or rejected, and the rest of the fleet is still reported.
using Kiln.Cli.Dev;
using Kiln.Core.Report;
using Kiln.Tests.Cli;
using Kiln.Tests.Core;

namespace Kiln.Tests.Report;

public class ReportBadInputTests
{
    private string _dir = "";
    private string _fleet = "";

    [SetUp]
    public void SetUp()
    {
        _dir = TestEnvironment.NewTempFolder("kiln-report-bad");
        _fleet = Path.Combine(_dir, "fleet");
        SyntheticFleet.Write(new SyntheticFleetSpec { Nodes = 12 }.WithDefaultFaults(), _fleet);
    }

    [TearDown]
    public void TearDown() => Directory.Delete(_dir, recursive: true);

    private string Node(int n) => Path.Combine(_fleet, SyntheticFleetSpec.HostName(n));

    [Test]
    public void Every_bad_folder_is_named_and_the_rest_of_the_fleet_is_reported()
    {
        // node0001: a corrupt row in the middle and a truncated last line (a run killed mid-write).
        var metrics1 = Path.Combine(Node(1), "metrics.csv");
        var lines = File.ReadAllLines(metrics1).ToList();
        lines.Insert(5, "\u0001\u0002garbage,,,");
        lines.Insert(9, "2025-06-01T08:00:05.000Z,node0001,x,stream,cuda,0,copy_gbps_best,fast,GB/s,false");
        File.WriteAllText(metrics1, string.Join('\n', lines) + "\n2025-06-01T08:00:05.000Z,node0001,20250601T080");
        // node0002: written before result schemas were versioned.
        var summary2 = Path.Combine(Node(2), "summary.json");
        File.WriteAllText(summary2, File.ReadAllText(summary2).Replace("\"schema_version\": 1,", ""));
        // node0004: a metrics.csv from an older layout without the injected column.
        var metrics4 = Path.Combine(Node(4), "metrics.csv");
        File.WriteAllLines(metrics4, File.ReadAllLines(metrics4).Select(l => l[..l.LastIndexOf(',')]));
        // node0006 copied a second time under another name: the same run id twice.
        CopyFolder(Node(6), Path.Combine(_fleet, "zz-copy-of-node0006"));
        // node0008: summary.json cut short.
        var summary8 = Path.Combine(Node(8), "summary.json");
        File.WriteAllText(summary8, File.ReadAllText(summary8)[..200]);

        var report = FleetReport.Build([_fleet, Path.Combine(_dir, "no-such-folder")], new FleetOptions());

        string Problem(string file) => string.Join(" | ", report.Problems.Where(p => p.File == file).Select(p => $"{p.Problem} ({p.Action})"));
        Assert.That(Problem(metrics1), Does.Contain("line 6: 4 fields, expected 10 (truncated?) (row skipped)"));
        Assert.That(Problem(metrics1), Does.Contain("line 10: value 'fast' is not a number (row skipped)"));
        Assert.That(Problem(metrics1), Does.Contain($"line {lines.Count + 1}: 3 fields, expected 10 (truncated?) (row skipped)"));
        Assert.That(Problem(summary2), Does.StartWith("no schema_version: written by a kiln older than result schema 1"));
        Assert.That(Problem(metrics4), Is.EqualTo("missing column injected (an older result schema?) (folder skipped)"));
        Assert.That(Problem(Path.Combine(_fleet, "zz-copy-of-node0006", "summary.json")), Does.StartWith("duplicate run_id 20250601T080600Z-000006 (also "));
        Assert.That(Problem(summary8), Does.StartWith("not valid JSON"));
        Assert.That(Problem(Path.Combine(_dir, "no-such-folder")), Is.EqualTo("no such folder (skipped)"));

        // 12 nodes less node0002, node0004, node0008; node0001 kept without its bad rows.
        Assert.That(report.Runs.Select(r => r.Host), Is.EqualTo(new[] { 0, 1, 3, 5, 6, 7, 9, 10, 11 }.Select(SyntheticFleetSpec.HostName)));
        Assert.That(report.Runs.Single(r => r.Host == "node0001").Values, Has.Count.EqualTo(8 * 30), "the bad rows are skipped, the good ones kept");
        Assert.That(report.ExitCode, Is.EqualTo(1), "the fleet is still judged: node0003 is slow, node0007 fails");
    }

    [Test]
    public void The_cli_reports_problems_on_stderr_and_in_the_page_and_exits_by_the_fleet()
    {
        var summary2 = Path.Combine(Node(2), "summary.json");
        File.WriteAllText(summary2, File.ReadAllText(summary2).Replace("\"schema_version\": 1,", "\"schema_version\": 7,"));
        var outDir = Path.Combine(_dir, "out");
        var run = KilnCli.Run("report", _fleet, "--out", outDir);
        Assert.That(run.ExitCode, Is.EqualTo(1), run.ToString());
        Assert.That(run.StderrLines, Has.Some.EqualTo($"kiln: warning: {summary2}: result schema 7, this kiln reads schema 1 (folder skipped)"));
        Assert.That(CsvFile.Read(Path.Combine(outDir, "problems.csv")).Rows.Single()["file"], Is.EqualTo(summary2));
        Assert.That(File.ReadAllText(Path.Combine(outDir, "report.html")), Does.Contain("result schema 7, this kiln reads schema 1"));
    }

    [Test]
    public void A_baseline_with_a_threshold_in_the_wrong_unit_is_rejected_and_the_fleet_still_reported()
    {
        var baseline = Path.Combine(_dir, "baseline.yaml");
        File.WriteAllText(baseline, "name: site\nthresholds:\n  gpu:\n    stream:\n      copy_gbps_best: { min: 2800 TFLOP/s }\n");
        var outDir = Path.Combine(_dir, "out");
        var run = KilnCli.Run("report", _fleet, "--out", outDir, "--baseline", baseline);
        Assert.That(run.ExitCode, Is.EqualTo(2), "the comparison asked for was not made: " + run);
        Assert.That(run.StderrLines[0], Is.EqualTo($"kiln: warning: {baseline}: {baseline}:5: thresholds.gpu.stream.copy_gbps_best: " +
                                                   "unit 'TFLOP/s' is not a bandwidth unit (MB/s, GB/s, TB/s) (baseline not used)"));
        Assert.That(run.Stdout, Does.Contain("kiln report: 12 nodes"), "the fleet is still reported");
        Assert.That(File.Exists(Path.Combine(outDir, "report.html")));
    }

    [Test]
    public void Nothing_usable_exits_2()
    {
        var empty = Path.Combine(_dir, "empty");
        Directory.CreateDirectory(empty);
        var run = KilnCli.Run("report", empty, "--out", Path.Combine(_dir, "out"));
        Assert.That(run.ExitCode, Is.EqualTo(2), run.ToString());
        Assert.That(run.Stderr, Does.Contain($"{empty}: no run folder (summary.json) under it").And.Contain("kiln: error: no usable run folder among the inputs"));
    }

    private static void CopyFolder(string from, string to)
    {
        Directory.CreateDirectory(to);
        foreach (var file in Directory.GetFiles(from)) File.Copy(file, Path.Combine(to, Path.GetFileName(file)));
    }
}
