// The service's kiln.prom (and /metrics): a health-state gauge per component (0 healthy, 1 degraded,
// 2 unhealthy) with its suggested action, the node's worst state, when the last check and burn ran,
// and the last check's own families (CheckResults.Prometheus), so one file holds the node's health.
using Kiln.Core.Health;
using Kiln.Core.Results;

namespace Kiln.Core.Service;

public static class ServiceMetrics
{
    public static PrometheusWriter Build(History history, CheckReport? lastCheck, string host)
    {
        var p = lastCheck is null ? new PrometheusWriter() : CheckResults.Prometheus(lastCheck);
        var h = ("host", host);
        var components = history.Components();
        var state = p.Gauge("kiln_component_health", "Health state of a component: 0 healthy, 1 degraded, 2 unhealthy (labels: the state and the suggested action).");
        foreach (var c in components)
        {
            p.Add(state, (int)c.State, h, ("component", c.Key), ("kind", ComponentRef.KindName(c.Kind)), ("name", c.Display),
                ("state", HealthNames.Name(c.State)), ("action", HealthNames.Name(c.Action)));
        }
        var open = p.Gauge("kiln_component_conditions", "Open conditions (findings or failed tests not yet cleared by a passing re-test) of a component.");
        foreach (var g in history.Conditions().GroupBy(c => c.Component))
            p.Add(open, g.Count(), h, ("component", g.Key));
        p.Add(p.Gauge("kiln_node_health", "The node's worst component state: 0 healthy, 1 degraded, 2 unhealthy."), (int)HealthLedger.Worst(components), h);
        foreach (var kind in new[] { NodeService.CheckKind, NodeService.BurnKind })
        {
            if (history.LastRun(kind, "PASS", "WARN", "FAIL") is { } last)
            {
                p.Add(p.Gauge("kiln_service_last_run_timestamp_seconds", "When the service's last completed check or burn started, Unix time."),
                    new DateTimeOffset(last.StartUtc, TimeSpan.Zero).ToUnixTimeSeconds(), h, ("kind", kind), ("status", last.Status));
            }
        }
        p.Add(p.Gauge("kiln_service_history_bytes", "Size of the service's history database on disk."), history.SizeBytes(), h);
        return p;
    }
}
