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
}
