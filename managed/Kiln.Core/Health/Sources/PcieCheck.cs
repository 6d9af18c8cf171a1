// sysfs_pcie: every PCI function under ROOT/sys/bus/pci/devices is listed (for the GPU count
// cross-check); GPUs and NICs (not virtual functions) have their link (current against max speed
// and width) and their AER counters judged.
using System.Globalization;

namespace Kiln.Core.Health.Sources;

public static class PcieCheck
{
    public const string Name = "sysfs_pcie";

    public static void Run(CheckContext ctx)
    {
        var devices = ctx.Path("sys/bus/pci/devices");
        if (!Directory.Exists(devices))
        {
            ctx.Skip(Name, $"{devices} does not exist (no PCI bus visible)");
            return;
        }
        foreach (var dir in SysfsFile.Folders(devices))
        {
            var address = System.IO.Path.GetFileName(dir);
            var cls = SysfsFile.Text(System.IO.Path.Combine(dir, "class"), out var whyClass);
            var vendor = SysfsFile.Text(System.IO.Path.Combine(dir, "vendor"), out var whyVendor);
            if (cls is null || vendor is null)
            {
                var (file, why) = cls is null ? ("class", whyClass) : ("vendor", whyVendor);
                ctx.ReadError(Name, address, ctx.Display(System.IO.Path.Combine(dir, file)), why);
                continue;
            }
            // A virtual function reports "Unknown speed" and width 0 by design; its physical function is judged.
            var function = new PciFunction(address, cls.ToLowerInvariant(), vendor.ToLowerInvariant(),
                Path.Exists(System.IO.Path.Combine(dir, "physfn")));
            ctx.PciFunctions.Add(function);
            if (function.IsVirtualFunction || !(function.IsGpu || function.IsNic)) continue;
            JudgeLink(ctx, dir, function);
            JudgeAer(ctx, dir, function);
        }
    }

    private static void JudgeLink(CheckContext ctx, string dir, PciFunction f)
    {
        string[] names = ["current_link_speed", "max_link_speed", "current_link_width", "max_link_width"];
        var paths = names.Select(n => System.IO.Path.Combine(dir, n)).ToArray();
        var present = paths.Count(File.Exists);
        if (present == 0) return;  // no PCIe capability (an integrated device): nothing to judge
        var texts = new string?[4];
        for (var i = 0; i < 4; i++)
        {
            texts[i] = SysfsFile.Text(paths[i], out var why);
            if (texts[i] is null)
            {
                ctx.ReadError(Name, Describe(ctx, f), ctx.Display(paths[i]), why);
                return;
            }
        }
        var (speed, maxSpeed) = (SpeedGts(texts[0]!), SpeedGts(texts[1]!));
        var (width, maxWidth) = (SysfsFile.ParseNumber(texts[2]!), SysfsFile.ParseNumber(texts[3]!));
        var link = $"{texts[0]} x{texts[2]} (max {texts[1]} x{texts[3]})";
        if (speed is null || width is null or 0 || maxSpeed is null || maxWidth is null)
        {
            // "Unknown" is what the kernel writes for a link that did not train.
            ctx.Add(FindingCodes.PcieLinkDegraded.At(Name, Describe(ctx, f), Severity.Warn,
                $"link state unknown: {link}"));
            return;
        }
        if (width < maxWidth)
        {
            ctx.Add(FindingCodes.PcieLinkDegraded.At(Name, Describe(ctx, f), Severity.Fail, $"link width x{width} below its maximum x{maxWidth}: {link}"));
        }
        else if (speed < maxSpeed)
        {
            var severity = f.IsGpu ? ctx.Policy.PcieSpeedBelowMaxIdleGpu : Severity.Fail;
            var why = f.IsGpu ? " (an idle GPU lowers its link speed; judged under load by the nvml check and kiln burn)" : "";
            ctx.Add(FindingCodes.PcieLinkDegraded.At(Name, Describe(ctx, f), severity,
                $"link speed {Gts(speed.Value)} below its maximum {Gts(maxSpeed.Value)}{why}: {link}"));
        }
    }

    // aer_dev_{correctable,nonfatal,fatal}: "RxErr 0\n...\nTOTAL_ERR_COR 2" (kernel 5.x+).
    private static void JudgeAer(CheckContext ctx, string dir, PciFunction f)
    {
        (string File, Severity? Any, string Kind)[] kinds =
            [("aer_dev_fatal", Severity.Fail, "fatal"), ("aer_dev_nonfatal", Severity.Warn, "non-fatal"), ("aer_dev_correctable", null, "correctable")];
        foreach (var (file, any, kind) in kinds)
        {
            var path = System.IO.Path.Combine(dir, file);
            if (!File.Exists(path)) continue;
            var text = SysfsFile.Text(path, out var why);
            var total = text is null ? null : AerTotal(text);
            if (total is null)
            {
                ctx.ReadError(Name, Describe(ctx, f), ctx.Display(path), text is null ? why : "no TOTAL_ERR_* line and no counters");
                continue;
            }
            if (total == 0) continue;
            var severity = any ?? ctx.Policy.PcieAerCorrectable.Judge(total.Value) ?? Severity.Info;
            ctx.Add(FindingCodes.PcieAer.At(Name, Describe(ctx, f), severity,
                $"{total} {kind} AER errors counted ({ctx.Display(path)}): {NonZero(text!)}"));
        }
    }

    internal static long? AerTotal(string text)
    {
        long sum = 0;
        var any = false;
        foreach (var line in text.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            var parts = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            if (parts.Length != 2 || SysfsFile.ParseNumber(parts[1]) is not { } n) return null;
            if (parts[0].StartsWith("TOTAL_ERR", StringComparison.Ordinal)) return n;
            sum += n;
            any = true;
        }
        return any ? sum : null;
    }

    private static string NonZero(string text) => string.Join(", ",
        text.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Where(l => !l.StartsWith("TOTAL_ERR", StringComparison.Ordinal) && !l.EndsWith(" 0", StringComparison.Ordinal)));

    /// <summary>"16.0 GT/s PCIe", "8 GT/s", "2.5 GT/s" -> GT/s; "Unknown" -> null.</summary>
    internal static double? SpeedGts(string text)
    {
        var first = text.Split(' ', StringSplitOptions.RemoveEmptyEntries).FirstOrDefault();
        return first is not null && double.TryParse(first, NumberStyles.Float, CultureInfo.InvariantCulture, out var gts) && gts > 0
            ? gts : null;
    }

    private static string Gts(double gts) => gts.ToString("0.0", CultureInfo.InvariantCulture) + " GT/s";

    /// <summary>The GPU as NVML / ROCm SMI named it ("gpu3 GPU-… 0000:5d:00.0"), else "gpu 0000:5d:00.0" / "nic 0000:9d:00.1".</summary>
    private static string Describe(CheckContext ctx, PciFunction f) =>
        (f.IsGpu ? ctx.GpuAt(f.Address)?.Component : null) ?? $"{(f.IsGpu ? "gpu" : "nic")} {f.Address}";
}
