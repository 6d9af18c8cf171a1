// The service's view of a node: components (a GPU by UUID and PCI address, an HCA port, a memory
// controller, the node), each healthy, degraded or unhealthy, with a reason and one suggested action
// from a fixed set. What a finding or a failed test means for its component is decided here (Remedies).
using System.Text.RegularExpressions;
using Kiln.Core.Health;
using Kiln.Native;

namespace Kiln.Core.Service;

public enum HealthState { Healthy, Degraded, Unhealthy }

/// <summary>What an operator should do, ordered from the least to the most drastic.</summary>
public enum SuggestedAction { None, CheckApplication, Reboot, ResetGpu, HardwareInspection }

public static class HealthNames
{
    public static string Name(HealthState s) => s switch
    {
        HealthState.Healthy => "healthy",
        HealthState.Degraded => "degraded",
        _ => "unhealthy",
    };

    public static string Name(SuggestedAction a) => a switch
    {
        SuggestedAction.None => "none",
        SuggestedAction.CheckApplication => "check_application",
        SuggestedAction.Reboot => "reboot",
        SuggestedAction.ResetGpu => "reset_gpu",
        _ => "hardware_inspection",
    };

    /// <summary>How the action reads in one screen of text.</summary>
    public static string Describe(SuggestedAction a) => a switch
    {
        SuggestedAction.None => "none",
        SuggestedAction.CheckApplication => "check the user's application",
        SuggestedAction.Reboot => "reboot the node",
        SuggestedAction.ResetGpu => "reset the GPU",
        _ => "hardware inspection / RMA",
    };

    public static HealthState ParseState(string text) =>
        Enum.GetValues<HealthState>().First(s => Name(s) == text);

    public static SuggestedAction ParseAction(string text) =>
        Enum.GetValues<SuggestedAction>().First(a => Name(a) == text);

    public static HealthState Of(Severity severity) => severity == Severity.Fail ? HealthState.Unhealthy : HealthState.Degraded;
}

public enum ComponentKind { Gpu, HcaPort, MemoryController, Node }

/// <summary>A component: a stable key (a GPU's UUID, "mlx5_0 port 1", "mc0", "node") and how it is shown.</summary>
public sealed record ComponentRef(string Key, ComponentKind Kind, string Display)
{
    public static ComponentRef Node { get; } = new("node", ComponentKind.Node, "node");

    public static string KindName(ComponentKind k) => k switch
    {
        ComponentKind.Gpu => "gpu",
        ComponentKind.HcaPort => "hca_port",
        ComponentKind.MemoryController => "memory_controller",
        _ => "node",
    };

    public static ComponentKind ParseKind(string text) => Enum.GetValues<ComponentKind>().First(k => KindName(k) == text);

    public static ComponentRef Gpu(GpuRecord g) => new(g.Health.Uuid.Length > 0 ? g.Health.Uuid : g.Component, ComponentKind.Gpu, g.Component);

    /// <summary>A burn device: a GPU (cuda, hip, emu) by its UUID; the CPU backend's device is the node.</summary>
    public static ComponentRef Device(DeviceInfo d) =>
        d.Backend == "cpu" || d.Uuid.Length == 0 ? Node
        : new(d.Uuid, ComponentKind.Gpu, $"{d.Backend}{d.Index} {d.Uuid} {d.PciBusId}".TrimEnd());
}

public static partial class Components
{
    /// <summary>The component a finding is about; GPU findings are matched to the check's GPUs by their text, UUID or PCI address.</summary>
    public static ComponentRef Of(Finding f, IReadOnlyList<GpuRecord> gpus)
    {
        var text = f.Component;
        if (gpus.FirstOrDefault(g => g.Component == text) is { } gpu) return ComponentRef.Gpu(gpu);
        if (GpuText().Match(text) is { Success: true } m)
        {
            var uuid = m.Groups["uuid"].Value;
            if (gpus.FirstOrDefault(g => g.Health.Uuid == uuid) is { } byUuid) return ComponentRef.Gpu(byUuid);
            return new ComponentRef(uuid.Length > 0 ? uuid : text, ComponentKind.Gpu, text);
        }
        if (PciText().Match(text) is { Success: true } p)
        {
            var address = p.Groups["pci"].Value;
            var byPci = gpus.FirstOrDefault(g => g.Health.PciBusId == address || g.Health.PciBusId.StartsWith(address + ".", StringComparison.Ordinal));
            return byPci is null ? new ComponentRef(text, ComponentKind.Gpu, text) : ComponentRef.Gpu(byPci);
        }
        if (PortText().IsMatch(text)) return new ComponentRef(text, ComponentKind.HcaPort, text);
        if (McText().Match(text) is { Success: true } mc) return new ComponentRef(mc.Groups["mc"].Value.ToLowerInvariant(), ComponentKind.MemoryController, text);
        return ComponentRef.Node;
    }

    // "gpu3 GPU-8f0c... 0000:5d:00.0", "amdgpu0 ...", "emu1 ...", or a bare "gpu3".
    [GeneratedRegex(@"^(?:gpu|amdgpu|emu)\d+(?:\s+(?<uuid>\S+))?")]
    private static partial Regex GpuText();

    [GeneratedRegex(@"^pci (?<pci>[0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}(?:\.[0-7])?)$")]
    private static partial Regex PciText();

    [GeneratedRegex(@"^\S+ port \d+$")]
    private static partial Regex PortText();

    [GeneratedRegex(@"^(?<mc>mc\d+)\b", RegexOptions.IgnoreCase)]
    private static partial Regex McText();
}

/// <summary>How a condition goes away: only ever through a passing re-test of its component, or an operator.</summary>
public enum ClearedBy
{
    /// <summary>A reading (ECC count, link width, port state): the next check whose source ran and no longer sees it.</summary>
    Check,
    /// <summary>An event (an Xid, a failed test): a later burn in which the component passes every test.</summary>
    Burn,
    /// <summary>Nothing kiln can re-test (a flapping cable): `kiln status --clear`.</summary>
    Operator,
}

public static class Remedies
{
    /// <summary>Codes that say nothing about a component's health (a busy GPU is a working GPU).</summary>
    private static readonly HashSet<string> NotHealth = new(StringComparer.Ordinal)
    {
        FindingCodes.GpuBusyProcesses.Name, FindingCodes.NothingChecked.Name, FindingCodes.KmsgTimesUnplaced.Name,
        FindingCodes.GpuFieldsUnknown.Name,
    };

    public static bool IsHealth(Finding f) => f.Severity != Severity.Info && !NotHealth.Contains(f.Code) && !f.Code.StartsWith("SKIPPED_", StringComparison.Ordinal);

    /// <summary>The action for an Xid: the drivers' own guidance for each (DBE, row remap, NVLink, GSP ...).</summary>
    public static SuggestedAction ForXid(HealthPolicy policy, int xid)
    {
        if (!policy.Xids.TryGetValue(xid, out var severity)) return SuggestedAction.None;
        if (severity == XidAction.Warn) return SuggestedAction.CheckApplication;
        if (severity == XidAction.Info) return SuggestedAction.None;
        return xid switch
        {
            64 or 92 => SuggestedAction.HardwareInspection,   // row remap failure; high single-bit error rate
            48 or 63 or 74 or 94 or 95 => SuggestedAction.ResetGpu,  // DBE, remap/retirement pending, NVLink, contained/uncontained ECC
            _ => SuggestedAction.Reboot,                     // fallen off the bus, GSP, the rest of the fatal table
        };
    }

    /// <summary>A reboot (which also resets the GPU) is expected to fix it: these escalate when they come back.</summary>
    public static bool RebootFixable(SuggestedAction a) => a is SuggestedAction.Reboot or SuggestedAction.ResetGpu;

    /// <summary>The action for a check finding.</summary>
    public static SuggestedAction For(Finding f, HealthPolicy policy)
    {
        if (f.Xid is { } xid) return ForXid(policy, xid);
        var c = f.Code;
        if (c == FindingCodes.GpuFellOffBus.Name || c == FindingCodes.GpuUnreadable.Name || c == FindingCodes.GpuCountMismatch.Name
            || c == FindingCodes.CpusOffline.Name || c == FindingCodes.AmdgpuError.Name)
            return f.Severity == Severity.Fail ? SuggestedAction.Reboot : SuggestedAction.CheckApplication;
        if (c == FindingCodes.GpuEccUncorrectable.Name || c == FindingCodes.GpuRetiredPagesPending.Name
            || c == FindingCodes.GpuRowRemapPending.Name || c == FindingCodes.NvlinkDown.Name || c == FindingCodes.AmdgpuRasUe.Name)
            return SuggestedAction.ResetGpu;
        if (c == FindingCodes.ReadError.Name || c == FindingCodes.GpuPersistenceOff.Name || c == FindingCodes.GpuDriverNotPinned.Name
            || c == FindingCodes.GpuVbiosNotPinned.Name || c == FindingCodes.GpuDriverUnavailable.Name || c == FindingCodes.IbDriverUnavailable.Name
            || c == FindingCodes.Hugepages.Name || c == FindingCodes.InventoryMixed.Name || c == FindingCodes.XidUnknown.Name
            || c == FindingCodes.GpuPowerHigh.Name)
            return SuggestedAction.None;
        // The rest is the hardware: ECC wear, remap failures, throttling, heat, degraded links, port
        // errors, flapping, memory errors.
        return SuggestedAction.HardwareInspection;
    }

    /// <summary>How a check finding's condition clears: readings by the next check, log events by a burn (GPUs, memory) or an operator.</summary>
    public static ClearedBy ClearedByFor(Finding f, ComponentRef component) =>
        f.Check != Health.KernelLog.KernelLogCheck.Name ? ClearedBy.Check
        : component.Kind is ComponentKind.Gpu or ComponentKind.Node or ComponentKind.MemoryController ? ClearedBy.Burn
        : ClearedBy.Operator;

    public static string Name(ClearedBy c) => c switch
    {
        ClearedBy.Check => "check",
        ClearedBy.Burn => "burn",
        _ => "operator",
    };

    public static ClearedBy ParseClearedBy(string text) => Enum.GetValues<ClearedBy>().First(c => Name(c) == text);
}
