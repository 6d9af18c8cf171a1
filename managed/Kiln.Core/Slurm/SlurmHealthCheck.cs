// kiln slurm healthcheck's core: `kiln check` under a deadline (a source that hangs becomes a FAIL
// CHECK_TIMEOUT naming it, and the findings so far are kept), and the decision what to do with the
// node: drain it with kiln's reason on FAIL, resume it only when kiln drained it and the check passed,
// and never touch a drain someone else set.
using System.Collections.Concurrent;
using System.Diagnostics;
using Kiln.Core.Health;

namespace Kiln.Core.Slurm;

/// <summary>What the health check found, within its deadline.</summary>
/// <param name="Report">The whole report; null when a source overran the deadline.</param>
/// <param name="TimedOutSource">The source still running at the deadline; null when the check finished.</param>
public sealed record BoundedCheck(IReadOnlyList<Finding> Findings, CheckReport? Report, string? TimedOutSource, TimeSpan Elapsed)
{
    public bool Failed => Findings.Any(f => f.Severity == Severity.Fail);
    public bool NothingChecked => Findings.Any(f => f.Code == FindingCodes.NothingChecked.Name);
    /// <summary>A check that may return a node to service: no FAIL, and it looked at something.</summary>
    public bool Passed => !Failed && !NothingChecked && TimedOutSource is null;
    public string Verdict => Failed ? "FAIL" : NothingChecked ? "WARN" : "PASS";

    /// <summary>
    /// Runs the check on a thread of its own and waits at most <paramref name="deadline"/>. A native call
    /// that never returns cannot be cancelled, so its thread is abandoned (a background thread does not
    /// keep the process alive) and the source is named in a FAIL finding.
    /// </summary>
    public static BoundedCheck Run(CheckRequest request, string host, TimeSpan deadline, Action<Finding>? onFinding = null)
    {
        var clock = Stopwatch.StartNew();
        var findings = new ConcurrentQueue<Finding>();
        string? current = null;
        CheckReport? report = null;
        Exception? crash = null;
        var gate = new object();
        var late = false;
        var thread = new Thread(() =>
        {
            try
            {
                report = HealthCheck.Run(request, host, DateTimeOffset.UtcNow, f =>
                {
                    // After the deadline the caller has moved on (and closed its writers): drop late findings.
                    lock (gate)
                    {
                        if (late) return;
                        findings.Enqueue(f);
                        onFinding?.Invoke(f);
                    }
                }, source => Volatile.Write(ref current, source));
            }
            catch (Exception e)
            {
                crash = e;
            }
        }) { IsBackground = true, Name = "kiln-check" };
        thread.Start();
        var finished = thread.Join(deadline);
        lock (gate) late = !finished;
        if (finished && crash != null) System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(crash).Throw();
        if (finished && report != null) return new BoundedCheck(report.Findings, report, null, clock.Elapsed);
        var source = Volatile.Read(ref current) ?? "check";
        var timeout = FindingCodes.CheckTimeout.At(source, source, Severity.Fail,
            $"the {source} source did not finish within {deadline.TotalSeconds:0.#} s; the sources after it did not run");
        onFinding?.Invoke(timeout);
        Finding[] kept;
        lock (gate) kept = [.. findings];
        return new BoundedCheck([.. kept, timeout], null, source, clock.Elapsed);
    }
}

public enum NodeAction { None, Drain, Resume }

/// <param name="Reason">The drain reason to set ("kiln: CODE COMPONENT"), for Drain.</param>
/// <param name="Why">One line for the log: what is done or left, and why.</param>
public sealed record NodeDecision(NodeAction Action, string Reason, string Why);

public static class SlurmHealthPolicy
{
    /// <summary>Slurm shows reasons in one column of sinfo -R: keep them to a line.</summary>
    public const int MaxReasonLength = 120;

    /// <summary>"kiln: GPU_ECC_UNCORRECTABLE gpu3 GPU-… 0000:5d:00.0" for the worst finding (FAIL first, in the order found).</summary>
    public static string DrainReason(IReadOnlyList<Finding> findings)
    {
        var worst = findings.Where(f => f.Severity == Severity.Fail).FirstOrDefault()
                    ?? throw new ArgumentException("no FAIL finding", nameof(findings));
        return Reason(worst.Code, worst.Component);
    }

    /// <summary>kiln's reason for a code and a component, cut to one sinfo line.</summary>
    public static string Reason(string code, string component)
    {
        var text = $"{SlurmClient.ReasonPrefix} {code} {component}".Trim().ReplaceLineEndings(" ");
        return text.Length > MaxReasonLength ? text[..(MaxReasonLength - 1)] + "…" : text;
    }

    /// <summary>What to do with the node after a check, given what Slurm says of it now.</summary>
    public static NodeDecision Decide(BoundedCheck check, SlurmNode node)
    {
        if (check.Failed)
        {
            var reason = DrainReason(check.Findings);
            if (node.Drained && !node.DrainedByKiln)
                return new(NodeAction.None, "", $"{node.Name} is already drained by someone else ({Quote(node.Reason)}): left as it is");
            if (node.DrainedByKiln && node.Reason == reason)
                return new(NodeAction.None, "", $"{node.Name} is already drained: {reason}");
            return new(NodeAction.Drain, reason, $"drained {node.Name}: {reason}");
        }
        if (!node.Drained) return new(NodeAction.None, "", $"{node.Name} is {node.Describe()}: nothing to do");
        if (!node.DrainedByKiln)
            return new(NodeAction.None, "", $"{node.Name} is drained by someone else ({Quote(node.Reason)}): kiln resumes only its own drains");
        if (!check.Passed)
            return new(NodeAction.None, "", $"{node.Name} stays drained ({node.Reason}): the check looked at nothing, which is no pass");
        return new(NodeAction.Resume, "", $"resumed {node.Name} (was drained: {node.Reason}): the check passed");
    }

    private static string Quote(string reason) => reason.Length == 0 ? "no reason given" : $"\"{reason}\"";
}
