// Collectives as a user runs them, on the emulated device's NCCL (the same dlopen seam as libnccl.so.2):
// a burn's allreduce test over the node's GPUs, faults planted below the kernels in the emulated
// links (KILN_EMU_FAULTS collflip, collslow: the burn is not told), the library's absence or age, and
// kiln net allreduce across two processes that meet at the rendezvous, one of which never comes or dies.
using System.Diagnostics;
using Kiln.Tests.Cli;
using Kiln.Tests.Core;

namespace Kiln.Tests.Net;

[NonParallelizable]  // collectives time host memory copies: alone on the machine's cores
public sealed class CollectiveTests
{
    private string _dir = "";
    private readonly List<Process> _started = [];

    [SetUp]
    public void SetUp() => _dir = TestEnvironment.NewTempFolder("kiln-coll");

    [TearDown]
    public void TearDown()
    {
        foreach (var p in _started)
        {
            if (!p.HasExited) p.Kill(entireProcessTree: true);
            p.WaitForExit(10000);
            p.Dispose();
        }
        _started.Clear();
        Directory.Delete(_dir, recursive: true);
    }

    private const string AllreducePlan = "name: allreduce-only\ntests:\n  - test: allreduce\n    size: 8MiB\n    iterations: 3\n";

    private CliResult Burn(Dictionary<string, string?> environment, string folder = "out")
    {
        var plan = Path.Combine(_dir, "plan.yaml");
        File.WriteAllText(plan, AllreducePlan);
        environment.TryAdd("KILN_EMU_DEVICES", "2");
        return KilnCli.RunWith(environment, TimeSpan.FromMinutes(4), "burn", "--plan", plan, "--backend", "emu", "--profile", "emu",
            "--out", Path.Combine(_dir, folder));
    }

    private Dictionary<string, string> Verdict(string folder = "out") =>
        CsvFile.Read(Path.Combine(_dir, folder, "verdicts.csv")).Rows.Single(v => v["test"] == "allreduce");

    private List<Dictionary<string, string>> Metrics(string folder = "out") =>
        CsvFile.Read(Path.Combine(_dir, folder, "metrics.csv")).Rows.Where(m => m["test"] == "allreduce").ToList();

    private static double Value(List<Dictionary<string, string>> metrics, string name) =>
        double.Parse(metrics.Single(m => m["metric"] == name)["value"], System.Globalization.CultureInfo.InvariantCulture);

    [Test]
    public void A_healthy_emulated_node_passes_allreduce_over_both_gpus_with_busbw_as_nccl_tests_define_it()
    {
        var run = Burn([]);
        Assert.That(run.ExitCode, Is.Zero, run.ToString());
        var v = Verdict();
        Assert.That((v["status"], v["backend"], v["metric"]), Is.EqualTo(("PASS", "net", "allreduce_busbw_gbps")), run.ToString());
        var m = Metrics();
        Assert.That(Value(m, "ranks"), Is.EqualTo(2));
        Assert.That(Value(m, "size_bytes"), Is.EqualTo(8 << 20));
        // n = 2: all-reduce's busbw is its algbw (2(n-1)/n = 1), the others' half of it ((n-1)/n).
        Assert.That(Value(m, "allreduce_busbw_gbps"), Is.EqualTo(Value(m, "allreduce_algbw_gbps")).Within(1e-9));
        Assert.That(Value(m, "allgather_busbw_gbps"), Is.EqualTo(Value(m, "allgather_algbw_gbps") / 2).Within(1e-9));
        Assert.That(Value(m, "reducescatter_busbw_gbps"), Is.EqualTo(Value(m, "reducescatter_algbw_gbps") / 2).Within(1e-9));
        foreach (var op in new[] { "allreduce", "allgather", "reducescatter" }) Assert.That(Value(m, $"{op}_errors"), Is.Zero, op);
        Assert.That(File.ReadAllLines(Path.Combine(_dir, "out", "errors.csv")), Has.Length.EqualTo(1), "a header and no wrong word");
    }

    [Test]
    public void A_bad_link_into_one_gpu_fails_the_node_naming_the_rank_the_device_the_offset_and_the_bit()
    {
        var run = Burn(new() { ["KILN_EMU_FAULTS"] = "collflip:dev=1,offset=0x40,bit=20" });
        Assert.That(run.ExitCode, Is.EqualTo(1), run.ToString());
        var v = Verdict();
        Assert.That(v["status"], Is.EqualTo("FAIL"));
        Assert.That(v["reason"], Does.Contain("first at offset 0x40 (allreduce rank 1 (device 1), bits 20)"));
        var errors = CsvFile.Read(Path.Combine(_dir, "out", "errors.csv")).Rows;
        // One wrong word in each op's result on device 1, none on device 0.
        Assert.That(errors.Select(e => e["pattern"]),
            Is.EquivalentTo(new[] { "allreduce rank 1 (device 1)", "allgather rank 1 (device 1)", "reducescatter rank 1 (device 1)" }));
        Assert.That(errors.Select(e => (e["offset"], e["bits"])).Distinct(), Is.EqualTo(new[] { ("0x40", "20") }));
    }

    [Test]
    public void A_slow_link_fails_on_busbw()
    {
        var run = KilnCli.RunWith(new Dictionary<string, string?> { ["KILN_EMU_DEVICES"] = "2", ["KILN_EMU_FAULTS"] = "collslow:dev=0,factor=1000" },
            TimeSpan.FromMinutes(3), "net", "allreduce", "--backend", "emu", "--ops", "allreduce", "--size", "1MiB", "--iterations", "2",
            "--profile", "emu", "--out", Path.Combine(_dir, "out"));
        Assert.That(run.ExitCode, Is.EqualTo(1), run.ToString());
        var v = Verdict();
        Assert.That((v["status"], v["metric"]), Is.EqualTo(("FAIL", "allreduce_busbw_gbps")), run.ToString());
        Assert.That(v["reason"], Does.Contain("below the floor 0.005 GB/s"));
    }

    [Test]
    public void A_library_older_than_kiln_runs_is_a_skip_that_names_its_version()
    {
        var run = Burn(new() { ["KILN_EMU_NCCL_VERSION"] = "2804" });  // 2.8.4, the old encoding
        Assert.That(Verdict()["status"], Is.EqualTo("SKIP"), run.ToString());
        Assert.That(Verdict()["reason"], Does.Contain("emulated NCCL 2.8.4").And.Contain("is older than 2.10.0"));
    }

    [Test]
    public void No_library_is_a_skip_with_the_loader_s_reason()
    {
        var run = Burn(new() { ["KILN_NCCL_LIBRARY"] = "/nonexistent/libnccl.so.2" });
        Assert.That(Verdict()["status"], Is.EqualTo("SKIP"), run.ToString());
        Assert.That(Verdict()["reason"], Does.Contain("no emulated NCCL: /nonexistent/libnccl.so.2: cannot open shared object file"));
    }

    [Test]
    public void One_gpu_is_a_skip_not_a_zero_busbw_fail()
    {
        var run = Burn(new() { ["KILN_EMU_DEVICES"] = "1" });
        Assert.That(Verdict()["status"], Is.EqualTo("SKIP"), run.ToString());
        Assert.That(Verdict()["reason"], Does.Contain("a collective needs two ranks"));
    }

    [Test]
    public void A_node_without_gpus_skips_allreduce()
    {
        var plan = Path.Combine(_dir, "plan.yaml");
        File.WriteAllText(plan, AllreducePlan);
        var run = KilnCli.Run(TimeSpan.FromMinutes(2), "burn", "--plan", plan, "--backend", "cpu", "--profile", "cpu-only", "--out", Path.Combine(_dir, "out"));
        Assert.That(Verdict()["status"], Is.EqualTo("SKIP"), run.ToString());
        Assert.That(Verdict()["reason"], Does.Contain("no GPU to run collectives on"));
    }


    private Process StartRank(int index, int port, string folder, Dictionary<string, string?>? extra = null, params string[] more)
    {
        var environment = new Dictionary<string, string?> { ["KILN_EMU_DEVICES"] = "2" };
        foreach (var (k, v) in extra ?? []) environment[k] = v;
        var p = KilnCli.Start(environment, ["net", "allreduce", "--backend", "emu", "--processes", "2", "--process-index", $"{index}",
            "--root", $"127.0.0.1:{port}", "--profile", "emu", "--out", Path.Combine(_dir, folder), .. more]);
        _started.Add(p);
        return p;
    }

    [Test]
    public void Two_processes_meet_at_the_rendezvous_and_each_passes_as_two_of_four_ranks()
    {
        var port = TestEnvironment.FreeLoopbackPort();
        // The joining process first: it waits for process 0 to listen.
        var one = StartRank(1, port, "p1", null, "--size", "8MiB", "--iterations", "3");
        var zero = StartRank(0, port, "p0", null, "--size", "8MiB", "--iterations", "3");
        var outs = new[] { zero, one }.Select(p => (Out: p.StandardOutput.ReadToEndAsync(), Err: p.StandardError.ReadToEndAsync())).ToArray();
        Assert.That(zero.WaitForExit(TimeSpan.FromMinutes(3)) && one.WaitForExit(TimeSpan.FromMinutes(3)), Is.True);
        var why = string.Join("\n", outs.Select(o => o.Out.Result + o.Err.Result));
        Assert.That((zero.ExitCode, one.ExitCode), Is.EqualTo((0, 0)), why);
        foreach (var folder in new[] { "p0", "p1" })
        {
            Assert.That(Verdict(folder)["status"], Is.EqualTo("PASS"), why);
            var m = Metrics(folder);
            Assert.That(Value(m, "ranks"), Is.EqualTo(4));
            // n = 4: 2(n-1)/n = 1.5.
            Assert.That(Value(m, "allreduce_busbw_gbps"), Is.EqualTo(1.5 * Value(m, "allreduce_algbw_gbps")).Within(1e-9));
        }
        Assert.That(Verdict("p1")["device"], Is.EqualTo("0"));
        Assert.That(File.ReadAllText(Path.Combine(_dir, "p1", "metrics.csv")), Does.Contain("allreduce"));
    }

    [Test]
    public void A_process_that_never_comes_fails_the_run_within_its_timeout_naming_it()
    {
        var watch = Stopwatch.StartNew();
        var run = KilnCli.RunWith(new Dictionary<string, string?> { ["KILN_EMU_DEVICES"] = "2" }, TimeSpan.FromMinutes(2),
            "net", "allreduce", "--backend", "emu", "--processes", "3", "--process-index", "0", "--root", $"127.0.0.1:{TestEnvironment.FreeLoopbackPort()}",
            "--timeout", "2s", "--size", "1MiB", "--profile", "emu", "--out", Path.Combine(_dir, "out"));
        Assert.That(run.ExitCode, Is.EqualTo(1), run.ToString());
        Assert.That(Verdict()["status"], Is.EqualTo("FAIL"));
        Assert.That(Verdict()["reason"], Does.Contain("1 of 3 processes joined").And.Contain("missing processes 1-2"));
        Assert.That(watch.Elapsed, Is.LessThan(TimeSpan.FromSeconds(60)), "2 s of waiting and the start of two processes");
    }

    [Test]
    public void A_process_killed_mid_run_fails_the_other_within_the_deadline_with_the_reason()
    {
        var port = TestEnvironment.FreeLoopbackPort();
        var slowly = new Dictionary<string, string?> { ["KILN_EMU_NCCL_TIMEOUT_MS"] = "3000", ["KILN_EMU_FAULTS"] = "collslow:dev=0,factor=20" };
        var one = StartRank(1, port, "p1", slowly, "--size", "4MiB", "--iterations", "50");
        var zero = StartRank(0, port, "p0", slowly, "--size", "4MiB", "--iterations", "50");
        var zeroOut = zero.StandardOutput.ReadToEndAsync();
        var zeroErr = zero.StandardError.ReadToEndAsync();
        // Once process 1 is measuring (its communicator is up), it dies as a node that lost power.
        var until = DateTime.UtcNow + TimeSpan.FromMinutes(2);
        var seen = false;
        while (!seen && DateTime.UtcNow < until && one.StandardOutput.ReadLine() is { } line) seen = line.Contains("metric allreduce net0 ranks", StringComparison.Ordinal);
        Assert.That(seen, Is.True, "process 1 never reported its ranks");
        var killed = Stopwatch.StartNew();
        KilnCli.Signal(one, "KILL");
        Assert.That(zero.WaitForExit(TimeSpan.FromMinutes(2)), Is.True, "process 0 hung after its peer died");
        var took = killed.Elapsed;
        var why = zeroOut.Result + zeroErr.Result;
        Assert.That(zero.ExitCode, Is.EqualTo(1), why);
        Assert.That(Verdict("p0")["status"], Is.EqualTo("FAIL"), why);
        Assert.That(Verdict("p0")["reason"], Does.Contain("remote process exited or there was a network error"));
        Assert.That(took, Is.LessThan(TimeSpan.FromSeconds(30)), "the emulated NCCL's 3 s timeout, then the verdict");
    }

    [TestCase(new[] { "--ops", "allsum" }, "--ops: unknown op 'allsum' (known: allreduce, allgather, reducescatter)")]
    [TestCase(new[] { "--processes", "2" }, "--root: 2 processes meet at HOST:PORT: give --root")]
    [TestCase(new[] { "--processes", "2", "--process-index", "2", "--root", "127.0.0.1:7000" }, "--process-index: 2 is not below --processes 2")]
    public void Bad_input_is_exit_2_naming_the_option(string[] args, string message)
    {
        var run = KilnCli.RunWith(new Dictionary<string, string?> { ["KILN_EMU_DEVICES"] = "2" }, TimeSpan.FromMinutes(1),
            ["net", "allreduce", "--backend", "emu", "--out", Path.Combine(_dir, "out"), .. args]);
        Assert.That(run.ExitCode, Is.EqualTo(2), run.ToString());
        Assert.That(run.Stderr, Does.Contain(message));
    }
}
