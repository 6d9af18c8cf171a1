// Which HealthPolicy `kiln check --profile NAME|FILE|auto` means: "default" (or no --profile) is
// HealthPolicy.Default; anything else goes through the profile catalog (Profiles/ProfileCatalog.cs),
// whose built-in SKU profiles and YAML files carry a `health:` section.
using Kiln.Core.Profiles;

namespace Kiln.Core.Health;

public static class HealthPolicyResolver
{
    public const string DefaultName = "default";

    /// <summary>The policy and the name it is reported under; null or "default" gives HealthPolicy.Default.</summary>
    /// <exception cref="UsageException">An unknown name, or a file that does not load (naming file, line and field).</exception>
    /// <param name="sysRoot">The root kiln check reads (--sysfs-root): auto looks for GPUs on its PCI bus.</param>
    public static (HealthPolicy Policy, string Name) Resolve(string? nameOrFile, string sysRoot = "/") =>
        ProfileCatalog.ResolveHealth(nameOrFile, ProfileCatalog.LoadedDevices, sysRoot);
}
