// Telemetry during a burn, driven directly (the burn only starts and finishes it): 8 fake GPUs
// sampled at 10 Hz into telemetry.csv as the run goes, the rules that fail a burn (new ECC, sustained
// throttling, an Xid appearing in the kernel log), the CPU-only node, and the plots.
using System.Diagnostics;
using System.Globalization;
using Kiln.Core.Health;
using Kiln.Core.Results;
using Kiln.Core.Telemetry;
using Kiln.Tests.Cli;
using Kiln.Tests.Core;
using Kiln.Tests.Health;

namespace Kiln.Tests.Telemetry;

[NonParallelizable]  // sets the C environment the fake NVML reads
public class BurnTelemetryTests
{
    private string _dir = "";
    private ResultFolder _folder = null!;
    private readonly List<string> _log = [];

    [SetUp]
    public void SetUp()
    {
        _dir = TestEnvironment.NewTempFolder("kiln-telemetry");
        _folder = ResultFolder.Create(Path.Combine(_dir, "out"));
        _log.Clear();
    }

    [TearDown]
    public void TearDown() => Directory.Delete(_dir, recursive: true);

    private BurnTelemetry Start(string? fakeNvml, HealthPolicy? policy = null, string? kmsg = null, string root = "/")
    {
        CheckRunner.UseLibraries(fakeNvml);
        kmsg ??= Path.Combine(_dir, "kmsg.log");
        if (!File.Exists(kmsg)) File.WriteAllText(kmsg, "");
        return BurnTelemetry.Start(_folder, new TelemetryOptions("node1", policy ?? HealthPolicy.Default, KernelLogFile: kmsg, Root: root), _log.Add);
    }

    private CsvFile Telemetry => CsvFile.Read(_folder.File(BurnTelemetry.FileName));

    [Test]
    public void Eight_gpus_are_sampled_at_10_hz_into_telemetry_csv_as_the_run_goes()
    {
        using var telemetry = Start("");
        Thread.Sleep(1500);
        var whileRunning = Telemetry.Rows.Count;  // flushed per tick, readable before the end
        var verdicts = telemetry.Finish();

        Assert.That(whileRunning, Is.GreaterThan(0));
        var csv = Telemetry;
        Assert.That(csv.Header, Is.EqualTo("timestamp,host,device,sensor,value,unit"));
        Assert.That(csv.Rows.Select(r => r["device"]).Distinct(), Is.EquivalentTo(Enumerable.Range(0, 8).Select(i => $"gpu{i}")));
        Assert.That(csv.Rows.Select(r => r["sensor"]).Distinct(), Is.EquivalentTo(new[]
        {
            "temperature", "power", "sm_clock", "memory_clock", "utilization", "throttle_reasons",
            "ecc_volatile_corrected", "ecc_volatile_uncorrected", "pcie_replay_count",
        }));
        var gpu0Temps = csv.Rows.Where(r => r["device"] == "gpu0" && r["sensor"] == "temperature").ToList();
        Assert.That(gpu0Temps.Select(r => (r["value"], r["unit"], r["host"])), Is.All.EqualTo(("35", "C", "node1")));
        // >= 10 Hz: 1.5 s gives 15-16 ticks; allow a loaded CI machine one missed tick in five.
        Assert.That(gpu0Temps, Has.Count.GreaterThanOrEqualTo(12));
        var times = gpu0Temps.Select(r => DateTimeOffset.Parse(r["timestamp"], CultureInfo.InvariantCulture)).ToList();
        Assert.That(times.Zip(times.Skip(1), (a, b) => (b - a).TotalMilliseconds).Average(), Is.InRange(90, 125));

        Assert.That(verdicts.Select(v => (v.Test, v.Status)), Is.All.EqualTo(("telemetry", VerdictStatus.PASS)));
        Assert.That(verdicts.Select(v => (v.Backend, v.Device)), Is.EquivalentTo(Enumerable.Range(0, 8).Select(i => ("nvml", i))));
    }

    [Test]
    public void Correctable_ecc_growing_past_the_policy_during_the_run_fails_that_gpu()
    {
        // 50 per sample at 10 Hz: past the default 100 within a second. A single bad cell that HBM
        // corrects never shows in a pattern compare: this count is the only evidence.
        using var telemetry = Start("gpu5.ecc_corrected_step=50");
        Thread.Sleep(600);
        var verdicts = telemetry.Finish();

        var gpu5 = verdicts.Single(v => v.Device == 5);
        Assert.That((gpu5.Status, gpu5.Metric, gpu5.Threshold), Is.EqualTo((VerdictStatus.FAIL, "ecc_volatile_corrected_new", (double?)100)));
        Assert.That(gpu5.Value, Is.GreaterThan(100));
        Assert.That(gpu5.Reason, Does.Contain("new correctable ECC errors during the run, more than the policy's 100"));
        Assert.That(verdicts.Where(v => v.Device != 5).Select(v => v.Status), Is.All.EqualTo(VerdictStatus.PASS));
    }

    [Test]
    public void New_uncorrectable_ecc_during_the_run_fails_that_gpu()
    {
        using var telemetry = Start("gpu2.ecc_uncorrected_step=1");
        Thread.Sleep(500);
        var verdicts = telemetry.Finish();

        var gpu2 = verdicts.Single(v => v.Device == 2);
        Assert.That((gpu2.Status, gpu2.Metric, gpu2.Unit), Is.EqualTo((VerdictStatus.FAIL, "ecc_volatile_uncorrected_new", "count")));
        Assert.That(gpu2.Value, Is.GreaterThan(0));
        Assert.That(gpu2.Reason, Does.EndWith("new uncorrectable ECC errors during the run"));
        Assert.That(verdicts.Where(v => v.Device != 2).Select(v => v.Status), Is.All.EqualTo(VerdictStatus.PASS));
    }

    [Test]
    public void Throttling_held_for_the_policy_window_fails_and_shorter_does_not()
    {
        var policy = new HealthPolicy { SustainedThrottleWindow = TimeSpan.FromSeconds(1) };
        using var telemetry = Start("gpu1.throttle=8;gpu4.throttle=4", policy);
        Thread.Sleep(1600);
        var verdicts = telemetry.Finish();

        var gpu1 = verdicts.Single(v => v.Device == 1);
        Assert.That((gpu1.Status, gpu1.Metric, gpu1.Threshold), Is.EqualTo((VerdictStatus.FAIL, "throttle_sustained_s", 1.0)));
        Assert.That(gpu1.Reason, Does.StartWith("throttled (HwSlowdown) for 1."));
        Assert.That(verdicts.Single(v => v.Device == 4).Status, Is.EqualTo(VerdictStatus.PASS), "a power cap is not in the policy's reasons");
    }

    [Test]
    public void Xid_logged_during_the_run_fails_the_gpu_at_that_address_and_an_old_one_does_not()
    {
        var kmsg = Path.Combine(_dir, "kmsg.log");
        File.WriteAllText(kmsg, "[  100.000000] NVRM: Xid (PCI:0000:18:00): 79, pid=1, name=x, GPU has fallen off the bus.\n");
        using var telemetry = Start("", kmsg: kmsg);
        Thread.Sleep(300);
        File.AppendAllText(kmsg, "[  200.000000] NVRM: Xid (PCI:0000:5d:00): 48, pid=2, name=kiln, An uncorrectable double bit error (DBE)\n" +
                                 "[  201.000000] NVRM: Xid (PCI:0000:5d:00): 13, pid=2, name=kiln, Graphics SM Warp Exception\n");
        Thread.Sleep(300);
        var verdicts = telemetry.Finish();

        var gpu3 = verdicts.Where(v => v.Device == 3).ToList();
        Assert.That(gpu3.Select(v => (v.Status, v.Metric, v.Value)), Is.EquivalentTo(new[]
        {
            (VerdictStatus.FAIL, "xid", (double?)48), (VerdictStatus.WARN, "xid", (double?)13),
        }));
        Assert.That(gpu3[0].Reason, Does.Contain("Xid (PCI:0000:5d:00): 48"));
        Assert.That(verdicts.Single(v => v.Device == 0).Status, Is.EqualTo(VerdictStatus.PASS), "the Xid 79 was there before the run");
    }

    [Test]
    public void Cpu_only_node_says_so_once_and_samples_cpu_temperatures_if_any()
    {
        var root = Path.Combine(_dir, "root");
        Directory.CreateDirectory(Path.Combine(root, "sys/class/thermal/thermal_zone0"));
        File.WriteAllText(Path.Combine(root, "sys/class/thermal/thermal_zone0/type"), "x86_pkg_temp\n");
        File.WriteAllText(Path.Combine(root, "sys/class/thermal/thermal_zone0/temp"), "47000\n");
        using (var telemetry = Start(fakeNvml: null, root: root))
        {
            Thread.Sleep(300);
            Assert.That(telemetry.Finish(), Is.Empty, "nothing to judge");
        }
        Assert.That(_log, Has.Count.EqualTo(1));
        Assert.That(_log[0], Does.StartWith("telemetry: no GPU to sample (nvml: no NVIDIA driver").And.EndWith("sampling 1 CPU temperature sensors at 1 Hz"));
        var row = Telemetry.Rows.First();
        Assert.That((row["device"], row["sensor"], row["value"], row["unit"]), Is.EqualTo(("cpu", "thermal_zone0_x86_pkg_temp", "47", "C")));
    }

    [Test]
    public void Node_without_any_sensor_writes_a_header_only_file()
    {
        using (var telemetry = Start(fakeNvml: null, root: Path.Combine(_dir, "empty")))
        {
            Thread.Sleep(200);
            telemetry.Finish();
        }
        Assert.That(File.ReadAllText(_folder.File(BurnTelemetry.FileName)), Is.EqualTo("timestamp,host,device,sensor,value,unit\n"));
        Assert.That(_log[0], Does.EndWith("no CPU temperature sensors either: telemetry.csv stays empty"));
    }

    [Test]
    public void Each_gpu_gets_a_telemetry_plot()
    {
        using var telemetry = Start("gpus=2");
        Thread.Sleep(400);
        telemetry.Finish();
        var plots = telemetry.WritePlots(_folder);

        Assert.That(plots.Select(Path.GetFileName), Is.EquivalentTo(new[] { "telemetry_gpu0.png", "telemetry_gpu1.png" }));
        foreach (var plot in plots)
            Assert.That(File.ReadAllBytes(plot).Take(4), Is.EqualTo(new byte[] { 0x89, (byte)'P', (byte)'N', (byte)'G' }));
    }

    [Test]
    public void Series_stay_bounded_and_evenly_thinned()
    {
        var series = new TelemetrySeries("gpu0");
        var start = DateTimeOffset.UnixEpoch;
        for (var i = 0; i < 3 * TelemetrySeries.MaxPoints; i++) series.Add(start.AddMilliseconds(100 * i), "temperature", i);
        var points = series.Points("temperature");
        Assert.That(points, Has.Count.LessThan(TelemetrySeries.MaxPoints));
        Assert.That(points[0], Is.EqualTo((0.0, 0.0)));
        Assert.That(points.Zip(points.Skip(1), (a, b) => b.Value - a.Value).Distinct(), Is.EqualTo(new[] { 4.0 }));
    }
}
