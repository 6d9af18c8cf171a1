// kiln report and kiln bundle over a kiln check result folder: the folder is recognised (no "older
// schema" message about a summary the same kiln wrote), its FAIL findings drain the host, and every
// WARN/FAIL finding is in the fleet report's health table. The check is the real CLI on a fixture node.
using System.Formats.Tar;
using System.IO.Compression;
using Kiln.Cli.Dev;
using Kiln.Core.Report;
using Kiln.Tests.Cli;
using Kiln.Tests.Core;
using Kiln.Tests.Health;

namespace Kiln.Tests.Report;

[NonParallelizable]  // CheckRunner sets the environment its child processes inherit
public class CheckResultReportTests
{
    private string _dir = "";

    [SetUp]
    public void SetUp() => _dir = TestEnvironment.NewTempFolder("kiln-check-report");

    [TearDown]
    public void TearDown() => Directory.Delete(_dir, recursive: true);

    private string CheckFolder(string fakeNvml)
    {
        var folder = Path.Combine(_dir, "fleet", "fixture-h100", "check");
        var run = CheckRunner.Kiln(fakeNvml, "check", "--sysfs-root", FixtureNode.Healthy().Root, "--kmsg", CheckRunner.Fixture("kmsg/clean.dmesg"),
            "--out", folder);
        Assert.That(run.ExitCode, Is.EqualTo(1), run.ToString());
        return folder;
    }

    [Test]
    public void A_failing_check_drains_its_host_and_its_findings_are_in_the_report()
    {
        CheckFolder("gpu3.ecc_volatile_uncorrected=2");
        SyntheticFleet.Write(new SyntheticFleetSpec { Nodes = 6 }, Path.Combine(_dir, "fleet"));
        var outDir = Path.Combine(_dir, "report");
        var drain = Path.Combine(_dir, "drain.txt");

        var run = CheckRunner.Kiln(null, "report", Path.Combine(_dir, "fleet"), "--out", outDir, "--drain-list", drain);

        Assert.That(run.ExitCode, Is.EqualTo(1), run.ToString());
        Assert.That(run.Stderr, Does.Not.Contain("older than").And.Not.Contain("not a burn"), "the same kiln wrote it");
        Assert.That(run.Stdout, Does.Contain("6 nodes (0 older runs superseded), 1 kiln check results"));
        Assert.That(File.ReadAllLines(drain), Is.EqualTo(new[] { "fixture-h100" }));
        var node = CsvFile.Read(Path.Combine(outDir, "nodes.csv")).Rows.Single(r => r["host"] == "fixture-h100");
        Assert.That(node["reasons"], Does.Contain("FAIL nvml: GPU_ECC_UNCORRECTABLE gpu3 "));
        var health = CsvFile.Read(Path.Combine(outDir, "health.csv"));
        Assert.That(health.Header, Is.EqualTo("host,command,run_id,check,component,severity,code,message"));
        var ecc = health.Rows.Single(r => r["code"] == "GPU_ECC_UNCORRECTABLE");
        Assert.That((ecc["host"], ecc["command"], ecc["severity"], ecc["check"]), Is.EqualTo(("fixture-h100", "check", "FAIL", "nvml")));
        Assert.That(File.ReadAllText(Path.Combine(outDir, "report.html")), Does.Contain("GPU_ECC_UNCORRECTABLE"));
    }

    [Test]
    public void A_check_alone_is_a_usable_input_and_a_healthy_one_drains_nobody()
    {
        var folder = Path.Combine(_dir, "fleet", "ok");
        Assert.That(CheckRunner.Kiln("", "check", "--sysfs-root", FixtureNode.Healthy().Root, "--kmsg", CheckRunner.Fixture("kmsg/clean.dmesg"),
            "--out", folder).ExitCode, Is.Zero);

        var run = CheckRunner.Kiln(null, "report", folder, "--out", Path.Combine(_dir, "report"));

        Assert.That(run.ExitCode, Is.Zero, run.ToString());
        Assert.That(run.Stderr, Is.Empty);
    }

    [Test]
    public void Kiln_bundle_packs_a_failing_check_with_its_findings()
    {
        var folder = CheckFolder("gpu3.remap_failed=1");
        var tar = Path.Combine(_dir, "rma.tar.gz");

        var run = CheckRunner.Kiln(null, "bundle", folder, "--out", tar);

        Assert.That(run.ExitCode, Is.Zero, run.ToString());
        Assert.That(run.Stderr, Does.Not.Contain("older than").And.Not.Contain("no FAIL verdict"));
        var files = new Dictionary<string, string>();
        using (var gz = new GZipStream(File.OpenRead(tar), CompressionMode.Decompress))
        using (var reader = new TarReader(gz))
        {
            while (reader.GetNextEntry() is { } e)
                if (e.DataStream != null) files[e.Name[(e.Name.IndexOf('/') + 1)..]] = new StreamReader(e.DataStream).ReadToEnd();
        }
        Assert.That(files["MANIFEST.txt"], Does.Contain("failing verdicts: 1").And.Contain("GPU_ROW_REMAP_FAILED gpu3"));
        Assert.That(files["findings-failing.csv"], Does.Contain("GPU_ROW_REMAP_FAILED"));
        Assert.That(files, Does.ContainKey("summary.json"));
    }
}
