// Turns what the service saw (a check's findings, a burn's verdicts, an operator's clear) into open
// conditions per component and the components' states, and records every state change. A condition
// only goes away through a passing re-test of its component (ClearedBy), never because time passed:
// a reading clears when the next check that read it no longer sees it; a log event or a failed test
// clears when the component passes every test of a later burn; the rest only by `kiln status --clear`.
// A reboot-fixable Xid that comes back after two reboots (three boot_ids) calls for hardware inspection.
using Kiln.Core.Health;
using Kiln.Core.Results;
using Kiln.Core.Runs;
using Kiln.Native;

namespace Kiln.Core.Service;

/// <summary>One component whose state changed.</summary>
public sealed record StateChange(ComponentRef Component, HealthState From, HealthState To, SuggestedAction Action, string Reason);

public sealed class HealthLedger(History history, HealthPolicy policy)
{
    public const string ServiceActor = "kiln service";
    /// <summary>An Xid seen in this many boots was not fixed by the reboots between them.</summary>
    public const int EscalateAfterBoots = 3;
    private const int ReasonChars = 300;

    /// <summary>Stores a check's health findings as conditions, clears the readings it re-tested, and updates the states.</summary>
    public IReadOnlyList<StateChange> ApplyCheck(CheckReport report, long runId, string bootId, DateTime nowUtc)
    {
        var seen = new List<ComponentRef> { ComponentRef.Node };
        seen.AddRange(report.Gpus.Select(ComponentRef.Gpu));
        seen.AddRange(report.Hcas.SelectMany(h => h.Ports.Select(p => new ComponentRef($"{h.Name} port {p.Number}", ComponentKind.HcaPort, $"{h.Name} port {p.Number}"))));
        seen.AddRange(report.MemoryControllers.Select(m => new ComponentRef(m.Name.ToLowerInvariant(), ComponentKind.MemoryController, m.Name)));

        var present = new HashSet<(string, string)>();
        foreach (var f in report.Findings)
        {
            history.AddFinding(new FindingRecord(runId, nowUtc, f.Check, f.Component, Finding.Name(f.Severity), f.Code, f.Message));
            if (!Remedies.IsHealth(f)) continue;
            var component = Components.Of(f, report.Gpus);
            seen.Add(component);
            var code = f.Xid is { } x ? $"{f.Code}:{x}" : f.Code;
            present.Add((component.Key, code));
            var action = Remedies.For(f, policy);
            var reason = f.Message;
            if (f.Xid is { } xid && Remedies.RebootFixable(action))
            {
                var boots = history.RecordXidBoot(component.Key, xid, bootId, nowUtc);
                if (boots >= EscalateAfterBoots)
                {
                    action = SuggestedAction.HardwareInspection;
                    reason = $"Xid {xid} came back after {boots - 1} reboots (seen in {boots} boots): a reboot does not fix it; {reason}";
                }
            }
            var old = history.Conditions(component.Key).FirstOrDefault(c => c.Code == code);
            history.PutCondition(new Condition(component.Key, code, HealthNames.Of(f.Severity),
                old is null ? action : (SuggestedAction)Math.Max((int)old.Action, (int)action),
                Short(reason), f.Check, Remedies.ClearedByFor(f, component), old?.SinceUtc ?? nowUtc, nowUtc));
        }

        // A reading this check took again, and found fine, is a passing re-test of that reading.
        var ran = Health.FindingCodes.Sources.Where(s => report.Skipped.All(k => k.Check != s)).ToHashSet(StringComparer.Ordinal);
        var cleared = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var c in history.Conditions().Where(c => c.ClearedBy == ClearedBy.Check && ran.Contains(c.Source) && !present.Contains((c.Component, c.Code))))
        {
            history.DeleteCondition(c.Component, c.Code);
            cleared[c.Component] = $"passed a re-check: {c.Code} no longer seen by {c.Source}";
        }
        return Recompute(seen, cleared, nowUtc, ServiceActor);
    }

    /// <summary>
    /// Stores a burn's FAIL and WARN verdicts as conditions of their components; when the burn ran to
    /// its end, a component that passed every one of its tests has its log events and failed tests cleared.
    /// </summary>
    public IReadOnlyList<StateChange> ApplyBurn(IReadOnlyList<VerdictRow> verdicts, IReadOnlyList<DeviceInfo> devices, bool complete,
        string runName, DateTime nowUtc)
    {
        ComponentRef Of(VerdictRow v) =>
            devices.FirstOrDefault(d => d.Backend == v.Backend && d.Index == v.Device) is { } d ? ComponentRef.Device(d) : ComponentRef.Node;
        var seen = devices.Select(ComponentRef.Device).Append(ComponentRef.Node).ToList();
        foreach (var v in verdicts.Where(v => v.Status is VerdictStatus.FAIL or VerdictStatus.WARN))
        {
            var component = Of(v);
            var code = $"BURN:{v.Test}";
            var old = history.Conditions(component.Key).FirstOrDefault(c => c.Code == code);
            var state = v.Status == VerdictStatus.FAIL ? HealthState.Unhealthy : HealthState.Degraded;
            history.PutCondition(new Condition(component.Key, code, state,
                state == HealthState.Unhealthy ? SuggestedAction.HardwareInspection : SuggestedAction.None,
                Short($"{v.Test} {v.Backend}{v.Device} {v.Status} in {runName}: {v.Reason}"), "burn", ClearedBy.Burn, old?.SinceUtc ?? nowUtc, nowUtc));
        }
        var cleared = new Dictionary<string, string>(StringComparer.Ordinal);
        if (complete)
        {
            foreach (var group in verdicts.GroupBy(v => Of(v).Key))
            {
                var rows = group.ToList();
                if (rows.Any(v => v.Status is VerdictStatus.FAIL or VerdictStatus.WARN) || rows.All(v => v.Status != VerdictStatus.PASS)) continue;
                var open = history.Conditions(group.Key).Where(c => c.ClearedBy == ClearedBy.Burn).ToList();
                foreach (var c in open) history.DeleteCondition(c.Component, c.Code);
                if (open.Count > 0)
                    cleared[group.Key] = $"passed a re-test: every test PASS in {runName} ({string.Join(", ", rows.Where(r => r.Status == VerdictStatus.PASS).Select(r => r.Test).Distinct())})";
            }
        }
        return Recompute(seen, cleared, nowUtc, ServiceActor);
    }

    /// <summary>
    /// An operator's clear: every open condition of the component goes, recorded with who and when.
    /// <paramref name="name"/> is a key (a GPU's UUID, "mlx5_0 port 1", "mc0", "node"), a displayed name's
    /// first word ("gpu3") or a PCI address. Returns the component, or null when none matches.
    /// </summary>
    public ComponentRecord? Clear(string name, string actor, string why, DateTime nowUtc)
    {
        var all = history.Components();
        var match = all.FirstOrDefault(c => c.Key.Equals(name, StringComparison.OrdinalIgnoreCase))
                    ?? all.FirstOrDefault(c => c.Display.Equals(name, StringComparison.OrdinalIgnoreCase))
                    ?? all.FirstOrDefault(c => c.Display.Split(' ')[0].Equals(name, StringComparison.OrdinalIgnoreCase))
                    ?? all.FirstOrDefault(c => c.Display.Split(' ').Any(w => w.Equals(name, StringComparison.OrdinalIgnoreCase)));
        if (match is null) return null;
        history.InTransaction(() =>
        {
            foreach (var c in history.Conditions(match.Key)) history.DeleteCondition(c.Component, c.Code);
            Recompute([new ComponentRef(match.Key, match.Kind, match.Display)],
                new Dictionary<string, string> { [match.Key] = $"cleared by an operator: {why}" }, nowUtc, actor);
            if (match.State == HealthState.Healthy)
                history.AddEvent(nowUtc, match.Key, HealthNames.Name(match.State), HealthNames.Name(HealthState.Healthy), HealthNames.Name(SuggestedAction.None),
                    $"cleared by an operator (it was already healthy): {why}", actor);
        });
        return history.Components().First(c => c.Key == match.Key);
    }

    /// <summary>The worst state of all components: the node's own state.</summary>
    public static HealthState Worst(IEnumerable<ComponentRecord> components) =>
        components.Select(c => c.State).DefaultIfEmpty(HealthState.Healthy).Max();

    private IReadOnlyList<StateChange> Recompute(IEnumerable<ComponentRef> seen, Dictionary<string, string> cleared, DateTime nowUtc, string actor)
    {
        var known = history.Components().ToDictionary(c => c.Key, StringComparer.Ordinal);
        var conditions = history.Conditions().GroupBy(c => c.Component).ToDictionary(g => g.Key, g => g.ToList(), StringComparer.Ordinal);
        var refs = new Dictionary<string, ComponentRef>(StringComparer.Ordinal);
        foreach (var k in known.Values) refs[k.Key] = new ComponentRef(k.Key, k.Kind, k.Display);
        // What was seen now names the component best (a GPU's index and PCI address can change).
        foreach (var s in seen) refs[s.Key] = refs.TryGetValue(s.Key, out var had) && s.Display == s.Key ? had : s;
        foreach (var key in conditions.Keys.Where(k => !refs.ContainsKey(k))) refs[key] = new ComponentRef(key, ComponentKind.Node, key);

        var changes = new List<StateChange>();
        foreach (var component in refs.Values)
        {
            var open = conditions.GetValueOrDefault(component.Key) ?? [];
            var state = open.Select(c => c.State).DefaultIfEmpty(HealthState.Healthy).Max();
            var action = open.Select(c => c.Action).DefaultIfEmpty(SuggestedAction.None).Max();
            var worst = open.Where(c => c.State == state).OrderByDescending(c => c.Action).ThenBy(c => c.SinceUtc).FirstOrDefault();
            var reason = worst is null ? cleared.GetValueOrDefault(component.Key, "")
                : open.Count == 1 ? worst.Reason : $"{worst.Reason} (and {open.Count - 1} more)";
            known.TryGetValue(component.Key, out var before);
            var from = before?.State ?? HealthState.Healthy;
            var record = new ComponentRecord(component.Key, component.Kind, component.Display, state, action, reason,
                before is not null && before.State == state ? before.SinceUtc : nowUtc);
            if (record == before) continue;
            history.PutComponent(record);
            if (before is null && state == HealthState.Healthy) continue;   // first seen, healthy: nothing changed
            if (from != state || before?.Action != action)
            {
                var why = state == HealthState.Healthy ? cleared.GetValueOrDefault(component.Key, reason) : reason;
                history.AddEvent(nowUtc, component.Key, HealthNames.Name(from), HealthNames.Name(state), HealthNames.Name(action), why, actor);
                changes.Add(new StateChange(component, from, state, action, why));
            }
        }
        return changes;
    }

    private static string Short(string text) => text.Length <= ReasonChars ? text : text[..(ReasonChars - 1)] + "…";
}
