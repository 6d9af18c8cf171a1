// kiln burn end to end, as an operator sees it: exit code, the rows in OUT/, the flipped bits at
// the predicted addresses, and a SIGTERM that stops the run quickly and keeps what was measured.
using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Kiln.Native.Interop;
using Kiln.Tests.Core;

namespace Kiln.Tests.Cli;

[NonParallelizable]  // each burn takes both cores of a CI machine
public class BurnTests
{
    private const ulong RegionBytes = 64UL << 20;
    private string _out = "";

    [SetUp]
    public void SetUp() => _out = Path.Combine(TestEnvironment.NewTempFolder("kiln-burn"), "out");

    [TearDown]
    public void TearDown() => Directory.Delete(Path.GetDirectoryName(_out)!, recursive: true);

    [Test]
    public void Injected_flips_fail_the_node_and_errors_csv_holds_exactly_those_bits()
    {
        var run = KilnCli.Run("burn", "--plan", "quick", "--backend", "cpu", "--size", "64MiB",
            "--inject", "memtest:flips=3,seed=7", "--out", _out);

        Assert.That(run.ExitCode, Is.EqualTo(1), run.ToString());
        var predicted = PredictFlips(seed: 7, count: 3, RegionBytes);
        Assert.That(predicted, Is.EqualTo(NativeFlips(seed: 7, count: 3, RegionBytes)), "the test's formula agrees with the library's");

        var errors = Csv("errors.csv");
        Assert.That(errors.Header, Is.EqualTo("timestamp,host,test,backend,device,pattern,offset,expected,actual,bits,sm,sm_clock_mhz"));
        Assert.That(errors.Rows, Has.Count.EqualTo(3), run.ToString());
        var found = errors.Rows.Select(r => (Offset: Hex(r["offset"]), Bit: int.Parse(r["bits"], CultureInfo.InvariantCulture))).ToList();
        // Reported lowest offset first, whichever worker thread found each.
        Assert.That(found, Is.EqualTo(predicted.OrderBy(x => x.Offset).ToList()));
        Assert.That(errors.Rows.Select(r => (r["sm"], r["sm_clock_mhz"])), Is.All.EqualTo(("", "")), "the CPU has no SM");
        foreach (var r in errors.Rows)
        {
            Assert.That((r["test"], r["backend"], r["device"], r["pattern"]), Is.EqualTo(("memtest", "cpu", "0", "walking_ones")));
            Assert.That(Hex(r["expected"]) ^ Hex(r["actual"]), Is.EqualTo(1UL << int.Parse(r["bits"], CultureInfo.InvariantCulture)));
            Assert.That(r["expected"], Does.Match("^0x[0-9a-f]{16}$"));
        }

        var verdicts = Csv("verdicts.csv").Rows;
        var memtest = verdicts.Single(v => v["test"] == "memtest");
        Assert.That(memtest["status"], Is.EqualTo("FAIL"));
        Assert.That(memtest["reason"], Does.StartWith("3 data errors, first at offset 0x").And.EndWith("(injected)"));
        Assert.That(verdicts.Single(v => v["test"] == "stream")["status"], Is.EqualTo("PASS"));

        var metrics = Csv("metrics.csv");
        Assert.That(metrics.Header, Is.EqualTo("timestamp,host,run_id,test,backend,device,metric,value,unit,injected"));
        Assert.That(metrics.Rows.Where(m => m["test"] == "memtest").Select(m => m["injected"]), Is.All.EqualTo("true"));
        Assert.That(metrics.Rows.Where(m => m["test"] == "stream").Select(m => m["injected"]), Is.All.EqualTo("false"));
        Assert.That(metrics.Rows.Single(m => m["metric"] == "errors_total" && m["test"] == "memtest")["value"], Is.EqualTo("3"));

        using var summary = JsonDocument.Parse(File.ReadAllText(Path.Combine(_out, "summary.json")));
        Assert.That(summary.RootElement.GetProperty("verdict").GetString(), Is.EqualTo("FAIL"));
        Assert.That(summary.RootElement.GetProperty("injected").GetBoolean(), Is.True);
        Assert.That(summary.RootElement.GetProperty("exit_code").GetInt32(), Is.EqualTo(1));
        Assert.That(summary.RootElement.GetProperty("injections")[0].GetString(), Is.EqualTo("memtest:flips=3,seed=7"));
    }

    [Test]
    public void Stream_corruption_fails_with_exactly_the_changed_elements_one_of_them_one_ulp()
    {
        const ulong arrayBytes = 8UL << 20;
        var run = KilnCli.Run("bench", "stream", "--size", "8MiB", "--iterations", "2",
            "--inject", "stream:corrupt=4,seed=9", "--out", _out);

        Assert.That(run.ExitCode, Is.EqualTo(1), run.ToString());
        var predicted = PredictFlips(seed: 9, count: 4, arrayBytes);
        var errors = Csv("errors.csv").Rows;
        Assert.That(errors, Has.Count.EqualTo(4), run.ToString());
        Assert.That(errors.Select(r => r["pattern"]), Is.All.EqualTo("stream_a"));
        Assert.That(errors.Select(r => Hex(r["offset"])).Order(), Is.EqualTo(predicted.Select(p => p.Offset).Order()));
        var first = errors.Single(r => Hex(r["offset"]) == predicted[0].Offset);
        Assert.That(Hex(first["expected"]) ^ Hex(first["actual"]), Is.EqualTo(1UL), "the first change is one ulp");
        Assert.That(Csv("metrics.csv").Rows.Single(m => m["metric"] == "errors_total")["value"], Is.EqualTo("4"));
        Assert.That(Csv("metrics.csv").Rows.Select(m => m["injected"]), Is.All.EqualTo("true"));
    }

    [Test]
    public void A_healthy_run_passes_with_every_output_written()
    {
        var run = KilnCli.Run("burn", "--plan", "quick", "--backend", "cpu", "--size", "64MiB", "--out", _out);

        Assert.That(run.ExitCode, Is.Zero, run.ToString());
        var verdicts = Csv("verdicts.csv");
        Assert.That(verdicts.Header, Is.EqualTo("host,test,backend,device,status,metric,value,threshold,unit,reason"));
        // quick also names the GPU tests (SKIP where the backend lacks them) and health checks around them.
        Assert.That(verdicts.Rows.Select(v => v["test"]),
            Is.EqualTo(new[] { "health_before", "stream", "memtest", "gemm", "power", "copy", "launch", "health_after" }));
        Assert.That(verdicts.Rows.Where(v => v["test"] is "stream" or "memtest").Select(v => v["status"]), Is.All.EqualTo("PASS"), run.ToString());
        Assert.That(verdicts.Rows.Where(v => v["test"] is "gemm" or "copy" or "launch").Select(v => v["status"]), Has.None.EqualTo("FAIL"));
        Assert.That(verdicts.Rows.Where(v => v["status"] == "SKIP").Select(v => v["reason"]), Is.All.StartWith("unsupported: "));
        Assert.That(verdicts.Rows.Where(v => v["test"].StartsWith("health_")).Select(v => v["status"]), Has.None.EqualTo("FAIL"), run.ToString());
        Assert.That(Csv("errors.csv").Rows, Is.Empty);
        var metrics = Csv("metrics.csv").Rows;
        foreach (var op in new[] { "copy", "scale", "add", "triad" })
            Assert.That(metrics.Count(m => m["metric"] == $"{op}_gbps"), Is.EqualTo(5), $"{op}: one row per iteration");
        Assert.That(metrics.Select(m => m["injected"]), Is.All.EqualTo("false"));

        using var summary = JsonDocument.Parse(File.ReadAllText(Path.Combine(_out, "summary.json")));
        var root = summary.RootElement;
        Assert.That(root.GetProperty("verdict").GetString(), Is.EqualTo("PASS"));
        Assert.That(root.GetProperty("injected").GetBoolean(), Is.False);
        Assert.That(root.GetProperty("plan").GetString(), Is.EqualTo("quick"));
        Assert.That(root.GetProperty("kiln_version").GetString(), Is.EqualTo("0.1.0"));
        Assert.That(root.GetProperty("inventory").GetProperty("devices")[0].GetProperty("backend").GetString(), Is.EqualTo("cpu"));
        Assert.That(root.GetProperty("counts").GetProperty("pass").GetInt32(), Is.EqualTo(verdicts.Rows.Count(v => v["status"] == "PASS")));
        Assert.That(Directory.GetFiles(Path.Combine(_out, "plots")).Select(Path.GetFileName),
            Is.EquivalentTo(new[] { "stream_cpu0.png", "memtest_cpu0.png", "gemm_cpu0.png", "power_cpu0.png" }), "the cpu's gemm and power are judged too");
        Assert.That(run.Stdout, Does.Contain("node verdict: PASS"));
    }

    [Test]
    public void Sigterm_stops_a_long_burn_within_a_second_or_two_and_keeps_its_rows()
    {
        // Big enough that the burn would run for a long while: stream on 3 x 1 GiB, then memtest on 1 GiB.
        using var process = KilnCli.Start("burn", "--plan", "quick", "--backend", "cpu", "--size", "1GiB", "--out", _out);
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        var metricsPath = Path.Combine(_out, "metrics.csv");
        var deadline = Stopwatch.StartNew();
        while (MetricRowsOnDisk(metricsPath) < 1 && deadline.Elapsed < TimeSpan.FromSeconds(60) && !process.HasExited)
            Thread.Sleep(100);
        Assert.That(process.HasExited, Is.False, "the burn ended before it could be cancelled");
        var rowsBefore = MetricRowsOnDisk(metricsPath);
        Assert.That(rowsBefore, Is.GreaterThan(0), "no metric row within 60 s");

        var signalled = Stopwatch.StartNew();
        KilnCli.Signal(process, "TERM");
        var exited = process.WaitForExit(TimeSpan.FromSeconds(5));
        var stopSeconds = signalled.Elapsed.TotalSeconds;

        Assert.That(exited, Is.True, "still running 5 s after SIGTERM");
        process.WaitForExit();
        var output = $"stdout:\n{stdout.Result}\nstderr:\n{stderr.Result}";
        Assert.That(stopSeconds, Is.LessThan(2.5), output);
        Assert.That(process.ExitCode, Is.EqualTo(1), output);
        Assert.That(MetricRowsOnDisk(metricsPath), Is.GreaterThanOrEqualTo(rowsBefore), "rows measured before the signal are kept");
        var verdicts = Csv("verdicts.csv").Rows;
        // gemm/copy/launch are SKIP on the cpu backend anyway: the cancelled ones must be stream or memtest.
        var cancelled = verdicts.Where(v => v["test"] is "stream" or "memtest" && v["status"] == "SKIP").ToList();
        Assert.That(cancelled, Is.Not.Empty, "the signal cancelled stream or memtest");
        Assert.That(cancelled.Select(v => v["reason"]), Is.All.EqualTo("cancelled"));
        using var summary = JsonDocument.Parse(File.ReadAllText(Path.Combine(_out, "summary.json")));
        Assert.That(summary.RootElement.GetProperty("verdict").GetString(), Is.EqualTo("INCOMPLETE"));
        Assert.That(stderr.Result, Does.Not.Contain("   at "), "no stack trace");
    }

    /// <summary>The documented injection formula, re-implemented here: splitmix64 seeded with seed;
    /// per flip word = next() % words (drawn again if taken), bit = next() % 64, offset = word * 8.</summary>
    internal static List<(ulong Offset, int Bit)> PredictFlips(ulong seed, int count, ulong regionBytes)
    {
        var state = seed;
        ulong Next()
        {
            var z = state += 0x9E3779B97F4A7C15UL;
            z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
            z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
            return z ^ (z >> 31);
        }
        var words = regionBytes / 8;
        var taken = new List<ulong>();
        var flips = new List<(ulong, int)>();
        while (flips.Count < count)
        {
            var word = Next() % words;
            if (taken.Contains(word)) continue;
            taken.Add(word);
            flips.Add((word * 8, (int)(Next() % 64)));
        }
        return flips;
    }

    private static unsafe List<(ulong Offset, int Bit)> NativeFlips(ulong seed, int count, ulong regionBytes)
    {
        var offsets = new ulong[count];
        var bits = new uint[count];
        fixed (ulong* o = offsets)
        fixed (uint* b = bits)
        {
            Assert.That(KilnNative.kiln_injection_positions(seed, count, regionBytes, o, b), Is.EqualTo(kiln_status.KILN_OK));
        }
        return offsets.Zip(bits, (o, b) => (o, (int)b)).ToList();
    }

    private static ulong Hex(string text) => ulong.Parse(text.AsSpan(2), NumberStyles.HexNumber, CultureInfo.InvariantCulture);

    private static int MetricRowsOnDisk(string path)
    {
        if (!File.Exists(path)) return 0;
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
        using var reader = new StreamReader(stream);
        return Math.Max(0, reader.ReadToEnd().Split('\n', StringSplitOptions.RemoveEmptyEntries).Length - 1);
    }

    private CsvFile Csv(string name) => CsvFile.Read(Path.Combine(_out, name));
}

/// <summary>A result CSV read by column name (the files never quote a header; reasons may be quoted).</summary>
public sealed record CsvFile(string Header, List<Dictionary<string, string>> Rows)
{
    public static CsvFile Read(string path)
    {
        using var reader = new StreamReader(path);
        using var csv = new CsvHelper.CsvReader(reader, CultureInfo.InvariantCulture);
        csv.Read();
        csv.ReadHeader();
        var names = csv.HeaderRecord!;
        var rows = new List<Dictionary<string, string>>();
        while (csv.Read()) rows.Add(names.ToDictionary(n => n, n => csv.GetField(n)!));
        return new CsvFile(string.Join(',', names), rows);
    }
}
