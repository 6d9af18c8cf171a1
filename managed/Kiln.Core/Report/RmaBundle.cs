// kiln bundle RUN_DIR: one tar.gz with what a vendor asks for in an RMA - the inventory with serials,
// the failing verdicts, the data errors, the kernel-log lines about the failing devices (their PCI
// address, Xid, machine checks) and the telemetry within a minute of each failure (docs/REPORT.md).
using System.Formats.Tar;
using System.Globalization;
using System.IO.Compression;
using System.Text;
using System.Text.Json;
using Kiln.Core.Results;
using Kiln.Native;

namespace Kiln.Core.Report;

public sealed record BundleResult(string Path, int FailingVerdicts, int KernelLogLines, int TelemetryRows, IReadOnlyList<string> Files);

public static class RmaBundle
{
    /// <summary>Telemetry this close to a failure (before its first sign, after its last) goes in.</summary>
    public static readonly TimeSpan Window = TimeSpan.FromSeconds(60);

    /// <summary>A kernel log captured by the run itself, used when --kmsg is not given.</summary>
    public static readonly string[] RunKernelLogs = ["kmsg.log", "dmesg.log"];

    /// <param name="kmsgFile">--kmsg FILE; null = the run's own capture (kmsg.log) if it has one.</param>
    public static BundleResult Write(string runDir, string? outFile, string? kmsgFile)
    {
        var problems = new List<ReportProblem>();
        var run = RunReader.Read(runDir, new MetricCatalog(), problems)
            ?? throw new UsageException("RUN_DIR", $"{runDir} is not a readable burn result: {string.Join("; ", problems.Select(p => $"{p.File}: {p.Problem}"))}");
        if (run.IsNetProbe) throw new UsageException("RUN_DIR", $"{runDir} is a kiln net probe result (one network pair), not a burn");
        var failing = run.Verdicts.Where(v => v.Status == VerdictStatus.FAIL).ToList();
        var devices = failing.Select(v => run.Device(v.Backend, v.Device)).OfType<DeviceInfo>().Distinct().ToList();
        var windows = FailureWindows(runDir, run, failing);

        var entries = new List<(string Name, byte[] Data)>();
        void Add(string name, string text) => entries.Add((name, Encoding.UTF8.GetBytes(text)));
        void Copy(string file)
        {
            var path = Path.Combine(runDir, file);
            if (File.Exists(path)) entries.Add((file, File.ReadAllBytes(path)));
        }

        Copy("summary.json");
        foreach (var json in Directory.EnumerateFiles(runDir, "health_*.json").Order(StringComparer.Ordinal)) Copy(Path.GetFileName(json));
        Copy("errors.csv");
        Add("verdicts-failing.csv", Csv.Text<VerdictRow, VerdictRowMap>(failing));
        var serials = Serials(runDir);
        Add("failing-devices.csv", Csv.Text(["backend", "index", "name", "uuid", "serial", "pci_bus_id"], devices.Select(d => (IReadOnlyList<string>)
            [d.Backend, d.Index.ToString(CultureInfo.InvariantCulture), d.Name, d.Uuid, serials.GetValueOrDefault(Key(d.PciBusId), ""), d.PciBusId])));
        if (CsvInput.ReadAll(Path.Combine(runDir, "findings.csv")) is { } findings)
            Add("findings-failing.csv", Csv.Text(findings.Header, findings.Rows.Where(r => findings.Cell(r, "severity") is "FAIL" or "WARN")));

        var (kmsgSource, kmsgLines) = KernelLog(runDir, kmsgFile, devices, failing);
        Add("kmsg-matching.log", string.Concat(kmsgLines.Select(l => l + "\n")));
        var telemetry = TelemetryAround(Path.Combine(runDir, "telemetry.csv"), windows);
        if (telemetry != null) Add("telemetry-window.csv", telemetry.Value.Text);

        var manifest = new StringBuilder();
        manifest.AppendLine($"kiln RMA bundle - host {run.Host}, run {run.RunId}, started {run.StartUtc:yyyy-MM-dd HH:mm:ss} UTC, node verdict {run.Verdict}");
        manifest.AppendLine($"failing verdicts: {failing.Count}");
        foreach (var v in failing) manifest.AppendLine($"  {v.Test} on {v.Backend}{v.Device}: {v.Reason}");
        foreach (var d in devices)
            manifest.AppendLine($"device {d.Backend}{d.Index}: {d.Name}, UUID {Or(d.Uuid)}, serial {Or(serials.GetValueOrDefault(Key(d.PciBusId), ""))}, PCI {Or(d.PciBusId)}");
        manifest.AppendLine($"kernel log: {kmsgSource}; {kmsgLines.Count} matching lines (PCI addresses of the failing devices, Xid, machine checks)");
        manifest.AppendLine(telemetry is { } t ? $"telemetry: {t.Rows} rows within {Window.TotalSeconds:0} s of a failure" : "telemetry: the run has no telemetry.csv");
        foreach (var (start, end) in windows) manifest.AppendLine($"  failure window {start:HH:mm:ss} .. {end:HH:mm:ss} UTC");
        if (failing.Count == 0) manifest.AppendLine("NOTE: the run has no FAIL verdict; this bundle holds its inventory only");
        foreach (var p in problems) manifest.AppendLine($"problem: {p.File}: {p.Problem} ({p.Action})");
        manifest.AppendLine("files:");
        foreach (var (name, data) in entries) manifest.AppendLine($"  {name} ({data.Length} bytes)");
        entries.Insert(0, ("MANIFEST.txt", Encoding.UTF8.GetBytes(manifest.ToString())));

        var path = outFile ?? $"kiln-rma-{run.Host}-{run.RunId}.tar.gz";
        var root = $"kiln-rma-{run.Host}-{run.RunId}";
        WriteTarGz(path, root, entries);
        return new BundleResult(Path.GetFullPath(path), failing.Count, kmsgLines.Count, telemetry?.Rows ?? 0, entries.Select(e => e.Name).ToList());
    }

    private static void WriteTarGz(string path, string root, List<(string Name, byte[] Data)> entries)
    {
        Results.AtomicFile.Write(path, temp =>
        {
            using var file = File.Create(temp);
            using var gzip = new GZipStream(file, CompressionLevel.Optimal);
            using var tar = new TarWriter(gzip, TarEntryFormat.Pax, leaveOpen: false);
            foreach (var (name, data) in entries)
            {
                var entry = new PaxTarEntry(TarEntryType.RegularFile, $"{root}/{name}")
                {
                    DataStream = new MemoryStream(data),
                    Mode = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead,
                    ModificationTime = DateTimeOffset.UtcNow,
                };
                tar.WriteEntry(entry);
            }
        });
    }

    /// <summary>
    /// When each failure showed itself: from its first to its last data error (errors.csv), else the
    /// last value its test reported (metrics.csv), else the end of the run; widened by Window.
    /// </summary>
    private static List<(DateTime Start, DateTime End)> FailureWindows(string runDir, RunData run, List<VerdictRow> failing)
    {
        var times = new Dictionary<(string Test, string Backend, int Device), (DateTime First, DateTime Last)>();
        foreach (var file in new[] { "errors.csv", "metrics.csv" })
        {
            using var csv = CsvInput.Open(Path.Combine(runDir, file), out _);
            if (csv is null) continue;
            var col = csv.Columns(["timestamp", "test", "backend", "device"], out var missing);
            if (missing.Count > 0) continue;
            var found = new Dictionary<(string, string, int), (DateTime First, DateTime Last)>();
            while (csv.Read())
            {
                if (csv.FieldCount <= col.Max() || !csv.TryInt(col[3], out var device)) continue;
                var key = (csv[col[1]], csv[col[2]], device);
                if (times.ContainsKey(key) || !failing.Any(v => (v.Test, v.Backend, v.Device) == key)) continue;
                if (!DateTime.TryParse(csv[col[0]], CultureInfo.InvariantCulture, DateTimeStyles.AdjustToUniversal | DateTimeStyles.AssumeUniversal, out var at)) continue;
                found[key] = found.TryGetValue(key, out var t) ? (t.First < at ? t.First : at, t.Last > at ? t.Last : at) : (at, at);
            }
            foreach (var (key, t) in found) times[key] = t;
        }
        var end = SummaryEnd(runDir) ?? run.StartUtc;
        return failing.Select(v => times.TryGetValue((v.Test, v.Backend, v.Device), out var t) ? t : (First: end, Last: end))
            .Select(t => (t.First - Window, t.Last + Window)).Distinct().ToList();
    }

    private static DateTime? SummaryEnd(string runDir)
    {
        try
        {
            using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(runDir, "summary.json")));
            return doc.RootElement.TryGetProperty("end_utc", out var e) && e.TryGetDateTime(out var end)
                ? DateTime.SpecifyKind(end, DateTimeKind.Utc) : null;
        }
        catch (Exception e) when (e is IOException or JsonException) { return null; }
    }

    /// <summary>The kernel-log lines about the failure; the source is --kmsg, else the run's own capture.</summary>
    private static (string Source, List<string> Lines) KernelLog(string runDir, string? kmsgFile, List<DeviceInfo> devices, List<VerdictRow> failing)
    {
        var path = kmsgFile ?? RunKernelLogs.Select(f => Path.Combine(runDir, f)).FirstOrDefault(File.Exists);
        if (path is null) return ("none (no --kmsg and no kmsg.log in the run folder)", []);
        if (!File.Exists(path)) throw new UsageException(OptionNames.Kmsg, $"{path} does not exist");
        // The kernel names a GPU by its bus address without the function ("PCI:0000:3b:00"): match that prefix.
        var addresses = devices.Where(d => d.PciBusId.Length > 0).Select(d => Key(d.PciBusId)).Distinct().ToList();
        var cpuFailed = failing.Any(v => v.Backend == "cpu");
        string[] always = ["Xid", "NVRM:"];
        string[] cpu = ["EDAC", "mce:", "Machine check", "Hardware Error", "MCE"];
        var lines = File.ReadLines(path).Where(line =>
            addresses.Any(a => line.Contains(a, StringComparison.OrdinalIgnoreCase))
            || always.Any(k => line.Contains(k, StringComparison.Ordinal))
            || (cpuFailed && cpu.Any(k => line.Contains(k, StringComparison.Ordinal)))).ToList();
        return (path, lines);
    }

    private static (string Text, int Rows)? TelemetryAround(string path, List<(DateTime Start, DateTime End)> windows)
    {
        using var csv = CsvInput.Open(path, out _);
        if (csv is null) return null;
        var time = csv.Header.ToList().IndexOf("timestamp");
        var rows = new List<IReadOnlyList<string>>();
        while (csv.Read())
        {
            if (time < 0 || csv.FieldCount <= time
                || !DateTime.TryParse(csv[time], CultureInfo.InvariantCulture, DateTimeStyles.AdjustToUniversal | DateTimeStyles.AssumeUniversal, out var at)
                || !windows.Any(w => at >= w.Start && at <= w.End)) continue;
            rows.Add(Enumerable.Range(0, csv.FieldCount).Select(i => csv[i]).ToList());
        }
        return (Csv.Text(csv.Header, rows), rows.Count);
    }

    /// <summary>GPU serials by PCI bus address from the health checks' inventories (health_*.json) a plan's checks left in the run.</summary>
    private static Dictionary<string, string> Serials(string runDir)
    {
        var serials = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        foreach (var file in Directory.EnumerateFiles(runDir, "health_*.json"))
        {
            try
            {
                using var doc = JsonDocument.Parse(File.ReadAllText(file));
                if (!doc.RootElement.TryGetProperty("inventory", out var inv) || !inv.TryGetProperty("gpus", out var gpus)) continue;
                foreach (var g in gpus.EnumerateArray())
                {
                    if (g.TryGetProperty("pci_bus_id", out var pci) && g.TryGetProperty("serial", out var serial))
                        serials[Key(pci.GetString() ?? "")] = serial.GetString() ?? "";
                }
            }
            catch (Exception e) when (e is IOException or JsonException or InvalidOperationException) { }
        }
        return serials;
    }

    /// <summary>"0000:3B:00.0" -> "0000:3b:00": the bus address as the kernel log writes it.</summary>
    private static string Key(string pci)
    {
        var p = pci.ToLowerInvariant();
        var dot = p.LastIndexOf('.');
        return dot > 0 ? p[..dot] : p;
    }

    private static string Or(string s) => s.Length > 0 ? s : "unknown";
}
