// kiln report --drain: the report's hosts to drain (failing, slow, missing, the common node of bad
// network pairs) as Slurm drains with kiln's
// reason, behind a circuit breaker: more than a share of the allocation failing at once is more
// likely a bad profile, a shared file system or the batch script itself than that many bad nodes, so
// nothing is drained and the report says so. A dry run (the default) only prints what it would do.
using Kiln.Core.Evaluation;
using Kiln.Core.Net;
using Kiln.Core.Results;
using Kiln.Core.Report;

namespace Kiln.Core.Slurm;

/// <param name="Reason">"kiln: BURN_FAIL memtest emu0", "kiln: NO_RESULTS node", ...</param>
public sealed record DrainTarget(string Node, string Reason);

/// <param name="AllocationNodes">The nodes the share is of: the expected hosts when given, else the hosts in the report.</param>
/// <param name="Limit">The most nodes the breaker lets through: floor(share x allocation).</param>
public sealed record DrainPlan(IReadOnlyList<DrainTarget> Targets, int AllocationNodes, double MaxShare, int Limit)
{
    /// <summary>The default --max-drain: a tenth of the allocation.</summary>
    public const double DefaultMaxShare = 0.10;

    public bool Tripped => Targets.Count > Limit;

    public static DrainPlan For(FleetReport report, double maxShare)
    {
        var net = report.NetSuspectHosts.ToDictionary(s => s.Host, StringComparer.Ordinal);
        var targets = report.Nodes.Where(n => n.Drain).Select(n => new DrainTarget(n.Host, ReasonFor(n, net.GetValueOrDefault(n.Host))))
            .Concat(report.Missing.Select(h => new DrainTarget(h, SlurmHealthPolicy.Reason("NO_RESULTS", "node"))))
            .Concat(report.NetOnlySuspects.Where(s => !report.Missing.Contains(s.Host)).Select(s => new DrainTarget(s.Host, NetReason(s))))
            .OrderBy(t => t.Node, StringComparer.Ordinal).ToList();
        // The hosts of the network pairs are in the allocation too: a pairing run alone has no burned nodes.
        var allocation = report.Options.ExpectedHosts.Count > 0
            ? report.Options.ExpectedHosts.Distinct(StringComparer.Ordinal).Count()
            : report.Nodes.Select(n => n.Host).Concat(report.Net?.Pairs.SelectMany(p => new[] { p.Client, p.Server }) ?? [])
                .Distinct(StringComparer.Ordinal).Count();
        // The epsilon keeps 10% of 30 at 3, not 2.9999999999999996.
        var limit = (int)Math.Floor(maxShare * allocation + 1e-9);
        return new DrainPlan(targets, allocation, maxShare, limit);
    }

    /// <summary>"circuit breaker: 2 of 3 nodes (67%) to drain, more than --max-drain 10% allows (0 nodes): nothing drained".</summary>
    public string BreakerMessage(string option) =>
        $"circuit breaker: {Targets.Count} of {AllocationNodes} nodes ({Percent(Targets.Count, AllocationNodes)}) to drain, more than {option} " +
        $"{MaxShare * 100:0.#}% allows ({Limit} nodes): nothing drained (a share this large points at the profile, the file system or the job, not at the nodes)";

    /// <summary>kiln's reason for a report's host: the first FAIL of its burn, else the first of the report's reasons.</summary>
    private static string ReasonFor(NodeSummary n, NetSuspect? net)
    {
        var fail = n.Run.IsCheck ? null
            : n.Run.Verdicts.FirstOrDefault(v => v.Status == VerdictStatus.FAIL && !v.Reason.Contains("(injected)", StringComparison.Ordinal));
        if (fail != null) return SlurmHealthPolicy.Reason("BURN_FAIL", $"{fail.Test} {fail.Backend}{fail.Device}");
        if (n.Run.IsCheck) return SlurmHealthPolicy.Reason("CHECK_FAIL", n.DrainReasons.FirstOrDefault() ?? "");
        // A burn stopped before its end (the job's time ran out, a kill) has no FAIL row: its verdict is the reason.
        if (!n.Run.Injected && n.Run.Verdict == nameof(NodeVerdict.INCOMPLETE)) return SlurmHealthPolicy.Reason("BURN_INCOMPLETE", "node");
        if (n.SlowMetrics.Count > 0) return SlurmHealthPolicy.Reason("SLOW", n.SlowMetrics[0]);
        if (net != null) return NetReason(net);
        return SlurmHealthPolicy.Reason("REPORT", n.DrainReasons.FirstOrDefault() ?? n.Run.Verdict);
    }

    /// <summary>"kiln: NET_SUSPECT 3 of 3 pairs bad: n3->n1 n2->n3 n3->n4": the pairs that name the host.</summary>
    private static string NetReason(NetSuspect s) =>
        SlurmHealthPolicy.Reason("NET_SUSPECT", $"{s.BadPairs} of {s.Pairs} pairs bad: {string.Join(' ', s.Bad.Select(p => $"{p.Client}->{p.Server}"))}");

    private static string Percent(int part, int whole) => whole == 0 ? "-" : $"{100.0 * part / whole:0.#}%";
}
