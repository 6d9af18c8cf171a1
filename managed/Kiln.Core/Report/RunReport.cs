// report.html of one run, made from the files in its folder (so it can be remade from a copied
// folder): the node verdict, the verdict table, every plot (the burn's per-device bars and telemetry
// series, plus the copy matrix drawn here), data errors, health findings and the inventory.
using Kiln.Core.Profiles;
using Kiln.Core.Results;

namespace Kiln.Core.Report;

public static class RunReport
{
    public const string FileName = "report.html";

    /// <summary>Writes RUN/report.html (and the figures it needs into RUN/plots/); returns its path.</summary>
    public static string Write(string runFolder)
    {
        var problems = new List<ReportProblem>();
        var catalog = new MetricCatalog();
        var run = RunReader.Read(runFolder, catalog, problems)
            ?? throw new InvalidOperationException($"{runFolder}: {string.Join("; ", problems.Select(p => $"{p.File}: {p.Problem}"))}");
        var plots = Path.Combine(runFolder, "plots");
        Directory.CreateDirectory(plots);
        DrawCopyMatrices(run, catalog, plots);

        var page = new HtmlPage($"kiln burn on {run.Host}");
        page.Verdict(run.Verdict, $"run {run.RunId}, plan {run.Plan ?? "?"}, profile {run.Profile ?? "?"}, started {run.StartUtc:yyyy-MM-dd HH:mm:ss} UTC" +
                                  (run.Injected ? " - FAULT INJECTION was on: failures below may be injected" : ""));
        page.Heading("Verdicts");
        page.Table("verdicts", Csv.Columns<VerdictRowMap>(), Csv.Cells<VerdictRow, VerdictRowMap>(run.Verdicts));

        page.Heading("Plots");
        var pngs = Directory.EnumerateFiles(plots, "*.png").Order(StringComparer.Ordinal).ToList();
        if (pngs.Count == 0) page.Paragraph("(none)", "note");
        foreach (var png in pngs) page.Image(png, Path.GetFileNameWithoutExtension(png));

        if (CsvInput.ReadAll(Path.Combine(runFolder, "errors.csv"), 50) is { Rows.Count: > 0 } errors)
        {
            page.Heading("Data errors (first 50; every one is in errors.csv)");
            page.Table("errors", errors.Header, errors.Rows);
        }
        if (CsvInput.ReadAll(Path.Combine(runFolder, "findings.csv")) is { } findings)
        {
            page.Heading("Health findings (WARN and FAIL)");
            page.Table("findings", findings.Header, findings.Rows.Where(r => findings.Cell(r, "severity") is "WARN" or "FAIL"));
        }
        page.Heading("Devices");
        page.Table("devices", ["backend", "index", "name", "uuid", "pci", "memory", "peak memory bandwidth"],
            run.Devices.Select(d => (IReadOnlyList<string>)[d.Backend, $"{d.Index}", d.Name, d.Uuid, d.PciBusId, ByteSize.Format(d.TotalMemoryBytes),
                d.PeakMemoryBandwidthGbps > 0 ? Units.Format(d.PeakMemoryBandwidthGbps, QuantityKind.Bandwidth) : "unknown"]));
        page.Paragraph($"inventory fingerprint {run.Fingerprint}; " +
                       string.Join(", ", run.Components.Select(c => $"{c.Key} {c.Value}")), "note");
        if (problems.Count > 0)
        {
            page.Heading("Problems reading this folder");
            page.Table("problems", ["file", "problem", "action"], problems.Select(p => (IReadOnlyList<string>)[p.File, p.Problem, p.Action]));
        }
        var path = Path.Combine(runFolder, FileName);
        page.Write(path);
        return path;
    }

    /// <summary>plots/p2p_&lt;family&gt;_&lt;backend&gt;.png from metrics named like p2p_gbps_&lt;src&gt;_&lt;dst&gt;.</summary>
    private static void DrawCopyMatrices(RunData run, MetricCatalog catalog, string plots)
    {
        var pairs = run.Values.Select(v => (Value: v, Info: catalog.All[v.Metric], Pair: MetricNames.Pair(catalog.All[v.Metric].Name)))
            .Where(x => x.Pair != null)
            .GroupBy(x => (x.Pair!.Value.Family, x.Info.Backend));
        foreach (var g in pairs)
        {
            var cells = new Dictionary<(int, int), double>();
            foreach (var x in g) cells[(x.Pair!.Value.Source, x.Pair.Value.Destination)] = x.Value.Value;
            Charts.CopyMatrix(cells, $"{g.Key.Family} on {run.Host} ({g.Key.Backend}): source -> destination",
                g.First().Info.Unit, Path.Combine(plots, $"{g.Key.Family}_{g.Key.Backend}_matrix.png"));
        }
    }

    internal static string Safe(string name) => string.Concat(name.Select(c => char.IsAsciiLetterOrDigit(c) || c is '_' or '-' ? c : '_'));

}
