// Reads one result folder for the fleet report and the RMA bundle: a burn (summary.json, metrics.csv,
// verdicts.csv, findings.csv of its health phases), a kiln check (summary.json with its findings,
// each WARN/FAIL finding a node-level verdict row of test "check") or a kiln net probe (the one pair
// its summary.json's net section holds, read by NetAnalysis). A folder it cannot trust (no
// summary, an unknown schema, missing columns) is refused with the file named; a bad row (truncated,
// corrupt) is skipped and reported with its line; the rest is used.
using System.Text.Json;
using Kiln.Core.Net;
using Kiln.Core.Profiles;
using Kiln.Core.Results;
using Kiln.Native;

namespace Kiln.Core.Report;

/// <summary>Something wrong with the input and what the report did about it ("folder skipped", "row skipped" ...).</summary>
public sealed record ReportProblem(string File, string Problem, string Action);

/// <summary>One value per (metric, device): the best a device reached in the run (max of rates, min of times).</summary>
public readonly record struct DeviceValue(int Metric, string Backend, int Device, double Value);

/// <summary>
/// A metric as the fleet sees it: test, name and backend (a CPU's stream and a GPU's are different
/// populations), canonical unit and which way is better.
/// </summary>
public sealed record MetricInfo(int Id, string Test, string Name, string Backend, string Unit, QuantityKind? Kind)
{
    public bool HigherIsBetter => Kind is not { } k || Units.HigherIsBetter(k);
    public string Key => $"{Test}/{Name} [{Backend}]";
}

/// <summary>A WARN or FAIL health finding (findings.csv / a check's summary.json).</summary>
public sealed record HealthFinding(string Check, string Component, string Severity, string Code, string Message);

public sealed class RunData
{
    public const string Burn = "burn";
    public const string Check = "check";
    /// <summary>A kiln net probe folder: one network pair (NetPair), not a node's verdict.</summary>
    public const string NetProbe = NetAnalysis.ProbeCommand;

    public required string Folder { get; init; }
    /// <summary>"burn", "check" or "net probe".</summary>
    public string Command { get; init; } = Burn;
    public bool IsCheck => Command == Check;
    public bool IsNetProbe => Command == NetProbe;
    /// <summary>The pair a net probe measured (summary.json's net section); null for burns and checks.</summary>
    public PairRow? NetPair { get; internal set; }
    public required string Host { get; init; }
    public required string RunId { get; init; }
    public required DateTime StartUtc { get; init; }
    public required string Verdict { get; init; }
    public string? Plan { get; init; }
    public string? Profile { get; init; }
    public bool Injected { get; init; }
    public required string Fingerprint { get; init; }
    public required IReadOnlyDictionary<string, string> Components { get; init; }
    public required IReadOnlyList<DeviceInfo> Devices { get; init; }
    public List<DeviceValue> Values { get; } = [];
    /// <summary>The FAIL and WARN verdict rows, the ones a report shows; every row is counted in <see cref="Counts"/>.</summary>
    public List<VerdictRow> Verdicts { get; } = [];
    /// <summary>Verdict rows by status (index: VerdictStatus), PASS and SKIP included.</summary>
    public int[] Counts { get; } = new int[Enum.GetValues<VerdictStatus>().Length];

    public int Count(VerdictStatus status) => Counts[(int)status];

    /// <summary>Keeps a FAIL or WARN row, counts every row.</summary>
    public void AddVerdict(VerdictRow v)
    {
        Counts[(int)v.Status]++;
        if (v.Status is VerdictStatus.FAIL or VerdictStatus.WARN) Verdicts.Add(v);
    }
    /// <summary>WARN and FAIL health findings: the check's, or the burn's health phases'.</summary>
    public List<HealthFinding> Findings { get; } = [];

    public DeviceInfo? Device(string backend, int index) => Devices.FirstOrDefault(d => d.Backend == backend && d.Index == index);
}

/// <summary>The metric names seen across the fleet, numbered; shared by the readers of one report.</summary>
public sealed class MetricCatalog
{
    private readonly Lock _gate = new();
    private readonly Dictionary<(string Test, string Name, string Backend), MetricInfo> _byName = [];
    private readonly List<MetricInfo> _all = [];

    public IReadOnlyList<MetricInfo> All => _all;

    /// <summary>
    /// The metric's entry; its unit is fixed by the first run that reports it (canonical when known).
    /// Null when this run reports it in another unit, which cannot be compared.
    /// </summary>
    public MetricInfo? Get(string test, string name, string backend, string unit, QuantityKind? kind)
    {
        lock (_gate)
        {
            if (_byName.TryGetValue((test, name, backend), out var m)) return m.Unit == unit ? m : null;
            m = new MetricInfo(_all.Count, test, name, backend, unit, kind);
            _byName[(test, name, backend)] = m;
            _all.Add(m);
            return m;
        }
    }
}

public static class RunReader
{
    private static readonly IReadOnlyList<string> MetricColumns = Csv.Columns<MetricRowMap>();
    private static readonly IReadOnlyList<string> VerdictColumns = Csv.Columns<VerdictRowMap>();

    /// <summary>Problems beyond this many per file are counted, not listed.</summary>
    private const int ListedRowProblems = 5;

    /// <summary>A run, or null when the folder is refused (the reason is in <paramref name="problems"/>).</summary>
    public static RunData? Read(string folder, MetricCatalog catalog, List<ReportProblem> problems)
    {
        var summaryPath = Path.Combine(folder, "summary.json");
        var run = ReadSummary(summaryPath, problems);
        if (run is null || run.IsCheck) return run;
        if (run.IsNetProbe)
        {
            // Its metrics are the pair's, not the node's: the fleet report analyses pairs apart (NetAnalysis).
            run.NetPair = NetAnalysis.TryReadPair(folder, out var why);
            if (run.NetPair is null) problems.Add(new(summaryPath, why, "folder skipped"));
            return run.NetPair is null ? null : run;
        }
        if (!ReadMetrics(Path.Combine(folder, "metrics.csv"), run, catalog, problems)) return null;
        ReadVerdicts(Path.Combine(folder, "verdicts.csv"), run, problems);
        ReadFindings(Path.Combine(folder, "findings.csv"), run);
        return run;
    }

    private static RunData? ReadSummary(string path, List<ReportProblem> problems)
    {
        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(File.ReadAllText(path));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or JsonException)
        {
            problems.Add(new(path, e is JsonException ? $"not valid JSON: {e.Message}" : $"cannot read: {e.Message}", "folder skipped"));
            return null;
        }
        using (doc)
        {
            var root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
            {
                problems.Add(new(path, "not a JSON object", "folder skipped"));
                return null;
            }
            // A kiln check result is known by its command (checks wrote no schema_version before schema 1 had one).
            if (Str(root, "command") == RunData.Check) return ReadCheck(path, root, problems);
            var schema = root.TryGetProperty("schema_version", out var sv) && sv.TryGetInt32(out var v) ? v : 0;
            if (schema != SummaryJson.SchemaVersion)
            {
                problems.Add(new(path, schema == 0
                    ? $"no schema_version: written by a kiln older than result schema {SummaryJson.SchemaVersion}; re-run the burn with this kiln"
                    : $"result schema {schema}, this kiln reads schema {SummaryJson.SchemaVersion}", "folder skipped"));
                return null;
            }
            if (Str(root, "command") is { } command && command is not (RunData.Burn or RunData.NetProbe))
            {
                problems.Add(new(path, $"a kiln {command} result, not a burn", "folder skipped"));
                return null;
            }
            var host = Str(root, "host");
            var runId = Str(root, "run_id");
            if (string.IsNullOrEmpty(host) || string.IsNullOrEmpty(runId) || !root.TryGetProperty("start_utc", out var start)
                || !start.TryGetDateTime(out var startUtc))
            {
                problems.Add(new(path, "host, run_id or start_utc missing", "folder skipped"));
                return null;
            }
            var components = new SortedDictionary<string, string>(StringComparer.Ordinal);
            if (root.TryGetProperty("components", out var c) && c.ValueKind == JsonValueKind.Object)
            {
                foreach (var p in c.EnumerateObject()) components[p.Name] = p.Value.ToString();
            }
            return new RunData
            {
                Folder = Path.GetDirectoryName(path)!,
                Command = Str(root, "command") ?? RunData.Burn,
                Host = host,
                RunId = runId,
                StartUtc = DateTime.SpecifyKind(startUtc, DateTimeKind.Utc),
                Verdict = Str(root, "verdict") ?? "INCOMPLETE",
                Plan = Str(root, "plan"),
                Profile = Str(root, "profile"),
                Injected = root.TryGetProperty("injected", out var inj) && inj.ValueKind == JsonValueKind.True,
                Fingerprint = Str(root, "inventory_fingerprint") ?? "",
                Components = components,
                Devices = Devices(root),
            };
        }
    }

    // A check's summary.json: identity, verdict, and the findings; every WARN/FAIL finding becomes a
    // node-level verdict row (test "check", backend the source, device -1) so drains and bundles use it.
    private static RunData? ReadCheck(string path, JsonElement root, List<ReportProblem> problems)
    {
        var host = Str(root, "host");
        if (string.IsNullOrEmpty(host) || !root.TryGetProperty("start_utc", out var start) || !start.TryGetDateTime(out var startUtc))
        {
            problems.Add(new(path, "kiln check result without host or start_utc", "folder skipped"));
            return null;
        }
        startUtc = DateTime.SpecifyKind(startUtc, DateTimeKind.Utc);
        var run = new RunData
        {
            Folder = Path.GetDirectoryName(path)!,
            Command = RunData.Check,
            Host = host,
            RunId = Str(root, "run_id") ?? $"check-{startUtc:yyyyMMdd'T'HHmmss'Z'}",
            StartUtc = startUtc,
            Verdict = Str(root, "verdict") ?? "FAIL",
            Profile = Str(root, "profile"),
            Fingerprint = Str(root, "inventory_fingerprint") ?? "",
            Components = new Dictionary<string, string>(),
            Devices = [],
        };
        if (root.TryGetProperty("findings", out var findings) && findings.ValueKind == JsonValueKind.Array)
        {
            foreach (var f in findings.EnumerateArray())
            {
                var severity = Str(f, "severity");
                if (severity is not ("WARN" or "FAIL")) continue;
                var finding = new HealthFinding(Str(f, "check") ?? "", Str(f, "component") ?? "", severity, Str(f, "code") ?? "", Str(f, "message") ?? "");
                run.Findings.Add(finding);
                run.AddVerdict(new VerdictRow(host, RunData.Check, finding.Check, -1,
                    severity == "FAIL" ? VerdictStatus.FAIL : VerdictStatus.WARN, finding.Code, null, null, "",
                    $"{finding.Code} {finding.Component}: {finding.Message}"));
            }
        }
        return run;
    }

    // A burn's findings.csv (its health phases): the WARN and FAIL rows, for the fleet's health table.
    private static void ReadFindings(string path, RunData run)
    {
        if (CsvInput.ReadAll(path) is not { } csv) return;
        foreach (var r in csv.Rows)
        {
            var severity = csv.Cell(r, "severity");
            if (severity is "WARN" or "FAIL")
                run.Findings.Add(new HealthFinding(csv.Cell(r, "check"), csv.Cell(r, "component"), severity, csv.Cell(r, "code"), csv.Cell(r, "message")));
        }
    }

    private static IReadOnlyList<DeviceInfo> Devices(JsonElement root)
    {
        if (!root.TryGetProperty("inventory", out var inv) || !inv.TryGetProperty("devices", out var devices)
            || devices.ValueKind != JsonValueKind.Array) return [];
        return devices.EnumerateArray().Select(d => new DeviceInfo(
            Str(d, "backend") ?? "", Str(d, "name") ?? "", Str(d, "uuid") ?? "", Str(d, "pci_bus_id") ?? "", Int(d, "index"),
            Int(d, "compute_units"), Int(d, "numa_nodes"), Int(d, "threads_per_unit"), (ulong)Num(d, "total_memory_bytes"),
            (ulong)Num(d, "available_memory_bytes"), (ulong)Num(d, "last_level_cache_bytes"), Num(d, "clock_mhz"),
            Num(d, "peak_memory_bandwidth_gbps"), Num(d, "peak_fp64_tflops"), Num(d, "peak_fp32_tflops"))).ToList();
    }

    private static bool ReadMetrics(string path, RunData run, MetricCatalog catalog, List<ReportProblem> problems)
    {
        using var csv = CsvInput.Open(path, out var why);
        if (csv is null)
        {
            problems.Add(new(path, why, "folder skipped"));
            return false;
        }
        var col = csv.Columns(MetricColumns, out var missing);
        if (missing.Count > 0)
        {
            problems.Add(new(path, $"missing column{(missing.Count == 1 ? "" : "s")} {string.Join(", ", missing)} (an older result schema?)", "folder skipped"));
            return false;
        }
        int Col(string name) => csv.Columns([name], out _)[0];
        int testCol = Col("test"), backendCol = Col("backend"), deviceCol = Col("device"), metricCol = Col("metric"),
            valueCol = Col("value"), unitCol = Col("unit"), injectedCol = Col("injected");
        var need = col.Max() + 1;
        // Per (metric, backend, device) the best value, folded as rows stream by: a run keeps one
        // value per device and metric, however many rows its soak wrote.
        var best = new Dictionary<(int Metric, string Backend, int Device), double>();
        var names = new Dictionary<(string Test, string Name, string Unit, string Backend), (MetricInfo? Info, double Factor)>();
        var bad = 0;
        var injectedRows = 0;
        void Bad(string problem)
        {
            if (++bad <= ListedRowProblems) problems.Add(new(path, $"line {csv.LineNumber}: {problem}", "row skipped"));
        }
        while (csv.Read())
        {
            if (csv.FieldCount < need)
            {
                Bad($"{csv.FieldCount} fields, expected {MetricColumns.Count} (truncated?)");
                continue;
            }
            if (!csv.TryDouble(valueCol, out var value)) { Bad($"value '{Shorten(csv[valueCol])}' is not a number"); continue; }
            if (!csv.TryInt(deviceCol, out var device) || device < 0) { Bad($"device '{Shorten(csv[deviceCol])}' is not a device index"); continue; }
            if (csv[injectedCol] == "true") { injectedRows++; continue; }

            var key = (Test: csv[testCol], Name: csv[metricCol], Unit: csv[unitCol], Backend: csv[backendCol]);
            if (!names.TryGetValue(key, out var metric))
            {
                // Values in a known unit are kept in the canonical one, so MB/s and GB/s runs compare.
                var q = Units.Convert(1, key.Unit);
                metric = (catalog.Get(key.Test, key.Name, key.Backend, q is { } k ? Units.Canonical(k.Kind) : key.Unit, q?.Kind ?? Units.KindOfMetric(key.Name)), q?.Value ?? 1);
                names[key] = metric;
                if (metric.Info is null)
                    problems.Add(new(path, $"{key.Test}/{key.Name} is in '{key.Unit}' here but in another unit elsewhere in the fleet", "metric skipped"));
            }
            if (metric.Info is not { } info) continue;
            value *= metric.Factor;
            var slot = (info.Id, info.Backend, device);
            best[slot] = best.TryGetValue(slot, out var old) ? (info.HigherIsBetter ? Math.Max(old, value) : Math.Min(old, value)) : value;
        }
        if (bad > ListedRowProblems) problems.Add(new(path, $"{bad - ListedRowProblems} more bad rows", "rows skipped"));
        if (injectedRows > 0)
            problems.Add(new(path, $"{injectedRows} values made under fault injection", "left out of fleet statistics"));
        run.Values.Capacity = best.Count;
        foreach (var ((metric, backend, device), value) in best) run.Values.Add(new DeviceValue(metric, backend, device, value));
        return true;
    }

    /// <summary>The rows of a verdicts.csv (or baseline.csv); the file's and the rows' problems go to <paramref name="problems"/>.</summary>
    public static IEnumerable<VerdictRow> ReadVerdicts(string path, List<ReportProblem> problems)
    {
        using var csv = CsvInput.Open(path, out var why);
        if (csv is null)
        {
            problems.Add(new(path, why, "verdicts not used"));
            yield break;
        }
        var col = csv.Columns(VerdictColumns, out var missing);
        if (missing.Count > 0)
        {
            problems.Add(new(path, $"missing column{(missing.Count == 1 ? "" : "s")} {string.Join(", ", missing)}", "verdicts not used"));
            yield break;
        }
        int Col(string name) => csv.Columns([name], out _)[0];
        int host = Col("host"), test = Col("test"), backend = Col("backend"), deviceCol = Col("device"), statusCol = Col("status"),
            metric = Col("metric"), value = Col("value"), threshold = Col("threshold"), unit = Col("unit"), reason = Col("reason");
        var need = col.Max() + 1;
        var bad = 0;
        while (csv.Read())
        {
            if (csv.FieldCount < need || !csv.TryInt(deviceCol, out var device)
                || !Enum.TryParse<VerdictStatus>(csv[statusCol], out var status) || !Enum.IsDefined(status))
            {
                if (++bad <= ListedRowProblems)
                    problems.Add(new(path, $"line {csv.LineNumber}: not a verdict row ({csv.FieldCount} fields, status '{(csv.FieldCount > statusCol ? Shorten(csv[statusCol]) : "")}')", "row skipped"));
                continue;
            }
            double? Optional(int i) => csv[i].Length == 0 ? null : csv.TryDouble(i, out var x) ? x : null;
            yield return new VerdictRow(csv[host], csv[test], csv[backend], device, status,
                csv[metric], Optional(value), Optional(threshold), csv[unit], csv[reason]);
        }
        if (bad > ListedRowProblems) problems.Add(new(path, $"{bad - ListedRowProblems} more bad rows", "rows skipped"));
    }

    private static void ReadVerdicts(string path, RunData run, List<ReportProblem> problems)
    {
        foreach (var v in ReadVerdicts(path, problems)) run.AddVerdict(v);
    }

    private static string? Str(JsonElement e, string name) =>
        e.TryGetProperty(name, out var p) && p.ValueKind == JsonValueKind.String ? p.GetString() : null;

    private static int Int(JsonElement e, string name) => e.TryGetProperty(name, out var p) && p.TryGetInt32(out var v) ? v : 0;

    private static double Num(JsonElement e, string name) => e.TryGetProperty(name, out var p) && p.TryGetDouble(out var v) ? v : 0;

    private static string Shorten(string s) => s.Length <= 24 ? s : s[..24] + "...";
}
