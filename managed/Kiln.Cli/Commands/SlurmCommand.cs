// `kiln slurm healthcheck [--node NAME] [--profile ...] [--sysfs-root DIR] [--kmsg FILE] [--since D]
// [--out DIR] [--timeout SECONDS]`: kiln check fit for Slurm's HealthCheckProgram (and a job prolog or
// epilog). Finishes within about 60 s whatever hangs; drains its own node on FAIL with
// "kiln: CODE COMPONENT"; resumes only a drain kiln set, after a passing check (docs/SLURM.md).
// Exit 0 healthy (or not a Slurm node), 1 FAIL, 2 bad input, 3 healthy but Slurm could not be asked or told.
using System.CommandLine;
using System.Globalization;
using Kiln.Cli.Output;
using Kiln.Core;
using Kiln.Core.Health;
using Kiln.Core.Results;
using Kiln.Core.Slurm;

namespace Kiln.Cli.Commands;

public static class SlurmCommand
{
    /// <summary>The check's own deadline; the scontrol calls around it have 10 s each, so the whole stays within 60 s.</summary>
    private const double DefaultTimeoutSeconds = 40;
    private const double MaxTimeoutSeconds = 45;
    private const int FindingLines = 5;

    public static Command Create(CliServices services) =>
        new("slurm", "Slurm integration: the HealthCheckProgram mode (batch burns: scripts/slurm/kiln-burn.sbatch, docs/SLURM.md)")
        {
            HealthCheck(services),
        };

    private static Command HealthCheck(CliServices services)
    {
        var node = CommandTree.Text("--node", "NAME", "Slurm node name (default: SLURMD_NODENAME, else the short host name)");
        var profile = CommandTree.Text(OptionNames.Profile, "NAME|FILE", $"Health profile (default: {HealthPolicyResolver.DefaultName})");
        var sysfsRoot = CommandTree.Text(OptionNames.SysfsRoot, "DIR", "Filesystem root holding sys/ and proc/ (default /)");
        var kmsg = CommandTree.Text(OptionNames.Kmsg, "FILE", "Kernel log to read instead of /dev/kmsg");
        var since = CommandTree.Text(OptionNames.Since, "DURATION", "Ignore kernel-log events older than this (e.g. 30m, 24h)");
        var output = CommandTree.Text(OptionNames.Out, "DIR", "Also write findings.csv, summary.json and kiln.prom here (default: nothing written)");
        var timeout = CommandTree.Text("--timeout", "SECONDS", $"Deadline of the check itself (default {DefaultTimeoutSeconds:0}, at most {MaxTimeoutSeconds:0})");
        var command = new Command("healthcheck", "kiln check for Slurm's HealthCheckProgram: drain this node on FAIL, resume kiln's own drain after a pass")
        {
            node, profile, sysfsRoot, kmsg, since, output, timeout,
        };
        command.SetAction(parse =>
        {
            var console = services.Console;
            var o = console.Out;
            // Every input is checked before Slurm is asked anything.
            var root = CheckCommand.Root(parse.GetValue(sysfsRoot));
            var (policy, profileName) = HealthPolicyResolver.Resolve(parse.GetValue(profile), root);
            // Only that it exists: opening a FIFO that nobody writes would block here, outside the deadline.
            var kmsgFile = parse.GetValue(kmsg) is { } k ? (File.Exists(k) ? Path.GetFullPath(k) : throw new UsageException(OptionNames.Kmsg, $"cannot read {k}: no such file")) : null;
            var window = parse.GetValue(since) is { } text ? Duration.Parse(text, OptionNames.Since) : (TimeSpan?)null;
            var deadline = TimeSpan.FromSeconds(Seconds(parse.GetValue(timeout)) ?? DefaultTimeoutSeconds);
            var outPath = parse.GetValue(output);

            var slurm = new SlurmClient();
            var named = parse.GetValue(node) ?? (Environment.GetEnvironmentVariable("SLURMD_NODENAME") is { Length: > 0 } n ? n : null);
            if (named is null && slurm.FindScontrol() is null)
            {
                o.WriteLine($"kiln slurm healthcheck: not a Slurm node ({slurm.Scontrol} not found, SLURMD_NODENAME unset): skipped");
                return ExitCodes.Passed;
            }
            var slurmError = false;
            void Error(string message)
            {
                slurmError = true;
                console.Error.WriteLine($"kiln: error: {message}");
            }

            // Slurm is asked about the node while the check runs: both are bounded, neither waits on the other.
            var nodeQuery = Task.Run(async () =>
            {
                var name = named ?? await slurm.ThisNodeNameAsync().ConfigureAwait(false);
                return name is null ? (null, null) : (name, await slurm.NodeAsync(name).ConfigureAwait(false));
            });
            var host = HostName.Of(root);
            var request = new CheckRequest(root, kmsgFile, window, policy, profileName);
            var start = DateTimeOffset.UtcNow;
            BoundedCheck check;
            ResultFolder? folder = outPath is null ? null : ResultFolder.Create(outPath);
            using (var findings = folder is null ? null : CheckResults.OpenFindings(folder))
                check = BoundedCheck.Run(request, host, deadline, f => findings?.Write(new FindingRow(host, f)));
            if (folder != null && check.Report is { } full)
            {
                CheckResults.WriteSummary(folder, CheckSummary.From(full, parse.Tokens.Select(t => t.Value).ToList(), Kiln.Native.KilnLibrary.Version));
                CheckResults.WritePrometheus(folder, full);
            }

            string? slurmName = null;
            SlurmNode? state = null;
            try
            {
                (slurmName, state) = nodeQuery.GetAwaiter().GetResult();
            }
            catch (SlurmException e)
            {
                Error($"cannot read the node's Slurm state: {e.Message}");
            }

            var fails = check.Findings.Count(f => f.Severity == Severity.Fail);
            var warns = check.Findings.Count(f => f.Severity == Severity.Warn);
            var label = slurmName ?? named ?? host;
            o.WriteLine($"kiln slurm healthcheck on {label}: {check.Verdict} ({fails} FAIL, {warns} WARN) in " +
                        $"{check.Elapsed.TotalSeconds.ToString("0.00", CultureInfo.InvariantCulture)} s" +
                        (state is null ? "" : $"; Slurm: {state.Describe()}"));
            foreach (var f in check.Findings.Where(f => f.Severity != Severity.Info).OrderByDescending(f => f.Severity).Take(FindingLines))
                o.WriteLine($"{Finding.Name(f.Severity)} {f.Code} {f.Component}: {f.Message}");

            if (state is null && !slurmError)
            {
                // scontrol answered, and knows no node by this name: a login node, a build host.
                o.WriteLine($"kiln slurm healthcheck: not a Slurm node (Slurm knows no node named {label}): nothing drained or resumed");
                return check.Failed ? ExitCodes.Failed : ExitCodes.Passed;
            }
            if (state != null)
            {
                var decision = SlurmHealthPolicy.Decide(check, state);
                try
                {
                    switch (decision.Action)
                    {
                        case NodeAction.Drain:
                            slurm.DrainAsync(state.Name, decision.Reason).GetAwaiter().GetResult();
                            break;
                        case NodeAction.Resume:
                            slurm.ResumeAsync(state.Name).GetAwaiter().GetResult();
                            break;
                    }
                    o.WriteLine(decision.Why);
                }
                catch (SlurmException e)
                {
                    Error($"could not {(decision.Action == NodeAction.Drain ? "drain" : "resume")} {state.Name}: {e.Message}");
                }
            }
            // A FAIL stays a FAIL whatever Slurm did; a pass that could not reach Slurm is not a clean pass.
            return check.Failed ? ExitCodes.Failed : slurmError ? ExitCodes.Internal : ExitCodes.Passed;
        });
        return command;
    }

    private static double? Seconds(string? text)
    {
        if (text is null) return null;
        if (!double.TryParse(text.TrimEnd('s'), NumberStyles.Float, CultureInfo.InvariantCulture, out var x) || !double.IsFinite(x))
            throw new UsageException("--timeout", $"'{text}' is not a number of seconds");
        if (x is < 1 or > MaxTimeoutSeconds) throw new UsageException("--timeout", $"{text} is not in 1..{MaxTimeoutSeconds:0} s");
        return x;
    }
}
