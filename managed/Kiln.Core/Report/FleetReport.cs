// kiln report's analysis: many nodes' burn folders merged into per-metric fleet statistics, robust
// outliers across devices and across nodes (a node is the median of its devices, so eight GPUs that
// are all 8% slow stand out even though none is slow next to its neighbours), configuration drift,
// an optional comparison against a baseline profile, the network pairs of kiln net probe folders with
// the host (or link) their bad pairs share (NetAnalysis), and the hosts to drain (docs/REPORT.md).
using Kiln.Core.Evaluation;
using Kiln.Core.Net;
using Kiln.Core.Profiles;
using Kiln.Core.Results;

namespace Kiln.Core.Report;

public sealed record FleetOptions
{
    /// <summary>|modified z| at or above this flags an outlier (Iglewicz and Hoaglin suggest 3.5).</summary>
    public double ZThreshold { get; init; } = 3.5;
    /// <summary>...and only when it is at least this fraction away from the fleet median: a 0.5% wobble in a tight fleet is not news.</summary>
    public double MinDeviation { get; init; } = 0.02;
    /// <summary>Fewer values than this give no outliers (a median of three is no fleet).</summary>
    public int MinNodes { get; init; } = 5;
    public int MinDevices { get; init; } = 8;
    public Profile? Baseline { get; init; }
    /// <summary>Hosts that should have results (a Slurm allocation's nodes): one without any is missing, and drained.</summary>
    public IReadOnlyList<string> ExpectedHosts { get; init; } = [];
}

/// <summary>
/// A metric, or a matrix of them (p2p_gbps_&lt;src&gt;_&lt;dst&gt; -> p2p_gbps), on one backend: the unit of
/// fleet statistics, node outliers, histograms and baseline thresholds.
/// </summary>
public sealed record MetricFamily(string Test, string Name, string Backend, string Unit, QuantityKind? Kind, IReadOnlyList<MetricInfo> Members)
{
    public bool HigherIsBetter => Members[0].HigherIsBetter;
    public bool IsMatrix => Members.Count > 1 || Members[0].Name != Name;

    /// <summary>
    /// Rates, times, power and temperature have outliers; counts and sizes (errors_total, threads,
    /// array_bytes) describe the run's configuration or its verdicts and get statistics only.
    /// </summary>
    public bool IsPerformance => Kind is QuantityKind.Bandwidth or QuantityKind.LinkRate or QuantityKind.Compute
        or QuantityKind.Time or QuantityKind.Power or QuantityKind.Temperature;
    public string Key => $"{Test}/{Name} [{Backend}]";
}

/// <summary>Devices: every device value (every pair of a matrix); Nodes: per node the median of them.</summary>
public sealed record MetricSummary(MetricFamily Family, Spread Devices, Spread Nodes, int DeviceOutliers, int NodeOutliers, string Note);

/// <summary>
/// Level "node" (Device = -1; the value is the median of the node's devices, of all its pairs for a
/// matrix) or "device" (Metric names the member: one pair of a matrix is judged against that pair fleet-wide).
/// </summary>
public sealed record Outlier(string Level, string Host, int Device, MetricFamily Family, string Metric, double Value,
    double Median, double Z, bool Slow)
{
    public double DeviationPercent => Median != 0 ? (Value - Median) / Math.Abs(Median) * 100 : 0;
    public string Key => $"{Family.Test}/{Metric} [{Family.Backend}]";
}

/// <summary>A component value held by a minority of the nodes, against the value most nodes have.</summary>
public sealed record Drift(string Component, string Value, IReadOnlyList<string> Hosts, string Majority, int MajorityNodes);

public sealed record NodeSummary(string Host, RunData Run, int Fail, int Warn, int Skip, IReadOnlyList<string> SlowMetrics,
    IReadOnlyList<string> DriftComponents, IReadOnlyList<string> DrainReasons)
{
    public bool Drain => DrainReasons.Count > 0;
}

public sealed class FleetReport
{
    public required IReadOnlyList<RunData> Runs { get; init; }
    /// <summary>Older runs of a host that a newer one replaced.</summary>
    public required IReadOnlyList<RunData> Superseded { get; init; }
    /// <summary>The latest kiln check result of each host (its FAIL findings drain the host).</summary>
    public IReadOnlyList<RunData> Checks { get; init; } = [];

    /// <summary>Every WARN/FAIL health finding: of the latest check of each host, and of the burns' health phases.</summary>
    public IEnumerable<(RunData Run, HealthFinding Finding)> HealthFindings =>
        Runs.Concat(Checks).OrderBy(r => r.Host, StringComparer.Ordinal).ThenBy(r => r.IsCheck)
            .SelectMany(r => r.Findings.Select(f => (r, f)));
    public required IReadOnlyList<ReportProblem> Problems { get; init; }
    public required IReadOnlyList<MetricInfo> MetricInfos { get; init; }
    public required IReadOnlyList<MetricSummary> Metrics { get; init; }
    public required IReadOnlyList<Outlier> Outliers { get; init; }
    public required IReadOnlyList<Drift> Drift { get; init; }
    public required IReadOnlyList<NodeSummary> Nodes { get; init; }
    /// <summary>WARN and FAIL rows of the comparison against --baseline (PASS rows are counted only).</summary>
    public required IReadOnlyList<VerdictRow> BaselineRows { get; init; }
    public int BaselinePass { get; init; }
    public required FleetOptions Options { get; init; }
    /// <summary>The network pairs of the kiln net probe folders among the inputs (the latest probe of each pair); null when there were none.</summary>
    public NetAnalysisResult? Net { get; init; }

    /// <summary>Hosts the bad network pairs have in common (a bad link between two healthy hosts drains no one).</summary>
    public IReadOnlyList<NetSuspect> NetSuspectHosts => Net?.Suspects.Where(s => s.IsHost).ToList() ?? [];

    /// <summary>Suspect hosts with neither a burn nor a check among the inputs: drained on the pairs' word alone.</summary>
    public IReadOnlyList<NetSuspect> NetOnlySuspects => NetSuspectHosts.Where(s => Nodes.All(n => n.Host != s.Host)).ToList();

    /// <summary>Expected hosts (FleetOptions.ExpectedHosts) with neither a burn nor a check among the inputs.</summary>
    public IReadOnlyList<string> Missing => Options.ExpectedHosts.Except(Runs.Concat(Checks).Select(r => r.Host), StringComparer.Ordinal)
        .Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal).ToList();

    public IReadOnlyList<string> DrainHosts => Nodes.Where(n => n.Drain).Select(n => n.Host).Concat(Missing)
        .Concat(NetOnlySuspects.Select(s => s.Host)).Distinct(StringComparer.Ordinal).ToList();

    /// <summary>A burn, a check or a network pair among the inputs: something to report.</summary>
    public bool HasResults => Runs.Count + Checks.Count + (Net?.Pairs.Count ?? 0) > 0;

    /// <summary>0 report made, nothing to drain; 1 there are hosts to drain; 2 no usable run at all.</summary>
    public int ExitCode => !HasResults ? ExitCodes.Usage : DrainHosts.Count > 0 ? ExitCodes.Failed : ExitCodes.Passed;

    /// <summary>Values per metric: (run index, backend, device, value) over the latest run of each host.</summary>
    public IEnumerable<(int Run, DeviceValue Value)> ValuesOf(MetricInfo metric) =>
        Runs.SelectMany((r, i) => r.Values.Where(v => v.Metric == metric.Id).Select(v => (i, v)));

    /// <param name="known">Problems found before the folders were read (an unusable --baseline), listed first.</param>
    public static FleetReport Build(IEnumerable<string> inputs, FleetOptions options, IEnumerable<ReportProblem>? known = null)
    {
        var problems = new List<ReportProblem>(known ?? []);
        var catalog = new MetricCatalog();
        var folders = FindRunFolders(inputs, problems);
        var read = new RunData?[folders.Count];
        var readProblems = new List<ReportProblem>[folders.Count];
        Parallel.For(0, folders.Count, new ParallelOptions { MaxDegreeOfParallelism = Environment.ProcessorCount }, i =>
        {
            readProblems[i] = [];
            read[i] = RunReader.Read(folders[i], catalog, readProblems[i]);
        });
        foreach (var p in readProblems) problems.AddRange(p);

        var runs = new List<RunData>();
        var byRunId = new Dictionary<string, RunData>(StringComparer.Ordinal);
        foreach (var run in read.OfType<RunData>())
        {
            if (byRunId.TryGetValue(run.RunId, out var first))
            {
                problems.Add(new(Path.Combine(run.Folder, "summary.json"), $"duplicate run_id {run.RunId} (also {first.Folder})", "folder skipped"));
                continue;
            }
            byRunId[run.RunId] = run;
            runs.Add(run);
        }
        // A check does not supersede a burn (nor the reverse): each host's latest of each kind is used.
        static List<RunData> Latest(IEnumerable<RunData> of) =>
            of.GroupBy(r => r.Host).Select(g => g.MaxBy(r => r.StartUtc)!).OrderBy(r => r.Host, StringComparer.Ordinal).ToList();
        var burns = runs.Where(r => !r.IsCheck && !r.IsNetProbe).ToList();
        var latest = Latest(burns);
        var superseded = burns.Except(latest).ToList();
        // A probe is a pair's result, not a node's: it does not make an expected node present.
        var reported = runs.Where(r => !r.IsNetProbe).Select(r => r.Host).ToHashSet(StringComparer.Ordinal);
        foreach (var host in options.ExpectedHosts.Distinct(StringComparer.Ordinal).Where(h => !reported.Contains(h)))
            problems.Add(new(host, "missing: no results from this expected node (it never finished, or never wrote them)", "drain"));
        return Analyse(latest, superseded, Latest(runs.Where(r => r.IsCheck)), NetPairs(runs), problems, catalog, options);
    }

    /// <summary>The pairs of the probe folders, the latest probe of each (client, server), analysed as kiln net analyze does; null without any.</summary>
    private static NetAnalysisResult? NetPairs(List<RunData> runs)
    {
        var pairs = runs.Where(r => r.IsNetProbe).GroupBy(r => (r.NetPair!.Client, r.NetPair.Server)).Select(g => g.MaxBy(r => r.StartUtc)!)
            .OrderBy(r => r.Folder, StringComparer.Ordinal).Select(r => r.NetPair!).ToList();
        return pairs.Count == 0 ? null : NetAnalysis.Analyze(pairs);
    }

    /// <summary>Every folder holding a summary.json at or under each input, sorted, so the first of two duplicates is stable.</summary>
    private static List<string> FindRunFolders(IEnumerable<string> inputs, List<ReportProblem> problems)
    {
        var folders = new SortedSet<string>(StringComparer.Ordinal);
        foreach (var input in inputs)
        {
            if (!Directory.Exists(input))
            {
                problems.Add(new(input, "no such folder", "skipped"));
                continue;
            }
            var found = Directory.EnumerateFiles(input, "summary.json", SearchOption.AllDirectories)
                .Select(f => Path.GetFullPath(Path.GetDirectoryName(f)!)).ToList();
            if (found.Count == 0) problems.Add(new(input, "no run folder (summary.json) under it", "skipped"));
            folders.UnionWith(found);
        }
        return [.. folders];
    }

    private static FleetReport Analyse(List<RunData> runs, List<RunData> superseded, List<RunData> checks, NetAnalysisResult? net,
        List<ReportProblem> problems, MetricCatalog catalog, FleetOptions options)
    {
        var metrics = catalog.All.ToList();
        // Values grouped by metric once: (run index, value).
        var byMetric = metrics.Select(_ => new List<(int Run, DeviceValue Value)>()).ToArray();
        for (var r = 0; r < runs.Count; r++)
        {
            foreach (var v in runs[r].Values) byMetric[v.Metric].Add((r, v));
        }

        var families = metrics.GroupBy(m => (m.Test, Family: MetricNames.Family(m.Name), m.Backend))
            .Select(g => new MetricFamily(g.Key.Test, g.Key.Family, g.Key.Backend, g.First().Unit, g.First().Kind, g.ToList()))
            .OrderBy(f => f.Test, StringComparer.Ordinal).ThenBy(f => f.Name, StringComparer.Ordinal).ThenBy(f => f.Backend, StringComparer.Ordinal)
            .ToList();
        var summaries = new List<MetricSummary>();
        var outliers = new List<Outlier>();
        foreach (var family in families)
        {
            var all = family.Members.SelectMany(m => byMetric[m.Id]).ToList();
            if (all.Count == 0) continue;
            var devices = RobustStats.Describe(all.Select(x => x.Value.Value).ToArray());
            var notes = new List<string>();
            var deviceOutliers = 0;
            var perNode = all.GroupBy(x => x.Run).Select(g => (Run: g.Key, Value: RobustStats.Median(g.Select(x => x.Value.Value)))).ToList();
            var nodes = RobustStats.Describe(perNode.Select(x => x.Value).ToArray());
            if (!family.IsPerformance)
            {
                summaries.Add(new MetricSummary(family, devices, nodes, 0, 0, "not a performance metric: no outliers"));
                continue;
            }
            // Device level: each member on its own, so one weak link stands out against the same link fleet-wide.
            foreach (var member in family.Members)
            {
                var values = byMetric[member.Id];
                var spread = family.Members.Count == 1 ? devices : RobustStats.Describe(values.Select(x => x.Value.Value).ToArray());
                if (spread.Count < options.MinDevices) continue;
                foreach (var (run, v) in values)
                {
                    if (Flag(spread, v.Value, options.ZThreshold, options.MinDeviation) is { } z)
                    {
                        outliers.Add(new("device", runs[run].Host, v.Device, family, member.Name, v.Value, spread.Median, z, IsSlow(family, v.Value, spread.Median)));
                        deviceOutliers++;
                    }
                }
            }
            if (devices.Count < options.MinDevices) notes.Add($"fewer than {options.MinDevices} devices: no device outliers");
            var nodeOutliers = 0;
            if (nodes.Count >= options.MinNodes)
            {
                foreach (var (run, value) in perNode)
                {
                    if (Flag(nodes, value, options.ZThreshold, options.MinDeviation) is { } z)
                    {
                        outliers.Add(new("node", runs[run].Host, -1, family, family.Name, value, nodes.Median, z, IsSlow(family, value, nodes.Median)));
                        nodeOutliers++;
                    }
                }
            }
            else notes.Add($"fewer than {options.MinNodes} nodes: no node outliers");
            summaries.Add(new MetricSummary(family, devices, nodes, deviceOutliers, nodeOutliers, string.Join("; ", notes)));
        }

        var drift = FindDrift(runs, superseded);
        var (baselineRows, baselinePass) = options.Baseline is { } baseline ? CompareBaseline(runs, metrics, baseline, problems) : ([], 0);
        var outliersByHost = outliers.Where(o => DrainsHost(o, options)).ToLookup(o => o.Host);
        var driftByHost = drift.SelectMany(d => d.Hosts.Select(h => (Host: h, d.Component))).ToLookup(x => x.Host, x => x.Component);
        var baselineByHost = baselineRows.Where(b => b.Status == VerdictStatus.FAIL).ToLookup(b => b.Host);
        var checkByHost = checks.ToDictionary(c => c.Host);
        var burned = runs.Select(r => r.Host).ToHashSet();
        var netByHost = (net?.Suspects ?? []).Where(x => x.IsHost).ToDictionary(x => x.Host, StringComparer.Ordinal);
        var nodesSummary = runs.Select(run => Summarise(run, outliersByHost[run.Host], driftByHost[run.Host], baselineByHost[run.Host],
                checkByHost.GetValueOrDefault(run.Host), netByHost.GetValueOrDefault(run.Host)))
            .Concat(checks.Where(c => !burned.Contains(c.Host)).Select(c => Summarise(c, [], [], [], null, netByHost.GetValueOrDefault(c.Host))))
            .OrderBy(n => n.Host, StringComparer.Ordinal).ToList();
        return new FleetReport
        {
            Runs = runs,
            Superseded = superseded,
            Checks = checks,
            Problems = problems,
            MetricInfos = metrics,
            Metrics = summaries,
            Outliers = outliers.OrderBy(o => o.Level == "node" ? 0 : 1).ThenBy(o => -Math.Abs(o.Z)).ToList(),
            Drift = drift,
            Nodes = nodesSummary,
            BaselineRows = baselineRows,
            BaselinePass = baselinePass,
            Options = options,
            Net = net,
        };
    }

    private static double? Flag(Spread spread, double x, double zThreshold, double minDeviation)
    {
        var z = spread.Z(x);
        return Math.Abs(z) >= zThreshold && Math.Abs(x - spread.Median) >= minDeviation * Math.Abs(spread.Median) ? z : null;
    }

    /// <summary>Why a suspect host drains: "network: in 3 bad pair(s) of 3: n3 -> n1: ...".</summary>
    public static string NetReason(NetSuspect suspect) => $"network: {suspect.Why}";

    private static bool IsSlow(MetricFamily family, double value, double median) => family.HigherIsBetter ? value < median : value > median;

    /// <summary>
    /// A device outlier drains its host only when it is far out: twice the z threshold and twice the
    /// minimum deviation (7 sigma and 4% by default), which noise alone practically never reaches.
    /// </summary>
    public static bool DrainsHost(Outlier o, FleetOptions options) =>
        o.Slow && (o.Level == "node"
                   || (Math.Abs(o.Z) >= 2 * options.ZThreshold && Math.Abs(o.DeviationPercent) >= 2 * options.MinDeviation * 100));

    /// <summary>
    /// Per component (summary.json's components), the values held by fewer nodes than the most common
    /// one; and hosts whose inventory fingerprint changed between their runs (hardware swapped).
    /// </summary>
    private static List<Drift> FindDrift(List<RunData> runs, List<RunData> superseded)
    {
        var drift = new List<Drift>();
        var keys = runs.SelectMany(r => r.Components.Keys).Distinct().Order(StringComparer.Ordinal);
        foreach (var key in keys)
        {
            var groups = runs.GroupBy(r => r.Components.GetValueOrDefault(key, "(absent)"))
                .Select(g => (Value: g.Key, Hosts: g.Select(r => r.Host).ToList()))
                .OrderByDescending(g => g.Hosts.Count).ThenBy(g => g.Value, StringComparer.Ordinal).ToList();
            if (groups.Count < 2) continue;
            var majority = groups[0];
            foreach (var g in groups.Skip(1)) drift.Add(new Drift(key, g.Value, g.Hosts, majority.Value, majority.Hosts.Count));
        }
        foreach (var run in runs)
        {
            var older = superseded.Where(s => s.Host == run.Host && s.Fingerprint != run.Fingerprint && s.Fingerprint.Length > 0).ToList();
            if (older.Count > 0 && run.Fingerprint.Length > 0)
                drift.Add(new Drift("inventory_fingerprint", run.Fingerprint, [run.Host],
                    $"{older[^1].Fingerprint} in run {older[^1].RunId}: devices changed between runs", 0));
        }
        return drift;
    }

    private static (List<VerdictRow>, int) CompareBaseline(List<RunData> runs, List<MetricInfo> metrics, Profile baseline, List<ReportProblem> problems)
    {
        var rows = new List<VerdictRow>();
        var pass = 0;
        var warned = new HashSet<string>();
        foreach (var run in runs)
        {
            foreach (var v in run.Values)
            {
                var metric = metrics[v.Metric];
                var device = run.Device(v.Backend, v.Device);
                foreach (var t in baseline.For(metric.Test, Profile.ClassOf(v.Backend)).Where(t => t.Covers(metric.Name)))
                {
                    if (metric.Kind != t.Kind)
                    {
                        if (warned.Add(metric.Key))
                            problems.Add(new(baseline.Source, $"{t.Origin}: {metric.Key} is in {metric.Unit} across the fleet, the threshold in {t.Unit}", "threshold not applied"));
                        continue;
                    }
                    // A device missing from the inventory can still meet an absolute limit, not a fraction of its peak.
                    var limit = device != null ? t.Resolve(device) : t.FractionOfPeak is null && t.Value is { } only ? (only, t.Origin) : null;
                    if (limit is null) continue;
                    var margin = t.Margin(v.Value, limit.Value.Limit);
                    var status = Evaluator.StatusOf(margin, baseline.WarnBand);
                    if (status == VerdictStatus.PASS)
                    {
                        pass++;
                        continue;
                    }
                    var relation = status == VerdictStatus.FAIL
                        ? (t.Direction == Direction.AtLeast ? "is below the baseline floor" : "is above the baseline ceiling")
                        : $"is within {baseline.WarnBand * 100:0.#}% of the baseline {(t.Direction == Direction.AtLeast ? "floor" : "ceiling")}";
                    rows.Add(new VerdictRow(run.Host, metric.Test, v.Backend, v.Device, status, metric.Name, v.Value, limit.Value.Limit, t.Unit,
                        $"{metric.Name} {Units.Format(v.Value, t.Kind)} {relation} {Units.Format(limit.Value.Limit, t.Kind)} ({limit.Value.Basis})"));
                }
            }
        }
        return (rows, pass);
    }

    /// <summary>0: the test found wrong data; 1: it broke otherwise (hang, crash, health, telemetry); 2: a rate or time missed its threshold.</summary>
    private static int FailRank(VerdictRow v) =>
        v.Metric == "errors_total" && v.Value > 0 ? 0
        : Units.Convert(1, v.Unit) is { Kind: QuantityKind.Bandwidth or QuantityKind.LinkRate or QuantityKind.Compute or QuantityKind.Time or QuantityKind.Power } ? 2
        : 1;

    private static IEnumerable<string> CheckFails(RunData check) =>
        check.Verdicts.Where(v => v.Status == VerdictStatus.FAIL).Take(3)
            .Select(v => $"kiln check {check.StartUtc:yyyy-MM-dd HH:mm} UTC FAIL {v.Backend}: {v.Reason}");

    /// <summary>
    /// A host drains for: a FAIL verdict of its own run (not one made under fault injection), a FAIL
    /// against the baseline, being a slow node-level outlier, holding a device far out (DrainsHost), or
    /// being the node the bad network pairs have in common.
    /// Other device outliers and drift are shown, not drained: at 3.5 sigma a healthy fleet of 8,000
    /// GPUs x 30 metrics flags dozens of devices by chance.
    /// </summary>
    /// <param name="check">The host's latest kiln check, when the run is a burn: its FAIL findings drain the host too.</param>
    /// <param name="net">The host as the common node of bad network pairs: it drains too (NetReason).</param>
    private static NodeSummary Summarise(RunData run, IEnumerable<Outlier> slow, IEnumerable<string> drift, IEnumerable<VerdictRow> baselineFails,
        RunData? check, NetSuspect? net)
    {
        var reasons = new List<string>();
        var fails = run.Verdicts.Where(v => v.Status == VerdictStatus.FAIL).ToList();
        if (run.IsCheck)
        {
            reasons.AddRange(CheckFails(run));
        }
        else
        {
            // A soak appends "; worst of N passes" after the injection mark, so look for it anywhere.
            // Wrong data leads, then what else broke (a hang, a health or telemetry FAIL), then a rate below its floor.
            foreach (var f in fails.Where(f => !f.Reason.Contains("(injected)", StringComparison.Ordinal)).OrderBy(FailRank).Take(3))
                reasons.Add($"FAIL {f.Test} {f.Backend}{f.Device}: {f.Reason}");
            // A killed or unfinished burn has no FAIL row, but it did not pass either.
            if (run.Count(VerdictStatus.FAIL) == 0 && !run.Injected && run.Verdict != nameof(NodeVerdict.PASS))
                reasons.Add($"burn ended {run.Verdict} (summary.json) with no FAIL row to explain it");
            if (check != null) reasons.AddRange(CheckFails(check));
        }
        // Node-level findings first: they are the reason; the devices behind them are detail.
        var outliers = slow.OrderBy(o => o.Level == "node" ? 0 : 1).ThenBy(o => -Math.Abs(o.Z)).ToList();
        foreach (var o in outliers.Take(3))
            reasons.Add($"slow {(o.Level == "node" ? "node" : $"{o.Family.Backend}{o.Device}")}: {o.Key} {Units.Number(o.Value)} {o.Family.Unit} is " +
                        $"{Math.Abs(o.DeviationPercent):0.#}% {(o.Family.HigherIsBetter ? "below" : "above")} the fleet median {Units.Number(o.Median)} (z {o.Z:0.0})");
        if (outliers.Count > 3) reasons.Add($"{outliers.Count - 3} more slow values (outliers.csv)");
        foreach (var b in baselineFails.Take(3))
            reasons.Add($"baseline FAIL {b.Test} {b.Backend}{b.Device}: {b.Reason}");
        if (net != null) reasons.Add(NetReason(net));
        return new NodeSummary(run.Host, run,
            run.Count(VerdictStatus.FAIL), run.Count(VerdictStatus.WARN), run.Count(VerdictStatus.SKIP),
            outliers.Select(o => o.Key).Distinct().ToList(),
            drift.Distinct().ToList(),
            reasons);
    }
}
