// report.html of one burn, made from what the burn holds in memory (its summary, verdicts, outcomes,
// health findings and the plots it drew), not by reading its own CSV files back: the node verdict,
// the verdict table, every plot, the data errors, the health findings and the inventory.
using Kiln.Core.Evaluation;
using Kiln.Core.Health;
using Kiln.Core.Profiles;

namespace Kiln.Core.Results;

public static class RunPage
{
    public const string FileName = "report.html";

    /// <summary>Writes RUN/report.html embedding <paramref name="plots"/>; returns its path.</summary>
    public static string Write(ResultFolder folder, RunSummary summary, IReadOnlyList<VerdictRow> verdicts, IReadOnlyList<TestOutcome> outcomes,
        IReadOnlyList<FindingRow> findings, IReadOnlyList<string> plots)
    {
        var page = new HtmlPage($"kiln burn on {summary.Host}");
        page.Verdict(summary.Verdict, $"run {summary.RunId}, plan {summary.Plan ?? "?"}, profile {summary.Profile ?? "?"}, started {summary.StartUtc:yyyy-MM-dd HH:mm:ss} UTC" +
                                      (summary.Injected ? " - FAULT INJECTION was on: failures below may be injected" : ""));
        page.Heading("Verdicts");
        page.Table("verdicts", Csv.Columns<VerdictRowMap>(), Csv.Cells<VerdictRow, VerdictRowMap>(verdicts));

        page.Heading("Plots");
        var pngs = plots.Where(File.Exists).ToList();
        if (pngs.Count == 0) page.Paragraph("(none)", "note");
        foreach (var png in pngs) page.Image(png, Path.GetFileNameWithoutExtension(png));

        var errors = outcomes.Where(o => o.DataErrorsReported > 0).ToList();
        if (errors.Count > 0)
        {
            page.Heading("Data errors (the first of each test and device; every one is in errors.csv)");
            page.Table("errors", ["test", "device", "wrong words", "pattern", "offset", "expected", "actual", "bits"], errors.Select(o =>
            {
                var e = o.FirstError!.Value;
                return (IReadOnlyList<string>)[o.TestKey, $"{o.Device.Backend}{o.Device.Index}", $"{o.DataErrorsReported}", e.Pattern,
                    $"0x{e.OffsetBytes:x}", $"0x{e.Expected:x16}", $"0x{e.Actual:x16}", string.Join(';', e.FlippedBits)];
            }));
        }
        var shown = findings.Where(f => f.Finding.Severity is Severity.Warn or Severity.Fail).ToList();
        if (shown.Count > 0)
        {
            page.Heading("Health findings (WARN and FAIL)");
            page.Table("findings", Csv.Columns<FindingRowMap>(), Csv.Cells<FindingRow, FindingRowMap>(shown));
        }
        page.Heading("Devices");
        page.Table("devices", ["backend", "index", "name", "uuid", "pci", "memory", "peak memory bandwidth"],
            summary.Inventory.Devices.Select(d => (IReadOnlyList<string>)[d.Backend, $"{d.Index}", d.Name, d.Uuid, d.PciBusId, ByteSize.Format(d.TotalMemoryBytes),
                d.PeakMemoryBandwidthGbps > 0 ? Units.Format(d.PeakMemoryBandwidthGbps, QuantityKind.Bandwidth) : "unknown"]));
        page.Paragraph($"inventory fingerprint {summary.InventoryFingerprint}; " +
                       string.Join(", ", (summary.Components ?? new Dictionary<string, string>()).Select(c => $"{c.Key} {c.Value}")), "note");
        var path = folder.File(FileName);
        page.Write(path);
        return path;
    }
}
