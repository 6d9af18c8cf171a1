// kiln net serve and probe on loopback, as a user runs them: the result files, the exit codes, and
// every fault of the peer a FAIL row with the reason within the deadline.
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Kiln.Tests.Cli;
using Kiln.Tests.Core;

namespace Kiln.Tests.Net;

[NonParallelizable]  // a probe measures bandwidth: alone on the machine's cores
public sealed class NetCliTests
{
    private string _out = "";
    private readonly List<Process> _servers = [];
    private readonly List<string> _serverLog = [];

    // Waits until the server has logged a line containing text.
    private void WaitForServerLog(string text)
    {
        var until = DateTime.UtcNow + TimeSpan.FromSeconds(60);
        while (DateTime.UtcNow < until)
        {
            lock (_serverLog) if (_serverLog.Any(l => l.Contains(text, StringComparison.Ordinal))) return;
            Thread.Sleep(50);
        }
        lock (_serverLog) Assert.Fail($"kiln net serve never said '{text}': {string.Join(" | ", _serverLog)}");
    }

    [SetUp]
    public void SetUp() => _out = TestEnvironment.NewTempFolder("kiln-net");

    [TearDown]
    public void TearDown()
    {
        foreach (var s in _servers)
        {
            if (!s.HasExited) s.Kill(entireProcessTree: true);
            s.WaitForExit(10000);
            s.Dispose();
        }
        _servers.Clear();
        lock (_serverLog) _serverLog.Clear();
        Directory.Delete(_out, recursive: true);
    }

    private static readonly string[] Short = ["--duration", "500ms", "--latency-duration", "300ms", "--streams", "2", "--profile", "cpu-only"];

    // kiln net serve on a free loopback port; returns the port it printed.
    private int Serve(params string[] extra)
    {
        var server = KilnCli.Start(["net", "serve", "--bind", "127.0.0.1:0", .. extra]);
        _servers.Add(server);
        var line = server.StandardOutput.ReadLine() ?? "";
        Assert.That(line, Does.StartWith("kiln net serve: listening on 127.0.0.1:"), () => server.StandardError.ReadToEnd());
        // Keep its log: a test waits for a line, and a full pipe never blocks the server.
        _ = Task.Run(() =>
        {
            while (server.StandardOutput.ReadLine() is { } l)
                lock (_serverLog) _serverLog.Add(l);
        });
        return int.Parse(line[(line.LastIndexOf(':') + 1)..], System.Globalization.CultureInfo.InvariantCulture);
    }

    private string[] VerdictCells(string dir)
    {
        var lines = File.ReadAllLines(Path.Combine(dir, "verdicts.csv"));
        Assert.That(lines, Has.Length.EqualTo(2));
        Assert.That(lines[0], Is.EqualTo("host,test,backend,device,status,metric,value,threshold,unit,reason"));
        return lines[1].Split(',', 10);
    }

    [Test]
    public void ProbeAgainstServeWritesMetricsAndAPassingVerdict()
    {
        var port = Serve();
        var dir = Path.Combine(_out, "run");
        var r = KilnCli.Run(["net", "probe", $"127.0.0.1:{port}", "--out", dir, .. Short]);
        Assert.That(r.ExitCode, Is.Zero, r.ToString());
        var metrics = File.ReadAllLines(Path.Combine(dir, "metrics.csv"));
        Assert.That(metrics[0], Does.StartWith("timestamp,host,run_id,test,backend,device,metric,value,unit"));
        var byName = metrics.Skip(1).Select(l => l.Split(',')).ToDictionary(c => c[6], c => (Value: double.Parse(c[7], System.Globalization.CultureInfo.InvariantCulture), Unit: c[8], Test: c[3], Backend: c[4]));
        foreach (var name in new[] { "send_gbits", "recv_gbits" })
        {
            Assert.That(byName[name].Unit, Is.EqualTo("Gb/s"), name);
            Assert.That(byName[name].Value, Is.GreaterThan(0.5), name);
        }
        foreach (var name in new[] { "rtt_us_min", "rtt_us_median", "rtt_us_p99", "rtt_us_p999" })
            Assert.That(byName[name].Unit, Is.EqualTo("us"));
        Assert.That(byName["rtt_us_min"].Value, Is.LessThanOrEqualTo(byName["rtt_us_median"].Value));
        Assert.That(byName["rtt_us_p99"].Value, Is.LessThanOrEqualTo(byName["rtt_us_p999"].Value));
        Assert.That(byName.Values.Select(v => (v.Test, v.Backend)).Distinct(), Is.EqualTo(new[] { ("tcp", "net") }));
        var v = VerdictCells(dir);
        Assert.That(v[4], Is.EqualTo("PASS"), v[9]);
        Assert.That(v[9], Does.StartWith($"\"peer 127.0.0.1:{port}:"));
        Assert.That(File.ReadAllText(Path.Combine(dir, "summary.json")), Does.Contain("\"verdict\": \"PASS\"").And.Contain("\"net\": {"));
    }

    [Test]
    public void AnUnreachablePeerIsAFailWithTheReason()
    {
        var port = TestEnvironment.FreeLoopbackPort();
        var dir = Path.Combine(_out, "run");
        var r = KilnCli.Run(["net", "probe", $"127.0.0.1:{port}", "--out", dir, "--timeout", "1s", .. Short]);
        Assert.That(r.ExitCode, Is.EqualTo(1), r.ToString());
        var v = VerdictCells(dir);
        Assert.That(v[4], Is.EqualTo("FAIL"));
        Assert.That(v[9], Does.Contain($"127.0.0.1:{port}").And.Contain("Connection refused"));
    }

    [Test]
    public void APeerSendingGarbageIsAFailWithinTheTimeout()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        var web = Task.Run(async () =>
        {
            using var client = await listener.AcceptTcpClientAsync();
            await client.GetStream().WriteAsync("SSH-2.0-OpenSSH_9.2\r\n"u8.ToArray());
            await Task.Delay(5000);
        });
        var dir = Path.Combine(_out, "run");
        var r = KilnCli.Run(["net", "probe", $"127.0.0.1:{port}", "--out", dir, "--timeout", "2s", .. Short]);
        Assert.That(r.ExitCode, Is.EqualTo(1), r.ToString());
        var v = VerdictCells(dir);
        Assert.That(v[4], Is.EqualTo("FAIL"));
        Assert.That(v[9], Does.Contain("garbage").And.Contain("53 53 48 2d"), "names the bytes that came");
    }

    [Test]
    public void ASilentPeerIsAFailWithinTheTimeout()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();  // accepts (the kernel's backlog) and never says a word
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        var dir = Path.Combine(_out, "run");
        var r = KilnCli.Run(["net", "probe", $"127.0.0.1:{port}", "--out", dir, "--timeout", "1s", .. Short]);
        Assert.That(r.ExitCode, Is.EqualTo(1), r.ToString());
        Assert.That(VerdictCells(dir)[9], Does.Contain("timed out"));
    }

    [Test]
    public void ServeRefusesASecondClientWhileATestRuns()
    {
        var port = Serve();
        var first = KilnCli.Start(["net", "probe", $"127.0.0.1:{port}", "--out", Path.Combine(_out, "first"), "--duration", "4s", "--profile", "cpu-only"]);
        _servers.Add(first);
        WaitForServerLog("stream(s)");  // the first probe's session has begun
        var second = KilnCli.Run(["net", "probe", $"127.0.0.1:{port}", "--out", Path.Combine(_out, "second"), .. Short]);
        Assert.That(second.ExitCode, Is.EqualTo(1), second.ToString());
        Assert.That(VerdictCells(Path.Combine(_out, "second"))[9], Does.Contain("busy"));
        Assert.That(first.WaitForExit(TimeSpan.FromSeconds(60)), Is.True);
        Assert.That(first.ExitCode, Is.Zero, "the running test goes on undisturbed: " + first.StandardOutput.ReadToEnd());
    }

    [Test]
    public void ABurnRunsThePlansTcpTestOncePerNode()
    {
        var port = Serve();
        var plan = Path.Combine(_out, "net.yaml");
        File.WriteAllText(plan, $"name: net\ntests:\n  - test: tcp\n    peer: 127.0.0.1:{port}\n    streams: 2\n    duration: 500ms\n  - test: rdma\n    peer: 127.0.0.1:{port}\n");
        var dir = Path.Combine(_out, "burn");
        var r = KilnCli.Run(TimeSpan.FromMinutes(3), ["burn", "--plan", plan, "--backend", "cpu", "--profile", "cpu-only", "--out", dir]);
        Assert.That(r.ExitCode, Is.Zero, r.ToString());
        var rows = File.ReadAllLines(Path.Combine(dir, "verdicts.csv")).Skip(1).Select(l => l.Split(',', 10)).ToList();
        var tcp = rows.Single(c => c[1] == "tcp");
        Assert.That((tcp[2], tcp[3], tcp[4]), Is.EqualTo(("net", "0", "PASS")), tcp[9]);
        var rdma = rows.Single(c => c[1] == "rdma");
        Assert.That(rdma[4], Is.EqualTo("SKIP"), rdma[9]);
        Assert.That(rdma[9], Does.Contain("RDMA"), "the node's own reason: no RDMA devices, or no plugin");
        Assert.That(File.ReadLines(Path.Combine(dir, "metrics.csv")).Count(l => l.Contains(",tcp,net,0,send_gbits,", StringComparison.Ordinal)), Is.EqualTo(1));
    }

    [Test]
    public void APlanTcpTestWithoutAPeerIsAUsageError()
    {
        var plan = Path.Combine(_out, "net.yaml");
        File.WriteAllText(plan, "name: net\ntests:\n  - test: tcp\n    streams: 2\n");
        var r = KilnCli.Run(["plan", "show", plan]);
        Assert.That(r.ExitCode, Is.EqualTo(2), r.ToString());
        Assert.That(r.Stderr, Does.Contain($"{plan}:3: tests[0].peer: tcp needs peer: HOST:PORT"));
    }

    [Test]
    public void RdmaListsThePortsOrSaysWhyNot()
    {
        var r = KilnCli.Run(["net", "rdma"]);
        Assert.That(r.ExitCode, Is.Zero, r.ToString());
        if (!Directory.Exists("/sys/class/infiniband") || Directory.GetDirectories("/sys/class/infiniband").Length == 0)
            Assert.That(r.Stdout, Does.StartWith("kiln net rdma: no RDMA devices"));
        else
            Assert.That(r.Stdout, Does.Match(@"port \d+: "));
    }

    [TestCase("serve")]
    [TestCase("probe", "127.0.0.1:7301")]
    public void RdmaServeAndProbeSayWhyNotOnANodeWithoutRdma(params string[] args)
    {
        if (Directory.Exists("/sys/class/infiniband") && Directory.GetDirectories("/sys/class/infiniband").Length > 0)
            Assert.Ignore("this machine has RDMA ports: the no-RDMA path is not what it has");
        var dir = Path.Combine(_out, "rdma");
        string[] command = args[0] == "serve" ? ["net", "rdma", "serve"] : ["net", "rdma", "probe", args[1], "--out", dir];
        var r = KilnCli.Run(command);
        Assert.That(r.ExitCode, Is.Zero, r.ToString());
        Assert.That(r.Stdout, Does.StartWith($"kiln net rdma {args[0]}: SKIP: no RDMA devices"));
        Assert.That(Directory.Exists(dir), Is.False, "nothing measured, no result folder");
    }

    [Test]
    public void RdmaProbeKnobsAreCheckedFirst()
    {
        var r = KilnCli.Run(["net", "rdma", "probe", "127.0.0.1:7301", "--max-size", "half"]);
        Assert.That(r.ExitCode, Is.EqualTo(2), r.ToString());
        Assert.That(r.Stderr, Does.Contain("--max-size"));
    }

    [TestCase("localhost", "has no port")]
    [TestCase("127.0.0.1:99999", "not a number in 1..65535")]
    [TestCase("[::1", "no closing ]")]
    public void ABadPeerIsAUsageError(string peer, string message)
    {
        var r = KilnCli.Run(["net", "probe", peer, "--out", Path.Combine(_out, "run")]);
        Assert.That(r.ExitCode, Is.EqualTo(2), r.ToString());
        Assert.That(r.Stderr, Does.Contain(message));
        Assert.That(Directory.Exists(Path.Combine(_out, "run")), Is.False, "nothing is made before the input is checked");
    }

    [TestCase("--streams", "0", "0 is less than 1")]
    [TestCase("--streams", "500", "more than 128")]
    [TestCase("--duration", "10ms", "shorter than 100 ms")]
    public void ABadKnobIsAUsageError(string option, string value, string message)
    {
        var r = KilnCli.Run(["net", "probe", "127.0.0.1:7300", option, value]);
        Assert.That(r.ExitCode, Is.EqualTo(2), r.ToString());
        Assert.That(r.Stderr, Does.Contain(option).And.Contain(message));
    }

    [Test]
    public void ServeBindsWhereItIsTold()
    {
        var bad = KilnCli.Run(["net", "serve", "--bind", "example.com:7300"]);
        Assert.That(bad.ExitCode, Is.EqualTo(2), bad.ToString());
        Assert.That(bad.Stderr, Does.Contain("--bind").And.Contain("not an IP address"));
        var all = KilnCli.Start(["net", "serve", "--bind", "0.0.0.0:0", "--sessions", "1"]);
        _servers.Add(all);
        Assert.That(all.StandardOutput.ReadLine(), Does.StartWith("kiln net serve: listening on 0.0.0.0:"));
    }

    // --exec 'sh WRAPPER {client}': runs the probe as given, except the pair in KILN_TEST_KILL (CLIENT-SERVER),
    // killed with SIGKILL once it has begun (its summary.json written), and the pair in KILN_TEST_DIE,
    // whose launcher fails before any probe starts (as srun does when a node is down).
    private const string Launcher = """
        client=$1; shift
        prev=""; server=""; out=""
        for a in "$@"; do
          [ "$prev" = "--peer-name" ] && server=$a
          [ "$prev" = "--out" ] && out=$a
          prev=$a
        done
        case "$client-$server" in
          "$KILN_TEST_DIE") echo "launcher: cannot reach $client" >&2; exit 7 ;;
          "$KILN_TEST_KILL")
            "$@" & pid=$!
            while [ ! -f "$out/summary.json" ]; do sleep 0.05; done
            sleep 0.2; kill -9 $pid; wait $pid; exit $? ;;
          *) exec "$@" ;;
        esac
        """;

    [Test]
    public void PairsSurviveAKilledProbeAndADeadLauncher()
    {
        var nodes = string.Join(',', new[] { "n1", "n2", "n3", "n4" }.Select(n => $"{n}=127.0.0.1:{Serve()}"));
        var wrapper = Path.Combine(_out, "launcher.sh");
        File.WriteAllText(wrapper, Launcher);
        var dir = Path.Combine(_out, "pairs");
        // An earlier run into the same folder passed n3 -> n4: that old result must not stand in for this run's.
        Directory.CreateDirectory(Path.Combine(dir, "n3-n4"));
        File.WriteAllText(Path.Combine(dir, "n3-n4", "summary.json"), """
            {"net": {"client": "n3", "peer": "n4", "peer_address": "127.0.0.1:1", "status": "PASS", "send_gbits": 20, "recv_gbits": 20,
             "rtt_us_p99": 10, "reason": "an earlier run"}}
            """);
        // The ring's first round is n1 -> n2 and n3 -> n4: one killed, one never launched, at once.
        var r = KilnCli.RunWith(new Dictionary<string, string?> { ["KILN_TEST_KILL"] = "n1-n2", ["KILN_TEST_DIE"] = "n3-n4" }, TimeSpan.FromMinutes(3),
            ["net", "pairs", "--nodes", nodes, "--exec", $"sh {wrapper} {{client}}", "--out", dir, .. Short]);

        Assert.That(r.ExitCode, Is.EqualTo(1), r.ToString());
        Assert.That(r.Elapsed, Is.LessThan(TimeSpan.FromSeconds(60)), "a dead child is not waited out to the probe's deadline");
        var pairs = CsvFile.Read(Path.Combine(dir, "pairs.csv")).Rows.ToDictionary(p => $"{p["client"]}-{p["server"]}");
        var schedule = Kiln.Core.Net.NetPairing.Schedule(["n1", "n2", "n3", "n4"], 3, 1).SelectMany(x => x).Select(p => $"{p.Client}-{p.Server}").ToList();
        Assert.That(schedule.Take(2), Is.EqualTo(new[] { "n1-n2", "n3-n4" }), "the first round");
        Assert.That(pairs.Keys, Is.EquivalentTo(schedule), "every pair measured, the dead ones too: " + r);
        Assert.That((pairs["n1-n2"]["status"], pairs["n1-n2"]["reason"]), Is.EqualTo(("FAIL", "the probe ended without a result: exit 137 (killed by signal 9)")));
        Assert.That((pairs["n3-n4"]["status"], pairs["n3-n4"]["reason"]),
            Is.EqualTo(("FAIL", "the probe ended without a result: exit 7: launcher: cannot reach n3")));
        foreach (var (key, p) in pairs.Where(p => p.Key is not ("n1-n2" or "n3-n4")))
            Assert.That(p["status"], Is.EqualTo("PASS"), $"{key}: {p["reason"]}");

        // The parent wrote each dead pair's result into its folder: analyze reads the same six pairs.
        var again = KilnCli.Run(["net", "analyze", dir, "--out", Path.Combine(_out, "analyze")]);
        Assert.That(again.ExitCode, Is.EqualTo(1), again.ToString());
        Assert.That(CsvFile.Read(Path.Combine(_out, "analyze", "pairs.csv")).Rows.Select(p => (p["client"], p["server"], p["status"])),
            Is.EquivalentTo(pairs.Values.Select(p => (p["client"], p["server"], p["status"]))));
    }

    [Test]
    public void PairsWithALauncherThatIsNotAProgramIsAUsageError()
    {
        var r = KilnCli.Run(["net", "pairs", "--nodes", "a=127.0.0.1:7301,b=127.0.0.1:7302", "--exec", "no-such-launcher -w {client}",
            "--out", Path.Combine(_out, "pairs")]);
        Assert.That(r.ExitCode, Is.EqualTo(2), r.ToString());
        Assert.That(r.Stderr, Does.Contain("--exec: 'no-such-launcher' is not a program on PATH"));
        Assert.That(Directory.Exists(Path.Combine(_out, "pairs")), Is.False, "nothing is made before the input is checked");
    }

    [Test]
    public void ScheduleMeetsEveryNodeWithThreeOthersInDisjointRounds()
    {
        var r = KilnCli.Run(["net", "schedule", "--nodes", "a,b,c,d,e,f", "--min-peers", "3", "--seed", "7"]);
        Assert.That(r.ExitCode, Is.Zero, r.ToString());
        var rows = r.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => l.Split(' ')).ToList();
        foreach (var round in rows.GroupBy(x => x[0]))
        {
            var inRound = round.SelectMany(x => x[1..]).ToList();
            Assert.That(inRound, Is.Unique, $"round {round.Key}: a node in two pairs at once");
        }
        foreach (var node in "abcdef".Select(c => c.ToString()))
            Assert.That(rows.Where(x => x[1] == node || x[2] == node).Select(x => x[1] == node ? x[2] : x[1]).Distinct().Count(),
                Is.GreaterThanOrEqualTo(3), node);
    }
}
