// kiln report's Slurm options: --expect HOSTS|FILE (the allocation's nodes: one without results is missing
// and drained), --drain (print what would be drained: the default is a dry run), --apply (drain them
// with scontrol), --max-drain PERCENT (the circuit breaker, default 10% of the allocation).
using System.CommandLine;
using System.Globalization;
using Kiln.Cli.Output;
using Kiln.Core;
using Kiln.Core.Report;
using Kiln.Core.Slurm;

namespace Kiln.Cli.Commands;

public sealed class ReportDrainOptions
{
    public Option<string> Expect { get; } = CommandTree.Text("--expect", "HOSTS|FILE",
        "The nodes that should have results: comma-separated, or a file (a path with a /) with one per line (scontrol show hostnames $SLURM_JOB_NODELIST); a node without any is missing, and drained");
    public Option<bool> Drain { get; } = new("--drain") { Description = "Drain the hosts to drain in Slurm: without --apply a dry run that prints what it would do" };
    public Option<bool> Apply { get; } = new("--apply") { Description = "With --drain: really drain them (scontrol update State=DRAIN Reason=\"kiln: ...\")" };
    public Option<string> MaxDrain { get; } = CommandTree.Text("--max-drain", "PERCENT",
        $"Circuit breaker: drain nothing when more than this share of the allocation would be drained (default {DrainPlan.DefaultMaxShare * 100:0}%)");

    public IReadOnlyList<string> ExpectedHosts(ParseResult parse)
    {
        if (parse.GetValue(Apply) && !parse.GetValue(Drain)) throw new UsageException("--apply", "only with --drain");
        if (parse.GetValue(Expect) is not { } text) return [];
        var list = text;
        // A host name has no '/': a value with one is a file (not "@FILE", which the parser takes for a response file).
        if (text.Contains('/'))
        {
            try
            {
                list = File.ReadAllText(text);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException)
            {
                throw new UsageException("--expect", $"cannot read {text}: {e.Message}");
            }
        }
        var hosts = list.Split([',', '\n', '\r', ' ', '\t'], StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).ToList();
        if (hosts.Count == 0) throw new UsageException("--expect", $"'{text}' names no host");
        if (hosts.FirstOrDefault(h => h.Contains('[')) is { } range)
            throw new UsageException("--expect", $"'{range}' is a Slurm host list: expand it with scontrol show hostnames");
        return hosts;
    }

    public double MaxShare(ParseResult parse)
    {
        if (parse.GetValue(MaxDrain) is not { } text) return DrainPlan.DefaultMaxShare;
        if (!double.TryParse(text.Trim().TrimEnd('%'), NumberStyles.Float, CultureInfo.InvariantCulture, out var percent) || !double.IsFinite(percent))
            throw new UsageException("--max-drain", $"'{text}' is not a percentage");
        if (percent is < 0 or > 100) throw new UsageException("--max-drain", $"{text} is not in 0..100%");
        return percent / 100;
    }

    /// <summary>Prints (dry run) or does the drains; a node someone else drained is left as it is.</summary>
    public static void Run(FleetReport report, double maxShare, bool apply, IConsoleOutput console)
    {
        var o = console.Out;
        var plan = DrainPlan.For(report, maxShare);
        var verb = apply ? "drain" : "would drain";
        if (plan.Targets.Count == 0)
        {
            o.WriteLine("slurm: nothing to drain");
            return;
        }
        if (plan.Tripped)
        {
            console.Error.WriteLine($"kiln: {plan.BreakerMessage("--max-drain")}");
            foreach (var t in plan.Targets) o.WriteLine($"slurm: not drained {t.Node}: {t.Reason}");
            return;
        }
        if (!apply)
        {
            foreach (var t in plan.Targets) o.WriteLine($"slurm: {verb} {t.Node}: {t.Reason} (dry run: add --apply)");
            return;
        }
        var slurm = new SlurmClient();
        foreach (var t in plan.Targets)
        {
            try
            {
                var node = slurm.NodeAsync(t.Node).GetAwaiter().GetResult();
                if (node is null)
                {
                    console.Error.WriteLine($"kiln: error: cannot drain {t.Node}: Slurm knows no such node");
                }
                else if (node.Drained && !node.DrainedByKiln)
                {
                    o.WriteLine($"slurm: left {t.Node} as it is: already drained by someone else ({node.Reason})");
                }
                else
                {
                    slurm.DrainAsync(t.Node, t.Reason).GetAwaiter().GetResult();
                    o.WriteLine($"slurm: drained {t.Node}: {t.Reason}");
                }
            }
            catch (SlurmException e)
            {
                console.Error.WriteLine($"kiln: error: cannot drain {t.Node}: {e.Message}");
            }
        }
    }
}
