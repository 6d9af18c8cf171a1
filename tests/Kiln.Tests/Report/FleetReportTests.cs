// kiln report on synthetic fleets with ~1% per-device noise: the node whose eight GPUs are all 8%
// slow is caught at node level (a per-device-against-the-best rule misses it), a single slow GPU and
// a memtest FAIL drain their hosts, a healthy fleet drains nobody, drift names the minority, and a
// baseline generated from a healthy fleet loads back and catches the slow node.
using System.Globalization;
using Kiln.Core.Profiles;
using Kiln.Cli.Dev;
using Kiln.Core.Report;
using Kiln.Tests.Cli;
using Kiln.Tests.Core;

namespace Kiln.Tests.Report;

public class FleetReportTests
{
    private string _dir = "";

    [SetUp]
    public void SetUp() => _dir = TestEnvironment.NewTempFolder("kiln-fleet");

    [TearDown]
    public void TearDown() => Directory.Delete(_dir, recursive: true);

    [Test]
    public void The_node_whose_eight_gpus_are_all_8_percent_slow_is_caught()
    {
        var fleet = Fleet("slow", new SyntheticFleetSpec { Nodes = 60, SlowNodes = [17] });
        var report = FleetReport.Build([fleet], new FleetOptions());

        var copy = report.Outliers.Single(o => o.Level == "node" && o.Family.Name == "copy_gbps_best");
        Assert.That((copy.Host, copy.Slow), Is.EqualTo(("node0017", true)));
        Assert.That(copy.Z, Is.LessThan(-10), "8% is many robust sigmas of a node median");
        Assert.That(copy.DeviationPercent, Is.EqualTo(-8).Within(1.5));
        Assert.That(report.Outliers.Where(o => o.Level == "node").Select(o => o.Host).Distinct(), Is.EqualTo(new[] { "node0017" }));
        Assert.That(report.DrainHosts, Is.EqualTo(new[] { "node0017" }));
        Assert.That(report.ExitCode, Is.EqualTo(1));

        // The rule it beats: every GPU within 5% of the best GPU of its own node - all eight are equally slow.
        var values = RowsOf(Path.Combine(fleet, "node0017", "metrics.csv"), "copy_gbps_best");
        Assert.That(values, Has.Count.EqualTo(8));
        Assert.That(values.Min() / values.Max(), Is.GreaterThan(0.95), "a per-device-against-the-best rule sees nothing wrong");
    }

    [Test]
    public void A_healthy_fleet_drains_nobody()
    {
        var report = FleetReport.Build([Fleet("healthy", new SyntheticFleetSpec { Nodes = 200, Seed = 7 })], new FleetOptions());
        Assert.That(report.Runs, Has.Count.EqualTo(200));
        Assert.That(report.Outliers.Where(o => o.Level == "node"), Is.Empty);
        Assert.That(report.DrainHosts, Is.Empty);
        Assert.That((report.ExitCode, report.Drift.Count, report.Problems.Count), Is.EqualTo((0, 0, 0)));
    }

    [Test]
    public void A_slow_gpu_and_a_memtest_fail_drain_their_hosts_and_drift_names_the_minority()
    {
        var report = FleetReport.Build([Fleet("faults", new SyntheticFleetSpec { Nodes = 40 }.WithDefaultFaults())], new FleetOptions());
        Assert.That(report.DrainHosts, Is.EqualTo(new[] { "node0003", "node0005", "node0007" }));
        var gpu = report.Nodes.Single(n => n.Host == "node0005");
        Assert.That(gpu.DrainReasons[0], Does.StartWith("slow cuda2: "), "one GPU, named");
        Assert.That(report.Nodes.Single(n => n.Host == "node0007").DrainReasons.Single(),
            Is.EqualTo("FAIL memtest cuda0: 3 data errors, first at offset 0x1f40 (walking_ones, bits 17)"));
        var drift = report.Drift.Single();
        Assert.That((drift.Component, drift.Value, drift.Majority, drift.MajorityNodes), Is.EqualTo(("runtime.cuda", "12.2", "12.4", 39)));
        Assert.That(drift.Hosts, Is.EqualTo(new[] { "node0011" }));
        Assert.That(report.Nodes.Single(n => n.Host == "node0011").Drain, Is.False, "drift is shown, not drained");
    }

    [Test]
    public void A_burn_that_never_finished_drains_its_host_even_without_a_fail_row()
    {
        var fleet = Fleet("incomplete", new SyntheticFleetSpec { Nodes = 20, Seed = 5 });
        var summary = Path.Combine(fleet, "node0004", "summary.json");
        var text = File.ReadAllText(summary);
        Assert.That(text, Does.Contain("\"verdict\": \"PASS\""));
        File.WriteAllText(summary, text.Replace("\"verdict\": \"PASS\"", "\"verdict\": \"INCOMPLETE\""));

        var report = FleetReport.Build([fleet], new FleetOptions());

        Assert.That(report.DrainHosts, Is.EqualTo(new[] { "node0004" }));
    }

    [Test]
    public void Fleet_statistics_are_median_mad_and_percentiles_per_metric()
    {
        var s = RobustStats.Describe([100, 1, 4, 2, 3]);
        Assert.That(new[] { s.Median, s.Mad, s.P5, s.P95, s.Min, s.Max }, Is.EqualTo(new[] { 3.0, 1.0, 1.2, 80.8, 1.0, 100.0 }).Within(1e-9));
        Assert.That(s.Z(100), Is.EqualTo(0.6745 * 97).Within(1e-3), "z = 0.6745 (x - median) / MAD");
        var flat = RobustStats.Describe([5, 5, 5, 5, 9]);
        Assert.That(flat.Mad, Is.Zero);
        Assert.That(flat.Z(9), Is.GreaterThan(3.5), "with MAD 0 the mean absolute deviation stands in");

        var report = FleetReport.Build([Fleet("stats", new SyntheticFleetSpec { Nodes = 20 })], new FleetOptions());
        var p2p = report.Metrics.Single(m => m.Family.Name == "p2p_ce_gbps");
        Assert.That((p2p.Devices.Count, p2p.Nodes.Count, p2p.Family.IsMatrix), Is.EqualTo((20 * 8 * 7, 20, true)), "a matrix is one family of every pair");
        Assert.That(report.Metrics, Has.Count.EqualTo(24), "30 metrics per device, the 7 pairs as one family");
        var copy = report.Metrics.Single(m => m.Family.Name == "copy_gbps_best");
        Assert.That(copy.Devices.Median, Is.EqualTo(3000).Within(30));
        Assert.That(copy.Devices.Mad, Is.EqualTo(0.6745 * 30).Within(8), "1% noise: sigma 30 GB/s");
        Assert.That(copy.Devices.P5, Is.LessThan(copy.Devices.Median));
    }

    [Test]
    public void A_generated_baseline_loads_back_and_catches_the_slow_node()
    {
        var healthy = FleetReport.Build([Fleet("healthy", new SyntheticFleetSpec { Nodes = 50, Seed = 3 })], new FleetOptions());
        var yaml = BaselineWriter.Generate(healthy, "site-h100");
        var path = Path.Combine(_dir, "site-h100.yaml");
        File.WriteAllText(path, yaml);
        var baseline = ProfileLoader.Load(path, "--baseline");
        Assert.That((baseline.Name, baseline.Match.Single(), baseline.Health.ExpectedGpuCount), Is.EqualTo(("site-h100", SyntheticFleet.Model, (int?)8)));
        var copy = baseline.For("stream", DeviceClass.Gpu).Single(t => t.Metric == "copy_gbps_best");
        var stats = healthy.Metrics.Single(m => m.Family.Name == "copy_gbps_best").Devices;
        Assert.That(copy.Value, Is.EqualTo((stats.Median - 4 * stats.Sigma) / 1.05).Within(10), "(median - 4 robust sigmas) / (1 + warn band), rounded to 3 digits");
        var power = baseline.For("power", DeviceClass.Gpu).Single(t => t.Metric == "power_w_mean");
        Assert.That((power.Direction, power.Unit), Is.EqualTo((Direction.AtLeast, "W")), "power is judged too: a GPU that cannot draw it is throttled");
        Assert.That(baseline.For("copy", DeviceClass.Gpu).Select(t => t.Metric), Does.Contain("p2p_ce_gbps"));
        var latency = baseline.For("launch", DeviceClass.Gpu).Single(t => t.Metric == "launch_latency_us_p99");
        Assert.That((latency.Direction, latency.Unit), Is.EqualTo((Direction.AtMost, "us")));

        var faulty = FleetReport.Build([Fleet("faulty", new SyntheticFleetSpec { Nodes = 30, Seed = 4, SlowNodes = [9] })],
            new FleetOptions { Baseline = baseline });
        Assert.That(faulty.BaselineRows.Where(r => r.Status == Kiln.Core.Results.VerdictStatus.FAIL).Select(r => r.Host).Distinct(),
            Is.EqualTo(new[] { "node0009" }));
        Assert.That(faulty.Nodes.Single(n => n.Host == "node0009").DrainReasons, Has.Some.StartWith("baseline FAIL "));
        Assert.That(faulty.BaselinePass, Is.GreaterThan(1000));
    }

    [Test]
    public void A_drain_reason_leads_with_the_failed_data_then_the_missed_floor_then_the_slow_metrics()
    {
        var fleet = Fleet("fail-first", new SyntheticFleetSpec { Nodes = 20, Seed = 9, SlowNodes = [3], FailNodes = [3] });
        var verdicts = Path.Combine(fleet, SyntheticFleetSpec.HostName(3), "verdicts.csv");
        var problems = new List<ReportProblem>();
        var rows = RunReader.ReadVerdicts(verdicts, problems).ToList();
        // A stream FAIL on bandwidth, written before the memtest FAIL on data errors (plan order).
        rows.Insert(0, new Kiln.Core.Results.VerdictRow("node0003", "stream", "cuda", 1, Kiln.Core.Results.VerdictStatus.FAIL, "triad_gbps_best",
            2700, 2800, "GB/s", "triad_gbps_best 2700 GB/s is below the floor 2800 GB/s"));
        Kiln.Core.Results.VerdictFile.Write(verdicts, rows);

        var node = FleetReport.Build([fleet], new FleetOptions()).Nodes.Single(n => n.Host == "node0003");
        Assert.That(node.DrainReasons[0], Does.StartWith("FAIL memtest cuda0: 3 data errors, first at offset 0x1f40"));
        Assert.That(node.DrainReasons[1], Does.StartWith("FAIL stream cuda1: triad_gbps_best"));
        Assert.That(node.DrainReasons[2], Does.StartWith("slow node: "));
    }

    [Test]
    public void A_generated_baseline_is_yaml_that_keeps_any_name_and_says_where_each_threshold_came_from()
    {
        var healthy = FleetReport.Build([Fleet("named", new SyntheticFleetSpec { Nodes = 10, Seed = 3 })], new FleetOptions());
        const string name = "site \"b\": #2 \\ lab\nrow 4";
        var yaml = BaselineWriter.Generate(healthy, name);
        TestContext.Out.WriteLine(yaml);
        var path = Path.Combine(_dir, "named.yaml");
        File.WriteAllText(path, yaml);
        Assert.That(ProfileLoader.Load(path, "--baseline").Name, Is.EqualTo(name), "quoted and escaped by the YAML library, newline included");
        Assert.That(yaml, Does.Contain("# review them before using this file"));
        Assert.That(yaml, Does.Match(@"# 80 values: median [0-9.]+, MAD [0-9.]+, p5 [0-9.]+, p95 [0-9.]+\n\s+copy_gbps_best: \{"), "each threshold under its fleet statistics");
    }

    [Test]
    public void A_baseline_leaves_its_own_fleet_and_a_fresh_healthy_one_inside_PASS_and_still_drains_an_8_percent_slow_node()
    {
        var fleetA = FleetReport.Build([Fleet("a", new SyntheticFleetSpec { Nodes = 60, Seed = 11 })], new FleetOptions());
        var path = Path.Combine(_dir, "site.yaml");
        File.WriteAllText(path, BaselineWriter.Generate(fleetA, "site"));
        var baseline = ProfileLoader.Load(path, "--baseline");

        void Judged(string name, SyntheticFleetSpec spec, string[] drained)
        {
            var report = FleetReport.Build([Fleet(name, spec)], new FleetOptions { Baseline = baseline });
            var rows = report.BaselinePass + report.BaselineRows.Count;
            var warns = report.BaselineRows.Count(r => r.Status == Kiln.Core.Results.VerdictStatus.WARN);
            Assert.That(rows, Is.GreaterThan(60 * 8 * 25), $"{name}: every device value is judged");
            Assert.That(report.DrainHosts, Is.EqualTo(drained), $"{name}: {string.Join("; ", report.Nodes.SelectMany(n => n.DrainReasons).Take(5))}");
            var healthyWarns = report.BaselineRows.Count(r => r.Status == Kiln.Core.Results.VerdictStatus.WARN && !drained.Contains(r.Host));
            Assert.That(healthyWarns, Is.LessThanOrEqualTo(rows / 1000), $"{name}: {warns} WARN rows of {rows}");
            Assert.That(report.BaselineRows.Where(r => r.Status == Kiln.Core.Results.VerdictStatus.FAIL).Select(r => r.Host).Distinct(), Is.EqualTo(drained));
        }

        Judged("a-again", new SyntheticFleetSpec { Nodes = 60, Seed = 11 }, []);
        Judged("b", new SyntheticFleetSpec { Nodes = 60, Seed = 12 }, []);
        Judged("b-slow", new SyntheticFleetSpec { Nodes = 60, Seed = 13, SlowNodes = [21] }, ["node0021"]);
    }

    [Test]
    public void The_fleet_centre_is_the_median_so_a_wrecked_node_does_not_hide_an_8_percent_slow_one()
    {
        // node0003 is 8% slow; node0010 runs at a tenth of the speed. A mean would sit near 0.92 of
        // nominal, where node0003 looks normal; the median stays at the healthy nodes.
        var fleet = Fleet("wrecked", new SyntheticFleetSpec { Nodes = 12, Seed = 8, SlowNodes = [3] });
        var csv = Path.Combine(fleet, "node0010", "metrics.csv");
        var lines = File.ReadAllLines(csv);
        for (var i = 1; i < lines.Length; i++)
        {
            var f = lines[i].Split(',');
            if (f[8] is "GB/s" or "TFLOP/s" or "W")
                f[7] = (double.Parse(f[7], CultureInfo.InvariantCulture) * 0.1).ToString("R", CultureInfo.InvariantCulture);
            lines[i] = string.Join(',', f);
        }
        File.WriteAllLines(csv, lines);

        var report = FleetReport.Build([fleet], new FleetOptions());

        Assert.That(report.DrainHosts, Is.EqualTo(new[] { "node0003", "node0010" }));
        var copy = report.Metrics.Single(m => m.Family.Name == "copy_gbps_best").Devices;
        Assert.That(copy.Median, Is.EqualTo(3000).Within(30), "the median of 96 values, 16 of them slow");
        Assert.That(report.Nodes.Single(n => n.Host == "node0003").DrainReasons[0], Does.StartWith("slow node: "));
    }

    [Test]
    public void Kiln_report_writes_tables_plots_page_and_drain_list()
    {
        var fleet = Path.Combine(_dir, "cli-fleet");
        var synth = KilnCli.Run("dev", "synth", "--nodes", "12", "--out", fleet);
        Assert.That(synth.ExitCode, Is.Zero, synth.ToString());
        var outDir = Path.Combine(_dir, "report");
        var drain = Path.Combine(_dir, "drain.txt");
        var baseline = Path.Combine(_dir, "baseline.yaml");
        var run = KilnCli.Run("report", fleet, "--out", outDir, "--drain-list", drain, "--generate-baseline", baseline);
        Assert.That(run.ExitCode, Is.EqualTo(1), run.ToString());
        Assert.That(File.ReadAllText(drain), Is.EqualTo("node0003\nnode0005\nnode0007\n"));
        Assert.That(run.Stdout, Does.Contain("kiln report: 12 nodes").And.Contain("hosts to drain: 3"));
        foreach (var file in new[] { "fleet.csv", "outliers.csv", "nodes.csv", "drift.csv", "problems.csv", "report.html", "plots/p2p_ce_gbps_cuda_matrix.png",
                     "plots/hist_stream_copy_gbps_best_cuda.png" })
            Assert.That(File.Exists(Path.Combine(outDir, file)), file);
        var fleetCsv = CsvFile.Read(Path.Combine(outDir, "fleet.csv"));
        Assert.That(fleetCsv.Header, Does.StartWith("test,metric,backend,unit,devices,nodes,median,mad,p5,p50,p95"));
        Assert.That(File.ReadAllText(baseline), Does.Contain("copy_gbps_best: {min: "));

        var again = KilnCli.Run("report", fleet, "--out", Path.Combine(_dir, "report2"), "--baseline", baseline);
        Assert.That(again.ExitCode, Is.EqualTo(1), again.ToString());
        Assert.That(File.Exists(Path.Combine(_dir, "report2", "baseline.csv")));
    }

    [Test]
    [NonParallelizable]  // two burns take both cores
    public void Real_burn_folders_are_read_and_an_older_run_of_the_host_is_superseded()
    {
        var results = Path.Combine(_dir, "results");
        foreach (var run in new[] { "first", "second" })
        {
            var burn = KilnCli.Run("burn", "--backend", "cpu", "--size", "32MiB", "--out", Path.Combine(results, run));
            Assert.That(burn.ExitCode, Is.Zero, burn.ToString());
        }
        var report = FleetReport.Build([results], new FleetOptions());
        Assert.That(report.Problems, Is.Empty, string.Join("\n", report.Problems));
        Assert.That((report.Runs.Count, report.Superseded.Count), Is.EqualTo((1, 1)), "one host, its latest run");
        Assert.That(report.Runs[0].Folder, Does.EndWith("second"));
        Assert.That(report.Runs[0].Count(Kiln.Core.Results.VerdictStatus.PASS), Is.GreaterThan(1), "the health phase and the tests were read (a report keeps only FAIL and WARN rows)");
        Assert.That(report.Metrics.Select(m => m.Family.Key), Does.Contain("stream/copy_gbps_best [cpu]"));
        Assert.That(report.Metrics.Single(m => m.Family.Key == "stream/threads [cpu]").Note, Is.EqualTo("not a performance metric: no outliers"));
        Assert.That(report.ExitCode, Is.Zero);
    }

    [Test]
    public void The_copy_matrix_is_drawn_from_pair_metrics()
    {
        var fleet = Fleet("matrix", new SyntheticFleetSpec { Nodes = 6, DevicesPerNode = 4 });
        var report = FleetReport.Build([fleet], new FleetOptions());
        var outDir = Path.Combine(_dir, "out");
        FleetOutput.Write(report, outDir);
        AssertPng(Path.Combine(outDir, "plots", "p2p_ce_gbps_cuda_matrix.png"));
        Assert.That(MetricNames.Pair("p2p_ce_gbps_3_12"), Is.EqualTo(("p2p_ce_gbps", 3, 12)));
        Assert.That(MetricNames.Pair("modulo_20_gbps"), Is.Null);

    }

    internal static void AssertPng(string path)
    {
        Assert.That(File.Exists(path), path);
        var bytes = File.ReadAllBytes(path);
        Assert.That(bytes.Take(8), Is.EqualTo(new byte[] { 0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A }), path);
        Assert.That(bytes, Has.Length.GreaterThan(10_000), $"{path} looks empty");
    }

    private string Fleet(string name, SyntheticFleetSpec spec)
    {
        var dir = Path.Combine(_dir, name);
        SyntheticFleet.Write(spec, dir);
        return dir;
    }

    private static List<double> RowsOf(string metricsCsv, string metric) =>
        CsvFile.Read(metricsCsv).Rows.Where(r => r["metric"] == metric).Select(r => double.Parse(r["value"], CultureInfo.InvariantCulture)).ToList();
}
