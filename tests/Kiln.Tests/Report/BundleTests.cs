// kiln bundle: one tar.gz with what a vendor needs for an RMA - the failing verdicts, the inventory
// with the failing GPU's serial, its data errors, the kernel-log lines about it, and only the
// telemetry within a minute of the failure.
using System.Formats.Tar;
using System.IO.Compression;
using System.Text;
using Kiln.Cli.Dev;
using Kiln.Core.Report;
using Kiln.Tests.Cli;
using Kiln.Tests.Core;

namespace Kiln.Tests.Report;

public class BundleTests
{
    private string _dir = "";
    private string _run = "";

    [SetUp]
    public void SetUp()
    {
        _dir = TestEnvironment.NewTempFolder("kiln-bundle");
        SyntheticFleet.Write(new SyntheticFleetSpec { Nodes = 1, FailNodes = [0] }, Path.Combine(_dir, "fleet"));
        _run = Path.Combine(_dir, "fleet", "node0000");
        // memtest on cuda0 (PCI 0000:18:00.0) found its errors at 08:10:00.
        File.WriteAllText(Path.Combine(_run, "errors.csv"), "timestamp,host,test,backend,device,pattern,offset,expected,actual,bits\n" +
            "2025-06-01T08:10:00.000Z,node0000,memtest,cuda,0,walking_ones,0x1f40,0x0000000000000020,0x0000000000020020,17\n" +
            "2025-06-01T08:10:02.000Z,node0000,memtest,cuda,0,walking_ones,0x2f40,0x0000000000000020,0x0000000000020020,17\n");
        File.WriteAllText(Path.Combine(_run, "telemetry.csv"), "timestamp,host,device,sensor,value,unit\n" +
            "2025-06-01T08:07:00.000Z,node0000,0,temperature,70,C\n" +      // 3 min before: out
            "2025-06-01T08:09:30.000Z,node0000,0,temperature,83,C\n" +      // 30 s before: in
            "2025-06-01T08:10:50.000Z,node0000,0,power,690,W\n" +           // 48 s after the last error: in
            "2025-06-01T08:14:00.000Z,node0000,0,temperature,71,C\n");      // 4 min after: out
        File.WriteAllText(Path.Combine(_run, "health_before.json"),
            """{ "inventory": { "gpus": [ { "pci_bus_id": "0000:18:00.0", "serial": "1652823054321" } ] } }""");
    }

    [TearDown]
    public void TearDown() => Directory.Delete(_dir, recursive: true);

    [Test]
    public void The_bundle_holds_the_failure_and_its_evidence()
    {
        var kmsg = Path.Combine(_dir, "kmsg.txt");
        File.WriteAllLines(kmsg,
        [
            "[  812.1] NVRM: Xid (PCI:0000:18:00): 48, pid=4242, DBE (double bit error) ECC error",
            "[  813.0] usb 1-1: new high-speed USB device number 3",
            "[  815.2] pcieport 0000:17:01.0: AER: Corrected error received: 0000:18:00.0",
            "[  900.0] EXT4-fs (nvme0n1p2): mounted filesystem",
        ]);
        var bundle = Path.Combine(_dir, "rma.tar.gz");
        var result = RmaBundle.Write(_run, bundle, kmsg);
        Assert.That((result.FailingVerdicts, result.KernelLogLines, result.TelemetryRows), Is.EqualTo((1, 2, 2)));

        var files = Read(bundle);
        var root = "kiln-rma-node0000-20250601T080000Z-000000/";
        Assert.That(files.Keys, Is.EquivalentTo(new[] { "MANIFEST.txt", "summary.json", "health_before.json", "errors.csv", "verdicts-failing.csv",
            "failing-devices.csv", "kmsg-matching.log", "telemetry-window.csv" }.Select(f => root + f)));
        Assert.That(files[root + "verdicts-failing.csv"].Split('\n')[1], Does.StartWith("node0000,memtest,cuda,0,FAIL,errors_total,3,0,count,"));
        Assert.That(files[root + "failing-devices.csv"].Split('\n')[1], Does.Match("^cuda,0,NVIDIA H100 80GB HBM3,GPU-[0-9a-f-]+,1652823054321,0000:18:00.0$"));
        Assert.That(files[root + "kmsg-matching.log"], Is.EqualTo(
            "[  812.1] NVRM: Xid (PCI:0000:18:00): 48, pid=4242, DBE (double bit error) ECC error\n" +
            "[  815.2] pcieport 0000:17:01.0: AER: Corrected error received: 0000:18:00.0\n"));
        Assert.That(files[root + "telemetry-window.csv"].Split('\n', StringSplitOptions.RemoveEmptyEntries), Is.EqualTo(new[]
        {
            "timestamp,host,device,sensor,value,unit",
            "2025-06-01T08:09:30.000Z,node0000,0,temperature,83,C",
            "2025-06-01T08:10:50.000Z,node0000,0,power,690,W",
        }));
        Assert.That(files[root + "MANIFEST.txt"], Does.Contain("device cuda0: NVIDIA H100 80GB HBM3").And.Contain("serial 1652823054321"));
        Assert.That(files[root + "errors.csv"], Does.Contain("0x2f40"));
    }

    [Test]
    public void Kiln_bundle_uses_the_runs_own_kernel_log_and_names_the_file()
    {
        File.WriteAllText(Path.Combine(_run, "kmsg.log"), "NVRM: Xid (PCI:0000:18:00): 79, pid=1, GPU has fallen off the bus.\nunrelated\n");
        var outFile = Path.Combine(_dir, "b.tar.gz");
        var run = KilnCli.Run("bundle", _run, "--out", outFile);
        Assert.That(run.ExitCode, Is.Zero, run.ToString());
        Assert.That(run.Stdout, Does.StartWith($"kiln bundle: {outFile} (1 failing verdicts, 1 kernel-log lines, 2 telemetry rows"));
        Assert.That(Read(outFile).Single(f => f.Key.EndsWith("kmsg-matching.log")).Value, Does.Contain("fallen off the bus"));

        var missing = KilnCli.Run("bundle", Path.Combine(_dir, "nope"));
        Assert.That(missing.ExitCode, Is.EqualTo(2));
    }

    private static Dictionary<string, string> Read(string tarGz)
    {
        var files = new Dictionary<string, string>();
        using var gzip = new GZipStream(File.OpenRead(tarGz), CompressionMode.Decompress);
        using var tar = new TarReader(gzip);
        while (tar.GetNextEntry() is { } entry)
        {
            using var reader = new StreamReader(entry.DataStream!, Encoding.UTF8);
            files[entry.Name] = reader.ReadToEnd();
        }
        return files;
    }
}
