// The node's name, as every result folder, CSV row, label and summary carries it: read here and
// nowhere else, so a burn, a check and a bench on one node always agree on it.
using Kiln.Core.Health.Sources;

namespace Kiln.Core;

public static class HostName
{
    /// <summary>Names this node in results, reports and the service, overriding the host name.</summary>
    public const string Variable = "KILN_HOST";

    /// <summary>
    /// This host's name (the kernel's nodename), or KILN_HOST when set: the Slurm batch script sets it to
    /// the Slurm node name, so several slurmd on one machine, or a node whose Slurm name is not its host
    /// name, report under the name scontrol drains.
    /// </summary>
    public static string Current => Environment.GetEnvironmentVariable(Variable) is { Length: > 0 } name ? name.Trim() : Environment.MachineName;

    /// <summary>
    /// The name of the node whose filesystem is at <paramref name="root"/>: a captured fixture root may
    /// carry its node's name (proc/sys/kernel/hostname); the live root "/" is this host.
    /// </summary>
    public static string Of(string root) =>
        root != "/" && SysfsFile.Text(Path.Combine(root, "proc/sys/kernel/hostname"), out _) is { Length: > 0 } name
            ? name
            : Current;
}
