// summary.json: who ran what where (host, versions, plan, inventory) and how it ended. Written
// when the run starts (verdict INCOMPLETE, no end) and replaced when it ends, so a killed run
// still leaves one.
using System.Text.Json;
using System.Text.Json.Serialization;
using Kiln.Native;

namespace Kiln.Core.Results;

public sealed record SummaryCounts(int Pass, int Warn, int Fail, int Skip, int Metrics, long DataErrors);

public sealed record RunSummary
{
    /// <summary>The layout of the result folder; readers (kiln report) refuse folders they do not know.</summary>
    public int SchemaVersion { get; init; } = SummaryJson.SchemaVersion;
    public required string Host { get; init; }
    public required string RunId { get; init; }
    public required string KilnVersion { get; init; }
    public required string NativeVersion { get; init; }
    public required uint AbiVersion { get; init; }
    public required string Command { get; init; }
    public string? Plan { get; init; }
    /// <summary>The profile the verdicts were judged against (its name), and where it came from ("built-in" or a path).</summary>
    public string? Profile { get; init; }
    public string? ProfileSource { get; init; }
    /// <summary>Passes a looping (soak) plan completed; null for one-pass plans.</summary>
    public int? Passes { get; init; }
    public required IReadOnlyList<string> Arguments { get; init; }
    public required DateTime StartUtc { get; init; }
    public DateTime? EndUtc { get; init; }
    public required bool Injected { get; init; }
    public required IReadOnlyList<string> Injections { get; init; }
    /// <summary>PASS, FAIL or INCOMPLETE (also while the run is still going).</summary>
    public required string Verdict { get; init; }
    public SummaryCounts? Counts { get; init; }
    public int? ExitCode { get; init; }
    public required string InventoryFingerprint { get; init; }
    /// <summary>Versions and models that should be equal across a fleet (kiln report groups nodes by each to find drift).</summary>
    public IReadOnlyDictionary<string, string>? Components { get; init; }
    public required SummaryInventory Inventory { get; init; }
    /// <summary>kiln net probe: the pair this run measured and how it went (kiln net analyze reads it); null for other commands.</summary>
    public NetPairSummary? Net { get; init; }
}

/// <summary>
/// One network pair: this node (Client, as --name gave it), the peer (its name and the address
/// probed), the verdict, and the rates each way and the p99 round trip where they were measured.
/// </summary>
public sealed record NetPairSummary(string Client, string Peer, string PeerAddress, string Status, double? SendGbits,
    double? RecvGbits, double? RttUsP99, string Reason);

public sealed record SummaryInventory(HostInfo Host, string NativeLibraryPath, IReadOnlyList<BackendInfo> Backends,
    IReadOnlyList<PluginSkip> SkippedPlugins, IReadOnlyList<DeviceInfo> Devices)
{
    public static SummaryInventory From(Inventory inventory) => new(inventory.Host, inventory.NativeLibraryPath,
        inventory.Backends, inventory.Skipped, inventory.Devices);

    /// <summary>
    /// What should be equal across identically built nodes: kiln and native versions, kernel, CPU
    /// model, memory size, each backend's runtime, the accelerator model and count. Serials, UUIDs
    /// and addresses are left out: they differ on every node by design.
    /// </summary>
    public static IReadOnlyDictionary<string, string> Components(Inventory inventory, string kilnVersion)
    {
        var c = new SortedDictionary<string, string>(StringComparer.Ordinal)
        {
            ["kiln"] = kilnVersion,
            ["native"] = inventory.NativeVersion,
            ["kernel"] = inventory.Host.Kernel,
            ["cpu_model"] = inventory.Host.CpuModel,
            ["memory_gib"] = (inventory.Host.MemoryTotalBytes >> 30).ToString(System.Globalization.CultureInfo.InvariantCulture),
        };
        foreach (var b in inventory.Backends.Where(b => b.RuntimeVersion.Length > 0)) c[$"runtime.{b.Name}"] = b.RuntimeVersion;
        var gpus = inventory.Devices.Where(d => d.Backend != "cpu").ToList();
        c["gpu_count"] = gpus.Count.ToString(System.Globalization.CultureInfo.InvariantCulture);
        if (gpus.Count > 0) c["gpu_model"] = string.Join(" + ", gpus.Select(d => d.Name).Distinct().Order(StringComparer.Ordinal));
        return c;
    }
}

public static class SummaryJson
{
    /// <summary>
    /// 1: the first versioned layout (this file with schema_version, metrics.csv with injected,
    /// verdicts.csv). Folders without it predate it and are refused by kiln report.
    /// </summary>
    public const int SchemaVersion = 1;

    /// <summary>snake_case keys, enums as names, indented: the style of every kiln JSON file.</summary>
    public static JsonSerializerOptions Options { get; } = new()
    {
        WriteIndented = true,
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        Converters = { new JsonStringEnumConverter() },
    };

    /// <summary>Writes through a temporary file and a rename, so a reader never sees half a file.</summary>
    public static void Write<T>(string path, T summary)
    {
        AtomicFile.WriteAllText(path, JsonSerializer.Serialize(summary, Options) + "\n");
    }
}
