// The TCP probe between network namespaces, as between hosts: over a veth pair it passes; a link
// slowed to 200 Mbit/s (tc tbf) fails that pair and no other; a host that drops 2% of what it
// receives (iptables statistic) fails its pairs; a 4-node pairing run names the one slow host.
// Needs root, ip, tc, iptables (CI runs as root); the namespaces are deleted even when a test fails.
using System.Text.Json;
using Kiln.Tests.Cli;
using Kiln.Tests.Core;

namespace Kiln.Tests.Net;

[NonParallelizable]  // bandwidth is the measurement: two labs at once would share the two cores
public sealed class NetNamespaceTests
{
    private string _out = "";

    [SetUp]
    public void SetUp() => _out = TestEnvironment.NewTempFolder("kiln-netns");

    [TearDown]
    public void TearDown() => Directory.Delete(_out, recursive: true);

    private static readonly string[] Short = ["--duration", "1s", "--latency-duration", "500ms", "--streams", "2", "--profile", "cpu-only"];

    private static (string Status, string Metric, string Reason) Verdict(string folder)
    {
        var lines = File.ReadAllLines(Path.Combine(folder, "verdicts.csv"));
        Assert.That(lines, Has.Length.EqualTo(2), string.Join('\n', lines));
        var cells = lines[1].Split(',', 10);
        Assert.That(cells[1..4], Is.EqualTo(new[] { "tcp", "net", "0" }));
        return (cells[4], cells[5], cells[9]);
    }

    private static double Metric(string folder, string name) =>
        File.ReadLines(Path.Combine(folder, "metrics.csv")).Skip(1).Select(l => l.Split(','))
            .Where(c => c[6] == name).Select(c => double.Parse(c[7], System.Globalization.CultureInfo.InvariantCulture)).Last();

    [Test]
    public void TwoNamespacesOverAVethPairPass()
    {
        NetLab.Require();
        using var lab = NetLab.Create(2, NetLab.Shape.Mesh);
        lab.StartServers();
        var dir = Path.Combine(_out, "a-b");
        var r = lab.Probe(0, 1, dir, Short);
        Assert.That(r.ExitCode, Is.Zero, r.ToString());
        Assert.That(Verdict(dir).Status, Is.EqualTo("PASS"));
        Assert.That(Metric(dir, "send_gbits"), Is.GreaterThan(1));
        Assert.That(Metric(dir, "recv_gbits"), Is.GreaterThan(1));
        Assert.That(Metric(dir, "rtt_us_median"), Is.GreaterThan(0).And.LessThan(Metric(dir, "rtt_us_p999") + 1e-9));
        using var summary = JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, "summary.json")));
        var net = summary.RootElement.GetProperty("net");
        Assert.That(net.GetProperty("client").GetString(), Is.EqualTo(lab.Nodes[0]));
        Assert.That(net.GetProperty("peer").GetString(), Is.EqualTo(lab.Nodes[1]));
        Assert.That(summary.RootElement.GetProperty("host").GetString(), Is.EqualTo(lab.Nodes[0]));
    }

    [Test]
    public void ASlowLinkFailsItsPairAndNoOther()
    {
        NetLab.Require();
        using var lab = NetLab.Create(3, NetLab.Shape.Mesh);
        lab.Slow(0, 1, "200mbit");
        lab.Slow(1, 0, "200mbit");
        lab.StartServers();
        var results = new Dictionary<string, (int Exit, string Status, string Metric, string Reason)>();
        foreach (var (a, b) in new[] { (0, 1), (0, 2), (1, 2) })
        {
            var dir = Path.Combine(_out, $"{a}-{b}");
            var r = lab.Probe(a, b, dir, Short);
            var v = Verdict(dir);
            results[$"{a}-{b}"] = (r.ExitCode, v.Status, v.Metric, v.Reason);
        }
        var slow = results["0-1"];
        Assert.That((slow.Exit, slow.Status), Is.EqualTo((1, "FAIL")), slow.Reason);
        Assert.That(slow.Metric, Does.EndWith("_gbits"));
        Assert.That(slow.Reason, Does.Contain("below the floor"));
        foreach (var healthy in new[] { "0-2", "1-2" })
            Assert.That((results[healthy].Exit, results[healthy].Status), Is.EqualTo((0, "PASS")), $"{healthy}: {results[healthy].Reason}");
    }

    [Test]
    public void AHostDroppingPacketsFailsItsPairs()
    {
        NetLab.Require(iptables: true);
        using var lab = NetLab.Create(3, NetLab.Shape.Mesh);
        lab.Drop(2, 0.02);
        lab.StartServers();
        var bad = Path.Combine(_out, "0-2");
        var good = Path.Combine(_out, "0-1");
        var badRun = lab.Probe(0, 2, bad, Short);
        var goodRun = lab.Probe(0, 1, good, Short);
        var v = Verdict(bad);
        Assert.That((badRun.ExitCode, v.Status), Is.EqualTo((1, "FAIL")), v.Reason);
        // The loss shows as the sender's retransmits (or a round trip waiting out a retransmit timeout).
        Assert.That(v.Metric, Is.AnyOf("send_retransmit_ratio", "recv_retransmit_ratio", "rtt_us_p99"), v.Reason);
        Assert.That(Metric(bad, "send_retransmits"), Is.GreaterThan(0));
        Assert.That((goodRun.ExitCode, Verdict(good).Status), Is.EqualTo((0, "PASS")), Verdict(good).Reason);
    }

    [Test]
    public void AFourNodePairingRunNamesTheSlowHost()
    {
        NetLab.Require();
        using var lab = NetLab.Create(4, NetLab.Shape.Star);
        lab.Slow(2, 2, "200mbit");  // every packet node 2 sends
        lab.StartServers();
        var nodes = string.Join(',', lab.Nodes.Select((n, i) => $"{n}={lab.Address(0, i)}:{NetLab.Port}"));
        var r = KilnCli.Run(TimeSpan.FromMinutes(4), ["net", "pairs", "--nodes", nodes, "--min-peers", "3", "--exec", "ip netns exec {client}",
            "--out", _out, .. Short]);
        Assert.That(r.ExitCode, Is.EqualTo(1), r.ToString());
        var pairs = File.ReadAllLines(Path.Combine(_out, "pairs.csv")).Skip(1).Select(l => l.Split(',')).ToList();
        Assert.That(pairs, Has.Count.EqualTo(6), "4 nodes, each meeting the 3 others");
        foreach (var p in pairs)
        {
            var withSlow = p[0] == lab.Nodes[2] || p[1] == lab.Nodes[2];
            Assert.That(p[2], Is.EqualTo(withSlow ? "FAIL" : "PASS"), string.Join(',', p));
        }
        var suspects = File.ReadAllLines(Path.Combine(_out, "suspects.csv")).Skip(1).ToList();
        Assert.That(suspects, Has.Count.EqualTo(1), string.Join('\n', suspects));
        Assert.That(suspects[0], Does.StartWith($"{lab.Nodes[2]},,3,3,"));
        Assert.That(r.Stdout, Does.Contain($"SUSPECT host {lab.Nodes[2]}"));

        // The fleet report over the same folders names the same host, and drains it alone.
        var drain = Path.Combine(_out, "drain.txt");
        var report = KilnCli.Run(["report", _out, "--out", Path.Combine(_out, "report"), "--drain-list", drain]);
        Assert.That(report.ExitCode, Is.EqualTo(1), report.ToString());
        Assert.That(File.ReadAllText(drain), Is.EqualTo(lab.Nodes[2] + "\n"));
        Assert.That(report.Stdout, Does.Contain($"drain {lab.Nodes[2]}: network: in 3 bad pair(s) of 3"));
    }
}
