// Network namespaces for the probe tests: nodes joined by veth pairs (a full mesh, one link per
// pair, or a star through a bridge in a switch namespace), kiln net serve in each, links slowed
// with tc tbf and hosts made to drop packets with iptables' statistic match. Needs root, ip, tc
// and iptables: without them a test is ignored with the reason (and fails under CI=true). Every
// namespace is deleted on Dispose, and namespaces left by a killed run are deleted at the next.
using System.Diagnostics;
using Kiln.Tests.Cli;
using Kiln.Tests.Core;

namespace Kiln.Tests.Net;

public sealed class NetLab : IDisposable
{
    private const string Prefix = "kilnt";
    private readonly List<string> _namespaces = [];
    private readonly List<Process> _servers = [];

    public enum Shape { Mesh, Star }

    private NetLab(string id) => Id = id;

    public string Id { get; }
    public List<string> Nodes { get; } = [];
    /// <summary>Where node j's server is reached from node i (mesh: the address on their own link).</summary>
    private readonly Dictionary<(int, int), string> _address = [];
    private readonly Dictionary<(int, int), string> _device = [];
    private readonly Dictionary<int, string> _starDevice = [];
    public const int Port = 7300;

    /// <summary>The tools a lab needs; the test is ignored (failed under CI) when one is missing.</summary>
    public static void Require(bool iptables = false)
    {
        if (!OperatingSystem.IsLinux()) TestEnvironment.Missing("network namespaces need Linux");
        if (Environment.UserName != "root" && Run("id", "-u").Output.Trim() != "0")
            TestEnvironment.Missing("network namespace tests need root (ip netns, tc, iptables)");
        foreach (var tool in iptables ? new[] { "ip", "tc", "iptables" } : ["ip", "tc"])
            if (Run("sh", "-c", $"command -v {tool}").Code != 0)
                TestEnvironment.Missing($"{tool} is not installed (scripts/bootstrap.sh installs iproute2 and iptables)");
    }

    public static NetLab Create(int nodes, Shape shape)
    {
        RemoveStale();
        var lab = new NetLab($"{Environment.ProcessId}{Random.Shared.Next(100, 999)}");
        try
        {
            for (var i = 0; i < nodes; i++) lab.Nodes.Add(lab.AddNamespace($"n{i}"));
            foreach (var ns in lab.Nodes) Must("ip", "-n", ns, "link", "set", "lo", "up");
            if (shape == Shape.Mesh)
            {
                var link = 0;
                for (var i = 0; i < nodes; i++)
                    for (var j = i + 1; j < nodes; j++, link++)
                    {
                        var (a, b) = ($"v{lab.Id}a{link}", $"v{lab.Id}b{link}");
                        Must("ip", "link", "add", a, "type", "veth", "peer", "name", b);
                        Must("ip", "link", "set", a, "netns", lab.Nodes[i]);
                        Must("ip", "link", "set", b, "netns", lab.Nodes[j]);
                        lab.Up(lab.Nodes[i], a, $"10.213.{link}.1/24");
                        lab.Up(lab.Nodes[j], b, $"10.213.{link}.2/24");
                        (lab._address[(i, j)], lab._address[(j, i)]) = ($"10.213.{link}.2", $"10.213.{link}.1");
                        (lab._device[(i, j)], lab._device[(j, i)]) = (a, b);
                    }
            }
            else
            {
                var sw = lab.AddNamespace("sw");
                Must("ip", "-n", sw, "link", "add", "br0", "type", "bridge");
                Must("ip", "-n", sw, "link", "set", "br0", "up");
                for (var i = 0; i < nodes; i++)
                {
                    var (a, b) = ($"v{lab.Id}n{i}", $"v{lab.Id}s{i}");
                    Must("ip", "link", "add", a, "type", "veth", "peer", "name", b);
                    Must("ip", "link", "set", a, "netns", lab.Nodes[i]);
                    Must("ip", "link", "set", b, "netns", sw);
                    Must("ip", "-n", sw, "link", "set", b, "master", "br0");
                    Must("ip", "-n", sw, "link", "set", b, "up");
                    lab.Up(lab.Nodes[i], a, $"10.214.0.{i + 1}/24");
                    lab._starDevice[i] = a;
                    for (var j = 0; j < nodes; j++) lab._address[(j, i)] = $"10.214.0.{i + 1}";
                }
            }
            return lab;
        }
        catch
        {
            lab.Dispose();
            throw;
        }
    }

    public string Address(int from, int to) => _address[(from, to)];

    /// <summary>Starts kiln net serve in each node on the address its peers reach it at, and waits until all listen.</summary>
    public void StartServers()
    {
        for (var i = 0; i < Nodes.Count; i++)
        {
            // Mesh: one address per link, so the server listens on all of the node's (it is alone in its namespace).
            var bind = _starDevice.ContainsKey(i) ? _address[(i, i)] : "0.0.0.0";
            var server = KilnCli.StartInNamespace(Nodes[i], "net", "serve", "--bind", $"{bind}:{Port}");
            _servers.Add(server);
            var line = server.StandardOutput.ReadLineAsync();
            if (!line.Wait(TimeSpan.FromSeconds(60)) || line.Result?.Contains("listening on", StringComparison.Ordinal) != true)
            {
                if (!server.HasExited) server.Kill(entireProcessTree: true);
                Assert.Fail($"kiln net serve in {Nodes[i]} did not start: {(line.IsCompleted ? line.Result : "(nothing)")} {server.StandardError.ReadToEnd()}");
            }
            // Keep reading its log, so a full pipe never blocks the server.
            _ = server.StandardOutput.ReadToEndAsync();
            _ = server.StandardError.ReadToEndAsync();
        }
    }

    /// <summary>Shapes node from's egress toward node to (mesh: that link only; star: every packet node from sends).</summary>
    public void Slow(int from, int to, string rate)
    {
        var dev = _starDevice.TryGetValue(from, out var d) ? d : _device[(from, to)];
        Must("ip", "netns", "exec", Nodes[from], "tc", "qdisc", "add", "dev", dev, "root", "tbf", "rate", rate, "burst", "32kbit", "latency", "100ms");
    }

    /// <summary>Node drops this fraction of the packets it receives, at random (iptables' statistic match).</summary>
    public void Drop(int node, double probability) =>
        Must("ip", "netns", "exec", Nodes[node], "iptables", "-A", "INPUT", "-m", "statistic", "--mode", "random",
            "--probability", probability.ToString(System.Globalization.CultureInfo.InvariantCulture), "-j", "DROP");

    public CliResult Probe(int from, int to, string outDir, params string[] extra) =>
        KilnCli.RunInNamespace(Nodes[from], TimeSpan.FromMinutes(2),
            ["net", "probe", $"{Address(from, to)}:{Port}", "--name", Nodes[from], "--peer-name", Nodes[to], "--out", outDir, .. extra]);

    public void Dispose()
    {
        foreach (var s in _servers)
        {
            try
            {
                if (!s.HasExited) s.Kill(entireProcessTree: true);
                s.WaitForExit(10000);
            }
            catch (InvalidOperationException)
            {
                // already gone
            }
            s.Dispose();
        }
        // Deleting a namespace deletes the veth ends in it (and their peers), the qdiscs and the iptables rules.
        foreach (var ns in _namespaces) Run("ip", "netns", "del", ns);
    }

    private string AddNamespace(string name)
    {
        var ns = $"{Prefix}{Id}-{name}";
        Must("ip", "netns", "add", ns);
        _namespaces.Add(ns);
        return ns;
    }

    private void Up(string ns, string dev, string cidr)
    {
        Must("ip", "-n", ns, "addr", "add", cidr, "dev", dev);
        Must("ip", "-n", ns, "link", "set", dev, "up");
    }

    // Namespaces of this test suite whose run was killed before it could clean up (the id starts with the pid).
    private static void RemoveStale()
    {
        foreach (var line in Run("ip", "netns", "list").Output.Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            var ns = line.Split(' ')[0];
            if (!ns.StartsWith(Prefix, StringComparison.Ordinal)) continue;
            var id = ns[Prefix.Length..].Split('-')[0];
            if (id.Length < 4 || !int.TryParse(id[..^3], out var pid)) continue;
            if (pid == Environment.ProcessId) continue;
            if (!Directory.Exists($"/proc/{pid}")) Run("ip", "netns", "del", ns);
        }
    }

    private static void Must(params string[] args)
    {
        var (code, output) = Run(args);
        if (code != 0) Assert.Fail($"{string.Join(' ', args)}: exit {code}: {output.Trim()}");
    }

    private static (int Code, string Output) Run(params string[] args)
    {
        var info = new ProcessStartInfo(args[0]) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in args.Skip(1)) info.ArgumentList.Add(a);
        using var p = Process.Start(info)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        p.WaitForExit();
        return (p.ExitCode, stdout.Result + stderr.Result);
    }
}
