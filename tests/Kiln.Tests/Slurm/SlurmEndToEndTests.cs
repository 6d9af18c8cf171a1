// The fleet burn on a real Slurm: munged, slurmctld and three slurmd on loopback
// (scripts/slurm/local-cluster.sh), the batch script with a stuck bit planted on node2 only, and the
// drain it leads to; then the fault cleared and kiln slurm healthcheck resuming node2, while a node
// an administrator drained stays drained. Needs root (slurmd runs jobs as their users); CI is root.
using System.Diagnostics;
using Kiln.Tests.Cli;
using Kiln.Tests.Core;

namespace Kiln.Tests.Slurm;

[NonParallelizable]  // three burns at once take every core
public class SlurmEndToEndTests
{
    private string _dir = "";
    /// <summary>The cluster this fixture started ("" when scripts/test.sh's is used).</summary>
    private string _cluster = "";
    private Dictionary<string, string?> _env = [];

    private static string Script => Path.Combine(TestEnvironment.RepoRoot, "scripts", "slurm", "local-cluster.sh");
    private static string KilnBinary => Path.Combine(TestEnvironment.RepoRoot, "build", "bin", "kiln");

    [OneTimeSetUp]
    public void StartCluster()
    {
        if (Environment.UserName != "root")
            Assert.Ignore("not root: a loopback Slurm (slurmd) needs root; CI runs as root and runs this test");
        foreach (var tool in new[] { "/usr/sbin/slurmctld", "/usr/sbin/slurmd", "/usr/sbin/munged", "/usr/bin/sbatch" })
        {
            if (!File.Exists(tool)) TestEnvironment.Missing($"{tool} is not installed (scripts/bootstrap.sh installs slurmctld, slurmd, slurm-client and munge)");
        }
        if (!File.Exists(KilnBinary)) TestEnvironment.Missing($"{KilnBinary} is not built (scripts/build.sh)");
        _dir = TestEnvironment.NewTempFolder("kiln-slurm-e2e");
        var cluster = Environment.GetEnvironmentVariable("KILN_TEST_SLURM_DIR") is { Length: > 0 } given ? given : null;
        if (cluster is null)
        {
            // scripts/test.sh starts one (KILN_TEST_SLURM_DIR); run alone, the test starts its own, on a port of
            // its own, so a developer's loopback cluster (or a real slurmd) on this machine is left alone.
            _cluster = cluster = Path.Combine(_dir, "cluster");
            var port = (21000 + Environment.ProcessId % 5000 * 4).ToString(System.Globalization.CultureInfo.InvariantCulture);
            var start = Shell(TimeSpan.FromSeconds(120), new() { ["KILN_SLURM_PORT"] = port }, Script, "start", cluster);
            Assert.That(start.ExitCode, Is.Zero, $"local-cluster.sh start:\n{start}");
        }
        _env = new()
        {
            ["SLURM_CONF"] = Path.Combine(cluster, "slurm.conf"),
            ["PATH"] = Environment.GetEnvironmentVariable("PATH") + ":/usr/sbin",
        };
    }

    [OneTimeTearDown]
    public void StopCluster()
    {
        // Only a cluster this test started; scripts/test.sh stops its own.
        if (_cluster.Length > 0) Shell(TimeSpan.FromSeconds(60), [], Script, "stop", _cluster);
        if (_dir.Length > 0 && Directory.Exists(_dir)) Directory.Delete(_dir, recursive: true);
    }

    /// <summary>Each test starts from three idle nodes.</summary>
    [SetUp]
    public void ResumeAll()
    {
        foreach (var node in new[] { "node1", "node2", "node3" })
        {
            if (NodeState(node).State.Contains("DRAIN", StringComparison.Ordinal))
                Assert.That(Shell(TimeSpan.FromSeconds(30), _env, "scontrol", "update", $"NodeName={node}", "State=RESUME").ExitCode, Is.Zero);
        }
    }

    /// <summary>Submits kiln-burn.sbatch on the 3 nodes and waits; returns the job's exit and its output file.</summary>
    private (CliResult Job, string Log) Burn(string name, string time, Dictionary<string, string?> extra)
    {
        var plan = Path.Combine(TestEnvironment.RepoRoot, "tests", "Kiln.Tests", "Slurm", "slurm-e2e-plan.yaml");
        var work = Path.Combine(_dir, name);
        Directory.CreateDirectory(work);
        var env = new Dictionary<string, string?>(_env)
        {
            ["KILN"] = KilnBinary,
            ["KILN_RESULTS"] = Path.Combine(work, "results"),
            ["KILN_DRAIN"] = "apply",
            // One node in three is past the default 10%: this allocation allows it.
            ["KILN_MAX_DRAIN"] = "34%",
            ["KILN_STATE_DIR"] = Path.Combine(work, "state-%n"),
            ["KILN_EMU_DEVICES"] = "1:memory=64MiB",
        };
        foreach (var (k, v) in extra) env[k] = v;
        var job = Shell(TimeSpan.FromMinutes(6), env, "sbatch", "--wait", "-N3", $"--time={time}", "--chdir", work,
            Path.Combine(TestEnvironment.RepoRoot, "scripts", "slurm", "kiln-burn.sbatch"),
            "--plan", plan, "--backend", "emu", "--profile", "emu");
        return (job, string.Join("\n", Directory.GetFiles(work, "kiln-burn-*.out").Select(File.ReadAllText)));
    }

    [Test]
    public void A_node_whose_burn_outlives_the_jobs_time_is_stopped_before_the_report_and_drained()
    {
        // node3's emulated GPU never returns from its first launch; the job has 1 minute, 30 s of it kept
        // for the report, so node3's burn is stopped at 30 s and the report still runs.
        var (job, log) = Burn("timeout", "1", new() { ["KILN_EMU_FAULTS_node3"] = "hang:launch=1", ["KILN_REPORT_RESERVE"] = "30" });
        Assert.That(job.ExitCode, Is.EqualTo(1), $"{job}\n{log}");
        Assert.That(log, Does.Contain("the burns ran past the job's time"), log);
        Assert.That(log, Does.Contain("slurm: drained node3: kiln: BURN_INCOMPLETE node"), log);
        Assert.That(NodeState("node3"), Is.EqualTo(("IDLE+DRAIN", "kiln: BURN_INCOMPLETE node")), log);
        Assert.That(NodeState("node1").State, Is.EqualTo("IDLE"), log);
        Assert.That(NodeState("node2").State, Is.EqualTo("IDLE"), log);
    }

    [Test]
    public void A_fault_on_one_node_drains_exactly_that_node_and_a_clean_check_resumes_it()
    {
        var (job, log) = Burn("stuck-bit", "5", new() { ["KILN_EMU_FAULTS_node2"] = "stuck:addr=0x100000,bit=3" });
        var results = Path.Combine(_dir, "stuck-bit", "results");
        Assert.That(job.ExitCode, Is.EqualTo(1), $"the batch job fails for its failing node\n{job}\n{log}");
        Assert.That(log, Does.Contain("slurm: drained node2: kiln: BURN_FAIL memtest emu0"), log);

        Assert.That(NodeState("node2"), Is.EqualTo(("IDLE+DRAIN", "kiln: BURN_FAIL memtest emu0")), log);
        Assert.That(NodeState("node1").State, Is.EqualTo("IDLE"), log);
        Assert.That(NodeState("node3").State, Is.EqualTo("IDLE"), log);
        var html = File.ReadAllText(Path.Combine(results, "report", "report.html"));
        Assert.That(html, Does.Contain("node2").And.Contain("FAIL memtest emu0"));
        Assert.That(File.ReadAllText(Path.Combine(results, "drain.txt")), Is.EqualTo("node2\n"));

        // An administrator's drain on node3, which kiln must never lift.
        Assert.That(Shell(TimeSpan.FromSeconds(30), _env, "scontrol", "update", "NodeName=node3", "State=DRAIN", "Reason=admin: fan 3").ExitCode, Is.Zero);
        // The fault is gone (no KILN_EMU_FAULTS): node2's check passes and kiln's drain is lifted.
        var check = new Dictionary<string, string?>(_env) { ["KILN_EMU_DEVICES"] = "1", ["SLURMD_NODENAME"] = "node2" };
        var r2 = KilnCli.RunWith(check, TimeSpan.FromSeconds(90), ["slurm", "healthcheck", .. CleanNode()]);
        Assert.That(r2.ExitCode, Is.Zero, r2.ToString());
        Assert.That(r2.Stdout, Does.Contain("resumed node2"));
        check["SLURMD_NODENAME"] = "node3";
        var r3 = KilnCli.RunWith(check, TimeSpan.FromSeconds(90), ["slurm", "healthcheck", .. CleanNode()]);
        Assert.That(r3.Stdout, Does.Contain("drained by someone else"), r3.ToString());

        Assert.That(NodeState("node2").State, Does.Not.Contain("DRAIN"));
        Assert.That(NodeState("node3"), Is.EqualTo(("IDLE+DRAIN", "admin: fan 3")));
    }

    [Test]
    public void The_pairing_job_probes_each_pair_from_its_client_node_and_all_pass()
    {
        var work = Path.Combine(_dir, "pairs");
        Directory.CreateDirectory(work);
        var results = Path.Combine(work, "results");
        // Each probe step writes down the Slurm node and step it runs in, then becomes the probe.
        var where = Path.Combine(work, "where.sh");
        File.WriteAllText(where, """
            prev=""
            for a in "$@"; do [ "$prev" = --out ] && out=$a; prev=$a; done
            mkdir -p "$out"
            echo "$SLURMD_NODENAME $SLURM_JOB_ID.$SLURM_STEP_ID" > "$out/where.txt"
            exec "$@"
            """);
        var env = new Dictionary<string, string?>(_env)
        {
            ["KILN"] = KilnBinary,
            ["KILN_RESULTS"] = results,
            // The three nodes are this machine: one address, each server on a free port of its own.
            ["KILN_NET_ADDRESS"] = "127.0.0.1",
            ["KILN_NET_PORT"] = "0",
            ["KILN_NET_EXEC"] = $"srun --overlap -N1 -n1 -w {{client}} sh {where}",
        };
        var job = Shell(TimeSpan.FromMinutes(5), env, "sbatch", "--wait", "-N3", "--time=5", "--chdir", work,
            Path.Combine(TestEnvironment.RepoRoot, "scripts", "slurm", "kiln-pairs.sbatch"),
            "--duration", "500ms", "--latency-duration", "300ms", "--streams", "2", "--profile", "cpu-only");
        var log = string.Join("\n", Directory.GetFiles(work, "kiln-pairs-*.out").Select(File.ReadAllText));

        Assert.That(job.ExitCode, Is.Zero, $"{job}\n{log}");
        var pairs = CsvFile.Read(Path.Combine(results, "pairs", "pairs.csv")).Rows;
        Assert.That(pairs.Select(p => (p["client"], p["server"], p["status"])),
            Is.EqualTo(new[] { ("node1", "node2", "PASS"), ("node2", "node3", "PASS"), ("node3", "node1", "PASS") }), log);
        foreach (var p in pairs)
        {
            var ran = File.ReadAllText(Path.Combine(results, "pairs", $"{p["client"]}-{p["server"]}", "where.txt")).Split(' ');
            Assert.That(ran[0], Is.EqualTo(p["client"]), "the probe ran as a step on its client's Slurm node");
            Assert.That(ran[1].Trim(), Does.Match(@"^\d+\.\d+$"), "a job step of its own");
        }
        var ports = new[] { "node1", "node2", "node3" }.Select(n => File.ReadAllLines(Path.Combine(results, "serve", $"{n}.log"))[0]).ToList();
        Assert.That(ports, Has.All.StartWith("kiln net serve: listening on 127.0.0.1:"));
        Assert.That(ports, Is.Unique, "a server on each node");
        Assert.That(log, Does.Contain("slurm: nothing to drain"));
        Assert.That(File.ReadAllText(Path.Combine(results, "drain.txt")), Is.Empty);
    }

    // A node root with only its name and an empty kernel log: the check judges the emulated GPU alone,
    // whatever the CI machine's own kernel log holds.
    private string[] CleanNode()
    {
        var root = Path.Combine(_dir, "node-root");
        Directory.CreateDirectory(Path.Combine(root, "proc", "sys", "kernel"));
        File.WriteAllText(Path.Combine(root, "proc", "sys", "kernel", "hostname"), "node\n");
        var kmsg = Path.Combine(root, "kmsg.txt");
        File.WriteAllText(kmsg, "");
        return ["--sysfs-root", root, "--kmsg", kmsg];
    }

    private (string State, string Reason) NodeState(string node)
    {
        var r = Shell(TimeSpan.FromSeconds(30), _env, "scontrol", "-o", "show", "node", node);
        Assert.That(r.ExitCode, Is.Zero, r.ToString());
        var parsed = global::Kiln.Core.Slurm.SlurmClient.ParseNode(r.Stdout, node)!;
        return (parsed.State.Replace("+NOT_RESPONDING", ""), parsed.Reason);
    }

    private static CliResult Shell(TimeSpan timeout, Dictionary<string, string?> environment, string program, params string[] args)
    {
        var clock = Stopwatch.StartNew();
        var info = new ProcessStartInfo(program) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in args) info.ArgumentList.Add(a);
        foreach (var (k, v) in environment)
        {
            if (v is null) info.Environment.Remove(k);
            else info.Environment[k] = v;
        }
        using var p = Process.Start(info)!;
        return KilnCli.Collect(p, $"{program} {string.Join(' ', args)}", timeout, clock);
    }
}
