// The node's name, as every result folder, CSV row, label and summary carries it: read here and
// nowhere else, so a burn, a check and a bench on one node always agree on it.
using Kiln.Core.Health.Sources;

namespace Kiln.Core;

public static class HostName
{
    /// <summary>This host's name (the kernel's nodename).</summary>
    public static string Current => Environment.MachineName;

    /// <summary>
    /// The name of the node whose filesystem is at <paramref name="root"/>: a captured fixture root may
    /// carry its node's name (proc/sys/kernel/hostname); the live root "/" is this host.
    /// </summary>
    public static string Of(string root) =>
        root != "/" && SysfsFile.Text(Path.Combine(root, "proc/sys/kernel/hostname"), out _) is { Length: > 0 } name
            ? name
            : Current;
}
