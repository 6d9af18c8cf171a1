// The health checks a plan runs before its first test and after its last (plan health.before /
// health.after): kiln check's sources against the profile's HealthPolicy, the findings of the listed
// sources streamed into findings.csv, the check's summary (inventory with GPU serials) kept as
// health_<phase>.json, and one node-level verdict row per phase.
using Kiln.Core.Health;
using Kiln.Core.Profiles;
using Kiln.Core.Results;

namespace Kiln.Core.Runs;

public sealed class PlanHealth(ResultFolder folder, Profile profile, string host, DateTimeOffset burnStart) : IDisposable
{
    /// <summary>The device index of node-level verdict rows (verdicts.csv): they concern no single device.</summary>
    public const int NodeLevel = -1;

    private CsvTable<FindingRow, FindingRowMap>? _findings;
    private readonly List<FindingRow> _kept = [];

    /// <summary>The findings of the listed sources, every phase so far, as findings.csv has them.</summary>
    public IReadOnlyList<FindingRow> Findings => _kept;

    /// <summary>Runs the checks and returns the phase's verdict row ("health_before" / "health_after").</summary>
    /// <param name="phase">"before" or "after"; after reads only the kernel-log lines since the burn started.</param>
    public VerdictRow Run(string phase, IReadOnlyList<string> sources)
    {
        _findings ??= CheckResults.OpenFindings(folder);
        var now = DateTimeOffset.UtcNow;
        var since = phase == "after" ? now - burnStart + TimeSpan.FromSeconds(1) : (TimeSpan?)null;
        var request = new CheckRequest("/", null, since, profile.Health, profile.Name);
        var kept = new List<Finding>();
        var report = HealthCheck.Run(request, host, now, f =>
        {
            if (!sources.Contains(f.Check)) return;
            kept.Add(f);
            var row = new FindingRow(host, f);
            _kept.Add(row);
            _findings.Write(row);
        });
        // The phase's summary speaks for the listed sources only (their findings, skips and times); the
        // inventory stays whole, as the RMA bundle reads GPU serials from it.
        var listed = report with
        {
            Findings = kept,
            Skipped = report.Skipped.Where(s => sources.Contains(s.Check)).ToList(),
            SourceSeconds = report.SourceSeconds.Where(x => sources.Contains(x.Key)).ToDictionary(),
        };
        var summary = CheckSummary.From(listed, [$"burn health.{phase}", .. sources], Kiln.Native.KilnLibrary.Version);
        File.WriteAllText(folder.File($"health_{phase}.json"), summary.ToJson() + "\n");

        var fails = kept.Where(f => f.Severity == Severity.Fail).ToList();
        var warns = kept.Where(f => f.Severity == Severity.Warn).ToList();
        // A source the node lacks is skipped (no NVML on a CPU node); when every listed source was
        // skipped nothing was checked, and that must not read as a clean bill of health.
        var skipped = report.Skipped.Where(s => sources.Contains(s.Check)).Select(s => s.Check).Distinct().ToList();
        var nothingChecked = skipped.Count >= sources.Distinct().Count();
        var status = fails.Count > 0 ? VerdictStatus.FAIL
            : warns.Count > 0 || nothingChecked ? VerdictStatus.WARN : VerdictStatus.PASS;
        var shown = (fails.Count > 0 ? fails : warns).Take(3).Select(f => $"{f.Code} {f.Component}: {f.Message}").ToList();
        var skippedText = skipped.Count > 0 ? $"; skipped: {string.Join(", ", skipped)}" : "";
        var reason = fails.Count + warns.Count == 0
            ? (nothingChecked ? $"nothing checked: every listed source was skipped ({string.Join(", ", sources)})"
                              : $"no WARN or FAIL findings ({string.Join(", ", sources)}; profile {profile.Name}){skippedText}")
            : $"{fails.Count} FAIL, {warns.Count} WARN findings: {string.Join("; ", shown)}{(fails.Count + warns.Count > shown.Count ? "; all in findings.csv" : "")}{skippedText}";
        return new VerdictRow(host, $"health_{phase}", "node", NodeLevel, status, "fail_findings", fails.Count, 0, "count", reason);
    }

    public void Dispose() => _findings?.Dispose();
}
