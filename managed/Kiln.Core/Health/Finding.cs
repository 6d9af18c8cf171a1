// One health-check finding (a row of findings.csv) and its severity; the codes are listed in
// FindingCodes.cs and documented in docs/HEALTH.md.
namespace Kiln.Core.Health;

/// <summary>Ordered so that the worst of a set is its maximum.</summary>
public enum Severity { Info, Warn, Fail }

/// <param name="Check">The source that produced it: nvml, rocm_smi, sysfs_pcie, sysfs_ib, sysfs_edac, sysfs_cpu_memory, kmsg, inventory.</param>
/// <param name="Component">What it is about: "gpu3 GPU-… 0000:5d:00.0", "mlx5_0 port 1", "mc0", "node".</param>
/// <param name="Code">Stable code, e.g. GPU_ECC_UNCORRECTABLE.</param>
public sealed record Finding(string Check, string Component, Severity Severity, string Code, string Message, string Remediation)
{
    /// <summary>The Xid number of a kernel-log Xid finding (for the service's remedies and escalation); null otherwise.</summary>
    public int? Xid { get; init; }

    /// <summary>The text written for the severity in findings.csv and summary.json: INFO, WARN, FAIL.</summary>
    public static string Name(Severity severity) => severity switch
    {
        Severity.Info => "INFO",
        Severity.Warn => "WARN",
        _ => "FAIL",
    };
}
