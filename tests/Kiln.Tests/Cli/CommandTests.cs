// kiln --version, inventory and bench as a user runs them: the text they print, the JSON they
// emit, the files they write, and how long the quick ones take.
using System.Text.Json;
using Kiln.Tests.Core;

namespace Kiln.Tests.Cli;

public class CommandTests
{
    [Test]
    public void Version_names_kiln_the_native_library_and_the_abi()
    {
        var run = KilnCli.Run("--version");
        Assert.That(run.ExitCode, Is.Zero, run.ToString());
        Assert.That(run.Stdout.Trim(), Does.Match(@"^kiln 0\.1\.0 \(native \d+\.\d+\.\d+\S*, abi \d+\)$"));
        Assert.That(run.Stderr, Is.Empty);
    }

    [Test]
    public void Inventory_text_lists_the_cpu_backend_its_device_and_the_host()
    {
        var run = KilnCli.Run("inventory");
        Assert.That(run.ExitCode, Is.Zero, run.ToString());
        Assert.That(run.Stdout, Does.Contain("backends\n  cpu").And.Contain("devices\n  cpu0").And.Contain("logical CPUs"));
        Assert.That(run.Stdout, Does.Contain("skipped\n"));
    }

    [Test]
    public void Inventory_json_is_machine_readable()
    {
        var run = KilnCli.Run("inventory", "--format", "json");
        Assert.That(run.ExitCode, Is.Zero, run.ToString());
        using var json = JsonDocument.Parse(run.Stdout);
        var inventory = json.RootElement.GetProperty("inventory");
        Assert.That(inventory.GetProperty("backends")[0].GetProperty("name").GetString(), Is.EqualTo("cpu"));
        Assert.That(inventory.GetProperty("devices")[0].GetProperty("compute_units").GetInt32(), Is.GreaterThan(0));
        Assert.That(inventory.GetProperty("host").GetProperty("memory_total_bytes").GetUInt64(), Is.GreaterThan(0UL));
        Assert.That(inventory.GetProperty("skipped_plugins").ValueKind, Is.EqualTo(JsonValueKind.Array));
        Assert.That(json.RootElement.GetProperty("inventory_fingerprint").GetString(), Has.Length.EqualTo(16));
    }

    [Test]
    public void Bench_stream_prints_each_ops_best_and_writes_metrics_with_out()
    {
        var dir = TestEnvironment.NewTempFolder("kiln-bench");
        try
        {
            var run = KilnCli.Run("bench", "stream", "--backend", "cpu", "--size", "16MiB", "--iterations", "3",
                "--ops", "copy,triad", "--threads", "2", "--out", dir);
            Assert.That(run.ExitCode, Is.Zero, run.ToString());
            Assert.That(run.Stdout, Does.Match(@"copy_gbps\s+best\s+\d+\.\d\d GB/s \(").And.Match(@"triad_gbps\s+best\s+\d+\.\d\d GB/s \("));
            Assert.That(run.Stdout, Does.Not.Contain("scale_gbps"));
            var metrics = CsvFile.Read(Path.Combine(dir, "metrics.csv")).Rows;
            Assert.That(metrics.Count(m => m["metric"] == "copy_gbps"), Is.EqualTo(3));
            Assert.That(metrics.Count(m => m["metric"] == "scale_gbps"), Is.Zero);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Test]
    public void Bench_memtest_with_injection_reports_the_errors_and_exits_1()
    {
        var run = KilnCli.Run("bench", "memtest", "--backend", "cpu", "--size", "8MiB", "--pattern", "walking_ones,own_address",
            "--inject", "memtest:flips=2,seed=1");
        Assert.That(run.ExitCode, Is.EqualTo(1), run.ToString());
        Assert.That(run.Stdout, Does.Contain("data errors total 2").And.Contain("(injected)"));
        Assert.That(run.Stdout, Does.Match(@"errors walking_ones\s+2"));
    }
}
