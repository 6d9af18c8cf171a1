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
    public required string Host { get; init; }
    public required string RunId { get; init; }
    public required string KilnVersion { get; init; }
    public required string NativeVersion { get; init; }
    public required uint AbiVersion { get; init; }
    public required string Command { get; init; }
    public string? Plan { get; init; }
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
    public required SummaryInventory Inventory { get; init; }
}

public sealed record SummaryInventory(HostInfo Host, string NativeLibraryPath, IReadOnlyList<BackendInfo> Backends,
    IReadOnlyList<PluginSkip> SkippedPlugins, IReadOnlyList<DeviceInfo> Devices)
{
    public static SummaryInventory From(Inventory inventory) => new(inventory.Host, inventory.NativeLibraryPath,
        inventory.Backends, inventory.Skipped, inventory.Devices);
}

public static class SummaryJson
{
    /// <summary>snake_case keys, enums as names, indented: the style of every kiln JSON file.</summary>
    public static JsonSerializerOptions Options { get; } = new()
    {
        WriteIndented = true,
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        Converters = { new JsonStringEnumConverter() },
    };

    /// <summary>Writes through a temporary file and a rename, so a reader never sees half a file.</summary>
    public static void Write(string path, RunSummary summary)
    {
        var temp = path + ".tmp";
        File.WriteAllText(temp, JsonSerializer.Serialize(summary, Options) + "\n");
        File.Move(temp, path, overwrite: true);
    }
}
