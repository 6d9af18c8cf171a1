// What one `kiln check` run shares between its sources: the filesystem root, the policy, the clock,
// the findings so far, the skipped sources, and the facts one source learns for another (the GPUs
// NVML saw, for mapping Xid lines; the PCI devices, for cross-checking the GPU count).
using System.Globalization;

namespace Kiln.Core.Health;

/// <summary>A source that did not run, and why.</summary>
public sealed record SkippedCheck(string Check, string Reason);

/// <summary>A PCI function from sysfs: address "0000:3b:00.0", class "0x030200", vendor "0x10de".</summary>
public sealed record PciFunction(string Address, string Class, string Vendor, bool IsVirtualFunction)
{
    public bool IsGpu => (Class.StartsWith("0x0300", StringComparison.Ordinal) || Class.StartsWith("0x0302", StringComparison.Ordinal)
                          || Class.StartsWith("0x12", StringComparison.Ordinal)) && Vendor is PciVendors.Nvidia or PciVendors.Amd;
    public bool IsNic => Class.StartsWith("0x0200", StringComparison.Ordinal) || Class.StartsWith("0x0207", StringComparison.Ordinal);
    /// <summary>An RDMA adapter: any InfiniBand controller (0x0207), or a Mellanox / NVIDIA networking Ethernet function (RoCE).</summary>
    public bool IsHca => Class.StartsWith("0x0207", StringComparison.Ordinal)
                         || (Class.StartsWith("0x0200", StringComparison.Ordinal) && Vendor == PciVendors.Mellanox);
}

public static class PciVendors
{
    public const string Nvidia = "0x10de";
    public const string Amd = "0x1002";
    public const string Mellanox = "0x15b3";
}

/// <summary>One GPU as a management library reported it, with the text that names it in findings.</summary>
public sealed record GpuRecord(string Source, Kiln.Native.GpuHealth Health)
{
    /// <summary>"gpu3 GPU-8f0c… 0000:5d:00.0" (rocm_smi GPUs: "amdgpu3 …").</summary>
    public string Component => $"{Sources.GpuCheck.ComponentPrefix(Source)}{Health.Index} {Health.Uuid} {Health.PciBusId}".TrimEnd();
}

public sealed class CheckContext
{
    private readonly List<Finding> _findings = [];
    private readonly List<SkippedCheck> _skipped = [];

    public CheckContext(string root, HealthPolicy policy, DateTimeOffset now)
    {
        Root = root;
        Policy = policy;
        Now = now;
    }

    /// <summary>The filesystem root that holds sys/ and proc/ ("/" on a live node).</summary>
    public string Root { get; }
    public HealthPolicy Policy { get; }
    public DateTimeOffset Now { get; }

    public IReadOnlyList<Finding> Findings => _findings;
    public IReadOnlyList<SkippedCheck> Skipped => _skipped;

    public List<PciFunction> PciFunctions { get; } = [];
    public List<GpuRecord> Gpus { get; } = [];
    /// <summary>source ("nvml") -> driver version.</summary>
    public Dictionary<string, string> DriverVersions { get; } = [];
    public List<HcaInfo> Hcas { get; } = [];
    public List<EdacController> MemoryControllers { get; } = [];
    public HostFacts Host { get; set; } = HostFacts.Unknown;
    /// <summary>Where the kernel log came from ("/dev/kmsg", a file ...); null when it was not read.</summary>
    public string? KernelLogSource { get; set; }

    /// <summary>Called with each finding as it is added (findings.csv streams them).</summary>
    public Action<Finding>? OnFinding { get; init; }

    public void Add(Finding finding)
    {
        _findings.Add(finding);
        OnFinding?.Invoke(finding);
    }

    /// <summary>
    /// The GPU at a PCI address: "0000:5d:00.0", or the kernel log's short form without the function
    /// ("0000:5d:00"). Addresses compare case-insensitively; NVML's 8-digit domain is already trimmed.
    /// </summary>
    public GpuRecord? GpuAt(string address)
    {
        var a = address.ToLowerInvariant();
        return Gpus.FirstOrDefault(g => g.Health.PciBusId == a)
               ?? Gpus.FirstOrDefault(g => g.Health.PciBusId.StartsWith(a + ".", StringComparison.Ordinal));
    }

    /// <summary>Records that a source did not run: one INFO finding SKIPPED_&lt;CHECK&gt; and a summary entry.</summary>
    public void Skip(string check, string reason)
    {
        _skipped.Add(new SkippedCheck(check, reason));
        Add(FindingCodes.Skipped(check).At(check, "node", Severity.Info, $"SKIPPED: {reason}"));
    }

    /// <summary>A WARN READ_ERROR "could not read PATH: why"; the path is shown as on the node (under the root).</summary>
    public void ReadError(string check, string component, string path, string why) =>
        Add(FindingCodes.ReadError.At(check, component, Severity.Warn, $"could not read {path}: {why}"));

    /// <summary>ROOT/relative, e.g. Path("sys/class/infiniband").</summary>
    public string Path(string relative) => System.IO.Path.Combine(Root, relative);

    /// <summary>The path as it is on the node it came from: "/sys/…" whatever the root is.</summary>
    public string Display(string fullPath) =>
        "/" + System.IO.Path.GetRelativePath(Root, fullPath).Replace('\\', '/').TrimStart('/');

    /// <summary>"1 GPU", "8 GPUs"; <paramref name="plural"/> for nouns that do not just take an s.</summary>
    public static string Count(long n, string noun, string? plural = null) =>
        n.ToString(CultureInfo.InvariantCulture) + " " + (n == 1 ? noun : plural ?? noun + "s");
}

/// <summary>What inventory and the host checks learned about the CPUs and memory.</summary>
public sealed record HostFacts(string CpuModel, int CpusOnline, int CpusPresent, ulong MemoryTotalBytes, string Kernel)
{
    public static HostFacts Unknown { get; } = new("", 0, 0, 0, "");
}

/// <summary>One HCA from /sys/class/infiniband, for the inventory and kiln.prom.</summary>
public sealed record HcaInfo(string Name, string HcaType, string FirmwareVersion, string BoardId, IReadOnlyList<IbPort> Ports);

public sealed record IbPort(int Number, string State, string PhysState, double? RateGbps, string LinkLayer,
    IReadOnlyDictionary<string, long> Counters);

/// <summary>One EDAC memory controller (mcN).</summary>
public sealed record EdacController(string Name, long CorrectedCount, long UncorrectedCount, double? SecondsSinceReset);
