// The memtest detectors end to end, on emulated devices (libkiln-emu.so) and the fake NVML: a memtest
// the allocator shrinks is a WARN naming how much it covered (no longer a silent PASS); standard and
// soak test at least 90% of a GPU's free memory; a row remap pending after the burn FAILs the burn on
// that device, whether or not the plan runs health checks after its tests.
using Kiln.Core;
using Kiln.Core.Plans;
using Kiln.Native;
using Kiln.Tests.Core;
using Kiln.Tests.Health;

namespace Kiln.Tests.Cli;

[NonParallelizable]  // each burn takes both cores of a CI machine
public class EmuMemtestTests
{
    private string _dir = "";
    private string _out = "";

    [SetUp]
    public void SetUp()
    {
        _dir = TestEnvironment.NewTempFolder("kiln-emu-memtest");
        _out = Path.Combine(_dir, "out");
    }

    [TearDown]
    public void TearDown() => Directory.Delete(_dir, recursive: true);

    private string Plan(string yaml)
    {
        var path = Path.Combine(_dir, "plan.yaml");
        File.WriteAllText(path, yaml);
        return path;
    }

    private CliResult Burn(string devices, string? faults, string plan) =>
        KilnCli.RunWith(new Dictionary<string, string?> { ["KILN_EMU_DEVICES"] = devices, ["KILN_EMU_FAULTS"] = faults },
            TimeSpan.FromMinutes(4), "burn", "--plan", plan, "--backend", "emu", "--profile", "emu", "--out", _out);

    private List<Dictionary<string, string>> Verdicts() => CsvFile.Read(Path.Combine(_out, "verdicts.csv")).Rows;

    private double Metric(string device, string name) =>
        double.Parse(CsvFile.Read(Path.Combine(_out, "metrics.csv")).Rows.Last(m => m["test"] == "memtest" && m["device"] == device && m["metric"] == name)["value"],
            System.Globalization.CultureInfo.InvariantCulture);

    // Memtest alone on 95% of free memory (as standard and soak ask), two patterns to keep it short.
    private const string MemtestOnly = "name: memtest-only\ntests:\n  - test: memtest\n    gpu_size: 95%\n    patterns: [walking_ones, moving_inv_random]\n";

    [Test]
    public void A_memtest_the_allocator_shrinks_is_a_warn_naming_the_fraction_it_covered()
    {
        // emu1's allocator hands out at most 72 MiB of its 128 MiB, though all of it reads as free:
        // the memtest falls back (chunks halved down to 32 MiB) and tests about half of what it planned.
        // Before the fraction_of_planned floor this was a PASS ("no data errors") on half the memory.
        var run = Burn("2:memory=128MiB", "alloc:dev=1,limit=72MiB", Plan(MemtestOnly));
        Assert.That(run.ExitCode, Is.EqualTo(0), "a WARN does not fail the node\n" + run);
        var shrunk = Verdicts().Single(v => v["test"] == "memtest" && v["device"] == "1");
        Assert.That((shrunk["status"], shrunk["metric"]), Is.EqualTo(("WARN", "fraction_of_planned")), run.ToString());
        Assert.That(shrunk["reason"], Does.StartWith("fraction_of_planned 52.").And.Contain("% is below the warn-only floor 90%"), run.ToString());
        Assert.That(Metric("1", "fraction_of_free"), Is.LessThan(0.6));
        Assert.That(Metric("1", "errors_total"), Is.Zero, "the memory it did test is sound");

        var whole = Verdicts().Single(v => v["test"] == "memtest" && v["device"] == "0");
        Assert.That(whole["status"], Is.EqualTo("PASS"), run.ToString());
        Assert.That(whole["reason"], Does.StartWith("fraction_of_planned 100% clears the floor 90%"));
        Assert.That(Metric("0", "fraction_of_free"), Is.GreaterThanOrEqualTo(0.949));
    }

    [Test]
    public void A_fragmented_region_over_several_chunks_is_swept_in_the_rotated_order_without_false_errors()
    {
        // 104 MiB of 128: the fallback's chunks (64 + 32 MiB) and the moving inversions' turned sweeps,
        // which start half the region away and so cross a chunk boundary in two launches.
        var run = Burn("1:memory=128MiB", "alloc:dev=0,limit=104MiB",
            Plan("name: mi\ntests:\n  - test: memtest\n    gpu_size: 95%\n    patterns: [moving_inv_fixed, moving_inv_random]\n    iterations: 2\n"));
        Assert.That(Metric("0", "chunks"), Is.GreaterThan(1), run.ToString());
        Assert.That(Metric("0", "errors_total"), Is.Zero, run.ToString());
        Assert.That(Verdicts().Single(v => v["test"] == "memtest")["status"], Is.EqualTo("WARN"), run.ToString());
    }

    [Test]
    public void Standard_and_soak_plan_memtest_over_at_least_90_percent_of_a_gpus_free_memory()
    {
        var emu = new DeviceInfo("emu", "Kiln Emulated GPU", "", "00ee:01:00.0", 0, 4, 1, 32, 512UL << 20, 500UL << 20, 4UL << 20, 1000, 8, 0.004, 0.004);
        var host = new DeviceInfo("cpu", "Test CPU", "", "", 0, 8, 1, 2, 64UL << 30, 48UL << 30, 32UL << 20, 3000, 0, 0, 0);
        foreach (var name in new[] { "standard", "soak" })
        {
            var memtest = PlanLoader.Resolve(name).Tests.Single(t => t.Key == "memtest");
            var gpu = memtest.ToParams(emu);
            // A fraction: the native side takes it of the free memory it sees when it starts.
            Assert.That((gpu.SizeBytes, gpu.SizeFraction), Is.EqualTo((0UL, 0.95)), name);
            Assert.That(memtest.ToParams(host).SizeBytes, Is.EqualTo(16UL << 30), $"{name}: the host keeps its 16 GiB (docs/PLANS.md)");
            // --size still sizes every device.
            Assert.That(memtest.With(new TestOverrides { Size = SizeSpec.Exact(64UL << 20) }).ToParams(emu).SizeBytes, Is.EqualTo(64UL << 20));
        }
        var quick = PlanLoader.Resolve("quick").Tests.Single(t => t.Key == "memtest").ToParams(emu);
        Assert.That(quick.SizeBytes, Is.EqualTo(125UL << 20), "quick stays a quick look: 512 MiB, at most a quarter");
    }

    [Test]
    public void Standards_memtest_as_shipped_covers_at_least_90_percent_of_an_emulated_gpus_free_memory()
    {
        // The memtest entry of the built-in standard plan, exactly as `kiln plan show standard` prints it,
        // run alone on a small emulated device.
        var shown = KilnCli.Run("plan", "show", "standard");
        Assert.That(shown.ExitCode, Is.Zero, shown.ToString());
        var lines = shown.Stdout.Split('\n');
        var start = Array.FindIndex(lines, l => l.Trim() == "- test: memtest");
        var entry = lines.Skip(start).TakeWhile((l, i) => i == 0 || !l.TrimStart().StartsWith('-')).ToList();
        var run = Burn("1:memory=64MiB", null, Plan("name: standard-memtest\ntests:\n" + string.Join('\n', entry) + "\n"));
        Assert.That(run.ExitCode, Is.Zero, run.ToString());
        Assert.That(Metric("0", "fraction_of_free"), Is.GreaterThanOrEqualTo(0.9), run.ToString());
        Assert.That(Verdicts().Single(v => v["test"] == "memtest")["status"], Is.EqualTo("PASS"));
    }

    // A plan with no health checks after its tests: before, nothing re-read the row-remap state and the
    // burn passed a GPU whose remap waits for a reset.
    private const string NoHealthChecks = "name: no-health\ntests:\n  - test: launch\n    iterations: 200\n";

    [Test]
    public void A_row_remap_pending_after_the_burn_fails_the_emulated_device_it_is_on()
    {
        var run = Burn("2", "remap:dev=1,pending=1,uncorrectable=2", Plan(NoHealthChecks));
        Assert.That(run.ExitCode, Is.EqualTo(1), run.ToString());
        var row = Verdicts().Single(v => v["test"] == "telemetry" && v["device"] == "1");
        Assert.That((row["backend"], row["status"], row["metric"]), Is.EqualTo(("emu", "FAIL", "row_remap_pending")), run.ToString());
        Assert.That(row["reason"], Does.StartWith("emu1 (GPU-4b494c4e-454d-5500-0000-000000000001, PCI 00ee:02:00.0): a row remap is pending after the burn (2 rows"));
        var other = Verdicts().Single(v => v["test"] == "telemetry" && v["device"] == "0");
        Assert.That(other["status"], Is.EqualTo("PASS"));
        Assert.That(other["reason"], Does.EndWith("no row remap pending after the burn"));
    }

    [Test]
    public void A_row_remap_pending_after_the_burn_fails_the_nvml_gpu_it_is_on()
    {
        // cpu tests beside two fake NVML GPUs, the second with a remap waiting for a reset.
        var profile = Path.Combine(_dir, "profile.yaml");
        File.WriteAllText(profile, "name: cpu-with-fake-gpus\nthresholds:\n  cpu:\n    stream:\n      copy_gbps_best: { min: 1 GB/s }\n");
        var plan = Plan("name: no-health\ntests:\n  - test: memtest\n    size: 16MiB\n    patterns: [walking_ones]\n");
        var kmsg = Path.Combine(_dir, "kmsg.log");
        File.WriteAllText(kmsg, "");
        var run = CheckRunner.Kiln("gpus=2;gpu1.remap_pending=1;gpu1.remap_uncorrectable=1", "burn", "--plan", plan, "--profile", profile,
            "--backend", "cpu", "--kmsg", kmsg, "--out", _out);
        Assert.That(run.ExitCode, Is.EqualTo(1), run.ToString());
        var rows = Verdicts().Where(v => v["test"] == "telemetry").ToList();
        var gpu1 = rows.Single(v => v["device"] == "1");
        Assert.That((gpu1["backend"], gpu1["status"], gpu1["metric"]), Is.EqualTo(("nvml", "FAIL", "row_remap_pending")), run.ToString());
        Assert.That(gpu1["reason"], Does.StartWith("gpu1 (GPU-0000fake-0000-0000-0000-000000000001, PCI 0000:2a:00.0): a row remap is pending after the burn"));
        Assert.That(rows.Single(v => v["device"] == "0")["status"], Is.EqualTo("PASS"));
    }
}
