// kiln report over kiln net probe folders (as kiln net pairs lays them out, DIR/CLIENT-SERVER/): the
// host the bad pairs share is named in suspects.csv, nodes.csv, the page and the drain list, a bad
// link between healthy hosts drains no one, and the probes are never read as a node's burn. The
// probe folders are copies of one real loopback probe's folder with the pair and its rates rewritten.
using System.Text.Json.Nodes;
using Kiln.Cli.Dev;
using Kiln.Core.Net;
using Kiln.Tests.Cli;
using Kiln.Tests.Core;

namespace Kiln.Tests.Report;

[NonParallelizable]  // the template probe measures bandwidth: alone on the machine's cores
public sealed class NetReportTests
{
    private const string TemplateClient = "TEMPLATECLIENT";
    private const string TemplateServer = "TEMPLATESERVER";
    private string _template = "";
    private string _dir = "";

    /// <summary>One real probe against kiln net serve on loopback: the folder every synthetic pair copies.</summary>
    [OneTimeSetUp]
    public void ProbeOnce()
    {
        _template = TestEnvironment.NewTempFolder("kiln-net-template");
        using var server = KilnCli.Start(["net", "serve", "--bind", "127.0.0.1:0", "--sessions", "1"]);
        try
        {
            var line = server.StandardOutput.ReadLine() ?? "";
            Assert.That(line, Does.StartWith("kiln net serve: listening on 127.0.0.1:"), () => server.StandardError.ReadToEnd());
            var r = KilnCli.Run(["net", "probe", line[(line.LastIndexOf(' ') + 1)..], "--out", Path.Combine(_template, "probe"),
                "--name", TemplateClient, "--peer-name", TemplateServer, "--duration", "300ms", "--latency-duration", "200ms", "--streams", "1",
                "--profile", "cpu-only"]);
            Assert.That(r.ExitCode, Is.Zero, r.ToString());
        }
        finally
        {
            if (!server.HasExited) server.Kill(entireProcessTree: true);
            server.WaitForExit();
        }
    }

    [OneTimeTearDown]
    public void RemoveTemplate()
    {
        if (_template.Length > 0) Directory.Delete(_template, recursive: true);
    }

    [SetUp]
    public void SetUp() => _dir = TestEnvironment.NewTempFolder("kiln-net-report");

    [TearDown]
    public void TearDown() => Directory.Delete(_dir, recursive: true);

    /// <summary>DIR/CLIENT-SERVER/ as kiln net probe --out writes it, the pair measured at these rates.</summary>
    private void Pair(string dir, string client, string server, double gbits, string? failReason = null)
    {
        var to = Path.Combine(dir, $"{client}-{server}");
        Directory.CreateDirectory(to);
        foreach (var file in Directory.GetFiles(Path.Combine(_template, "probe")))
            File.WriteAllText(Path.Combine(to, Path.GetFileName(file)),
                File.ReadAllText(file).Replace(TemplateClient, client, StringComparison.Ordinal).Replace(TemplateServer, server, StringComparison.Ordinal));
        var path = Path.Combine(to, "summary.json");
        var summary = JsonNode.Parse(File.ReadAllText(path))!;
        var status = failReason is null ? "PASS" : "FAIL";
        summary["run_id"] = $"{summary["run_id"]}-{client}-{server}";
        summary["verdict"] = status;
        var net = summary["net"]!;
        Assert.That((string?)net["client"], Is.EqualTo(client), "the template's net section names its pair");
        net["status"] = status;
        net["send_gbits"] = gbits;
        net["recv_gbits"] = gbits * 1.02;
        net["reason"] = failReason ?? $"send {gbits} Gb/s";
        File.WriteAllText(path, summary.ToJsonString(new System.Text.Json.JsonSerializerOptions { WriteIndented = true }));
    }

    /// <summary>Every pair of the 4-node schedule (6 pairs: each host meets the 3 others), the slow host's pairs failing their floor.</summary>
    private string Pairs(IReadOnlyList<string> hosts, string? slow)
    {
        var dir = Path.Combine(_dir, "pairs");
        var pairs = NetPairing.Schedule(hosts, 3, 1).SelectMany(r => r).ToList();
        Assert.That(pairs, Has.Count.EqualTo(6));
        foreach (var p in pairs)
        {
            if (p.Has(slow ?? "")) Pair(dir, p.Client, p.Server, 0.2, "send_gbits 0.2 Gb/s is below the floor 1 Gb/s");
            else Pair(dir, p.Client, p.Server, 20);
        }
        return dir;
    }

    private string Burns(int nodes)
    {
        var dir = Path.Combine(_dir, "burns");
        SyntheticFleet.Write(new SyntheticFleetSpec { Nodes = nodes, Seed = 4 }, dir);
        return dir;
    }

    private static readonly string[] Hosts = ["node0000", "node0001", "node0002", "node0003"];

    [Test]
    public void Burns_and_pairs_name_the_host_in_every_slow_pair_and_drain_it_alone()
    {
        var outDir = Path.Combine(_dir, "report");
        var drainList = Path.Combine(_dir, "drain.txt");
        var r = KilnCli.Run(["report", Burns(4), Pairs(Hosts, slow: "node0002"), "--out", outDir, "--drain-list", drainList,
            "--drain", "--max-drain", "50%"]);

        Assert.That(r.ExitCode, Is.EqualTo(1), r.ToString());
        Assert.That(File.ReadAllText(drainList), Is.EqualTo("node0002\n"));
        var suspects = CsvFile.Read(Path.Combine(outDir, NetAnalysis.SuspectsFile));
        Assert.That(suspects.Header, Is.EqualTo("host,peer,bad_pairs,pairs,why"));
        Assert.That(suspects.Rows.Select(s => (s["host"], s["peer"], s["bad_pairs"], s["pairs"])), Is.EqualTo(new[] { ("node0002", "", "3", "3") }));
        var pairs = CsvFile.Read(Path.Combine(outDir, NetAnalysis.PairsFile)).Rows;
        Assert.That(pairs, Has.Count.EqualTo(6));
        Assert.That(pairs.Where(p => p["status"] == "FAIL").All(p => p["client"] == "node0002" || p["server"] == "node0002"), Is.True);

        // nodes.csv: the four burned hosts, only the slow one drains, for its pairs.
        var nodes = CsvFile.Read(Path.Combine(outDir, "nodes.csv")).Rows;
        Assert.That(nodes.Select(n => (n["host"], n["drain"])),
            Is.EqualTo(new[] { ("node0000", "no"), ("node0001", "no"), ("node0002", "yes"), ("node0003", "no") }));
        Assert.That(nodes[2]["reasons"], Does.StartWith("network: in 3 bad pair(s) of 3: "));
        // The Slurm drain names its bad pairs; nobody else is proposed.
        var wouldDrain = r.Stdout.Split('\n').Where(l => l.StartsWith("slurm: would drain", StringComparison.Ordinal)).ToList();
        Assert.That(wouldDrain, Has.Count.EqualTo(1), r.Stdout);
        Assert.That(wouldDrain[0], Is.EqualTo(
            "slurm: would drain node0002: kiln: NET_SUSPECT 3 of 3 pairs bad: node0000->node0002 node0001->node0002 node0002->node0003 (dry run: add --apply)"));
        var html = File.ReadAllText(Path.Combine(outDir, "report.html"));
        Assert.That(html, Does.Contain("Network suspects").And.Contain("in 3 bad pair(s) of 3"));

        // The probes are pairs, not nodes: no tcp statistics, no problem, four nodes.
        Assert.That(r.Stdout, Does.Contain("kiln report: 4 nodes"));
        Assert.That(CsvFile.Read(Path.Combine(outDir, "fleet.csv")).Rows.Select(x => x["test"]), Has.No.Member("tcp"));
        Assert.That(CsvFile.Read(Path.Combine(outDir, "problems.csv")).Rows, Is.Empty);
    }

    [Test]
    public void Pairs_alone_name_the_slow_host_and_no_healthy_one()
    {
        var outDir = Path.Combine(_dir, "report");
        var drainList = Path.Combine(_dir, "drain.txt");
        var r = KilnCli.Run(["report", Pairs(Hosts, slow: "node0001"), "--out", outDir, "--drain-list", drainList]);

        Assert.That(r.ExitCode, Is.EqualTo(1), r.ToString());
        Assert.That(File.ReadAllText(drainList), Is.EqualTo("node0001\n"));
        Assert.That(r.Stdout, Does.Contain("drain node0001: network: in 3 bad pair(s) of 3: "));
        foreach (var healthy in Hosts.Where(h => h != "node0001"))
            Assert.That(r.Stdout, Does.Not.Contain($"drain {healthy}"));
        Assert.That(CsvFile.Read(Path.Combine(outDir, NetAnalysis.SuspectsFile)).Rows.Select(s => s["host"]), Is.EqualTo(new[] { "node0001" }));
        Assert.That(CsvFile.Read(Path.Combine(outDir, "nodes.csv")).Rows, Is.Empty, "a probe is not a node's verdict");
    }

    [Test]
    public void Healthy_pairs_name_no_one()
    {
        var outDir = Path.Combine(_dir, "report");
        var r = KilnCli.Run(["report", Pairs(Hosts, slow: null), "--out", outDir]);
        Assert.That(r.ExitCode, Is.Zero, r.ToString());
        Assert.That(r.Stdout, Does.Contain("network: 6 pair(s), 0 FAIL, 0 suspect(s)").And.Contain("hosts to drain: 0"));
        Assert.That(CsvFile.Read(Path.Combine(outDir, NetAnalysis.SuspectsFile)).Rows, Is.Empty);
    }

    [Test]
    public void A_bad_link_between_healthy_hosts_is_reported_and_drains_no_one()
    {
        var dir = Path.Combine(_dir, "pairs");
        Pair(dir, "a", "b", 20);
        Pair(dir, "b", "c", 0.1, "send_gbits 0.1 Gb/s is below the floor 1 Gb/s");
        Pair(dir, "c", "d", 21);
        Pair(dir, "d", "a", 19);
        var outDir = Path.Combine(_dir, "report");
        var drainList = Path.Combine(_dir, "drain.txt");
        var r = KilnCli.Run(["report", dir, "--out", outDir, "--drain-list", drainList]);

        Assert.That(r.ExitCode, Is.Zero, "nothing to drain: " + r);
        Assert.That(File.ReadAllText(drainList), Is.Empty);
        Assert.That(r.Stdout, Does.Contain("network: suspect link b -> c (drains no one"));
        Assert.That(CsvFile.Read(Path.Combine(outDir, NetAnalysis.SuspectsFile)).Rows.Select(s => (s["host"], s["peer"])), Is.EqualTo(new[] { ("b", "c") }));
    }

    [Test]
    public void A_probe_repeated_later_replaces_the_older_one()
    {
        // The slow host was fixed and its pairs probed again: the latest probe of each pair counts.
        var old = Pairs(Hosts, slow: "node0003");
        var again = Path.Combine(_dir, "again");
        foreach (var p in NetPairing.Schedule(Hosts, 3, 1).SelectMany(x => x).Where(p => p.Has("node0003")))
        {
            Pair(again, p.Client, p.Server, 20);
            var summary = Path.Combine(again, $"{p.Client}-{p.Server}", "summary.json");
            var json = JsonNode.Parse(File.ReadAllText(summary))!;
            json["run_id"] = $"{json["run_id"]}-again";
            json["start_utc"] = DateTime.UtcNow.AddHours(1).ToString("O");
            File.WriteAllText(summary, json.ToJsonString());
        }
        var r = KilnCli.Run(["report", old, again, "--out", Path.Combine(_dir, "report")]);
        Assert.That(r.ExitCode, Is.Zero, r.ToString());
        Assert.That(r.Stdout, Does.Contain("network: 6 pair(s), 0 FAIL, 0 suspect(s)"));
    }

    [Test]
    public void A_probe_that_never_finished_is_an_input_problem_not_a_pair()
    {
        var dir = Pairs(Hosts, slow: null);
        // What a killed probe leaves: the summary it wrote at its start, INCOMPLETE, without a net section.
        var killed = Path.Combine(dir, "node0000-node0001", "summary.json");
        var json = JsonNode.Parse(File.ReadAllText(killed))!.AsObject();
        json.Remove("net");
        json["verdict"] = "INCOMPLETE";
        File.WriteAllText(killed, json.ToJsonString());
        var outDir = Path.Combine(_dir, "report");
        var r = KilnCli.Run(["report", dir, "--out", outDir]);
        Assert.That(r.ExitCode, Is.Zero, r.ToString());
        Assert.That(r.Stderr, Does.Contain($"{killed}: ").And.Contain("no net section"));
        Assert.That(r.Stdout, Does.Contain("network: 5 pair(s)"));
    }

    [Test]
    public void A_probe_folder_is_no_burn_to_bundle()
    {
        var r = KilnCli.Run("bundle", Path.Combine(_template, "probe"), "--out", Path.Combine(_dir, "rma.tar.gz"));
        Assert.That(r.ExitCode, Is.EqualTo(2), r.ToString());
        Assert.That(r.Stderr, Does.Contain("RUN_DIR").And.Contain("is a kiln net probe result (one network pair), not a burn"));
        Assert.That(File.Exists(Path.Combine(_dir, "rma.tar.gz")), Is.False);
    }

    [Test]
    public void A_report_over_burn_folders_alone_has_no_network_part()
    {
        var outDir = Path.Combine(_dir, "report");
        var r = KilnCli.Run(["report", Burns(6), "--out", outDir]);
        Assert.That(r.ExitCode, Is.Zero, r.ToString());
        Assert.That(Directory.GetFiles(outDir).Select(Path.GetFileName).Order(),
            Is.EqualTo(new[] { "drift.csv", "fleet.csv", "health.csv", "nodes.csv", "outliers.csv", "problems.csv", "report.html" }));
        Assert.That(r.Stdout, Does.Not.Contain("network"));
        Assert.That(File.ReadAllText(Path.Combine(outDir, "report.html")), Does.Not.Contain("Network"));
    }
}
