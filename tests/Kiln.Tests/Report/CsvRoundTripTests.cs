// Every CSV goes through CsvHelper with the row's own ClassMap: a value written to baseline.csv or
// an RMA bundle reads back to the same double, and a quoted field that spans lines survives.
using System.Formats.Tar;
using System.IO.Compression;
using System.Text;
using Kiln.Core.Profiles;
using Kiln.Cli.Dev;
using Kiln.Core.Report;
using Kiln.Core.Results;
using Kiln.Tests.Core;

namespace Kiln.Tests.Report;

public class CsvRoundTripTests
{
    private string _dir = "";

    [SetUp]
    public void SetUp() => _dir = TestEnvironment.NewTempFolder("kiln-csv");

    [TearDown]
    public void TearDown() => Directory.Delete(_dir, recursive: true);

    [Test]
    public void Baseline_csv_keeps_every_digit_of_a_verdict()
    {
        var healthy = Path.Combine(_dir, "healthy");
        SyntheticFleet.Write(new SyntheticFleetSpec { Nodes = 30, Seed = 3 }, healthy);
        var profile = Path.Combine(_dir, "base.yaml");
        File.WriteAllText(profile, BaselineWriter.Generate(FleetReport.Build([healthy], new FleetOptions()), "base"));
        var faulty = Path.Combine(_dir, "faulty");
        SyntheticFleet.Write(new SyntheticFleetSpec { Nodes = 30, Seed = 4, SlowNodes = [9] }, faulty);
        var report = FleetReport.Build([faulty], new FleetOptions { Baseline = ProfileLoader.Load(profile, "--baseline") });
        Assert.That(report.BaselineRows, Is.Not.Empty);
        Assert.That(report.BaselineRows.Select(r => r.Value), Has.Some.Matches<double?>(v => Units.Number(v!.Value) != v.Value.ToString("R", System.Globalization.CultureInfo.InvariantCulture)),
            "some value has more digits than a page shows, or the test proves nothing");

        var outDir = Path.Combine(_dir, "report");
        FleetOutput.Write(report, outDir);
        var problems = new List<ReportProblem>();
        var read = RunReader.ReadVerdicts(Path.Combine(outDir, "baseline.csv"), problems).ToList();
        Assert.That(problems, Is.Empty);
        Assert.That(read, Is.EqualTo(report.BaselineRows), "every row, every double exactly");
    }

    [Test]
    public void The_rma_bundle_keeps_every_digit_and_a_message_that_spans_lines()
    {
        SyntheticFleet.Write(new SyntheticFleetSpec { Nodes = 1 }, Path.Combine(_dir, "fleet"));
        var run = Path.Combine(_dir, "fleet", "node0000");
        var fail = new VerdictRow("node0000", "stream", "cuda", 0, VerdictStatus.FAIL, "triad_gbps_best", 0.1 + 0.2, 2712.3456789012345, "GB/s",
            "triad_gbps_best 0.3 GB/s is below the floor, \"far\" below");
        VerdictFile.Write(Path.Combine(run, "verdicts.csv"), [fail, fail with { Test = "copy", Status = VerdictStatus.PASS }]);
        File.WriteAllText(Path.Combine(run, "findings.csv"), "host,check,component,severity,code,message,remediation\n" +
            "node0000,kernel_log,gpu0,FAIL,KLOG_XID,\"Xid 79, twice:\nGPU has fallen off the bus\",reseat\n");

        var bundle = Path.Combine(_dir, "rma.tar.gz");
        RmaBundle.Write(run, bundle, null);
        var files = Extract(bundle, Path.Combine(_dir, "out"));

        var problems = new List<ReportProblem>();
        Assert.That(RunReader.ReadVerdicts(files["verdicts-failing.csv"], problems).ToList(), Is.EqualTo(new[] { fail }));
        Assert.That(problems, Is.Empty);
        var findings = CsvInput.ReadAll(files["findings-failing.csv"])!;
        Assert.That(findings.Rows.Select(r => findings.Cell(r, "message")), Is.EqualTo(new[] { "Xid 79, twice:\nGPU has fallen off the bus" }));

        var read = RunReader.Read(run, new Kiln.Core.Report.MetricCatalog(), problems)!;
        Assert.That(read.Findings.Single().Message, Is.EqualTo("Xid 79, twice:\nGPU has fallen off the bus"));
    }

    [Test]
    public void A_run_is_held_as_one_value_per_device_and_metric_and_its_fail_and_warn_rows_only()
    {
        SyntheticFleet.Write(new SyntheticFleetSpec { Nodes = 1, FailNodes = [0] }, Path.Combine(_dir, "fleet"));
        var run = Path.Combine(_dir, "fleet", "node0000");
        // A soak writes every metric again each pass: three passes here, the second one best for rates.
        var metrics = Path.Combine(run, "metrics.csv");
        var lines = File.ReadAllLines(metrics);
        var header = lines[0];
        var rows = lines[1..];
        string Scaled(string line, double factor)
        {
            var cells = line.Split(',');
            cells[7] = (double.Parse(cells[7], System.Globalization.CultureInfo.InvariantCulture) * factor).ToString("R", System.Globalization.CultureInfo.InvariantCulture);
            return string.Join(',', cells);
        }
        File.WriteAllLines(metrics, [header, .. rows, .. rows.Select(r => Scaled(r, 1.5)), .. rows.Select(r => Scaled(r, 0.5))]);

        var problems = new List<ReportProblem>();
        var read = RunReader.Read(run, new Kiln.Core.Report.MetricCatalog(), problems)!;
        Assert.That(problems, Is.Empty);
        Assert.That(read.Values, Has.Count.EqualTo(rows.Length), "one value per (metric, device), not one per row");
        Assert.That((read.Count(VerdictStatus.PASS), read.Count(VerdictStatus.FAIL)), Is.EqualTo((47, 1)));
        Assert.That(read.Verdicts.Select(v => (v.Test, v.Status)), Is.EqualTo(new[] { ("memtest", VerdictStatus.FAIL) }), "PASS rows are counted, not kept");
    }

    private static Dictionary<string, string> Extract(string tarGz, string dir)
    {
        Directory.CreateDirectory(dir);
        var files = new Dictionary<string, string>();
        using var gzip = new GZipStream(File.OpenRead(tarGz), CompressionMode.Decompress);
        using var tar = new TarReader(gzip);
        while (tar.GetNextEntry() is { } entry)
        {
            var path = Path.Combine(dir, Path.GetFileName(entry.Name));
            if (entry.DataStream is null) File.WriteAllText(path, "");
            else using (var reader = new StreamReader(entry.DataStream, Encoding.UTF8)) File.WriteAllText(path, reader.ReadToEnd());
            files[Path.GetFileName(entry.Name)] = path;
        }
        return files;
    }
}
