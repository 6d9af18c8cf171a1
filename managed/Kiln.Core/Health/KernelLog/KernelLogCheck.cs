// kmsg: reads the kernel log (--kmsg FILE, else /dev/kmsg, else journalctl -k), keeps the lines
// inside --since, classifies each (KernelEvents) and reports one finding per (event, component):
// Xids through the policy's table and mapped to the GPU by PCI address, link flapping over the
// policy's window, MCE/EDAC, AER, amdgpu. Malformed lines are READ_ERRORs naming file and line.
using System.Diagnostics;
using System.Globalization;
using Kiln.Core.Health.Sources;

namespace Kiln.Core.Health.KernelLog;

/// <summary>A source of kernel-log lines for one check (the service's cursor); null when it cannot be read (it reports why on the context).</summary>
public interface IKernelLogReader
{
    KernelLogCheck.Input? Read(CheckContext ctx);
}

public static class KernelLogCheck
{
    public const string Name = "kmsg";
    private const int MaxReadErrors = 5;

    /// <summary>The log as read: where from (for messages) and its lines.</summary>
    public sealed record Input(string Source, IReadOnlyList<string> Lines);

    public static void Run(CheckContext ctx, string? file, TimeSpan? since, IKernelLogReader? reader = null)
    {
        var input = reader is not null ? reader.Read(ctx) : file is not null ? ReadFile(ctx, file) : ReadLive(ctx);
        if (input is null) return;
        ctx.KernelLogSource = input.Source;
        Judge(ctx, input, since);
    }

    /// <summary>The finding code and severity an Xid gets from the policy's table (unknown numbers WARN).</summary>
    public static (FindingCode Code, Severity Severity) XidVerdict(HealthPolicy policy, int xid) =>
        policy.Xids.TryGetValue(xid, out var action)
            ? action switch
            {
                XidAction.Fatal => (FindingCodes.XidFatal, Severity.Fail),
                XidAction.Warn => (FindingCodes.XidWarn, Severity.Warn),
                _ => (FindingCodes.XidInfo, Severity.Info),
            }
            : (FindingCodes.XidUnknown, Severity.Warn);

    /// <summary>Seconds-since-boot times are placed with ROOT/proc/stat's btime; null when it is absent.</summary>
    public static DateTimeOffset? BootTime(string root)
    {
        foreach (var line in SysfsFile.TextOrEmpty(Path.Combine(root, "proc", "stat")).Split('\n'))
        {
            if (line.StartsWith("btime ", StringComparison.Ordinal)
                && long.TryParse(line.AsSpan(6).Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out var seconds))
                return DateTimeOffset.FromUnixTimeSeconds(seconds);
        }
        return null;
    }

    public static Input? ReadFile(CheckContext ctx, string file)
    {
        try
        {
            // Invalid UTF-8 becomes U+FFFD, which the parser reports as garbage on that line.
            return new Input(file, File.ReadAllText(file).Split('\n'));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            ctx.ReadError(Name, "node", file, e.Message);
            return null;
        }
    }

    // The live log belongs to the node kiln runs on: with a --sysfs-root fixture there is none.
    public static Input? ReadLive(CheckContext ctx)
    {
        if (Path.GetFullPath(ctx.Root) != "/")
        {
            ctx.Skip(Name, $"no --kmsg FILE given, and --sysfs-root {ctx.Root} is not this node's root");
            return null;
        }
        using (var kmsg = DevKmsg.TryOpen(DevKmsg.DefaultPath, atEnd: false, out var whyKmsg))
        {
            if (kmsg is not null) return new Input(DevKmsg.DefaultPath, kmsg.ReadAvailable());
            if (Journal(out var whyJournal) is { } journal) return journal;
            ctx.Skip(Name, $"{whyKmsg}; journalctl -k: {whyJournal}");
            return null;
        }
    }

    private static Input? Journal(out string why)
    {
        try
        {
            using var process = Process.Start(new ProcessStartInfo("journalctl", ["-k", "-b", "-o", "short-iso-precise", "--no-pager", "-q"])
            {
                RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false,
            })!;
            var output = process.StandardOutput.ReadToEndAsync();
            if (!process.WaitForExit(TimeSpan.FromSeconds(10)))
            {
                process.Kill();
                why = "did not finish within 10 s";
                return null;
            }
            why = process.ExitCode == 0 ? "" : $"exit code {process.ExitCode}";
            return process.ExitCode == 0 ? new Input("journalctl -k", output.Result.Split('\n')) : null;
        }
        catch (Exception e) when (e is System.ComponentModel.Win32Exception or InvalidOperationException)
        {
            why = e.Message;
            return null;
        }
    }

    private sealed class Tally(KernelEventKind kind, string? key, int xid, string detail, int firstLine)
    {
        public KernelEventKind Kind { get; } = kind;
        public string? Key { get; } = key;
        public int Xid { get; } = xid;
        public string Detail { get; } = detail;
        public int FirstLine { get; } = firstLine;
        public int Count { get; set; }
        public DateTimeOffset? First { get; set; }
        public DateTimeOffset? Last { get; set; }
        public List<DateTimeOffset?> Times { get; } = [];
        /// <summary>For a link: whether its last event in the window was a down.</summary>
        public bool EndsDown { get; set; }
    }

    public static void Judge(CheckContext ctx, Input input, TimeSpan? since)
    {
        var parser = new KernelLogParser(BootTime(ctx.Root), ctx.Now, TimeZoneInfo.Local);
        var cutoff = since is { } s ? ctx.Now - s : (DateTimeOffset?)null;
        var tallies = new Dictionary<(KernelEventKind, string?, int), Tally>();
        var links = new Dictionary<string, Tally>(StringComparer.Ordinal);
        var readErrors = new List<(int Line, string Why, string Text)>();
        DateTimeOffset? current = null;
        var placed = false;
        var kept = 0;
        for (var i = 0; i < input.Lines.Count; i++)
        {
            var number = i + 1;
            var line = parser.Parse(number, input.Lines[i], out var error);
            if (error is not null)
            {
                readErrors.Add((number, error, input.Lines[i]));
                continue;
            }
            if (line is null) continue;
            // A line without its own time (dmesg -t, a continuation) takes its predecessor's.
            if (line.Time is { } own)
            {
                current = own;
                placed = true;
            }
            if (cutoff is { } c && current is { } t && t < c) continue;
            kept++;
            var ev = KernelEvents.Classify(line.Message, out var cut);
            if (cut is not null) readErrors.Add((number, cut, input.Lines[i]));
            if (ev is not { } e) continue;
            if (e.Kind is KernelEventKind.LinkDown or KernelEventKind.LinkUp)
            {
                var link = links.TryGetValue(e.Key!, out var known) ? known
                    : links[e.Key!] = new Tally(KernelEventKind.LinkDown, e.Key, 0, e.Detail, number);
                link.EndsDown = e.Kind == KernelEventKind.LinkDown;
                if (e.Kind == KernelEventKind.LinkUp) continue;
                Count(link, current);
                continue;
            }
            var key = (e.Kind, e.Key, e.Xid);
            var tally = tallies.TryGetValue(key, out var seen) ? seen : tallies[key] = new Tally(e.Kind, e.Key, e.Xid, e.Detail, number);
            Count(tally, current);
        }

        ReportReadErrors(ctx, input, readErrors);
        if (since is not null && !placed && kept > 0)
            ctx.Add(FindingCodes.KmsgTimesUnplaced.At(Name, "node", Severity.Info,
                $"the times in {input.Source} cannot be placed{(parser.SawUnplacedRelativeTimes ? " (seconds since boot, and no boot time in " + Path.Combine(ctx.Root, "proc/stat") + ")" : "")}: --since kept all {kept} lines"));
        foreach (var t in tallies.Values.OrderBy(t => t.FirstLine)) ctx.Add(Finding(ctx, input, t));
        foreach (var l in links.Values.Where(l => l.Count > 0).OrderBy(l => l.FirstLine)) ctx.Add(LinkFinding(ctx, input, l));
    }

    private static void Count(Tally t, DateTimeOffset? time)
    {
        t.Count++;
        t.First ??= time;
        t.Last = time ?? t.Last;
        t.Times.Add(time);
    }

    private static Finding Finding(CheckContext ctx, Input input, Tally t)
    {
        var gpu = t.Key is null ? null : ctx.GpuAt(t.Key);
        var pciComponent = gpu?.Component ?? (t.Key is null ? "node" : $"pci {t.Key}");
        var where = Where(input, t);
        switch (t.Kind)
        {
            case KernelEventKind.Xid:
                var (code, severity) = XidVerdict(ctx.Policy, t.Xid);
                var unknown = code == FindingCodes.XidUnknown ? "unknown " : "";
                return code.At(Name, pciComponent, severity, $"{unknown}Xid {t.Xid}: {t.Detail} ({where})") with { Xid = t.Xid };
            case KernelEventKind.FellOffBus:
                return FindingCodes.GpuFellOffBus.At(Name, pciComponent, Severity.Fail, $"{t.Detail} ({where})");
            case KernelEventKind.AmdgpuRasUe:
                return FindingCodes.AmdgpuRasUe.At(Name, t.Key is null ? "amdgpu" : pciComponent, Severity.Fail, $"{t.Detail} ({where})");
            case KernelEventKind.AmdgpuError:
                return FindingCodes.AmdgpuError.At(Name, t.Key is null ? "amdgpu" : pciComponent, Severity.Warn, $"{t.Detail} ({where})");
            case KernelEventKind.McUncorrectedError:
                return FindingCodes.Mce.At(Name, t.Key ?? "cpu", Severity.Fail, $"uncorrected machine check / memory error: {t.Detail} ({where})");
            case KernelEventKind.McCorrectedError:
                return FindingCodes.Mce.At(Name, t.Key ?? "cpu", Severity.Warn, $"corrected machine check / memory error: {t.Detail} ({where})");
            case KernelEventKind.AerFatal:
                return FindingCodes.PcieAer.At(Name, pciComponent, Severity.Fail, $"fatal PCIe error: {t.Detail} ({where})");
            case KernelEventKind.AerNonFatal:
                return FindingCodes.PcieAer.At(Name, pciComponent, Severity.Warn, $"non-fatal uncorrected PCIe error: {t.Detail} ({where})");
            default:
                return FindingCodes.PcieAer.At(Name, pciComponent, ctx.Policy.PcieAerCorrectable.Judge(t.Count) ?? Severity.Info,
                    $"corrected PCIe errors: {t.Detail} ({where}; {ctx.Policy.PcieAerCorrectable})");
        }
    }

    // Flapping: at least LinkFlapCount downs within any LinkFlapWindow. Downs whose time is unknown
    // are taken as one burst (the conservative reading of a log without times).
    private static Finding LinkFinding(CheckContext ctx, Input input, Tally link)
    {
        var p = ctx.Policy;
        var times = link.Times.Select(t => t ?? DateTimeOffset.MinValue).Order().ToList();
        var most = 0;
        for (int first = 0, last = 0; last < times.Count; last++)
        {
            while (times[last] != DateTimeOffset.MinValue && times[last] - times[first] > p.LinkFlapWindow) first++;
            most = Math.Max(most, last - first + 1);
        }
        var where = Where(input, link);
        if (most >= p.LinkFlapCount)
            return FindingCodes.LinkFlapping.At(Name, link.Key!, Severity.Fail,
                $"lost its link {most} times within {Window(p.LinkFlapWindow)} (FAIL at {p.LinkFlapCount}): {link.Detail} ({where})");
        return link.EndsDown
            ? FindingCodes.NicLinkDown.At(Name, link.Key!, Severity.Warn, $"link went down and did not come back up in the log: {link.Detail} ({where})")
            : FindingCodes.NicLinkDown.At(Name, link.Key!, Severity.Info, $"link went down and came back up: {link.Detail} ({where})");
    }

    private static void ReportReadErrors(CheckContext ctx, Input input, List<(int Line, string Why, string Text)> errors)
    {
        foreach (var (line, why, text) in errors.Take(MaxReadErrors))
            ctx.Add(FindingCodes.ReadError.At(Name, "node", Severity.Warn,
                $"could not read {input.Source} line {line}: {why}: '{SysfsFile.Shorten(text)}'"));
        if (errors.Count > MaxReadErrors)
            ctx.Add(FindingCodes.ReadError.At(Name, "node", Severity.Warn,
                $"could not read {errors.Count - MaxReadErrors} more lines of {input.Source} (lines {errors[MaxReadErrors].Line}..{errors[^1].Line})"));
    }

    private static string Where(Input input, Tally t)
    {
        var times = t.First is { } first
            ? t.Count == 1 || t.Last == first ? $" at {Stamp(first)}" : $" from {Stamp(first)} to {Stamp(t.Last!.Value)}"
            : "";
        return $"{(t.Count == 1 ? "1 line" : $"{t.Count} lines")}{times}, first at {input.Source} line {t.FirstLine}";
    }

    private static string Stamp(DateTimeOffset t) => t.UtcDateTime.ToString("yyyy-MM-dd HH:mm:ss'Z'", CultureInfo.InvariantCulture);

    private static string Window(TimeSpan window) =>
        window.TotalHours >= 1 ? $"{window.TotalHours:0.#} h" : $"{window.TotalMinutes:0.#} min";
}
