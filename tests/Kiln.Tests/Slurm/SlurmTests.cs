// kiln slurm healthcheck and kiln report --drain against a fake scontrol that records its argument
// vectors: what is drained with which reason, what is resumed, what is left alone, and what happens
// when scontrol is missing, fails or Slurm is absent. The real Slurm is in SlurmEndToEndTests.
using Kiln.Cli.Dev;
using Kiln.Core.Health;
using Kiln.Core.Report;
using Kiln.Core.Slurm;
using Kiln.Tests.Cli;
using Kiln.Tests.Core;

namespace Kiln.Tests.Slurm;

public class SlurmParsingTests
{
    // Captured from Debian 12's scontrol 22.05.8 on the loopback cluster (scripts/slurm/local-cluster.sh).
    private const string DrainedLine =
        "NodeName=node3 Arch=x86_64 CoresPerSocket=1  CPUAlloc=0 CPUEfctv=1 CPUTot=1 CPULoad=5.15 AvailableFeatures=(null) ActiveFeatures=(null) " +
        "Gres=(null) NodeAddr=127.0.0.1 NodeHostName=localhost Port=16820 Version=22.05.8 OS=Linux 6.18.44-fc-v1045 #1 SMP PREEMPT_DYNAMIC @0  " +
        "RealMemory=3013 AllocMem=0 FreeMem=17133 Sockets=1 Boards=1 State=IDLE+DRAIN ThreadsPerCore=1 TmpDisk=0 Weight=1 Owner=N/A MCS_label=N/A " +
        "Partitions=kiln  BootTime=2026-12-02T09:53:53 SlurmdStartTime=2026-12-02T09:58:21 LastBusyTime=2026-12-02T09:58:24 CfgTRES=cpu=1,mem=3013M,billing=1 " +
        "AllocTRES= CapWatts=n/a CurrentWatts=0 AveWatts=0 ExtSensorsJoules=n/s ExtSensorsWatts=0 ExtSensorsTemp=n/s Reason=kiln: TEST x y [root@2026-12-02T09:59:32]";

    [Test]
    public void A_drained_node_line_gives_its_state_and_reason_without_who_and_when()
    {
        var node = SlurmClient.ParseNode(DrainedLine + "\n", "node3")!;
        Assert.That(node.Name, Is.EqualTo("node3"));
        Assert.That(node.State, Is.EqualTo("IDLE+DRAIN"));
        Assert.That(node.Reason, Is.EqualTo("kiln: TEST x y"));
        Assert.That(node.Drained && node.DrainedByKiln && !node.Allocated, Is.True);
        Assert.That(node.Describe(), Is.EqualTo("drained (kiln: TEST x y)"));
    }

    [TestCase("IDLE", "idle", false, false)]
    [TestCase("ALLOCATED", "allocated", true, false)]
    [TestCase("MIXED+DRAIN", "mixed", true, true)]
    [TestCase("DOWN+DRAIN+NOT_RESPONDING", "down", false, true)]
    public void States_say_whether_the_node_is_allocated_and_drained(string state, string baseState, bool allocated, bool drained)
    {
        var node = SlurmClient.ParseNode($"NodeName=n1 Arch=x86_64 State={state} ThreadsPerCore=1", "n1")!;
        Assert.That((node.BaseState, node.Allocated, node.Drained, node.Reason), Is.EqualTo((baseState, allocated, drained, "")));
    }

    private static BoundedCheck Check(params Finding[] findings) => new(findings, null, null, TimeSpan.Zero);
    private static readonly Finding Fail = FindingCodes.XidFatal.At("kmsg", "gpu3 GPU-1 0000:5d:00.0", Severity.Fail, "Xid 79");
    private static readonly Finding Info = FindingCodes.XidInfo.At("kmsg", "gpu0", Severity.Info, "Xid 0");
    private static SlurmNode Node(string state, string reason = "") => new("node7", state, reason);

    [Test]
    public void A_failing_check_drains_an_idle_node_with_kilns_reason()
    {
        var d = SlurmHealthPolicy.Decide(Check(Info, Fail), Node("IDLE"));
        Assert.That((d.Action, d.Reason), Is.EqualTo((NodeAction.Drain, "kiln: XID_FATAL gpu3 GPU-1 0000:5d:00.0")));
    }

    [Test]
    public void Another_tools_drain_is_never_touched_failing_or_passing()
    {
        Assert.That(SlurmHealthPolicy.Decide(Check(Fail), Node("IDLE+DRAIN", "admin: fan")).Action, Is.EqualTo(NodeAction.None));
        Assert.That(SlurmHealthPolicy.Decide(Check(Info), Node("IDLE+DRAIN", "admin: fan")).Action, Is.EqualTo(NodeAction.None));
        Assert.That(SlurmHealthPolicy.Decide(Check(Info), Node("IDLE+DRAIN", "nhc: kiln missing")).Action, Is.EqualTo(NodeAction.None));
    }

    [Test]
    public void Only_kilns_own_drain_is_resumed_and_only_after_a_check_that_looked_at_something()
    {
        Assert.That(SlurmHealthPolicy.Decide(Check(Info), Node("IDLE+DRAIN", "kiln: XID_FATAL gpu3")).Action, Is.EqualTo(NodeAction.Resume));
        var nothing = FindingCodes.NothingChecked.At("check", "node", Severity.Warn, "nothing checked");
        Assert.That(SlurmHealthPolicy.Decide(Check(nothing), Node("IDLE+DRAIN", "kiln: XID_FATAL gpu3")).Action, Is.EqualTo(NodeAction.None));
        Assert.That(SlurmHealthPolicy.Decide(Check(Info), Node("IDLE")).Action, Is.EqualTo(NodeAction.None));
    }
}

/// <summary>A scontrol stand-in: each call's argument vector, one argument per line, then a line "--".</summary>
public sealed class FakeScontrol : IDisposable
{
    public FakeScontrol()
    {
        Folder = TestEnvironment.NewTempFolder("kiln-fake-scontrol");
        Path = System.IO.Path.Combine(Folder, "scontrol");
        File.WriteAllText(Path, """
            #!/usr/bin/env bash
            dir=$(dirname "$0")
            for a in "$@"; do printf '%s\n' "$a"; done >> "$dir/calls"
            echo -- >> "$dir/calls"
            if [[ $1 == -o && $2 == show ]]; then
              [[ -f $dir/node-$4 ]] || { echo "Node $4 not found"; exit 1; }
              cat "$dir/node-$4"; exit 0
            fi
            if [[ -f $dir/update-fails ]]; then echo "slurm_update error: Invalid user id" >&2; exit 1; fi
            exit 0
            """.Replace("\r", ""));
        File.SetUnixFileMode(Path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
    }

    public string Folder { get; }
    public string Path { get; }

    public void SetNode(string name, string state, string reason = "") =>
        File.WriteAllText(System.IO.Path.Combine(Folder, $"node-{name}"),
            $"NodeName={name} Arch=x86_64 State={state} ThreadsPerCore=1" + (reason.Length > 0 ? $" Reason={reason} [root@2026-12-02T10:00:00]" : "") + "\n");

    public void FailUpdates() => File.WriteAllText(System.IO.Path.Combine(Folder, "update-fails"), "");

    /// <summary>The argument vectors of every call so far.</summary>
    public List<string[]> Calls()
    {
        var file = System.IO.Path.Combine(Folder, "calls");
        if (!File.Exists(file)) return [];
        var calls = new List<string[]>();
        var current = new List<string>();
        foreach (var line in File.ReadAllLines(file))
        {
            if (line == "--") { calls.Add([.. current]); current.Clear(); }
            else current.Add(line);
        }
        return calls;
    }

    public List<string[]> Updates() => Calls().Where(c => c[0] == "update").ToList();

    public void Dispose() => Directory.Delete(Folder, recursive: true);
}

[NonParallelizable]  // each test runs kiln checks with emulated devices
public class SlurmHealthCheckCliTests
{
    private FakeScontrol _scontrol = null!;
    private string _root = "";
    private string _kmsg = "";

    [SetUp]
    public void SetUp()
    {
        _scontrol = new FakeScontrol();
        // A node root with nothing but its name, and an empty kernel log: only the emulated GPU is checked.
        _root = TestEnvironment.NewTempFolder("kiln-slurm-root");
        Directory.CreateDirectory(Path.Combine(_root, "proc", "sys", "kernel"));
        File.WriteAllText(Path.Combine(_root, "proc", "sys", "kernel", "hostname"), "node7\n");
        _kmsg = Path.Combine(_root, "kmsg.txt");
        File.WriteAllText(_kmsg, "");
    }

    [TearDown]
    public void TearDown()
    {
        _scontrol.Dispose();
        Directory.Delete(_root, recursive: true);
    }

    private CliResult HealthCheck(string? faults, string scontrol, params string[] extra) =>
        KilnCli.RunWith(new Dictionary<string, string?>
        {
            ["KILN_EMU_DEVICES"] = "1",
            ["KILN_EMU_FAULTS"] = faults,
            [SlurmClient.ScontrolVariable] = scontrol,
            ["SLURMD_NODENAME"] = "node7",
        }, TimeSpan.FromSeconds(90), ["slurm", "healthcheck", "--sysfs-root", _root, "--kmsg", _kmsg, .. extra]);

    private const string RetiredPages = "retired:dbe=70";

    [Test]
    public void A_fail_drains_this_node_by_an_argument_vector_with_kilns_reason()
    {
        _scontrol.SetNode("node7", "IDLE");
        var r = HealthCheck(RetiredPages, _scontrol.Path);
        Assert.That(r.ExitCode, Is.EqualTo(1), r.ToString());
        var update = _scontrol.Updates().Single();
        Assert.That(update[..3], Is.EqualTo(new[] { "update", "NodeName=node7", "State=DRAIN" }));
        Assert.That(update[3], Does.Match(@"^Reason=kiln: GPU_RETIRED_PAGES emu0 GPU-\S+ 00ee:01:00\.0$"));
        Assert.That(r.Stdout, Does.Contain("drained node7: kiln: GPU_RETIRED_PAGES emu0"));
    }

    [Test]
    public void A_pass_resumes_kilns_drain_but_not_another_tools()
    {
        _scontrol.SetNode("node7", "IDLE+DRAIN", "kiln: GPU_RETIRED_PAGES emu0");
        var r = HealthCheck(null, _scontrol.Path);
        Assert.That(r.ExitCode, Is.Zero, r.ToString());
        Assert.That(_scontrol.Updates().Single(), Is.EqualTo(new[] { "update", "NodeName=node7", "State=RESUME" }));

        _scontrol.SetNode("node7", "IDLE+DRAIN", "admin: replace fan 3");
        File.Delete(Path.Combine(_scontrol.Folder, "calls"));
        var passing = HealthCheck(null, _scontrol.Path);
        var failing = HealthCheck(RetiredPages, _scontrol.Path);
        Assert.That(_scontrol.Updates(), Is.Empty, "another tool's drain is left as it is");
        Assert.That(passing.Stdout, Does.Contain("drained by someone else (\"admin: replace fan 3\")"));
        Assert.That(failing.ExitCode, Is.EqualTo(1), failing.ToString());
        Assert.That(failing.Stdout, Does.Contain("left as it is"));
    }

    [Test]
    public void A_failing_scontrol_keeps_the_fail_and_logs_the_error()
    {
        _scontrol.SetNode("node7", "IDLE");
        _scontrol.FailUpdates();
        var r = HealthCheck(RetiredPages, _scontrol.Path);
        Assert.That(r.ExitCode, Is.EqualTo(1), r.ToString());
        Assert.That(r.Stdout, Does.Contain("FAIL GPU_RETIRED_PAGES"));
        Assert.That(r.Stderr, Does.Contain("kiln: error: could not drain node7:").And.Contain("Invalid user id"));
    }

    [Test]
    public void A_missing_scontrol_on_a_slurm_node_keeps_the_fail_and_a_pass_is_not_clean()
    {
        var missing = Path.Combine(_scontrol.Folder, "no-such-scontrol");
        var fail = HealthCheck(RetiredPages, missing);
        Assert.That(fail.ExitCode, Is.EqualTo(1), fail.ToString());
        Assert.That(fail.Stderr, Does.Contain("kiln: error: cannot read the node's Slurm state"));
        var pass = HealthCheck(null, missing);
        Assert.That(pass.ExitCode, Is.EqualTo(3), pass.ToString());
        Assert.That(pass.Stdout, Does.Contain("PASS"));
    }

    [Test]
    public void No_slurm_on_the_node_is_a_clear_skip()
    {
        var r = KilnCli.RunWith(new Dictionary<string, string?>
        {
            [SlurmClient.ScontrolVariable] = Path.Combine(_scontrol.Folder, "no-such-scontrol"),
            ["SLURMD_NODENAME"] = null,
        }, TimeSpan.FromSeconds(60), "slurm", "healthcheck", "--sysfs-root", _root, "--kmsg", _kmsg);
        Assert.That(r.ExitCode, Is.Zero, r.ToString());
        Assert.That(r.Stdout, Does.Contain("not a Slurm node"));
    }

    [Test]
    public void A_source_that_hangs_is_a_fail_within_the_deadline_and_drains_the_node()
    {
        // A FIFO nobody writes: opening it blocks, as a kernel log or GPU library that stopped answering.
        var fifo = Path.Combine(_root, "kmsg.fifo");
        using (var mk = System.Diagnostics.Process.Start("mkfifo", [fifo])) mk.WaitForExit();
        _scontrol.SetNode("node7", "IDLE");
        var r = KilnCli.RunWith(new Dictionary<string, string?>
        {
            ["KILN_EMU_DEVICES"] = "1", [SlurmClient.ScontrolVariable] = _scontrol.Path, ["SLURMD_NODENAME"] = "node7",
        }, TimeSpan.FromSeconds(60), "slurm", "healthcheck", "--sysfs-root", _root, "--kmsg", fifo, "--timeout", "3");
        Assert.That(r.ExitCode, Is.EqualTo(1), r.ToString());
        Assert.That(r.Elapsed, Is.LessThan(TimeSpan.FromSeconds(20)), "the check's deadline, not the hang, ends it");
        Assert.That(r.Stdout, Does.Contain("FAIL CHECK_TIMEOUT kmsg: the kmsg source did not finish within 3 s"));
        Assert.That(_scontrol.Updates().Single()[3], Is.EqualTo("Reason=kiln: CHECK_TIMEOUT kmsg"));
    }

    [Test]
    public void A_bad_timeout_is_a_usage_error()
    {
        var r = HealthCheck(null, _scontrol.Path, "--timeout", "600");
        Assert.That(r.ExitCode, Is.EqualTo(2));
        Assert.That(r.Stderr, Does.Contain("--timeout").And.Contain("not in 1..45"));
        Assert.That(_scontrol.Calls(), Is.Empty, "nothing is asked of Slurm on bad input");
    }
}

public class ReportDrainTests
{
    private string _dir = "";
    private string _fleet = "";

    [SetUp]
    public void SetUp()
    {
        _dir = TestEnvironment.NewTempFolder("kiln-report-drain");
        _fleet = Path.Combine(_dir, "fleet");
        // The default faults make node0003 fail its memtest (and others slow).
        SyntheticFleet.Write(new SyntheticFleetSpec { Nodes = 12 }.WithDefaultFaults(), _fleet);
    }

    [TearDown]
    public void TearDown() => Directory.Delete(_dir, recursive: true);

    private static IReadOnlyList<string> Hosts(int n, params string[] more) =>
        [.. Enumerable.Range(0, n).Select(SyntheticFleetSpec.HostName), .. more];

    [Test]
    public void An_expected_node_without_results_is_missing_and_drained()
    {
        var report = FleetReport.Build([_fleet], new FleetOptions { ExpectedHosts = Hosts(12, "node0099") });
        Assert.That(report.Missing, Is.EqualTo(new[] { "node0099" }));
        Assert.That(report.DrainHosts, Does.Contain("node0099"));
        Assert.That(report.Problems.Single(p => p.File == "node0099").Problem, Does.StartWith("missing: no results"));
        var plan = DrainPlan.For(report, 1.0);
        Assert.That(plan.AllocationNodes, Is.EqualTo(13));
        Assert.That(plan.Targets.Single(t => t.Node == "node0099").Reason, Is.EqualTo("kiln: NO_RESULTS node"));
    }

    [Test]
    public void The_breaker_lets_through_at_most_the_share_of_the_allocation()
    {
        var report = FleetReport.Build([_fleet], new FleetOptions { ExpectedHosts = Hosts(12) });
        var drains = report.DrainHosts.Count;
        Assume.That(drains, Is.GreaterThan(1), "the synthetic fleet's faults drain more than one node");
        Assert.That(DrainPlan.For(report, 0.10).Tripped, Is.EqualTo(drains > 1), "10% of 12 is 1 node");
        Assert.That(DrainPlan.For(report, drains / 12.0).Tripped, Is.False, "exactly the share is allowed");
        Assert.That(DrainPlan.For(report, (drains - 1) / 12.0).Tripped, Is.True);
    }

    [Test]
    public void Drain_is_a_dry_run_unless_applied_and_the_breaker_says_so()
    {
        using var scontrol = new FakeScontrol();
        var env = new Dictionary<string, string?> { [SlurmClient.ScontrolVariable] = scontrol.Path };
        string[] Args(params string[] more) =>
            ["report", _fleet, "--out", Path.Combine(_dir, "report"), "--expect", string.Join(',', Hosts(12, "node0099")), .. more];

        var tripped = KilnCli.RunWith(env, TimeSpan.FromMinutes(2), Args("--drain", "--apply"));
        Assert.That(tripped.ExitCode, Is.EqualTo(1), tripped.ToString());
        Assert.That(tripped.Stderr, Does.Contain("circuit breaker:").And.Contain("of 13 nodes").And.Contain("more than --max-drain 10% allows (1 nodes): nothing drained"));
        Assert.That(scontrol.Calls(), Is.Empty);

        var dry = KilnCli.RunWith(env, TimeSpan.FromMinutes(2), Args("--drain", "--max-drain", "100%"));
        Assert.That(dry.Stdout, Does.Contain("slurm: would drain node0099: kiln: NO_RESULTS node (dry run: add --apply)"));
        Assert.That(scontrol.Calls(), Is.Empty, "a dry run asks nothing of Slurm");

        foreach (var host in Hosts(12, "node0099")) scontrol.SetNode(host, "IDLE");
        scontrol.SetNode("node0099", "DOWN+DRAIN", "admin: PSU");
        var applied = KilnCli.RunWith(env, TimeSpan.FromMinutes(2), Args("--drain", "--apply", "--max-drain", "100%"));
        Assert.That(applied.ExitCode, Is.EqualTo(1), applied.ToString());
        var drained = scontrol.Updates().Select(u => u[1]).ToList();
        Assert.That(drained, Is.Not.Empty.And.Not.Contain("NodeName=node0099"), "another tool's drain is left as it is");
        Assert.That(scontrol.Updates(), Has.All.Matches<string[]>(u => u[2] == "State=DRAIN" && u[3].StartsWith("Reason=kiln: ", StringComparison.Ordinal)));
        Assert.That(applied.Stdout, Does.Contain("slurm: left node0099 as it is: already drained by someone else (admin: PSU)"));
    }

    [Test]
    public void Bad_drain_options_are_usage_errors()
    {
        var apply = KilnCli.Run("report", _fleet, "--out", Path.Combine(_dir, "r1"), "--apply");
        Assert.That((apply.ExitCode, apply.Stderr), Is.EqualTo((2, apply.Stderr)));
        Assert.That(apply.Stderr, Does.Contain("--apply").And.Contain("only with --drain"));
        var share = KilnCli.Run("report", _fleet, "--out", Path.Combine(_dir, "r2"), "--drain", "--max-drain", "150%");
        Assert.That(share.ExitCode, Is.EqualTo(2));
        Assert.That(share.Stderr, Does.Contain("--max-drain").And.Contain("not in 0..100%"));
        var range = KilnCli.Run("report", _fleet, "--out", Path.Combine(_dir, "r3"), "--expect", "node[1-3]");
        Assert.That(range.ExitCode, Is.EqualTo(2));
        Assert.That(range.Stderr, Does.Contain("scontrol show hostnames"));
    }
}
