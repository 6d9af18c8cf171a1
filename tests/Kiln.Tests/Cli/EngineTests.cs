// The burn engine on emulated devices: every device at once, each in its own worker process; a
// hung or crashed worker fails its device and the run goes on; a killed parent leaves no worker
// and keeps its rows; one burn per node.
using System.Diagnostics;
using System.Globalization;
using Kiln.Tests.Core;

namespace Kiln.Tests.Cli;

[NonParallelizable]  // each burn takes both cores of a CI machine
public class EngineTests
{
    private string _dir = "";
    private string Out => Path.Combine(_dir, "out");

    [SetUp]
    public void SetUp() => _dir = TestEnvironment.NewTempFolder("kiln-engine");

    [TearDown]
    public void TearDown() => Directory.Delete(_dir, recursive: true);

    // Every test of quick, with timeouts short enough for CI: the longest is memtest's 20 s.
    private string ShortPlan()
    {
        var plan = Path.Combine(_dir, "short.yaml");
        File.WriteAllText(plan, """
            name: short
            tests:
              - test: stream
                size: 16MiB
                iterations: 3
                timeout: 20s
              - test: memtest
                size: 32MiB
                iterations: 1
                timeout: 20s
              - test: gemm
                duration: 1s
                timeout: 20s
              - test: power
                duration: 1s
                timeout: 20s
              - test: copy
                iterations: 3
                timeout: 20s
              - test: launch
                iterations: 500
                timeout: 20s
            """);
        return plan;
    }

    private static Dictionary<string, string?> Emu(int devices) => new() { ["KILN_EMU_DEVICES"] = devices.ToString(CultureInfo.InvariantCulture) };

    private List<Dictionary<string, string>> Csv(string name) => CsvFile.Read(Path.Combine(Out, name)).Rows;

    [Test]
    public void A_hung_and_a_crashed_device_fail_alone_and_the_others_run_to_the_end()
    {
        var run = KilnCli.RunWith(Emu(4), TimeSpan.FromMinutes(4), "burn", "--plan", ShortPlan(), "--backend", "emu", "--profile", "emu",
            "--inject", "memtest:hang=1,device=2", "--inject", "gemm:crash=1,device=3", "--out", Out);
        Assert.That(run.ExitCode, Is.EqualTo(1), run.ToString());
        var verdicts = Csv("verdicts.csv").Where(v => v["backend"] == "emu").ToList();
        string[] tests = ["stream", "memtest", "gemm", "power", "copy", "launch"];
        Dictionary<string, string> Row(string test, int device) => verdicts.Single(v => v["test"] == test && v["device"] == device.ToString(CultureInfo.InvariantCulture));
        foreach (var device in new[] { 0, 1 })
            foreach (var test in tests)
                Assert.That(Row(test, device)["status"], Is.EqualTo("PASS"), $"{test} emu{device}\n{run}");
        Assert.That(Row("memtest", 2)["status"], Is.EqualTo("FAIL"));
        Assert.That(Row("memtest", 2)["reason"], Does.StartWith("hang: memtest still running 5s after its 20s timeout").And.Contain("last progress"));
        Assert.That(Row("gemm", 3)["status"], Is.EqualTo("FAIL"));
        Assert.That(Row("gemm", 3)["reason"], Does.StartWith("crash: its worker died of signal 11 (SIGSEGV) during gemm"));
        foreach (var test in new[] { "gemm", "power", "copy", "launch" })
            Assert.That((Row(test, 2)["status"], Row(test, 2)["reason"]), Is.EqualTo(("SKIP", "not run: emu2 was retired after its worker hung (hang: memtest still running 5s after its 20s timeout and the cancel)")));
        foreach (var test in new[] { "power", "copy", "launch" })
            Assert.That(Row(test, 3)["reason"], Does.StartWith("not run: emu3 was retired after its worker crashed"));
        // The devices ran at once: the whole run ends within the plan's longest timeout + 15 s (28 s on the 2-core VM).
        Assert.That(run.Elapsed, Is.LessThan(TimeSpan.FromSeconds(20 + 15)), "the longest timeout + 15 s");
    }

    [Test]
    public void A_kernel_that_never_returns_below_the_kernel_fails_its_device_as_a_hang()
    {
        // The emulator's launch 3 of emu1 never returns (KILN_EMU_FAULTS hang): the burn is not told.
        var plan = Path.Combine(_dir, "stream.yaml");
        File.WriteAllText(plan, "name: stream-only\ntests:\n  - test: stream\n    size: 16MiB\n    iterations: 3\n    timeout: 10s\n  - test: launch\n    iterations: 100\n    timeout: 10s\n");
        var env = new Dictionary<string, string?>(Emu(2)) { ["KILN_EMU_FAULTS"] = "hang:dev=1,launch=3" };
        var run = KilnCli.RunWith(env, TimeSpan.FromMinutes(2), "burn", "--plan", plan, "--backend", "emu", "--profile", "emu", "--out", Out);
        Assert.That(run.ExitCode, Is.EqualTo(1), run.ToString());
        var rows = Csv("verdicts.csv").Where(v => v["backend"] == "emu").ToList();
        var hung = rows.Single(v => v["test"] == "stream" && v["device"] == "1");
        Assert.That(hung["status"], Is.EqualTo("FAIL"));
        Assert.That(hung["reason"], Does.StartWith("hang: stream still running 5s after its 10s timeout").And.Contain("device telemetry then:"));
        Assert.That(rows.Single(v => v["test"] == "launch" && v["device"] == "1")["status"], Is.EqualTo("SKIP"));
        Assert.That(rows.Where(v => v["device"] == "0").Select(v => v["status"]), Is.All.EqualTo("PASS"));
        Assert.That(run.Elapsed, Is.LessThan(TimeSpan.FromSeconds(10 + 15 + 20)));
    }

    [Test]
    public void The_devices_run_at_once_each_in_its_own_worker()
    {
        var run = KilnCli.RunWith(Emu(2), TimeSpan.FromMinutes(3), "burn", "--plan", ShortPlan(), "--backend", "emu", "--profile", "emu", "--out", Out);
        Assert.That(run.ExitCode, Is.EqualTo(0), run.ToString());
        // Each device's first and last metric row: the two spans overlap.
        var spans = Csv("metrics.csv").Where(m => m["backend"] == "emu").GroupBy(m => m["device"]).ToDictionary(g => g.Key,
            g => (First: DateTimeOffset.Parse(g.First()["timestamp"], CultureInfo.InvariantCulture), Last: DateTimeOffset.Parse(g.Last()["timestamp"], CultureInfo.InvariantCulture)));
        Assert.That(spans.Keys, Is.EquivalentTo(new[] { "0", "1" }));
        Assert.That(spans["0"].First, Is.LessThan(spans["1"].Last));
        Assert.That(spans["1"].First, Is.LessThan(spans["0"].Last));
        // The parent's telemetry saw the workers' devices busy: the power test's draw is a loaded board's.
        var power = Csv("verdicts.csv").Where(v => v["test"] == "power").ToList();
        Assert.That(power.Select(v => v["status"]), Is.All.EqualTo("PASS"), run.ToString());
    }

    [Test]
    public void Serial_runs_one_device_after_the_other()
    {
        var run = KilnCli.RunWith(Emu(2), TimeSpan.FromMinutes(3), "burn", "--plan", ShortPlan(), "--backend", "emu", "--profile", "emu",
            "--serial", "--out", Out);
        Assert.That(run.ExitCode, Is.EqualTo(0), run.ToString());
        var metrics = Csv("metrics.csv").Where(m => m["backend"] == "emu").ToList();
        var lastOf0 = metrics.FindLastIndex(m => m["device"] == "0");
        var firstOf1 = metrics.FindIndex(m => m["device"] == "1");
        Assert.That(lastOf0, Is.LessThan(firstOf1));
    }

    [Test]
    public void A_killed_burn_leaves_no_worker_and_keeps_what_it_measured()
    {
        using var burn = KilnCli.Start(Emu(2), "burn", "--plan", ShortPlan(), "--backend", "emu", "--profile", "emu", "--out", Out);
        var metrics = Path.Combine(Out, "metrics.csv");
        var clock = Stopwatch.StartNew();
        // Until both workers measured something (the header alone is one line).
        while (clock.Elapsed < TimeSpan.FromSeconds(60) && !(File.Exists(metrics) && File.ReadAllLines(metrics).Skip(1).Select(l => l.Split(',')[5]).Distinct().Count() == 2))
            Thread.Sleep(200);
        var workers = Workers(burn.Id);
        Assert.That(workers, Has.Count.EqualTo(2), "a worker per device");
        KilnCli.Signal(burn, "KILL");
        burn.WaitForExit();
        clock.Restart();
        while (clock.Elapsed < TimeSpan.FromSeconds(10) && workers.Any(Alive)) Thread.Sleep(100);
        Assert.That(workers.Where(Alive), Is.Empty, "every worker died with its parent");
        Assert.That(File.ReadAllLines(metrics).Length, Is.GreaterThan(2), "the rows measured so far are on disk");
        Assert.That(File.ReadAllText(Path.Combine(Out, "summary.json")), Does.Contain("\"verdict\": \"INCOMPLETE\""));
    }

    [Test]
    public void A_second_burn_is_refused_with_exit_3_or_waits_with_wait()
    {
        var state = TestEnvironment.NewTempFolder("kiln-lock");
        var env = new Dictionary<string, string?>(Emu(1)) { ["KILN_STATE_DIR"] = state };
        using var first = KilnCli.Start(env, "burn", "--plan", ShortPlan(), "--backend", "emu", "--profile", "emu", "--out", Out);
        var clock = Stopwatch.StartNew();
        while (clock.Elapsed < TimeSpan.FromSeconds(30) && !File.Exists(Path.Combine(state, "burn.lock.owner"))) Thread.Sleep(100);
        var refused = KilnCli.RunWith(env, TimeSpan.FromMinutes(1), "burn", "--plan", "quick", "--backend", "cpu", "--out", Path.Combine(_dir, "second"));
        Assert.That(refused.ExitCode, Is.EqualTo(3), refused.ToString());
        Assert.That(refused.Stderr, Does.Contain("another kiln run holds this node (pid " + first.Id).And.Contain("--wait"));
        Assert.That(Directory.Exists(Path.Combine(_dir, "second")), Is.False, "nothing was started");

        var waited = KilnCli.RunWith(env, TimeSpan.FromMinutes(3), "burn", "--plan", ShortPlan(), "--backend", "emu", "--profile", "emu",
            "--wait", "--out", Path.Combine(_dir, "third"));
        first.WaitForExit();
        Assert.That(first.ExitCode, Is.EqualTo(0));
        Assert.That(waited.ExitCode, Is.EqualTo(0), waited.ToString());
        Assert.That(waited.Stderr, Does.Contain("waiting for the node"));
        var firstEnd = File.GetLastWriteTimeUtc(Path.Combine(Out, "summary.json"));
        var thirdStart = DateTimeOffset.Parse(CsvFile.Read(Path.Combine(_dir, "third", "metrics.csv")).Rows[0]["timestamp"], CultureInfo.InvariantCulture);
        Assert.That(thirdStart.UtcDateTime, Is.GreaterThanOrEqualTo(firstEnd.AddSeconds(-1)), "the waiting burn started after the first ended");
        Directory.Delete(state, recursive: true);
    }

    [Test]
    public void A_worker_that_writes_garbage_fails_its_device_not_the_parent()
    {
        var fake = Path.Combine(_dir, "fake-worker.sh");
        File.WriteAllText(fake, "#!/bin/sh\necho '{\"E\":\"ready\",\"Detail\":\"fake\"}'\nread line\necho 'this is not JSON'\nsleep 30\n");
        File.SetUnixFileMode(fake, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        var run = KilnCli.RunWith(new Dictionary<string, string?> { ["KILN_WORKER_EXEC"] = fake }, TimeSpan.FromMinutes(2),
            "burn", "--plan", "quick", "--backend", "cpu", "--size", "16MiB", "--out", Out);
        Assert.That(run.ExitCode, Is.EqualTo(1), run.ToString());
        var rows = Csv("verdicts.csv").Where(v => v["backend"] == "cpu").ToList();
        Assert.That(rows.Single(v => v["test"] == "stream")["reason"], Does.StartWith("protocol: the worker wrote 'this is not JSON': not JSON"));
        Assert.That(rows.Single(v => v["test"] == "memtest")["reason"], Does.StartWith("not run: cpu0 was retired after its worker broke the protocol"));
        Assert.That(File.ReadAllText(Path.Combine(Out, "summary.json")), Does.Contain("\"verdict\": \"FAIL\""));
    }

    [Test]
    public void A_full_results_disk_ends_the_run_FAIL_and_nothing_claims_to_be_complete()
    {
        if (Environment.UserName != "root") Assert.Ignore("needs root to mount a small tmpfs (CI runs as root)");
        var disk = Path.Combine(_dir, "disk");
        Directory.CreateDirectory(disk);
        Run("mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", disk);
        try
        {
            // Leave about 32 KiB: enough for the folder, the health checks and the first rows.
            Run("dd", "if=/dev/zero", $"of={Path.Combine(disk, "fill")}", "bs=1k", "count=990");
            var results = Path.Combine(disk, "out");
            var run = KilnCli.Run(TimeSpan.FromMinutes(2), "burn", "--plan", "quick", "--backend", "cpu", "--size", "16MiB", "--out", results);
            Assert.That(run.ExitCode, Is.EqualTo(1), run.ToString());
            Assert.That(run.Stderr, Does.Contain("results could not be written: No space left on device"));
            Assert.That(run.Stdout, Does.Contain("node verdict: FAIL"));
            Assert.That(File.ReadAllText(Path.Combine(results, "summary.json")), Does.Contain("\"verdict\": \"INCOMPLETE\""), "the final summary was not written");
            Assert.That(File.ReadAllLines(Path.Combine(results, "metrics.csv")).Length, Is.GreaterThan(1), "what was measured before is on disk");
            Assert.That(Directory.EnumerateFiles(results, "*.tmp"), Is.Empty, "no half-written file is left");
        }
        finally
        {
            Run("umount", disk);
        }
    }

    private static void Run(string program, params string[] args)
    {
        using var p = Process.Start(new ProcessStartInfo(program, args) { UseShellExecute = false, RedirectStandardError = true })!;
        p.WaitForExit();
        Assert.That(p.ExitCode, Is.Zero, $"{program} {string.Join(' ', args)}: {p.StandardError.ReadToEnd()}");
    }

    // The kiln worker processes whose parent is pid.
    private static List<int> Workers(int parent) =>
        Directory.EnumerateDirectories("/proc").Select(Path.GetFileName).Where(n => int.TryParse(n, out _)).Select(int.Parse)
            .Where(pid =>
            {
                try
                {
                    var stat = File.ReadAllText($"/proc/{pid}/stat");
                    var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
                    return fields[1] == parent.ToString(CultureInfo.InvariantCulture) && File.ReadAllText($"/proc/{pid}/cmdline").Contains("worker");
                }
                catch (IOException) { return false; }
            }).ToList();

    private static bool Alive(int pid) => File.Exists($"/proc/{pid}/stat") && !File.ReadAllText($"/proc/{pid}/stat").Contains(") Z ");
}
