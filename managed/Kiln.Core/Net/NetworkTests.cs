// A plan's network tests in a burn: run once per node (not per device) from the parent, after the
// device tests (whose workers have ended), against the peer the plan names; allreduce over the node's
// GPUs of each GPU backend (NCCL/RCCL, CollectiveRun). Each gives one verdict row (backend net,
// device 0) judged by the profile's net: thresholds. A test this build or node cannot run is a SKIP
// with why.
using Kiln.Core.Evaluation;
using Kiln.Core.Plans;
using Kiln.Core.Profiles;
using Kiln.Core.Results;
using Kiln.Core.Runs;
using Kiln.Native;

namespace Kiln.Core.Net;

public static class NetworkTests
{
    /// <param name="devices">The burn's devices: allreduce runs over the GPUs among them.</param>
    public static IEnumerable<(TestOutcome Outcome, VerdictRow Verdict)> Run(Plan plan, IReadOnlyList<Device> devices, RunContext context,
        Profile profile, CancellationToken cancel)
    {
        foreach (var spec in plan.Tests.Where(s => Catalog.IsNetwork(s.Test)))
        {
            if (cancel.IsCancellationRequested) yield break;
            if (spec.Test == TestKind.Tcp && spec.Peer is { } peer)
            {
                var p = NetParams.Defaults();
                if (spec.Streams is { } streams) p.Streams = streams;
                if (spec.DurationMs is { } ms) p.DurationMs = Math.Max(100, ms);
                yield return ProbeRun.Run(NetEndpoint.Parse(peer, "peer"), p, context, profile, cancel);
                continue;
            }
            if (spec.Test == TestKind.Allreduce)
            {
                // One communicator per GPU backend; none at all is a SKIP that says so.
                List<IReadOnlyList<Device>> gpus = [.. devices.Where(d => d.Info.Backend != "cpu").GroupBy(d => d.Info.Backend).Select(g => g.ToList())];
                if (gpus.Count == 0) gpus.Add([]);
                foreach (var backend in gpus)
                {
                    if (cancel.IsCancellationRequested) yield break;
                    yield return CollectiveRun.Run(backend, CollectiveRun.FromSpec(spec), null, context, profile, cancel);
                }
                continue;
            }
            // rdma: against the peer's kiln net rdma serve, when this node has RDMA ports; else SKIP with why.
            using var rdma = RdmaProbe.Open(null, out var reason);
            if (rdma is not null && spec.Peer is { } rdmaPeer)
            {
                yield return ProbeRun.RunRdma(rdma, NetEndpoint.Parse(rdmaPeer, "peer"), RdmaParams.Defaults(), context, profile, cancel);
                continue;
            }
            var outcome = new TestOutcome(spec.Test, ProbeRun.PeerDevice(new NetEndpoint(spec.Peer ?? "-", 0), "rdma"), TestParams.Defaults(spec.Test))
            {
                End = TestEnd.Unsupported,
                Detail = rdma is null ? reason : $"{rdma.Ports.Count} RDMA port(s) found; the plan's rdma test names no peer (peer: HOST:PORT of kiln net rdma serve)",
            };
            var verdict = Evaluator.Judge(outcome, context.Host, profile);
            context.Files?.Verdicts?.Write(verdict);
            yield return (outcome, verdict);
        }
    }
}
