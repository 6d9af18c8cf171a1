// The files `kiln check` writes into OUT/: findings.csv (streamed, one row per finding as it is
// found), summary.json (identity, verdict, counts, skipped sources, inventory and its fingerprint,
// the findings) and kiln.prom (for node_exporter's textfile collector).
using System.Globalization;
using System.Text.Json;
using CsvHelper.Configuration;
using Kiln.Core.Health.Sources;
using Kiln.Core.Results;

namespace Kiln.Core.Health;

/// <summary>A row of findings.csv: host,check,component,severity,code,message,remediation.</summary>
public sealed record FindingRow(string Host, Finding Finding);

public sealed class FindingRowMap : ClassMap<FindingRow>
{
    public FindingRowMap()
    {
        Map(r => r.Host).Name("host");
        Map(r => r.Finding.Check).Name("check");
        Map(r => r.Finding.Component).Name("component");
        Map(r => r.Finding.Severity).Name("severity").Convert(a => Finding.Name(a.Value.Finding.Severity));
        Map(r => r.Finding.Code).Name("code");
        Map(r => r.Finding.Message).Name("message");
        Map(r => r.Finding.Remediation).Name("remediation");
    }
}

public sealed record SummaryFinding(string Check, string Component, string Severity, string Code, string Message, string Remediation)
{
    public static SummaryFinding From(Finding f) => new(f.Check, f.Component, Finding.Name(f.Severity), f.Code, f.Message, f.Remediation);
}

public sealed record CheckCounts(int Info, int Warn, int Fail, int Skipped);

/// <summary>summary.json of a check (and what --format json prints).</summary>
public sealed record CheckSummary
{
    /// <summary>The result schema, as a burn's summary.json has it (kiln report and kiln bundle read both).</summary>
    public int SchemaVersion { get; init; } = SummaryJson.SchemaVersion;
    public required string Host { get; init; }
    public string Command { get; init; } = "check";
    public required string KilnVersion { get; init; }
    public required string NativeVersion { get; init; }
    public required IReadOnlyList<string> Arguments { get; init; }
    public required string Profile { get; init; }
    public required string SysfsRoot { get; init; }
    public string? KernelLog { get; init; }
    public double? SinceSeconds { get; init; }
    public required DateTime StartUtc { get; init; }
    public required double ElapsedSeconds { get; init; }
    /// <summary>Wall seconds per source (nvml, sysfs_pcie, kmsg ...).</summary>
    public IReadOnlyDictionary<string, double>? SourceSeconds { get; init; }
    /// <summary>PASS (no FAIL finding) or FAIL.</summary>
    public required string Verdict { get; init; }
    public required int ExitCode { get; init; }
    public required CheckCounts Counts { get; init; }
    public required IReadOnlyList<SkippedCheck> Skipped { get; init; }
    public required string InventoryFingerprint { get; init; }
    public required CheckInventory Inventory { get; init; }
    public required IReadOnlyList<SummaryFinding> Findings { get; init; }

    public static CheckSummary From(CheckReport r, IReadOnlyList<string> arguments, string nativeVersion) => new()
    {
        Host = r.Host,
        KilnVersion = Kiln.Core.KilnVersion.Text,
        NativeVersion = nativeVersion,
        Arguments = arguments,
        Profile = r.Request.ProfileName,
        SysfsRoot = r.Request.Root,
        KernelLog = r.KernelLogSource,
        SinceSeconds = (r.Request.Since ?? r.Request.Policy.Since)?.TotalSeconds,
        StartUtc = r.Start.UtcDateTime,
        ElapsedSeconds = Math.Round(r.Elapsed.TotalSeconds, 3),
        SourceSeconds = r.SourceSeconds,
        Verdict = r.Verdict,
        ExitCode = r.ExitCode,
        Counts = new CheckCounts(r.CountOf(Severity.Info), r.CountOf(Severity.Warn), r.CountOf(Severity.Fail), r.Skipped.Count),
        Skipped = r.Skipped,
        InventoryFingerprint = r.Inventory.Fingerprint,
        Inventory = r.Inventory,
        Findings = r.Findings.Select(SummaryFinding.From).ToList(),
    };

    public string ToJson() => JsonSerializer.Serialize(this, SummaryJson.Options);
}

public static class CheckResults
{
    public const string FindingsFile = "findings.csv";
    public const string SummaryFile = "summary.json";
    public const string PrometheusFile = "kiln.prom";

    /// <summary>findings.csv, with its header, ready to take rows as they are found.</summary>
    public static CsvTable<FindingRow, FindingRowMap> OpenFindings(ResultFolder folder) => new(folder.File(FindingsFile));

    public static void WriteSummary(ResultFolder folder, CheckSummary summary) => SummaryJson.Write(folder.File(SummaryFile), summary);

    public static void WritePrometheus(ResultFolder folder, CheckReport report) => Prometheus(report).Write(folder.File(PrometheusFile));

    /// <summary>The check's metrics: verdict, findings by severity, and the per-device readings behind them.</summary>
    public static PrometheusWriter Prometheus(CheckReport r)
    {
        var p = new PrometheusWriter();
        var host = ("host", r.Host);
        p.Add(p.Gauge("kiln_check_healthy", "1 when the last kiln check found no FAIL finding, else 0."), r.Healthy ? 1 : 0, host);
        var findings = p.Gauge("kiln_check_findings", "Findings of the last kiln check by severity.");
        foreach (var severity in Enum.GetValues<Severity>())
            p.Add(findings, r.CountOf(severity), host, ("severity", Finding.Name(severity)));
        var byCode = p.Gauge("kiln_check_finding_codes", "Findings of the last kiln check by code and severity (WARN and FAIL only).");
        foreach (var g in r.Findings.Where(f => f.Severity != Severity.Info).GroupBy(f => (f.Code, f.Severity)).OrderBy(g => g.Key.Code, StringComparer.Ordinal))
            p.Add(byCode, g.Count(), host, ("code", g.Key.Code), ("severity", Finding.Name(g.Key.Severity)));
        p.Add(p.Gauge("kiln_check_skipped_sources", "Sources the last kiln check could not run (no NVML, no EDAC ...)."), r.Skipped.Count, host);
        p.Add(p.Gauge("kiln_check_duration_seconds", "Wall time of the last kiln check."), Math.Round(r.Elapsed.TotalSeconds, 3), host);
        p.Add(p.Gauge("kiln_check_timestamp_seconds", "When the last kiln check ran, Unix time."), r.Start.ToUnixTimeSeconds(), host);

        foreach (var g in r.Gpus)
        {
            var h = g.Health;
            (string, string)[] labels = [host, ("gpu", h.Index.ToString(CultureInfo.InvariantCulture)), ("uuid", h.Uuid), ("pci", h.PciBusId), ("source", g.Source)];
            void Gpu(string name, string help, double value)
            {
                if (value >= 0) p.Add(p.Gauge(name, help), value, labels);
            }
            Gpu("kiln_gpu_ecc_volatile_uncorrected", "Uncorrectable ECC errors since the driver loaded.", h.EccVolatileUncorrected);
            Gpu("kiln_gpu_ecc_volatile_corrected", "Correctable ECC errors since the driver loaded.", h.EccVolatileCorrected);
            Gpu("kiln_gpu_ecc_aggregate_uncorrected", "Uncorrectable ECC errors over the GPU's life.", h.EccAggregateUncorrected);
            Gpu("kiln_gpu_ecc_aggregate_corrected", "Correctable ECC errors over the GPU's life.", h.EccAggregateCorrected);
            Gpu("kiln_gpu_retired_pages", "Pages retired for ECC errors (single- and double-bit).",
                h.RetiredPagesSbe < 0 && h.RetiredPagesDbe < 0 ? -1 : Math.Max(0, h.RetiredPagesSbe) + Math.Max(0, h.RetiredPagesDbe));
            Gpu("kiln_gpu_row_remap_pending", "1 when a row remap waits for a GPU reset.", Flag(h.RemapPending));
            Gpu("kiln_gpu_row_remap_failed", "1 when a row remap failed.", Flag(h.RemapFailed));
            Gpu("kiln_gpu_temperature_celsius", "GPU temperature.", h.TemperatureC);
            Gpu("kiln_gpu_power_watts", "GPU power draw.", h.PowerW);
            Gpu("kiln_gpu_throttle_reasons", "Active clock throttle reasons (NVML bit mask).", (double)(ulong)h.Throttle);
            Gpu("kiln_gpu_pcie_link_generation", "Current PCIe link generation.", h.PcieGenCurrent);
            Gpu("kiln_gpu_pcie_link_width", "Current PCIe link width (lanes).", h.PcieWidthCurrent);
            Gpu("kiln_gpu_nvlink_links_active", "NVLink links up.", h.NvlinkLinksActive);
            Gpu("kiln_gpu_processes", "Processes holding the GPU.", h.ComputeProcesses);
        }
        foreach (var hca in r.Hcas)
        {
            foreach (var port in hca.Ports)
            {
                (string, string)[] labels = [host, ("hca", hca.Name), ("port", port.Number.ToString(CultureInfo.InvariantCulture))];
                p.Add(p.Gauge("kiln_ib_port_active", "1 when the InfiniBand/RoCE port state is ACTIVE."),
                    Sources.InfinibandCheck.StateName(port.State) == "ACTIVE" ? 1 : 0, labels);
                if (port.RateGbps is { } rate) p.Add(p.Gauge("kiln_ib_port_rate_gbps", "Port rate in Gb/s."), rate, labels);
                foreach (var (counter, value) in port.Counters.OrderBy(c => c.Key, StringComparer.Ordinal))
                    p.Add(p.Gauge("kiln_ib_port_errors", "InfiniBand port error counters (since their last reset)."), value, [.. labels, ("counter", counter)]);
            }
        }
        foreach (var mc in r.MemoryControllers)
        {
            if (mc.CorrectedCount >= 0) p.Add(p.Gauge("kiln_edac_correctable_errors", "EDAC ce_count of a memory controller."), mc.CorrectedCount, host, ("mc", mc.Name));
            if (mc.UncorrectedCount >= 0) p.Add(p.Gauge("kiln_edac_uncorrectable_errors", "EDAC ue_count of a memory controller."), mc.UncorrectedCount, host, ("mc", mc.Name));
        }
        return p;
    }

    private static double Flag(bool? value) => value is null ? -1 : value.Value ? 1 : 0;
}
