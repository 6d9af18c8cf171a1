// kiln service end to end, as systemd runs it: the notify protocol and the watchdog, the kernel-log
// cursor across restarts, Xid escalation over faked reboots, states that clear only on a passing
// re-test (on the emulated device), idle-only burns, a user job cancelling a burn, a SIGKILLed burn,
// a corrupt history, bad configuration, the API and `kiln status`.
using System.Diagnostics;
using System.Net.Http.Json;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using Kiln.Core.Service;
using Kiln.Tests.Cli;
using Kiln.Tests.Core;
using Kiln.Tests.Health;

namespace Kiln.Tests.Service;

[TestFixture]
public sealed class ServiceTests
{
    private string _dir = "";

    [SetUp]
    public void SetUp() => _dir = ServiceRun.NewFolder("service");

    private string State => Path.Combine(_dir, "state");

    // A healthy 8x H100 node (the fake NVML's GPUs) with a boot_id, and a kernel log in /dev/kmsg's record format.
    private (FixtureNode Node, string Log) Node(string bootId = "aaaaaaaa-0000-0000-0000-000000000001", params string[] records)
    {
        var node = FixtureNode.Healthy();
        node.Write("proc/sys/kernel/random/boot_id", bootId + "\n");
        var log = Path.Combine(_dir, "kmsg.log");
        File.WriteAllText(log, string.Concat(records.Select(r => r + "\n")));
        return (node, log);
    }

    private static string Xid(int seq, string pci, int xid, string text) =>
        $"4,{seq},{86_000_000_000L + seq * 1_000_000L},-;NVRM: Xid (PCI:{pci}): {xid}, pid=4242, name=python3, {text}";

    private static string Noise(int seq) => $"6,{seq},{86_000_000_000L + seq * 1_000_000L},-;usb 1-1: new high-speed USB device number {seq}";

    private string Config(FixtureNode node, string log, string extra = "") => ServiceRun.Config(_dir, $"""
        sysfs_root: {node.Root}
        kernel_log: {log}
        check:
          interval: 1s
          profile: default
        {extra}
        """);

    private static ComponentRecord Gpu(History h, string uuid) => h.Components().Single(c => c.Key == uuid);

    private const string Gpu0 = "GPU-0000fake-0000-0000-0000-000000000000";

    [Test]
    public void Under_systemd_it_says_ready_pings_the_watchdog_checks_on_schedule_and_stops_on_sigterm_within_2_s()
    {
        var (node, log) = Node();
        var socketPath = Path.Combine(_dir, "notify.sock");
        using var socket = new Socket(AddressFamily.Unix, SocketType.Dgram, ProtocolType.Unspecified);
        socket.Bind(new UnixDomainSocketEndPoint(socketPath));
        var messages = new List<(TimeSpan At, string Text)>();
        var clock = Stopwatch.StartNew();
        var reader = new Thread(() =>
        {
            var buffer = new byte[4096];
            try
            {
                while (true)
                {
                    var n = socket.Receive(buffer);
                    lock (messages) messages.Add((clock.Elapsed, Encoding.UTF8.GetString(buffer, 0, n)));
                }
            }
            catch (Exception e) when (e is SocketException or ObjectDisposedException)
            {
            }
        }) { IsBackground = true };
        reader.Start();

        using var service = ServiceRun.Start(Config(node, log), State, fakeNvml: "", new Dictionary<string, string?>
        {
            ["NOTIFY_SOCKET"] = socketPath,
            ["WATCHDOG_USEC"] = "600000",   // a ping every 0.3 s
            ["INVOCATION_ID"] = "0123456789abcdef0123456789abcdef",   // what systemd sets for a unit
        });
        List<(TimeSpan At, string Text)> Seen() { lock (messages) return [.. messages]; }
        service.WaitFor(h => h.LastRun(NodeService.CheckKind, "PASS") is { } r ? r : null, TimeSpan.FromSeconds(30), "a scheduled check in the history");
        var deadline = Stopwatch.StartNew();
        while (Seen().Count(m => m.Text.Contains("WATCHDOG=1")) < 2 && deadline.Elapsed < TimeSpan.FromSeconds(10)) Thread.Sleep(50);
        var seen = Seen();
        Assert.That(seen.Any(m => m.Text.Contains("READY=1")), $"READY=1\n{service.Output}");
        Assert.That(seen.Count(m => m.Text.Contains("WATCHDOG=1")), Is.GreaterThanOrEqualTo(2), string.Join(" | ", seen.Select(m => m.Text)));
        Assert.That(seen.First(m => m.Text.Contains("READY=1")).At, Is.LessThan(seen.First(m => m.Text.Contains("WATCHDOG=1")).At.Add(TimeSpan.FromSeconds(1))));

        var stopAt = clock.Elapsed;
        var exit = service.Stop(TimeSpan.FromSeconds(2));
        var stopped = clock.Elapsed - stopAt;
        Thread.Sleep(100);
        Assert.That(exit, Is.Zero, service.Output);
        Assert.That(stopped, Is.LessThan(TimeSpan.FromSeconds(2)));
        Assert.That(Seen().Any(m => m.Text.Contains("STOPPING=1") && m.At >= stopAt), "STOPPING=1 after SIGTERM");
        // Under systemd every log line carries its journal priority ("<6>" info).
        Assert.That(service.Output, Does.Match(@"(?m)^<6>kiln\.service"), service.Output);
    }

    [Test]
    public void A_planted_xid_makes_its_gpu_unhealthy_once_across_a_restart_and_a_new_one_after_it_is_counted()
    {
        var (node, log) = Node(records: [Noise(1), Xid(2, "0000:18:00", 79, "GPU has fallen off the bus."), Noise(3)]);
        var config = Config(node, log);
        using (var first = ServiceRun.Start(config, State, fakeNvml: ""))
        {
            first.WaitFor(h => h.Components().FirstOrDefault(c => c.Key == Gpu0 && c.State == HealthState.Unhealthy), TimeSpan.FromSeconds(30), "gpu0 unhealthy");
            Assert.That(first.Stop(), Is.Zero, first.Output);
        }
        var after = ServiceRunRead(h => (Gpu(h, Gpu0), h.Findings(100, "XID_FATAL").Count));
        Assert.That(after.Item1.Action, Is.EqualTo(SuggestedAction.Reboot), "Xid 79: fallen off the bus -> reboot");
        Assert.That(after.Item1.Display, Does.StartWith("gpu0 " + Gpu0 + " 0000:18:00.0"));
        Assert.That(after.Item1.Reason, Does.Contain("Xid 79"));
        Assert.That(after.Item2, Is.EqualTo(1));

        // Restarted: the same log is not counted again, even over several checks.
        using (var second = ServiceRun.Start(config, State, fakeNvml: ""))
        {
            var startedAt = DateTime.UtcNow;
            second.WaitFor(h => h.Runs(10, NodeService.CheckKind).Count(r => r.StartUtc >= startedAt && r.EndUtc is not null) >= 2 ? "" : null,
                TimeSpan.FromSeconds(30), "two checks after the restart");
            Assert.That(second.Read(h => h.Findings(100, "XID_FATAL").Count), Is.EqualTo(1), "the old Xid was counted again");
            // A new Xid after the restart is counted.
            File.AppendAllText(log, Xid(4, "0000:2a:00", 48, "An uncorrectable double bit error (DBE) has been detected on GPU.") + "\n");
            second.WaitFor(h => h.Findings(100, "XID_FATAL").Count == 2 ? "" : null, TimeSpan.FromSeconds(30), "the new Xid");
            Assert.That(second.Stop(), Is.Zero, second.Output);
        }
        var gpu1 = ServiceRunRead(h => Gpu(h, "GPU-0000fake-0000-0000-0000-000000000001"));
        Assert.That((gpu1.State, gpu1.Action), Is.EqualTo((HealthState.Unhealthy, SuggestedAction.ResetGpu)), "Xid 48: DBE -> reset the GPU");
        Assert.That(ServiceRunRead(h => h.Findings(100, "XID_FATAL").Count), Is.EqualTo(2));
    }

    [Test]
    public void A_real_dmesg_capture_without_sequence_numbers_is_read_once_by_its_offset_across_a_restart()
    {
        // gpud's capture (dmesg --time-format iso): Xid 48, 63 and 94 on PCI:0000:19:00, among peermem noise.
        var (node, _) = Node();
        var log = Path.Combine(_dir, "dmesg.log");
        File.Copy(CheckRunner.Fixture("real/gpud_dmesg_iso_xid48_63_94_peermem.log"), log);
        var config = Config(node, log);
        const string nvml = "gpu0.bus_id=00000000:19:00.0";
        int findings;
        using (var first = ServiceRun.Start(config, State, fakeNvml: nvml))
        {
            first.WaitFor(h => h.Components().FirstOrDefault(c => c.Key == Gpu0 && c.State == HealthState.Unhealthy), TimeSpan.FromSeconds(30), "gpu0 unhealthy");
            Assert.That(first.Stop(), Is.Zero, first.Output);
            findings = first.Read(h => h.Findings(100, "XID_FATAL").Count);
        }
        var gpu = ServiceRunRead(h => Gpu(h, Gpu0));
        Assert.That((gpu.State, gpu.Action), Is.EqualTo((HealthState.Unhealthy, SuggestedAction.ResetGpu)), "DBE, row remap pending, contained ECC: reset the GPU");
        Assert.That(ServiceRunRead(h => h.Conditions(Gpu0).Select(c => c.Code)), Is.EquivalentTo(new[] { "XID_FATAL:48", "XID_FATAL:63", "XID_FATAL:94" }));
        Assert.That(findings, Is.EqualTo(3), "one finding per (Xid, GPU)");
        using (var second = ServiceRun.Start(config, State, fakeNvml: nvml))
        {
            var from = DateTime.UtcNow;
            second.WaitFor(h => h.Runs(10, NodeService.CheckKind).Count(r => r.StartUtc >= from && r.EndUtc is not null) >= 2 ? "" : null, TimeSpan.FromSeconds(30), "two checks after the restart");
            Assert.That(second.Read(h => h.Findings(100, "XID_FATAL").Count), Is.EqualTo(findings), "the capture was read again after the restart");
            Assert.That(second.Stop(), Is.Zero, second.Output);
        }
    }

    [Test]
    public void The_same_reboot_fixable_xid_after_two_reboots_calls_for_hardware_inspection()
    {
        string[] boots = ["11111111-0000-0000-0000-000000000001", "22222222-0000-0000-0000-000000000002", "33333333-0000-0000-0000-000000000003"];
        var actions = new List<SuggestedAction>();
        var (node, log) = Node(boots[0]);
        var config = Config(node, log);
        foreach (var boot in boots)
        {
            // A new boot: a new boot_id and a new log whose sequence numbers start again.
            node.Write("proc/sys/kernel/random/boot_id", boot + "\n");
            File.WriteAllText(log, Noise(1) + "\n" + Xid(2, "0000:18:00", 79, "GPU has fallen off the bus.") + "\n");
            using var service = ServiceRun.Start(config, State, fakeNvml: "");
            service.WaitFor(h => h.Findings(100, "XID_FATAL").Count == actions.Count + 1 ? "" : null, TimeSpan.FromSeconds(30), $"the Xid of boot {boot}");
            Assert.That(service.Stop(), Is.Zero, service.Output);
            actions.Add(ServiceRunRead(h => Gpu(h, Gpu0).Action));
        }
        Assert.That(actions, Is.EqualTo(new[] { SuggestedAction.Reboot, SuggestedAction.Reboot, SuggestedAction.HardwareInspection }));
        var gpu = ServiceRunRead(h => Gpu(h, Gpu0));
        Assert.That(gpu.Reason, Does.StartWith("Xid 79 came back after 2 reboots (seen in 3 boots)"));
        Assert.That(ServiceRunRead(h => h.Events(10).First(e => e.Component == Gpu0).Action), Is.EqualTo("hardware_inspection"));
    }

    private T ServiceRunRead<T>(Func<History, T> read)
    {
        using var history = History.Open(Path.Combine(State, History.FileName), _ => { }, readOnly: true);
        return read(history);
    }

    // A burn that runs long enough to be interrupted: gemm for a minute.
    private string LongPlan()
    {
        var plan = Path.Combine(_dir, "long.yaml");
        File.WriteAllText(plan, """
            name: service-long
            tests:
              - test: gemm
                duration: 60s
                timeout: 120s
            """);
        return plan;
    }

    // A one-test plan: gemm on the emulated device, short.
    private string GemmPlan()
    {
        var plan = Path.Combine(_dir, "gemm.yaml");
        File.WriteAllText(plan, """
            name: service-gemm
            tests:
              - test: gemm
                duration: 1s
                timeout: 60s
            """);
        return plan;
    }

    private string BurnConfig(FixtureNode node, string log, string plan, string backend = "emu", string idlePoll = "10s", string retest = "1d") => Config(node, log, $"""
        burn:
          enabled: true
          plan: {plan}
          profile: emu
          window: always
          every: 1d
          retest_every: {retest}
          backend: {backend}
          idle_poll: {idlePoll}
        """);

    [Test]
    public void A_failed_burn_stays_unhealthy_through_checks_and_restarts_and_clears_only_when_the_device_passes_a_burn()
    {
        var (node, log) = Node();
        var plan = GemmPlan();
        Dictionary<string, string?> Emu(string? faults) => new() { ["KILN_EMU_DEVICES"] = "1", ["KILN_EMU_FAULTS"] = faults };
        string emu0;
        using (var faulty = ServiceRun.Start(BurnConfig(node, log, plan), State, fakeNvml: null, Emu("fma:dev=0,sm=1")))
        {
            var burn = faulty.WaitFor(h => h.LastRun(NodeService.BurnKind) is { EndUtc: not null } r ? r : null, TimeSpan.FromSeconds(90), "the burn");
            Assert.That(burn.Status, Is.EqualTo("FAIL"), faulty.Output);
            Assert.That(faulty.Stop(), Is.Zero, faulty.Output);
            emu0 = faulty.Read(h => h.Components().Single(c => c.Kind == ComponentKind.Gpu).Key);
        }
        var failed = ServiceRunRead(h => Gpu(h, emu0));
        Assert.That((failed.State, failed.Action), Is.EqualTo((HealthState.Unhealthy, SuggestedAction.HardwareInspection)));
        Assert.That(failed.Reason, Does.StartWith("gemm emu0 FAIL"));

        // Checks (the device is fine by every reading) and time do not clear it.
        using (var checks = ServiceRun.Start(Config(node, log), State, fakeNvml: null, Emu(null)))
        {
            var from = DateTime.UtcNow;
            checks.WaitFor(h => h.Runs(20, NodeService.CheckKind).Count(r => r.StartUtc >= from && r.EndUtc is not null) >= 3 ? "" : null, TimeSpan.FromSeconds(30), "three checks");
            Assert.That(checks.Read(h => Gpu(h, emu0).State), Is.EqualTo(HealthState.Unhealthy), "cleared without a passing re-test");
            Assert.That(checks.Stop(), Is.Zero, checks.Output);
        }

        // The fault is gone and the device passes a burn: healthy, and the history says why.
        // A day has not passed, but the device waits for a re-test: retest_every applies.
        using (var healthy = ServiceRun.Start(BurnConfig(node, log, plan, retest: "1s"), State, fakeNvml: null, Emu(null)))
        {
            healthy.WaitFor(h => h.Runs(10, NodeService.BurnKind).FirstOrDefault(r => r.Status == "PASS"), TimeSpan.FromSeconds(90), "a passing burn");
            Assert.That(healthy.Stop(), Is.Zero, healthy.Output);
        }
        var passed = ServiceRunRead(h => Gpu(h, emu0));
        Assert.That((passed.State, passed.Action), Is.EqualTo((HealthState.Healthy, SuggestedAction.None)));
        Assert.That(ServiceRunRead(h => h.Events(10).First(e => e.Component == emu0)).Reason, Does.StartWith("passed a re-test: every test PASS in burn"));
    }

    [Test]
    public void A_burn_due_while_a_gpu_has_a_process_does_not_start_and_the_history_says_why()
    {
        var (node, log) = Node();
        using var service = ServiceRun.Start(BurnConfig(node, log, GemmPlan(), backend: "cpu"), State, fakeNvml: "gpu3.processes=1");
        var skipped = service.WaitFor(h => h.LastRun(NodeService.BurnKind), TimeSpan.FromSeconds(30), "the burn's record");
        Assert.That(skipped.Status, Is.EqualTo(NodeService.NotStarted));
        Assert.That(skipped.Detail, Is.EqualTo("the node is not idle: GPU 3 (GPU-0000fake-0000-0000-0000-000000000003) has 1 compute process (nvml)"));
        Thread.Sleep(2500);   // more checks, more retries: still not started, and recorded once
        Assert.That(service.Read(h => h.Runs(50, NodeService.BurnKind)).Select(r => r.Status), Is.EqualTo(new[] { NodeService.NotStarted }));
        Assert.That(Directory.Exists(Path.Combine(State, "runs")), Is.False, "a burn started");
        Assert.That(service.Stop(), Is.Zero, service.Output);
    }

    [Test]
    public void A_user_job_arriving_mid_burn_cancels_it_and_it_is_recorded_cancelled_not_failed()
    {
        var (node, log) = Node();
        var nvml = Path.Combine(_dir, "nvml.conf");
        File.WriteAllText(nvml, "gpus=8\n");
        var plan = LongPlan();
        using var service = ServiceRun.Start(BurnConfig(node, log, plan, backend: "cpu", idlePoll: "200ms"), State, fakeNvml: "@" + nvml);
        var running = service.WaitFor(h => h.LastRun(NodeService.BurnKind) is { Status: History.Running } r ? r : null, TimeSpan.FromSeconds(30), "the burn running");
        Thread.Sleep(1500);
        var clock = Stopwatch.StartNew();
        File.WriteAllText(nvml, "gpus=8\ngpu1.processes=1\n");   // a user's job takes GPU 1
        // That burn's own record (the next attempt, NOT_STARTED while the job runs, comes after it).
        var burn = service.WaitFor(h => h.Runs(20, NodeService.BurnKind).FirstOrDefault(r => r.Id == running.Id && r.EndUtc is not null), TimeSpan.FromSeconds(30), "the burn's end");
        Assert.That(clock.Elapsed, Is.LessThan(TimeSpan.FromSeconds(10)), "the burn was not stopped promptly");
        Assert.That(burn.Status, Is.EqualTo(NodeService.Cancelled));
        Assert.That(burn.Detail, Does.StartWith("cancelled: a user job arrived (GPU 1 (GPU-0000fake-0000-0000-0000-000000000001) has 1 compute process"));
        Assert.That(service.Read(h => h.Components().Where(c => c.State != HealthState.Healthy).Select(c => c.Key)), Is.Empty,
            "a cancelled burn marked something unhealthy: " + string.Join("; ", service.Read(h => h.Conditions()).Select(c => $"{c.Component} {c.Code} {c.Reason}")));
        Assert.That(service.Stop(), Is.Zero, service.Output);
    }

    [Test]
    public void A_burn_killed_with_the_service_is_marked_incomplete_at_the_next_start()
    {
        var (node, log) = Node();
        var plan = LongPlan();
        var config = BurnConfig(node, log, plan, backend: "cpu");
        using (var first = ServiceRun.Start(config, State, fakeNvml: null))
        {
            first.WaitFor(h => h.LastRun(NodeService.BurnKind) is { Status: History.Running } r ? r : null, TimeSpan.FromSeconds(30), "the burn running");
            first.Process.Kill(entireProcessTree: true);
            first.Process.WaitForExit();
        }
        using var second = ServiceRun.Start(Config(node, log), State, fakeNvml: null);
        var burn = second.WaitFor(h => h.Runs(10, NodeService.BurnKind).FirstOrDefault(r => r.Status != History.Running), TimeSpan.FromSeconds(30), "the killed burn's record");
        Assert.That(burn.Status, Is.EqualTo(History.Incomplete));
        Assert.That(burn.Detail, Does.Contain("the service stopped while it ran"));
        Assert.That(second.Stop(), Is.Zero, second.Output);
        Assert.That(second.Output, Does.Contain("did not finish: marked INCOMPLETE"));
    }

    [Test]
    public void A_corrupt_history_is_moved_aside_and_a_fresh_one_started_with_a_warning()
    {
        var (node, log) = Node();
        Directory.CreateDirectory(State);
        File.WriteAllText(Path.Combine(State, History.FileName), "this is not an SQLite database, it was a full disk's last write\n" + new string('x', 8192));
        using var service = ServiceRun.Start(Config(node, log), State, fakeNvml: "");
        service.WaitFor(h => h.LastRun(NodeService.CheckKind, "PASS"), TimeSpan.FromSeconds(30), "a check in the new history");
        Assert.That(service.Stop(), Is.Zero, service.Output);
        var aside = Directory.GetFiles(State, History.FileName + ".corrupt-*");
        Assert.That(aside, Has.Length.EqualTo(1));
        Assert.That(File.ReadAllText(aside[0]), Does.StartWith("this is not an SQLite database"));
        Assert.That(service.Output, Does.Contain($"the history database {Path.Combine(State, History.FileName)} is corrupt").And.Contain("started a new one"));
    }

    [Test]
    public void A_full_state_disk_is_logged_the_service_stays_up_and_no_check_is_marked_complete_until_there_is_room()
    {
        if (Environment.UserName != "root") Assert.Ignore("needs root to mount a small tmpfs (CI runs as root)");
        var (node, log) = Node();
        Directory.CreateDirectory(State);
        Sh("mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", State);
        try
        {
            using var service = ServiceRun.Start(Config(node, log), State, fakeNvml: "");
            service.WaitFor(h => h.LastRun(NodeService.CheckKind, "PASS"), TimeSpan.FromSeconds(30), "a first check");
            var fill = Path.Combine(State, "fill");
            using (var p = Process.Start(new ProcessStartInfo("dd", ["if=/dev/zero", $"of={fill}", "bs=64k"]) { RedirectStandardError = true })!) p.WaitForExit();
            var passed = service.Read(h => h.Runs(1000, NodeService.CheckKind).Count(r => r.Status == "PASS"));
            var clock = Stopwatch.StartNew();
            var failed = new System.Text.RegularExpressions.Regex("could not (record the check's start|store the check) in .*kiln.db: .*full");
            while (!failed.IsMatch(service.Output) && clock.Elapsed < TimeSpan.FromSeconds(30)) Thread.Sleep(100);
            Assert.That(service.Output, Does.Match(failed.ToString()), service.Output);
            Thread.Sleep(3000);
            Assert.That(service.Process.HasExited, Is.False, "the service died of a full disk\n" + service.Output);
            Assert.That(service.Read(h => h.Runs(1000, NodeService.CheckKind).Count(r => r.Status == "PASS")), Is.EqualTo(passed), "a check was marked complete on a full disk");
            File.Delete(fill);
            service.WaitFor(h => h.Runs(1000, NodeService.CheckKind).Count(r => r.Status == "PASS") > passed ? "" : null, TimeSpan.FromSeconds(30), "a check stored after room was made");
            Assert.That(service.Stop(), Is.Zero, service.Output);
        }
        finally
        {
            Sh("umount", "-l", State);
        }
    }

    private static void Sh(string program, params string[] args)
    {
        using var p = Process.Start(new ProcessStartInfo(program, args) { UseShellExecute = false, RedirectStandardError = true })!;
        p.WaitForExit();
        Assert.That(p.ExitCode, Is.Zero, $"{program} {string.Join(' ', args)}: {p.StandardError.ReadToEnd()}");
    }

    [TestCase("check:\n  intervall: 5m\n", "kiln.yaml:2: check.intervall: unknown key (known: interval, profile)")]
    [TestCase("check:\n  interval: 5 minutes please\n", "kiln.yaml:2: check.interval: cannot read '5 minutes please' as a duration")]
    [TestCase("burn:\n  enabled: true\n  window: 2am-5am\n", "kiln.yaml:3: burn.window: '2am-5am' is not a daily window HH:MM-HH:MM (local time) or always")]
    [TestCase("history:\n  max_mib: 0\n", "kiln.yaml:2: history.max_mib: 0 is not in 1..10240")]
    [TestCase("api:\n  enabled: true\n  listen: somewhere\n", "kiln.yaml:3: api.listen: 'somewhere' is not ADDRESS:PORT")]
    [TestCase("check: [1, 2\n", "kiln.yaml:2: not valid YAML")]
    public void A_bad_configuration_refuses_to_start_with_one_line_naming_file_line_and_key_and_exit_2(string yaml, string expected)
    {
        var config = ServiceRun.Config(_dir, yaml);
        var run = KilnCli.Run("service", "--config", config, "--state-dir", State);
        Assert.That(run.ExitCode, Is.EqualTo(2), run.ToString());
        Assert.That(run.StderrLines, Has.Length.EqualTo(1), run.ToString());
        Assert.That(run.StderrLines[0], Does.StartWith("kiln: error: " + Path.Combine(_dir, expected.Split(':')[0]) + expected[expected.IndexOf(':')..]));
        Assert.That(File.Exists(Path.Combine(State, History.FileName)), Is.False, "it started anyway");
    }

    [Test]
    public void A_bad_value_from_the_environment_names_the_variable()
    {
        var run = KilnCli.RunWith(new Dictionary<string, string?> { ["KILN_CHECK__INTERVAL"] = "often" }, TimeSpan.FromSeconds(30),
            "service", "--config", ServiceRun.Config(_dir, "check:\n  interval: 5m\n"), "--state-dir", State);
        Assert.That(run.ExitCode, Is.EqualTo(2), run.ToString());
        Assert.That(run.Stderr.Trim(), Does.StartWith("kiln: error: environment variable KILN_CHECK__INTERVAL: check.interval: cannot read 'often'"));
    }

    [Test]
    public void The_api_on_a_unix_socket_serves_states_metrics_and_a_check_trigger_and_status_clears_with_who_and_when()
    {
        var (node, log) = Node(records: [Xid(2, "0000:3a:00", 79, "GPU has fallen off the bus.")]);
        var socketPath = Path.Combine(State, "kiln.sock");
        var config = Config(node, log, $"""
            api:
              enabled: true
              listen: unix:{socketPath}
            """).Replace("interval: 1s", "interval: 1h");
        using var service = ServiceRun.Start(config, State, fakeNvml: "");
        service.WaitFor(h => h.LastRun(NodeService.CheckKind) is { EndUtc: not null } r ? r : null, TimeSpan.FromSeconds(30), "the first check");
        service.WaitFor(_ => File.Exists(socketPath) ? "" : null, TimeSpan.FromSeconds(30), "the API's socket");
        using var http = new HttpClient(new SocketsHttpHandler
        {
            ConnectCallback = async (_, cancel) =>
            {
                var s = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
                await s.ConnectAsync(new UnixDomainSocketEndPoint(socketPath), cancel);
                return new NetworkStream(s, ownsSocket: true);
            },
        }) { BaseAddress = new Uri("http://kiln"), Timeout = TimeSpan.FromSeconds(60) };

        using var states = JsonDocument.Parse(http.GetStringAsync("/v1/states").Result);
        Assert.That(states.RootElement.GetProperty("node_state").GetString(), Is.EqualTo("unhealthy"));
        var gpu2 = states.RootElement.GetProperty("components").EnumerateArray().Single(c => c.GetProperty("key").GetString() == "GPU-0000fake-0000-0000-0000-000000000002");
        Assert.That(gpu2.GetProperty("action").GetString(), Is.EqualTo("reboot"));
        var metrics = http.GetStringAsync("/metrics").Result;
        Assert.That(metrics, Does.Contain("kiln_component_health{host=").And.Contain("component=\"GPU-0000fake-0000-0000-0000-000000000002\"").And.Contain("state=\"unhealthy\",action=\"reboot\"} 2"));
        Assert.That(metrics, Does.Contain("kiln_node_health{"));
        var checks = service.Read(h => h.Runs(10, NodeService.CheckKind).Count);
        var triggered = http.PostAsync("/v1/check", null).Result;
        Assert.That((int)triggered.StatusCode, Is.EqualTo(200));
        Assert.That(triggered.Content.ReadFromJsonAsync<JsonElement>().Result.GetProperty("kind").GetString(), Is.EqualTo("check"));
        Assert.That(service.Read(h => h.Runs(10, NodeService.CheckKind).Count), Is.EqualTo(checks + 1));
        // kiln.prom for node_exporter has the same gauges.
        Assert.That(File.ReadAllText(Path.Combine(State, "kiln.prom")), Does.Contain("kiln_component_health{"));

        // kiln status: one screen, exit 1 while unhealthy; --clear records who and when.
        var status = KilnCli.Run("status", "--state-dir", State);
        Assert.That(status.ExitCode, Is.EqualTo(1), status.ToString());
        Assert.That(status.Stdout, Does.Contain("node UNHEALTHY").And.Contain("UNHEALTHY gpu2 GPU-0000fake-0000-0000-0000-000000000002 0000:3a:00.0: Xid 79").And.Contain("-> reboot the node"));
        var cleared = KilnCli.Run("status", "--state-dir", State, "--clear", "gpu2", "--reason", "reseated the board");
        Assert.That(cleared.ExitCode, Is.Zero, cleared.ToString());
        Assert.That(cleared.Stdout, Does.Contain("cleared gpu2"));
        var clearEvent = service.Read(h => h.Events(5).First());
        Assert.That(clearEvent.To, Is.EqualTo("healthy"));
        Assert.That(clearEvent.Reason, Is.EqualTo("cleared by an operator: reseated the board"));
        Assert.That(clearEvent.Actor, Does.EndWith("(kiln status --clear)").And.Contain(Environment.UserName));
        Assert.That(clearEvent.TimeUtc, Is.EqualTo(DateTime.UtcNow).Within(TimeSpan.FromMinutes(1)));
        var json = KilnCli.Run("status", "--state-dir", State, "--format", "json");
        Assert.That(JsonDocument.Parse(json.Stdout).RootElement.GetProperty("node_state").GetString(), Is.EqualTo("healthy"));
        Assert.That(service.Stop(), Is.Zero, service.Output);
    }

    [Test]
    public void An_api_bound_to_every_interface_is_warned_about()
    {
        var (node, log) = Node();
        var port = TestEnvironment.FreeLoopbackPort();
        var config = Config(node, log, $"api:\n  enabled: true\n  listen: 0.0.0.0:{port}\n").Replace("interval: 1s", "interval: 1h");
        using var service = ServiceRun.Start(config, State, fakeNvml: "");
        service.WaitFor(h => h.LastRun(NodeService.CheckKind) is { EndUtc: not null } r ? r : null, TimeSpan.FromSeconds(30), "the first check");
        service.WaitFor(_ => service.Output.Contains("API listening") ? "" : null, TimeSpan.FromSeconds(30), "the API");
        Assert.That(service.Output, Does.Contain($"api.listen is 0.0.0.0:{port}: the API answers on more than loopback"));
        Assert.That(service.Stop(), Is.Zero, service.Output);
    }

    [Test]
    public void With_no_configuration_it_runs_the_safe_defaults()
    {
        var options = ServiceOptions.Load(null, null, new Dictionary<string, string?>());
        Assert.That(options.Check.Interval, Is.EqualTo(TimeSpan.FromMinutes(5)));
        Assert.That(options.Burn.Enabled, Is.False);
        Assert.That(options.StateDir, Is.EqualTo("/var/lib/kiln"));
        Assert.That(options.Api.Enabled, Is.False);
        Assert.That(options.Api.Listen, Is.EqualTo("127.0.0.1:9477"));
        Assert.That(options.PrometheusTextfile, Is.EqualTo("/var/lib/kiln/kiln.prom"));
        // The shipped file says the same as the defaults.
        var shipped = ServiceOptions.Load(Path.Combine(Core.TestEnvironment.RepoRoot, "scripts", "systemd", "kiln.yaml"), null, new Dictionary<string, string?>());
        Assert.That((shipped.Check, shipped.Burn, shipped.History, shipped.Api, shipped.StateDir, shipped.PrometheusTextfile, shipped.KernelLog, shipped.SysfsRoot),
            Is.EqualTo((options.Check, options.Burn, options.History, options.Api, options.StateDir, options.PrometheusTextfile, options.KernelLog, options.SysfsRoot)));
    }

    [Test]
    public void The_unit_passes_systemd_analyze_verify()
    {
        if (!File.Exists("/usr/bin/systemd-analyze")) Assert.Ignore("systemd-analyze is not installed");
        var unit = Path.Combine(_dir, "kiln.service");
        // ExecStart must name a program that exists here; everything else is the shipped unit.
        File.WriteAllText(unit, File.ReadAllText(Path.Combine(Core.TestEnvironment.RepoRoot, "scripts", "systemd", "kiln.service"))
            .Replace("/opt/kiln/bin/kiln", "/bin/true"));
        var text = File.ReadAllText(unit);
        foreach (var line in new[] { "Type=notify", "WatchdogSec=", "Restart=on-failure", "RestartPreventExitStatus=2", "ProtectSystem=strict",
                     "ReadWritePaths=/var/lib/kiln", "ProtectHome=yes", "NoNewPrivileges=yes", "PrivateTmp=yes", "DevicePolicy=closed" })
            Assert.That(text, Does.Contain(line));
        using var verify = Process.Start(new ProcessStartInfo("systemd-analyze", ["verify", unit]) { RedirectStandardError = true, RedirectStandardOutput = true })!;
        var err = verify.StandardError.ReadToEnd();
        verify.WaitForExit();
        Assert.That(verify.ExitCode, Is.Zero, err);
        Assert.That(err.Trim(), Is.Empty);
    }

}
