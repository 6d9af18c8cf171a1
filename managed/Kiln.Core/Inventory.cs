// What this node is: the host's CPU and memory, the backends the registry loaded, the plugins it
// skipped and why, and every device. Shown by `kiln inventory` and recorded in summary.json.
using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using Kiln.Native;

namespace Kiln.Core;

public sealed record HostInfo(string Name, string CpuModel, int LogicalCpus, ulong MemoryTotalBytes,
    ulong MemoryAvailableBytes, string Kernel)
{
    /// <summary>Reads /proc; fields it cannot read are "" or 0, never an exception.</summary>
    public static HostInfo Read()
    {
        var meminfo = ReadLines("/proc/meminfo");
        return new HostInfo(
            HostName.Current,
            ReadLines("/proc/cpuinfo").Select(l => ValueAfter(l, "model name")).FirstOrDefault(v => v != null) ?? "",
            Environment.ProcessorCount,
            MeminfoBytes(meminfo, "MemTotal"),
            MeminfoBytes(meminfo, "MemAvailable"),
            ReadLines("/proc/sys/kernel/osrelease").FirstOrDefault()?.Trim() ?? Environment.OSVersion.VersionString);
    }

    private static string[] ReadLines(string path)
    {
        try { return File.ReadAllLines(path); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return []; }
    }

    private static string? ValueAfter(string line, string key)
    {
        var colon = line.IndexOf(':');
        return colon > 0 && line[..colon].Trim() == key ? line[(colon + 1)..].Trim() : null;
    }

    // "MemTotal:       24554484 kB"
    private static ulong MeminfoBytes(string[] lines, string key) =>
        lines.Select(l => ValueAfter(l, key)).FirstOrDefault(v => v != null) is { } v
        && ulong.TryParse(v.Split(' ')[0], NumberStyles.None, CultureInfo.InvariantCulture, out var kib)
            ? kib * 1024
            : 0;
}

public sealed record Inventory(HostInfo Host, string NativeVersion, string NativeLibraryPath,
    IReadOnlyList<BackendInfo> Backends, IReadOnlyList<PluginSkip> Skipped, IReadOnlyList<DeviceInfo> Devices)
{
    /// <summary>Opens every device of every loaded backend to read what it is.</summary>
    public static Inventory Collect(Registry registry)
    {
        var devices = new List<DeviceInfo>();
        var skipped = new List<PluginSkip>(registry.Skipped);
        foreach (var backend in registry.Backends)
        {
            for (var i = 0; i < backend.DeviceCount; i++)
            {
                try
                {
                    using var device = registry.OpenDevice(backend.Name, i);
                    devices.Add(device.Info);
                }
                catch (KilnException e)
                {
                    // A device that is listed but cannot be opened is reported, not fatal.
                    skipped.Add(new PluginSkip($"{backend.Name} device {i}", e.Message));
                }
            }
        }
        return new Inventory(HostInfo.Read(), KilnLibrary.Version, KilnLibrary.LibraryPath,
            registry.Backends, skipped, devices);
    }

    /// <summary>A short hash of what the devices are, to spot a node whose hardware changed.</summary>
    public string Fingerprint
    {
        get
        {
            var lines = Devices
                .Select(d => $"{d.Backend}|{d.Index}|{d.Name}|{d.Uuid}|{d.PciBusId}|{d.TotalMemoryBytes}")
                .Order(StringComparer.Ordinal);
            var hash = SHA256.HashData(Encoding.UTF8.GetBytes(string.Join('\n', lines)));
            return Convert.ToHexStringLower(hash)[..16];
        }
    }
}
