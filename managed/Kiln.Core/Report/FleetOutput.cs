// What kiln report leaves in its --out folder (docs/REPORT.md): fleet.csv, outliers.csv, nodes.csv,
// drift.csv, problems.csv, baseline.csv, pairs.csv and suspects.csv (network probes, as kiln net
// analyze writes them), plots/ (histograms, copy matrices) and one self-contained report.html; and,
// when asked, the drain list and a generated baseline profile.
using System.Globalization;
using Kiln.Core.Net;
using Kiln.Core.Profiles;
using Kiln.Core.Results;

namespace Kiln.Core.Report;

public static class FleetOutput
{
    /// <summary>Rows of a table shown in report.html; the CSV files beside it hold every row.</summary>
    private const int PageRows = 300;

    public static void Write(FleetReport report, string outDir)
    {
        Directory.CreateDirectory(outDir);
        var plots = Path.Combine(outDir, "plots");
        Directory.CreateDirectory(plots);

        var fleetHeader = new[] { "test", "metric", "backend", "unit", "devices", "nodes", "median", "mad", "p5", "p50", "p95", "min", "max",
            "node_median", "node_mad", "device_outliers", "node_outliers", "note" };
        var fleetRows = report.Metrics.Select(m => (IReadOnlyList<string>)[m.Family.Test, m.Family.Name, m.Family.Backend, m.Family.Unit,
            I(m.Devices.Count), I(m.Nodes.Count), N(m.Devices.Median), N(m.Devices.Mad), N(m.Devices.P5), N(m.Devices.Median), N(m.Devices.P95),
            N(m.Devices.Min), N(m.Devices.Max), N(m.Nodes.Median), N(m.Nodes.Mad), I(m.DeviceOutliers), I(m.NodeOutliers), m.Note]).ToList();
        Csv.Write(Path.Combine(outDir, "fleet.csv"), fleetHeader, fleetRows);

        var outlierHeader = new[] { "level", "host", "backend", "device", "test", "metric", "value", "unit", "fleet_median", "deviation_pct", "z", "side" };
        var outlierRows = report.Outliers.Select(o => (IReadOnlyList<string>)[o.Level, o.Host, o.Family.Backend, o.Device < 0 ? "" : I(o.Device),
            o.Family.Test, o.Metric, N(o.Value), o.Family.Unit, N(o.Median), o.DeviationPercent.ToString("0.0", CultureInfo.InvariantCulture),
            o.Z.ToString("0.00", CultureInfo.InvariantCulture), o.Slow ? "slow" : "fast"]).ToList();
        Csv.Write(Path.Combine(outDir, "outliers.csv"), outlierHeader, outlierRows);

        var nodeHeader = new[] { "host", "run_id", "verdict", "fail", "warn", "skip", "slow_metrics", "drift", "drain", "reasons", "folder" };
        var nodeRows = report.Nodes.Select(n => (IReadOnlyList<string>)[n.Host, n.Run.RunId, n.Run.Verdict, I(n.Fail), I(n.Warn), I(n.Skip),
            string.Join(";", n.SlowMetrics), string.Join(";", n.DriftComponents), n.Drain ? "yes" : "no", string.Join(" | ", n.DrainReasons), n.Run.Folder]).ToList();
        Csv.Write(Path.Combine(outDir, "nodes.csv"), nodeHeader, nodeRows);

        var driftHeader = new[] { "component", "value", "nodes", "hosts", "majority_value", "majority_nodes" };
        var driftRows = report.Drift.Select(d => (IReadOnlyList<string>)[d.Component, d.Value, I(d.Hosts.Count), string.Join(";", d.Hosts),
            d.Majority, I(d.MajorityNodes)]).ToList();
        Csv.Write(Path.Combine(outDir, "drift.csv"), driftHeader, driftRows);

        var problemHeader = new[] { "file", "problem", "action" };
        var problemRows = report.Problems.Select(p => (IReadOnlyList<string>)[p.File, p.Problem, p.Action]).ToList();
        Csv.Write(Path.Combine(outDir, "problems.csv"), problemHeader, problemRows);

        // Health findings: each host's latest kiln check, and the health phases of its burn.
        var healthHeader = new[] { "host", "command", "run_id", "check", "component", "severity", "code", "message" };
        var healthRows = report.HealthFindings.OrderBy(x => x.Finding.Severity == "FAIL" ? 0 : 1).Select(x => (IReadOnlyList<string>)[x.Run.Host, x.Run.Command,
            x.Run.RunId, x.Finding.Check, x.Finding.Component, x.Finding.Severity, x.Finding.Code, x.Finding.Message]).ToList();
        Csv.Write(Path.Combine(outDir, "health.csv"), healthHeader, healthRows);

        // Verdict rows as verdicts.csv has them, full precision: the file reads back to the same numbers.
        var verdictHeader = Csv.Columns<VerdictRowMap>();
        static IEnumerable<IReadOnlyList<string>> VerdictCells(IEnumerable<VerdictRow> rows) => Csv.Cells<VerdictRow, VerdictRowMap>(rows);
        if (report.Options.Baseline != null)
            Csv.Write<VerdictRow, VerdictRowMap>(Path.Combine(outDir, "baseline.csv"), report.BaselineRows);
        if (report.Net is { } net) NetAnalysis.Write(ResultFolder.Create(outDir), net);

        var histograms = DrawHistograms(report, plots);
        var matrices = DrawCopyMatrices(report, plots);

        var drain = report.DrainHosts;
        var page = new HtmlPage("kiln fleet report");
        page.Verdict(drain.Count > 0 ? "FAIL" : report.HasResults ? "PASS" : "INCOMPLETE",
            $"{report.Runs.Count} burned nodes, {report.Checks.Count} kiln check results, " +
            (report.Net is { } pairs ? $"{pairs.Pairs.Count} network pairs ({pairs.Suspects.Count} suspects), " : "") +
            $"{drain.Count} to drain, {report.Outliers.Count(o => o.Level == "node")} node outliers, " +
            $"{report.Outliers.Count(o => o.Level == "device")} device outliers, {report.Drift.Count} drifting components, " +
            $"{report.Problems.Count} input problems; outliers at |z| >= {report.Options.ZThreshold} and >= {report.Options.MinDeviation * 100:0.#}% from the median");
        page.Heading("Hosts to drain");
        page.Table("drain", ["host", "why"], report.Nodes.Where(n => n.Drain).Select(n => (IReadOnlyList<string>)[n.Host, string.Join(" | ", n.DrainReasons)])
            .Concat(report.NetOnlySuspects.Select(x => (IReadOnlyList<string>)[x.Host, FleetReport.NetReason(x)])), PageRows);
        if (report.Net is { } network)
        {
            // The tables of suspects.csv and pairs.csv, cells through their maps as in the files.
            page.Heading($"Network suspects: the host (or the one link) the bad pairs have in common ({network.Suspects.Count})");
            page.Table("net-suspects", Csv.Columns<SuspectRowMap>(), Csv.Cells<SuspectRow, SuspectRowMap>(NetAnalysis.SuspectRows(network)), PageRows);
            page.Heading($"Network pairs ({network.Pairs.Count} kiln net probe results, {network.Pairs.Count(p => p.Status == nameof(VerdictStatus.FAIL))} FAIL)");
            page.Table("net-pairs", Csv.Columns<PairRowMap>(), Csv.Cells<PairRow, PairRowMap>(network.Pairs), PageRows);
        }
        page.Heading($"Health findings ({report.Checks.Count} kiln check results; burns' health phases)");
        page.Table("health", healthHeader, healthRows, PageRows);
        page.Heading("Input problems");
        page.Table("problems", problemHeader, problemRows, PageRows);
        page.Heading("Fleet statistics per metric (device values; a node is the median of its devices)");
        page.Table("fleet", ["test", "metric", "backend", "unit", "devices", "nodes", "median", "MAD", "p5", "p50", "p95", "device outliers", "node outliers"],
            fleetRows.Select(r => (IReadOnlyList<string>)[.. r.Take(11), r[15], r[16]]));
        page.Heading("Outliers (robust z-score)");
        page.Table("outliers", outlierHeader, outlierRows, PageRows);
        page.Heading("Configuration drift");
        page.Table("drift", driftHeader, driftRows.Select(r => (IReadOnlyList<string>)[r[0], r[1], r[2], Shorten(r[3]), r[4], r[5]]), PageRows);
        if (report.Options.Baseline is { } baseline)
        {
            page.Heading($"Against baseline {baseline.Name} ({baseline.Source}): {report.BaselineRows.Count(b => b.Status == VerdictStatus.FAIL)} FAIL, " +
                         $"{report.BaselineRows.Count(b => b.Status == VerdictStatus.WARN)} WARN, {report.BaselinePass} PASS");
            page.Table("baseline", verdictHeader, VerdictCells(report.BaselineRows), PageRows);
        }
        page.Heading("Failing and warning verdicts of the runs");
        page.Table("verdicts", verdictHeader, VerdictCells(report.Runs.SelectMany(r => r.Verdicts)
            .Where(v => v.Status is VerdictStatus.FAIL or VerdictStatus.WARN).OrderBy(v => v.Status)), PageRows);
        page.Heading("Plots");
        foreach (var png in matrices.Concat(histograms)) page.Image(png, Path.GetFileNameWithoutExtension(png));
        page.Heading("Nodes");
        page.Table("nodes", nodeHeader[..^1], nodeRows.Select(r => (IReadOnlyList<string>)[.. r.Take(nodeHeader.Length - 1)]), 2000);
        page.Write(Path.Combine(outDir, "report.html"));
    }

    /// <summary>The drain list: one failing host per line, sorted (empty file when none).</summary>
    public static void WriteDrainList(FleetReport report, string path) =>
        File.WriteAllText(path, string.Concat(report.DrainHosts.Order(StringComparer.Ordinal).Select(h => h + "\n")));

    private static List<string> DrawHistograms(FleetReport report, string plots)
    {
        var byFamily = report.Outliers.ToLookup(o => o.Family);
        var values = report.MetricInfos.Select(_ => new List<double>()).ToArray();
        foreach (var run in report.Runs)
        {
            foreach (var v in run.Values) values[v.Metric].Add(v.Value);
        }
        var jobs = report.Metrics.Where(m => m.Devices.Count > 0)
            .Select(m => (Summary: m, Path: Path.Combine(plots, $"hist_{Safe(m.Family.Test)}_{Safe(m.Family.Name)}_{Safe(m.Family.Backend)}.png")))
            .ToList();
        // Independent figures: both cores draw.
        Parallel.ForEach(jobs, new ParallelOptions { MaxDegreeOfParallelism = Environment.ProcessorCount },
            j => Charts.Histogram(j.Summary, j.Summary.Family.Members.SelectMany(m => values[m.Id]).ToList(), byFamily[j.Summary.Family], j.Path));
        return jobs.Select(j => j.Path).ToList();
    }

    /// <summary>The fleet's copy matrix: per (source, destination) the median over the nodes.</summary>
    private static List<string> DrawCopyMatrices(FleetReport report, string plots)
    {
        var written = new List<string>();
        var pairs = report.MetricInfos.Select(m => (Info: m, Pair: MetricNames.Pair(m.Name))).Where(x => x.Pair != null)
            .GroupBy(x => (x.Pair!.Value.Family, x.Info.Backend));
        foreach (var g in pairs)
        {
            var cells = g.ToDictionary(x => (x.Pair!.Value.Source, x.Pair.Value.Destination),
                x => RobustStats.Median(report.ValuesOf(x.Info).Select(v => v.Value.Value)));
            var path = Path.Combine(plots, $"{Safe(g.Key.Family)}_{Safe(g.Key.Backend)}_matrix.png");
            Plots.CopyMatrix(cells, $"{g.Key.Family} ({g.Key.Backend}): fleet median per source -> destination", g.First().Info.Unit, path);
            written.Add(path);
        }
        return written;
    }

    private static string N(double v) => Units.Number(v);

    private static string Safe(string name) => string.Concat(name.Select(c => char.IsAsciiLetterOrDigit(c) || c is '_' or '-' ? c : '_'));

    private static string I(int v) => v.ToString(CultureInfo.InvariantCulture);

    private static string Shorten(string hosts) => hosts.Length <= 200 ? hosts : hosts[..200] + "...";
}
