// One `kiln check`: runs every source in the order their facts are needed (GPUs before the PCI
// cross-check and the Xid mapping; inventory last), streaming findings to the caller, and returns
// the report the writers and the console turn into output.
using System.Diagnostics;
using Kiln.Core.Health.KernelLog;
using Kiln.Core.Health.Sources;
using Kiln.Native;

namespace Kiln.Core.Health;

/// <param name="Root">Filesystem root holding sys/ and proc/ ("/" on a live node).</param>
/// <param name="KernelLogFile">--kmsg FILE; null reads /dev/kmsg (or journalctl -k) when Root is "/".</param>
/// <param name="Since">--since; null falls back to the policy's Since.</param>
public sealed record CheckRequest(string Root, string? KernelLogFile, TimeSpan? Since, HealthPolicy Policy, string ProfileName)
{
    /// <summary>Reads the kernel log instead of KernelLogFile / the live log: the service's cursor, which hands over only new records.</summary>
    public IKernelLogReader? KernelLogReader { get; init; }
}

public sealed record CheckReport(string Host, CheckRequest Request, DateTimeOffset Start, TimeSpan Elapsed,
    IReadOnlyList<Finding> Findings, IReadOnlyList<SkippedCheck> Skipped, CheckInventory Inventory,
    IReadOnlyList<GpuRecord> Gpus, IReadOnlyList<HcaInfo> Hcas, IReadOnlyList<EdacController> MemoryControllers,
    string? KernelLogSource)
{
    /// <summary>Wall seconds each source took.</summary>
    public IReadOnlyDictionary<string, double> SourceSeconds { get; init; } = new Dictionary<string, double>();

    public bool Healthy => Findings.All(f => f.Severity != Severity.Fail);
    /// <summary>Every source was skipped: not a FAIL (the node may be fine) but never a PASS.</summary>
    public bool NothingChecked => Findings.Any(f => f.Code == FindingCodes.NothingChecked.Name);
    public string Verdict => !Healthy ? "FAIL" : NothingChecked ? "WARN" : "PASS";
    public int ExitCode => Healthy ? ExitCodes.Passed : ExitCodes.Failed;
    public int CountOf(Severity severity) => Findings.Count(f => f.Severity == severity);
}

public static class HealthCheck
{
    /// <param name="onSource">Called as each source starts (kiln slurm healthcheck names the one that overran its deadline).</param>
    public static CheckReport Run(CheckRequest request, string host, DateTimeOffset now, Action<Finding>? onFinding = null,
        Action<string>? onSource = null)
    {
        var clock = Stopwatch.StartNew();
        var ctx = new CheckContext(request.Root, request.Policy, now) { OnFinding = onFinding };
        // Seconds per source, in summary.json: where a slow check spends its time.
        var seconds = new Dictionary<string, double>(StringComparer.Ordinal);
        void Timed(string source, Action run)
        {
            onSource?.Invoke(source);
            var start = clock.Elapsed;
            run();
            seconds[source] = Math.Round((clock.Elapsed - start).TotalSeconds + seconds.GetValueOrDefault(source), 4);
        }
        Timed(GpuCheck.Nvml, () => GpuCheck.Run(ctx, TelemetrySource.Nvml));
        Timed(GpuCheck.RocmSmi, () => GpuCheck.Run(ctx, TelemetrySource.RocmSmi));
        Timed(GpuCheck.Emu, () => GpuCheck.Run(ctx, TelemetrySource.Emu));
        Timed(PcieCheck.Name, () => PcieCheck.Run(ctx));
        Timed(PcieCheck.Name, () => GpuCheck.JudgeCount(ctx));
        Timed(InfinibandCheck.Name, () => InfinibandCheck.Run(ctx));
        Timed(EdacCheck.Name, () => EdacCheck.Run(ctx));
        Timed(CpuMemoryCheck.Name, () => CpuMemoryCheck.Run(ctx));
        Timed(KernelLogCheck.Name, () => KernelLogCheck.Run(ctx, request.KernelLogFile, request.Since ?? request.Policy.Since, request.KernelLogReader));
        // A check that could look at nothing must not read as a clean bill of health (as a plan's
        // all-skipped health phase is WARN "nothing checked").
        var checking = FindingCodes.Sources.Where(s => s != InventoryCheck.Name && (s != GpuCheck.Emu || GpuCheck.EmuRequested)).ToList();
        if (checking.All(s => ctx.Skipped.Any(k => k.Check == s)))
            ctx.Add(FindingCodes.NothingChecked.At("check", "node", Severity.Warn,
                $"nothing checked: every source was skipped ({string.Join("; ", ctx.Skipped.Select(k => $"{k.Check}: {k.Reason}"))})"));
        CheckInventory inventory = null!;
        Timed(InventoryCheck.Name, () => inventory = InventoryCheck.Run(ctx, host));
        return new CheckReport(host, request, now, clock.Elapsed, ctx.Findings, ctx.Skipped, inventory,
            ctx.Gpus, ctx.Hcas, ctx.MemoryControllers, ctx.KernelLogSource) { SourceSeconds = seconds };
    }
}
