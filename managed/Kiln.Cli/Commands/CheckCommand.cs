// `kiln check [--profile NAME|FILE] [--sysfs-root DIR] [--kmsg FILE] [--since DURATION] [--out DIR]
// [--format text|json]`: the passive health check. Writes findings.csv, summary.json and kiln.prom,
// prints one screen (or the summary JSON) and exits 0 healthy, 1 on any FAIL finding, 2 bad input.
using System.CommandLine;
using System.Globalization;
using Kiln.Cli.Output;
using Kiln.Core;
using Kiln.Core.Health;
using Kiln.Core.Health.Sources;
using Kiln.Core.Results;
using Kiln.Native;

namespace Kiln.Cli.Commands;

public static class CheckCommand
{
    /// <summary>WARN/FAIL lines shown before "... and N more": the whole output stays within one screen.</summary>
    private const int MaxFindingLines = 20;

    public static Command Create(CliServices services)
    {
        var profile = CommandTree.Text(OptionNames.Profile, "NAME|FILE", $"Health profile (default: {HealthPolicyResolver.DefaultName})");
        var sysfsRoot = CommandTree.Text(OptionNames.SysfsRoot, "DIR", "Filesystem root holding sys/ and proc/ (default /); for fixtures and containers");
        var kmsg = CommandTree.Text(OptionNames.Kmsg, "FILE", "Kernel log to read (dmesg, dmesg --ctime/--time-format iso, journalctl -k, syslog) instead of /dev/kmsg");
        var since = CommandTree.Text(OptionNames.Since, "DURATION", "Ignore kernel-log events older than this (e.g. 30m, 24h, 7d)");
        var output = CommandTree.Text(OptionNames.Out, "DIR", "Result folder (default ./kiln-results/<host>/<utc time>)");
        var format = CommandTree.Text(OptionNames.Format, "text|json", "Output: one screen of text (default) or the summary JSON");
        var command = new Command("check", "Passive health check in seconds: GPUs, PCIe, InfiniBand, memory, kernel log; exit 0 healthy / 1 unhealthy")
        {
            profile, sysfsRoot, kmsg, since, output, format,
        };
        command.SetAction(parse =>
        {
            // Every input is checked before anything is read or any folder is made.
            var style = parse.GetValue(format)?.Trim().ToLowerInvariant() ?? "text";
            if (style is not ("text" or "json"))
                throw new UsageException(OptionNames.Format, $"unknown format '{style}' (known: text, json)");
            var root = Root(parse.GetValue(sysfsRoot));
            var (policy, profileName) = HealthPolicyResolver.Resolve(parse.GetValue(profile), root);
            var kmsgFile = KernelLogFile(parse.GetValue(kmsg));
            var window = parse.GetValue(since) is { } text ? Duration.Parse(text, OptionNames.Since) : (TimeSpan?)null;
            var start = DateTimeOffset.UtcNow;
            var host = HostName.Of(root);
            var folder = ResultFolder.Create(parse.GetValue(output) ?? ResultFolder.DefaultPath(host, start));

            CheckReport report;
            using (var findings = CheckResults.OpenFindings(folder))
            {
                var request = new CheckRequest(root, kmsgFile, window, policy, profileName);
                report = HealthCheck.Run(request, host, start, f => findings.Write(new FindingRow(host, f)));
            }
            var summary = CheckSummary.From(report, parse.Tokens.Select(t => t.Value).ToList(), KilnLibrary.Version);
            CheckResults.WriteSummary(folder, summary);
            CheckResults.WritePrometheus(folder, report);

            var console = services.Console;
            if (style == "json") console.Out.WriteLine(summary.ToJson());
            else WriteText(console.Out, report, folder.Path, console.IsTerminal ? console.Width : int.MaxValue);
            return report.ExitCode;
        });
        return command;
    }

    /// <summary>A header, one line per WARN/FAIL finding (FAIL first), the INFO and skip counts, the verdict.</summary>
    public static void WriteText(TextWriter o, CheckReport r, string folder, int width)
    {
        var inv = r.Inventory;
        var gpus = inv.Gpus.Count == 0 ? "no GPUs"
            : $"{CheckContext.Count(inv.Gpus.Count, "GPU")} ({string.Join(", ", inv.Gpus.GroupBy(g => g.Name).Select(g => $"{g.Count()}x {g.Key}"))}, " +
              $"driver {string.Join("/", inv.GpuDrivers.Values.Distinct())})";
        var ports = r.Hcas.Sum(h => h.Ports.Count);
        o.WriteLine(Fit($"kiln check on {r.Host}: {gpus}, {CheckContext.Count(inv.Hcas.Count, "HCA")} ({CheckContext.Count(ports, "port")}), " +
                        $"{CheckContext.Count(r.MemoryControllers.Count, "memory controller")}, kernel log {r.KernelLogSource ?? "not read"} " +
                        $"[{r.Elapsed.TotalSeconds.ToString("0.00", CultureInfo.InvariantCulture)} s]", width));
        var serious = r.Findings.Where(f => f.Severity != Severity.Info).OrderByDescending(f => f.Severity).ToList();
        var codeWidth = serious.Count == 0 ? 0 : Math.Min(serious.Take(MaxFindingLines).Max(f => f.Code.Length), 28);
        foreach (var f in serious.Take(MaxFindingLines))
            o.WriteLine(Fit($"{Finding.Name(f.Severity)} {f.Code.PadRight(codeWidth)} {f.Component}: {f.Message}", width));
        if (serious.Count > MaxFindingLines)
            o.WriteLine($"... and {serious.Count - MaxFindingLines} more WARN/FAIL findings in {CheckResults.FindingsFile}");
        var skipped = r.Skipped.Count == 0 ? "none" : string.Join("; ", r.Skipped.Select(s => $"{s.Check} ({Short(s.Reason)})"));
        o.WriteLine(Fit($"{CheckContext.Count(r.CountOf(Severity.Info), "INFO finding")}; skipped: {skipped}", width));
        o.WriteLine(Fit($"verdict: {r.Verdict} ({r.CountOf(Severity.Fail)} FAIL, {r.CountOf(Severity.Warn)} WARN), fingerprint {inv.Fingerprint}, results in {folder}", width));
    }

    internal static string Root(string? text)
    {
        if (text is null) return "/";
        var full = Path.GetFullPath(text);
        if (!Directory.Exists(full)) throw new UsageException(OptionNames.SysfsRoot, $"{text} is not a directory");
        return full;
    }

    private static string? KernelLogFile(string? text)
    {
        if (text is null) return null;
        try
        {
            using var probe = File.OpenRead(text);
            return Path.GetFullPath(text);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException)
        {
            throw new UsageException(OptionNames.Kmsg, $"cannot read {text}: {e.Message}");
        }
    }

    private static string Short(string reason) => reason.Length > 70 ? reason[..69] + "…" : reason;

    private static string Fit(string line, int width) => line.Length > width && width > 1 ? line[..(width - 1)] + "…" : line;
}
