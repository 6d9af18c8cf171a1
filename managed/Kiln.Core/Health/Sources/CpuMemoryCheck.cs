// sysfs_cpu_memory: CPUs online against present (or the profile), memory size (ROOT/proc/meminfo)
// against the profile's minimum, and reserved huge pages per size; also the host facts the inventory
// records (CPU model, kernel).
using System.Globalization;

namespace Kiln.Core.Health.Sources;

public static class CpuMemoryCheck
{
    public const string Name = "sysfs_cpu_memory";

    public static void Run(CheckContext ctx)
    {
        var cpuDir = ctx.Path("sys/devices/system/cpu");
        var meminfoPath = ctx.Path("proc/meminfo");
        if (!Directory.Exists(cpuDir) && !File.Exists(meminfoPath))
        {
            ctx.Skip(Name, $"neither {cpuDir} nor {meminfoPath} exists");
            return;
        }
        var online = CpuList(ctx, System.IO.Path.Combine(cpuDir, "online"));
        var present = CpuList(ctx, System.IO.Path.Combine(cpuDir, "present"));
        var memTotal = MemTotal(ctx, meminfoPath);
        ctx.Host = new HostFacts(CpuModel(ctx), online?.Count ?? 0, present?.Count ?? 0, memTotal ?? 0,
            SysfsFile.TextOrEmpty(ctx.Path("proc/sys/kernel/osrelease")));

        if (online is not null)
        {
            if (ctx.Policy.ExpectedCpusOnline is { } expected && online.Count != expected)
                ctx.Add(FindingCodes.CpusOffline.At(Name, "cpus", Severity.Fail, $"{online.Count} CPUs online, the profile expects {expected}"));
            else if (ctx.Policy.ExpectedCpusOnline is null && present is not null && present.Except(online).ToList() is { Count: > 0 } offline)
                ctx.Add(FindingCodes.CpusOffline.At(Name, "cpus", Severity.Fail,
                    $"{offline.Count} of {present.Count} present CPUs are offline: {FormatList(offline)}"));
        }
        if (memTotal is { } bytes && ctx.Policy.MinMemoryBytes is { } min && bytes < min)
            ctx.Add(FindingCodes.MemoryLow.At(Name, "memory", Severity.Fail,
                $"MemTotal {ByteSize.Format(bytes)}, the profile requires at least {ByteSize.Format(min)}"));
        foreach (var (sizeKib, minPages) in ctx.Policy.MinHugepages.OrderBy(x => x.Key))
        {
            var path = ctx.Path($"sys/kernel/mm/hugepages/hugepages-{sizeKib}kB/nr_hugepages");
            var pages = SysfsFile.Number(path, out var why);
            if (pages is null && !File.Exists(path))
                ctx.Add(FindingCodes.Hugepages.At(Name, $"hugepages-{sizeKib}kB", Severity.Fail,
                    $"no {sizeKib} KiB huge page pool ({ctx.Display(path)} is absent), the profile requires {minPages} pages"));
            else if (pages is null)
                ctx.ReadError(Name, $"hugepages-{sizeKib}kB", ctx.Display(path), why);
            else if (pages < minPages)
                ctx.Add(FindingCodes.Hugepages.At(Name, $"hugepages-{sizeKib}kB", Severity.Fail,
                    $"{pages} huge pages of {sizeKib} KiB reserved, the profile requires {minPages}"));
        }
    }

    private static List<int>? CpuList(CheckContext ctx, string path)
    {
        var text = SysfsFile.Text(path, out var why);
        if (text is not null && ParseCpuList(text) is { } cpus) return cpus;
        ctx.ReadError(Name, "cpus", ctx.Display(path), text is null ? why : $"'{SysfsFile.Shorten(text)}' is not a CPU list");
        return null;
    }

    /// <summary>The kernel's list format: "0-63", "0-3,5,7-9"; null when malformed.</summary>
    public static List<int>? ParseCpuList(string text)
    {
        var cpus = new List<int>();
        if (text.Trim().Length == 0) return cpus;
        foreach (var part in text.Trim().Split(','))
        {
            var range = part.Split('-');
            if (range.Length is < 1 or > 2
                || !int.TryParse(range[0], NumberStyles.None, CultureInfo.InvariantCulture, out var first)
                || !int.TryParse(range[^1], NumberStyles.None, CultureInfo.InvariantCulture, out var last) || last < first || last - first > 1 << 16)
                return null;
            for (var c = first; c <= last; c++) cpus.Add(c);
        }
        return cpus;
    }

    /// <summary>[0,1,2,5,7,8] -> "0-2,5,7-8".</summary>
    public static string FormatList(IReadOnlyList<int> cpus)
    {
        var parts = new List<string>();
        for (var i = 0; i < cpus.Count;)
        {
            var j = i;
            while (j + 1 < cpus.Count && cpus[j + 1] == cpus[j] + 1) j++;
            parts.Add(i == j ? $"{cpus[i]}" : $"{cpus[i]}-{cpus[j]}");
            i = j + 1;
        }
        return string.Join(',', parts);
    }

    // "MemTotal:       24554484 kB"
    private static ulong? MemTotal(CheckContext ctx, string path)
    {
        var text = SysfsFile.Text(path, out var why);
        if (text is null)
        {
            ctx.ReadError(Name, "memory", ctx.Display(path), why);
            return null;
        }
        var line = text.Split('\n').FirstOrDefault(l => l.StartsWith("MemTotal:", StringComparison.Ordinal));
        var fields = line?.Split(' ', StringSplitOptions.RemoveEmptyEntries);
        if (fields is { Length: 3 } && fields[2] == "kB" && ulong.TryParse(fields[1], NumberStyles.None, CultureInfo.InvariantCulture, out var kib))
            return kib * 1024;
        ctx.ReadError(Name, "memory", ctx.Display(path), line is null ? "no MemTotal line" : $"cannot read '{SysfsFile.Shorten(line)}'");
        return null;
    }

    private static string CpuModel(CheckContext ctx) =>
        SysfsFile.TextOrEmpty(ctx.Path("proc/cpuinfo")).Split('\n')
            .Select(l => l.Split(':', 2)).FirstOrDefault(p => p.Length == 2 && p[0].Trim() == "model name")?[1].Trim() ?? "";
}
