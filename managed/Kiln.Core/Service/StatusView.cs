// What `kiln status` shows and the API's /v1/states answers: the node's worst state, every component
// with its state, reason and suggested action, the open conditions, the last check and burn, and the
// latest state changes. One snapshot of the history, as text (one screen) or JSON.
using System.Globalization;
using System.Text.Json;
using Kiln.Core.Results;

namespace Kiln.Core.Service;

public sealed record StatusComponent(string Key, string Kind, string Name, string State, string Action, string Reason, DateTime SinceUtc,
    IReadOnlyList<StatusCondition> Conditions);

public sealed record StatusCondition(string Code, string State, string Action, string Reason, string Source, string ClearedBy, DateTime SinceUtc, DateTime LastUtc);

public sealed record StatusRun(long Id, string Kind, DateTime StartUtc, DateTime? EndUtc, string Status, string Detail, string? Folder);

public sealed record StatusEvent(DateTime TimeUtc, string Component, string From, string To, string Action, string Reason, string Actor);

public sealed record StatusView(string Host, string NodeState, string Database, IReadOnlyList<StatusComponent> Components,
    StatusRun? LastCheck, StatusRun? LastBurn, IReadOnlyList<StatusRun> RecentRuns, IReadOnlyList<StatusEvent> RecentEvents)
{
    public const int EventLines = 8;

    public static StatusView From(History history, string host)
    {
        var conditions = history.Conditions().GroupBy(c => c.Component).ToDictionary(g => g.Key, g => g.ToList());
        var components = history.Components().Select(c => new StatusComponent(c.Key, ComponentRef.KindName(c.Kind), c.Display,
            HealthNames.Name(c.State), HealthNames.Name(c.Action), c.Reason, c.SinceUtc,
            (conditions.GetValueOrDefault(c.Key) ?? []).Select(k => new StatusCondition(k.Code, HealthNames.Name(k.State), HealthNames.Name(k.Action),
                k.Reason, k.Source, Remedies.Name(k.ClearedBy), k.SinceUtc, k.LastUtc)).ToList())).ToList();
        static StatusRun? Run(RunRecord? r) => r is null ? null : new StatusRun(r.Id, r.Kind, r.StartUtc, r.EndUtc, r.Status, r.Detail, r.Folder);
        return new StatusView(host, HealthNames.Name(HealthLedger.Worst(history.Components())), history.Path, components,
            Run(history.LastRun(NodeService.CheckKind)), Run(history.LastRun(NodeService.BurnKind)),
            history.Runs(10).Select(r => Run(r)!).ToList(),
            history.Events(EventLines).Select(e => new StatusEvent(e.TimeUtc, e.Component, e.From, e.To, e.Action, e.Reason, e.Actor)).ToList());
    }

    public string ToJson() => JsonSerializer.Serialize(this, SummaryJson.Options);

    /// <summary>One screen: the node, each component (unhealthy first), the last runs, the latest changes.</summary>
    public void WriteText(TextWriter o, int width)
    {
        o.WriteLine(Fit($"kiln status on {Host}: node {NodeState.ToUpperInvariant()}, {Components.Count} components ({Database})", width));
        foreach (var c in Components.OrderByDescending(c => Rank(c.State)).ThenBy(c => c.Kind, StringComparer.Ordinal).ThenBy(c => c.Name, StringComparer.Ordinal))
        {
            var line = $"  {c.State.ToUpperInvariant(),-9} {c.Name}";
            if (c.State != "healthy") line += $": {c.Reason} -> {HealthNames.Describe(HealthNames.ParseAction(c.Action))} (since {Stamp(c.SinceUtc)})";
            o.WriteLine(Fit(line, width));
        }
        o.WriteLine(Fit($"last check: {Describe(LastCheck)}", width));
        o.WriteLine(Fit($"last burn:  {Describe(LastBurn)}", width));
        if (RecentEvents.Count > 0)
        {
            o.WriteLine("state changes (latest first):");
            foreach (var e in RecentEvents)
                o.WriteLine(Fit($"  {Stamp(e.TimeUtc)} {e.Component}: {e.From} -> {e.To} ({e.Action}) by {e.Actor}: {e.Reason}", width));
        }
    }

    private static int Rank(string state) => state switch { "unhealthy" => 2, "degraded" => 1, _ => 0 };

    private static string Describe(StatusRun? r) => r is null ? "none yet" : $"{r.Status} at {Stamp(r.StartUtc)}: {r.Detail}";

    private static string Stamp(DateTime utc) => utc.ToString("yyyy-MM-dd HH:mm:ss'Z'", CultureInfo.InvariantCulture);

    private static string Fit(string line, int width) => line.Length > width && width > 1 ? line[..(width - 1)] + "…" : line;
}
