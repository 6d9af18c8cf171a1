// sysfs_edac: each memory controller under ROOT/sys/devices/system/edac/mc: any uncorrectable error
// FAILs; correctable errors WARN when they grow faster than the policy's rate since the counters'
// reset (seconds_since_reset, else the uptime). The DIMMs with errors are named by their labels.
using System.Globalization;

namespace Kiln.Core.Health.Sources;

public static class EdacCheck
{
    public const string Name = "sysfs_edac";

    public static void Run(CheckContext ctx)
    {
        var root = ctx.Path("sys/devices/system/edac/mc");
        var controllers = SysfsFile.Folders(root).Where(d => System.IO.Path.GetFileName(d).StartsWith("mc", StringComparison.Ordinal)).ToList();
        if (controllers.Count == 0)
        {
            ctx.Skip(Name, $"no memory controllers under {root} (EDAC driver not loaded, or a virtual machine)");
            return;
        }
        var uptime = Uptime(ctx);
        foreach (var dir in controllers)
        {
            var mc = System.IO.Path.GetFileName(dir);
            var ce = SysfsFile.Number(System.IO.Path.Combine(dir, "ce_count"), out var whyCe);
            var ue = SysfsFile.Number(System.IO.Path.Combine(dir, "ue_count"), out var whyUe);
            if (ce is null) ctx.ReadError(Name, mc, ctx.Display(System.IO.Path.Combine(dir, "ce_count")), whyCe);
            if (ue is null) ctx.ReadError(Name, mc, ctx.Display(System.IO.Path.Combine(dir, "ue_count")), whyUe);
            var seconds = SysfsFile.Number(System.IO.Path.Combine(dir, "seconds_since_reset"), out _) is { } s and > 0 ? (double)s : uptime;
            ctx.MemoryControllers.Add(new EdacController(mc, ce ?? -1, ue ?? -1, seconds));
            var name = SysfsFile.TextOrEmpty(System.IO.Path.Combine(dir, "mc_name"));
            var component = name.Length > 0 ? $"{mc} ({name})" : mc;

            if (ue > ctx.Policy.EdacUncorrectedFailAbove)
                ctx.Add(FindingCodes.EdacUe.At(Name, component, Severity.Fail,
                    $"{ue} uncorrectable memory errors{Dimms(dir, "ue")}"));
            if (ce is > 0)
            {
                if (seconds is { } secs)
                {
                    var perHour = ce.Value / (secs / 3600.0);
                    if (perHour > ctx.Policy.EdacCorrectedWarnPerHour)
                        ctx.Add(FindingCodes.EdacCe.At(Name, component, Severity.Warn,
                            $"{ce} correctable memory errors in {Hours(secs)} h ({perHour.ToString("0.##", CultureInfo.InvariantCulture)} per hour, " +
                            $"WARN above {ctx.Policy.EdacCorrectedWarnPerHour.ToString(CultureInfo.InvariantCulture)}){Dimms(dir, "ce")}"));
                }
                else
                {
                    ctx.Add(FindingCodes.EdacCe.At(Name, component, Severity.Warn,
                        $"{ce} correctable memory errors; their rate is unknown (no seconds_since_reset, no /proc/uptime){Dimms(dir, "ce")}"));
                }
            }
        }
    }

    // Per-DIMM counts: dimmN/{dimm_label,dimm_ce_count,dimm_ue_count} (kernel 3.x+), or the older
    // csrowN/{chM_dimm_label,chM_ce_count,chM_ue_count}.
    private static string Dimms(string mcDir, string kind)
    {
        var named = new List<string>();
        foreach (var dimm in SysfsFile.Folders(mcDir).Where(d => System.IO.Path.GetFileName(d).StartsWith("dimm", StringComparison.Ordinal)
                                                                 || System.IO.Path.GetFileName(d).StartsWith("rank", StringComparison.Ordinal)))
        {
            // rankN (older drivers) carries the same dimm_* attributes as dimmN.
            if (SysfsFile.Number(System.IO.Path.Combine(dimm, $"dimm_{kind}_count"), out _) is > 0 and var n)
                named.Add($"{Label(System.IO.Path.Combine(dimm, "dimm_label"), System.IO.Path.GetFileName(dimm))} {n}");
        }
        foreach (var csrow in SysfsFile.Folders(mcDir).Where(d => System.IO.Path.GetFileName(d).StartsWith("csrow", StringComparison.Ordinal)))
        {
            for (var ch = 0; ch < 16; ch++)
            {
                var count = System.IO.Path.Combine(csrow, $"ch{ch}_{kind}_count");
                if (!File.Exists(count)) continue;
                if (SysfsFile.Number(count, out _) is > 0 and var n)
                    named.Add($"{Label(System.IO.Path.Combine(csrow, $"ch{ch}_dimm_label"), $"{System.IO.Path.GetFileName(csrow)} ch{ch}")} {n}");
            }
        }
        return named.Count > 0 ? $" (by DIMM: {string.Join(", ", named)})" : "";
    }

    private static string Label(string path, string fallback) => SysfsFile.TextOrEmpty(path) is { Length: > 0 } label ? label : fallback;

    // ROOT/proc/uptime: "12345.67 54321.00"; the fallback window when seconds_since_reset is absent.
    private static double? Uptime(CheckContext ctx)
    {
        var text = SysfsFile.TextOrEmpty(ctx.Path("proc/uptime")).Split(' ').FirstOrDefault();
        return double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var s) && s > 0 ? s : null;
    }

    private static string Hours(double seconds) => (seconds / 3600).ToString("0.#", CultureInfo.InvariantCulture);
}
