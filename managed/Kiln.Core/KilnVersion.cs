// kiln's own version ("0.1.0"), from the assembly's informational version without the source hash.
using System.Reflection;

namespace Kiln.Core;

public static class KilnVersion
{
    public static string Text { get; } =
        typeof(KilnVersion).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion
            .Split('+')[0] ?? "0.0.0";
}
