// The fleet view of a pairing run: every probe folder's pair (summary.json's net section) into
// pairs.csv, the bad pairs' common node into suspects.csv, and the exit code (1 when any pair
// failed or any host or link is suspect).
using System.Text.Json;
using System.Text.Json.Nodes;
using CsvHelper.Configuration;
using Kiln.Core.Results;

namespace Kiln.Core.Net;

/// <summary>One row of pairs.csv.</summary>
public sealed record PairRow(string Client, string Server, string Status, double? SendGbits, double? RecvGbits, double? RttUsP99,
    string Folder, string Reason);

/// <summary>One row of suspects.csv: a host (Peer empty) or a link (Host -> Peer).</summary>
public sealed record SuspectRow(string Host, string Peer, int BadPairs, int Pairs, string Why);

public sealed class PairRowMap : ClassMap<PairRow>
{
    public PairRowMap()
    {
        Map(r => r.Client).Name("client");
        Map(r => r.Server).Name("server");
        Map(r => r.Status).Name("status");
        Map(r => r.SendGbits).Name("send_gbits").TypeConverter<CsvFormats.Number>();
        Map(r => r.RecvGbits).Name("recv_gbits").TypeConverter<CsvFormats.Number>();
        Map(r => r.RttUsP99).Name("rtt_us_p99").TypeConverter<CsvFormats.Number>();
        Map(r => r.Folder).Name("folder");
        Map(r => r.Reason).Name("reason");
    }
}

public sealed class SuspectRowMap : ClassMap<SuspectRow>
{
    public SuspectRowMap()
    {
        Map(r => r.Host).Name("host");
        Map(r => r.Peer).Name("peer");
        Map(r => r.BadPairs).Name("bad_pairs");
        Map(r => r.Pairs).Name("pairs");
        Map(r => r.Why).Name("why");
    }
}

public sealed record NetAnalysisResult(IReadOnlyList<PairRow> Pairs, IReadOnlyList<NetSuspect> Suspects)
{
    public int ExitCode => Suspects.Count > 0 || Pairs.Any(p => p.Status == nameof(VerdictStatus.FAIL)) ? ExitCodes.Failed : ExitCodes.Passed;
}

public static class NetAnalysis
{
    public const string PairsFile = "pairs.csv";
    public const string SuspectsFile = "suspects.csv";
    /// <summary>summary.json's command of a probe folder.</summary>
    public const string ProbeCommand = "net probe";

    /// <summary>The pair a probe folder measured; a folder without one (not a kiln net probe run) is a usage error naming it.</summary>
    public static PairRow ReadPair(string folder)
    {
        var path = Path.Combine(folder, "summary.json");
        return TryReadPair(folder, out var why) ?? throw new UsageException("DIR", $"{(File.Exists(path) ? path : folder)}: {why}");
    }

    /// <summary>The pair a probe folder measured, or null and why not (no summary.json, not JSON, no net section).</summary>
    public static PairRow? TryReadPair(string folder, out string why)
    {
        var path = Path.Combine(folder, "summary.json");
        why = "";
        if (!File.Exists(path))
        {
            why = "no summary.json (not a kiln net probe result folder)";
            return null;
        }
        RunSummaryNet? s;
        try
        {
            s = JsonSerializer.Deserialize<RunSummaryNet>(File.ReadAllText(path), SummaryJson.Options);
        }
        catch (JsonException e)
        {
            why = $"not a kiln summary ({e.Message})";
            return null;
        }
        if (s?.Net is not { } n)
        {
            why = "no net section (not a kiln net probe run, or one that never finished)";
            return null;
        }
        return new PairRow(n.Client, n.Peer, n.Status, n.SendGbits, n.RecvGbits, n.RttUsP99, folder, n.Reason);
    }

    /// <summary>
    /// Records a pair whose probe left no result (killed, its launcher failed, past its deadline) as a
    /// FAIL with the reason in its folder's summary.json, kept where the probe wrote one: kiln net pairs
    /// writes what its child could not, so kiln net analyze and kiln report read the same pair.
    /// </summary>
    public static PairRow RecordFailure(string folder, NetPair pair, string address, string reason, DateTime startUtc)
    {
        Directory.CreateDirectory(folder);
        var path = Path.Combine(folder, "summary.json");
        JsonObject? summary = null;
        try
        {
            if (File.Exists(path)) summary = JsonNode.Parse(File.ReadAllText(path)) as JsonObject;
        }
        catch (JsonException)
        {
            // Cut short by the kill: written afresh.
        }
        summary ??= new JsonObject();
        summary["schema_version"] ??= SummaryJson.SchemaVersion;
        summary["host"] ??= pair.Client;
        summary["run_id"] ??= $"net-{pair.Client}-{pair.Server}-{startUtc:yyyyMMdd'T'HHmmss'Z'}";
        summary["command"] = ProbeCommand;
        summary["start_utc"] ??= startUtc;
        summary["end_utc"] = DateTime.UtcNow;
        summary["verdict"] = nameof(VerdictStatus.FAIL);
        summary["exit_code"] = ExitCodes.Failed;
        var net = new NetPairSummary(pair.Client, pair.Server, address, nameof(VerdictStatus.FAIL), null, null, null, reason);
        summary["net"] = JsonSerializer.SerializeToNode(net, SummaryJson.Options);
        AtomicFile.WriteAllText(path, summary.ToJsonString(SummaryJson.Options) + "\n");
        return new PairRow(net.Client, net.Peer, net.Status, null, null, null, folder, reason);
    }

    public static NetAnalysisResult Analyze(IReadOnlyList<PairRow> pairs, double relativeFloor = NetPairing.DefaultRelativeFloor)
    {
        var outcomes = pairs.Select(p => new PairOutcome(p.Client, p.Server, p.Status == nameof(VerdictStatus.FAIL),
            p.SendGbits is { } s && p.RecvGbits is { } r ? Math.Min(s, r) : p.SendGbits ?? p.RecvGbits, p.Reason)).ToList();
        return new NetAnalysisResult(pairs, NetPairing.Suspects(outcomes, relativeFloor));
    }

    /// <summary>Writes pairs.csv and suspects.csv into the folder.</summary>
    public static void Write(ResultFolder folder, NetAnalysisResult result)
    {
        using (var pairs = new CsvTable<PairRow, PairRowMap>(folder.File(PairsFile))) pairs.WriteAll(result.Pairs.ToList());
        using var suspects = new CsvTable<SuspectRow, SuspectRowMap>(folder.File(SuspectsFile));
        suspects.WriteAll(SuspectRows(result).ToList());
    }

    /// <summary>The rows of suspects.csv (a host's peer empty), for the file and for a page that shows them.</summary>
    public static IEnumerable<SuspectRow> SuspectRows(NetAnalysisResult result) =>
        result.Suspects.Select(x => new SuspectRow(x.Host, x.Peer ?? "", x.BadPairs, x.Pairs, x.Why));

    // The part of summary.json analysis reads.
    private sealed record RunSummaryNet(NetPairSummary? Net);
}
