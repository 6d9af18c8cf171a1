// Which profile --profile NAME|FILE|auto means: the built-in SKU profiles (embedded YAML), a user's
// file, or the one whose `match` names the detected accelerator model (cpu-only on a node without one).
using System.Reflection;
using Kiln.Core.Health;
using Kiln.Core.Health.Sources;
using Kiln.Native;

namespace Kiln.Core.Profiles;

public static class ProfileCatalog
{
    private const string Option = OptionNames.Profile;
    public const string Auto = "auto";
    public const string CpuOnly = "cpu-only";

    public static IReadOnlyList<string> BuiltInNames { get; } = ["h100-sxm", "h200", "a100-sxm", "mi300x", "emu", CpuOnly];

    public static Profile BuiltIn(string name) =>
        ProfileLoader.Parse(YamlConfig.Parse($"built-in profile {name}", BuiltInText(name)), name);

    public static string BuiltInText(string name)
    {
        using var stream = Assembly.GetExecutingAssembly().GetManifestResourceStream($"Kiln.Profiles.{name}.yaml")
            ?? throw new UsageException(Option, $"unknown profile '{name}' (known: {string.Join(", ", BuiltInNames)}, auto)");
        return new StreamReader(stream).ReadToEnd();
    }

    /// <summary>
    /// A built-in name, "auto" (needs the devices), or a YAML file. <paramref name="devices"/> and
    /// <paramref name="sysRoot"/> serve auto only.
    /// </summary>
    public static Profile Resolve(string? nameOrFile, IReadOnlyList<DeviceInfo> devices, string sysRoot = "/")
    {
        var text = (nameOrFile ?? Auto).Trim();
        if (text.Equals(Auto, StringComparison.OrdinalIgnoreCase)) return Detect(devices, sysRoot);
        if (BuiltInNames.FirstOrDefault(n => n.Equals(text, StringComparison.OrdinalIgnoreCase)) is { } name) return BuiltIn(name);
        if (File.Exists(text)) return ProfileLoader.Load(text, Option);
        throw new UsageException(Option, $"unknown profile '{text}' (known: {string.Join(", ", BuiltInNames)}, auto; or a YAML file, which does not exist here)");
    }

    /// <summary>
    /// --profile auto: the built-in profile whose match names the accelerators' model; cpu-only when
    /// there is none. A GPU on the PCI bus without a loaded GPU backend is refused rather than judged
    /// as a CPU-only node, which would pass it on CPU numbers.
    /// </summary>
    public static Profile Detect(IReadOnlyList<DeviceInfo> devices, string sysRoot = "/")
    {
        var models = devices.Where(d => Profile.ClassOf(d) == DeviceClass.Gpu).Select(d => d.Name).Distinct().ToList();
        if (models.Count == 0)
        {
            var onBus = PciGpus(sysRoot);
            if (onBus.Count > 0)
                throw new UsageException(Option, $"auto: {onBus.Count} GPU(s) on the PCI bus ({string.Join(", ", onBus.Take(3))}" +
                    $"{(onBus.Count > 3 ? ", ..." : "")}) but no GPU backend is loaded; name the profile (--profile NAME|FILE)");
            return BuiltIn(CpuOnly);
        }
        var profiles = BuiltInNames.Select(BuiltIn).ToList();
        var matches = models.Select(m => (Model: m, Profile: profiles.FirstOrDefault(p => p.Match.Any(x => m.Contains(x, StringComparison.OrdinalIgnoreCase))))).ToList();
        var unmatched = matches.FirstOrDefault(x => x.Profile is null);
        if (unmatched.Model != null)
            throw new UsageException(Option, $"auto: no built-in profile matches '{unmatched.Model}' (known: {string.Join(", ", BuiltInNames)}); give --profile FILE");
        var chosen = matches.Select(x => x.Profile!).DistinctBy(p => p.Name).ToList();
        if (chosen.Count > 1)
            throw new UsageException(Option, $"auto: this node mixes models ({string.Join(", ", models)}); name the profile");
        return chosen[0];
    }

    /// <summary>
    /// The HealthPolicy kiln check applies for --profile (HealthPolicyResolver calls this): null or
    /// "default" is HealthPolicy.Default; auto detects the model through the native library.
    /// </summary>
    public static (HealthPolicy Policy, string Name) ResolveHealth(string? nameOrFile, Func<IReadOnlyList<DeviceInfo>> devices, string sysRoot = "/")
    {
        if (nameOrFile is null || nameOrFile.Trim().Equals(HealthPolicyResolver.DefaultName, StringComparison.OrdinalIgnoreCase))
            return (HealthPolicy.Default, HealthPolicyResolver.DefaultName);
        var isAuto = nameOrFile.Trim().Equals(Auto, StringComparison.OrdinalIgnoreCase);
        var profile = Resolve(nameOrFile, isAuto ? devices() : [], sysRoot);
        return (profile.Health, profile.Name);
    }

    /// <summary>The devices of every loaded backend, for auto outside a burn (kiln check).</summary>
    public static IReadOnlyList<DeviceInfo> LoadedDevices()
    {
        try
        {
            using var registry = Registry.Open();
            return Inventory.Collect(registry).Devices;
        }
        catch (KilnLoadException e)
        {
            throw new UsageException(Option, $"auto: the native library is needed to detect the devices: {e.Message.Split('\n')[0]}");
        }
    }

    /// <summary>NVIDIA and AMD display/3D/accelerator functions under sysRoot/sys/bus/pci/devices (kiln check's PCI listing).</summary>
    private static IReadOnlyList<string> PciGpus(string sysRoot)
    {
        var ctx = new CheckContext(sysRoot, HealthPolicy.Default, DateTimeOffset.UtcNow);
        PcieCheck.Run(ctx);
        return ctx.PciFunctions.Where(f => f.IsGpu && !f.IsVirtualFunction).Select(f => f.Address).ToList();
    }
}
