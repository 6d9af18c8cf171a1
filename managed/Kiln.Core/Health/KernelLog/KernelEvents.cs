// What a kernel-log message means for health: an NVIDIA Xid (with the GPU's PCI address), a GPU that
// fell off the bus, an amdgpu error or RAS uncorrectable error, a NIC link going down or up, a
// machine check or EDAC error, a PCIe AER error. Everything else is noise.
using System.Text.RegularExpressions;

namespace Kiln.Core.Health.KernelLog;

public enum KernelEventKind { Xid, FellOffBus, AmdgpuError, AmdgpuRasUe, LinkDown, LinkUp, McUncorrectedError, McCorrectedError, AerFatal, AerNonFatal, AerCorrected }

/// <param name="Key">The PCI address ("0000:3b:00" for Xid lines, which omit the function), the interface, the memory controller or CPU.</param>
/// <param name="Xid">The Xid number; 0 for other kinds.</param>
/// <param name="Detail">The part of the message worth quoting.</param>
public readonly record struct KernelEvent(KernelEventKind Kind, string? Key, int Xid, string Detail);

public static partial class KernelEvents
{
    /// <summary>The event in a message, or null; <paramref name="error"/> is set for a recognisable but cut line.</summary>
    public static KernelEvent? Classify(string message, out string? error)
    {
        error = null;
        if (message.Contains("NVRM: Xid", StringComparison.Ordinal))
        {
            var x = Xid().Match(message);
            if (!x.Success || !int.TryParse(x.Groups["xid"].ValueSpan, out var xid))
            {
                error = "truncated Xid line";
                return null;
            }
            var detail = XidDetail().Match(x.Groups["rest"].Value).Groups["d"].Value;
            return new KernelEvent(KernelEventKind.Xid, ShortPci(x.Groups["pci"].Value), xid, detail);
        }
        if (message.Contains("fallen off the bus", StringComparison.Ordinal) && FellOffBus().Match(message) is { Success: true } f)
            return new KernelEvent(KernelEventKind.FellOffBus, ShortPci(f.Groups["pci"].Value), 0, message.Trim());
        if (message.Contains("amdgpu", StringComparison.Ordinal))
        {
            var pci = AmdgpuPci().Match(message) is { Success: true } a ? a.Groups["pci"].Value : null;
            if (AmdgpuUncorrectable().IsMatch(message)) return new KernelEvent(KernelEventKind.AmdgpuRasUe, pci, 0, message.Trim());
            if (AmdgpuError().IsMatch(message)) return new KernelEvent(KernelEventKind.AmdgpuError, pci, 0, message.Trim());
            return null;
        }
        if (LinkDown().Match(message) is { Success: true } down)
            return new KernelEvent(KernelEventKind.LinkDown, down.Groups["if"].Value, 0, message.Trim());
        if (LinkUp().Match(message) is { Success: true } up)
            return new KernelEvent(KernelEventKind.LinkUp, up.Groups["if"].Value, 0, message.Trim());
        if (message.Contains("[Hardware Error]", StringComparison.Ordinal) || message.Contains("Machine check events logged", StringComparison.Ordinal))
        {
            // An MCE is decoded over several "[Hardware Error]:" lines (RIP, TSC, ADDR ...): only the
            // lines that say what happened count; the rest are its details.
            var cpu = McCpu().Match(message) is { Success: true } c ? $"cpu{c.Groups["cpu"].Value}" : "cpu";
            if (McUncorrected().IsMatch(message)) return new KernelEvent(KernelEventKind.McUncorrectedError, cpu, 0, message.Trim());
            if (McCorrected().IsMatch(message)) return new KernelEvent(KernelEventKind.McCorrectedError, cpu, 0, message.Trim());
            return null;
        }
        if (EdacError().Match(message) is { Success: true } e)
            return new KernelEvent(e.Groups["kind"].Value == "UE" ? KernelEventKind.McUncorrectedError : KernelEventKind.McCorrectedError,
                e.Groups["mc"].Value.ToLowerInvariant(), 0, message.Trim());
        if ((message.Contains("AER:", StringComparison.Ordinal) || message.Contains("PCIe Bus Error", StringComparison.Ordinal))
            && AerSeverity().Match(message) is { Success: true } s)
        {
            var device = AerReceived().Match(message) is { Success: true } r ? r.Groups["dev"].Value
                : PciAddress().Match(message) is { Success: true } any ? any.Value : null;
            // The pattern admits only "Corrected" and "Uncorrected (Fatal|Non-Fatal)".
            var kind = s.Value.Contains("Non-Fatal", StringComparison.OrdinalIgnoreCase) ? KernelEventKind.AerNonFatal
                : s.Value.Contains("Fatal", StringComparison.OrdinalIgnoreCase) ? KernelEventKind.AerFatal
                : KernelEventKind.AerCorrected;
            return new KernelEvent(kind, device, 0, message.Trim());
        }
        return null;
    }

    // "00000000:3B:00" -> "0000:3b:00" (the form sysfs and NVML records use).
    private static string ShortPci(string pci)
    {
        var p = pci.ToLowerInvariant();
        var colon = p.IndexOf(':');
        return colon > 4 ? p[(colon - 4)..] : p;
    }

    // "NVRM: Xid (PCI:0000:3b:00): 79, pid=1234, name=x, GPU has fallen off the bus."
    [GeneratedRegex(@"NVRM: Xid \((?:PCI:)?(?<pci>[0-9a-fA-F]{4,8}:[0-9a-fA-F]{2}:[0-9a-fA-F]{2})(?:\.[0-7])?\): (?<xid>\d{1,4})(?:,\s*(?<rest>.*)|\s*)$")]
    private static partial Regex Xid();

    [GeneratedRegex(@"^(?:pid=[^,]*,\s*)?(?:name=[^,]*,\s*)?(?<d>.*)$")]
    private static partial Regex XidDetail();

    // "NVRM: GPU at PCI:0000:b3:00: GPU has fallen off the bus.", "NVRM: GPU 0000:b3:00.0: GPU has fallen off the bus.",
    // "NVRM: The NVIDIA GPU 0000:b3:00.0 (PCI ID: 10de:2330) ... has fallen off the bus ..."
    [GeneratedRegex(@"(?:GPU at PCI:|NVIDIA GPU |NVRM: GPU )(?<pci>[0-9a-fA-F]{4,8}:[0-9a-fA-F]{2}:[0-9a-fA-F]{2})")]
    private static partial Regex FellOffBus();

    [GeneratedRegex(@"amdgpu (?<pci>[0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7])")]
    private static partial Regex AmdgpuPci();

    [GeneratedRegex(@"(?i)\buncorrectable\b|\bpoison")]
    private static partial Regex AmdgpuUncorrectable();

    [GeneratedRegex(@"\*ERROR\*|ring \S+ timeout|GPU reset|(?i:page fault)|VM_L2_PROTECTION_FAULT|GPU fault")]
    private static partial Regex AmdgpuError();

    // "enp157s0f1np1: Link down", "eno1: NIC Link is Down", "ib6: lost carrier" (not "ata6: SATA link down").
    [GeneratedRegex(@"(?<if>[A-Za-z][\w.@-]*):? (?:NIC )?Link (?:is )?[Dd]own\b|(?<if>[A-Za-z][\w.@-]*): [Ll]ost carrier")]
    private static partial Regex LinkDown();

    [GeneratedRegex(@"(?<if>[A-Za-z][\w.@-]*):? (?:NIC )?Link (?:is )?[Uu]p\b|(?<if>[A-Za-z][\w.@-]*): [Gg]ained carrier")]
    private static partial Regex LinkUp();

    [GeneratedRegex(@"\bCPU (?<cpu>\d+)")]
    private static partial Regex McCpu();

    // Corrected errors arrive through CMCI ("Machine check events logged"); an exception is raised for uncorrected ones.
    [GeneratedRegex(@"(?i)\buncorrected\b|\bfatal\b|\bUC\b|\bPCC\b|Machine Check Exception")]
    private static partial Regex McUncorrected();

    [GeneratedRegex(@"(?i)events logged|\bcorrected\b")]
    private static partial Regex McCorrected();

    // "EDAC MC0: 1 CE memory read error on ...", "EDAC skx MC3: 1 UE memory read error ..."
    [GeneratedRegex(@"EDAC (?:\w+ )?(?<mc>MC\d+): (?:\d+ )?(?<kind>CE|UE)\b")]
    private static partial Regex EdacError();

    [GeneratedRegex(@"(?i)severity=(?:Corrected|Uncorrected \((?:Non-)?Fatal\))|(?:Multiple )?(?:Corrected|Uncorrected \((?:Non-)?Fatal\)) error")]
    private static partial Regex AerSeverity();

    [GeneratedRegex(@"received: (?<dev>[0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7])")]
    private static partial Regex AerReceived();

    [GeneratedRegex(@"[0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]")]
    private static partial Regex PciAddress();
}
