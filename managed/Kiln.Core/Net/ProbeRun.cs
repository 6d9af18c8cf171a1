// One probe from this host to a peer (TCP, or RDMA through libkiln-rdma.so): its metrics streamed into
// metrics.csv as each phase ends (the same Recorder a burn's tests report through), then judged against
// the profile's net thresholds into one verdict row. A fault of the peer is a FAIL of that pair with
// the reason.
using Kiln.Core.Evaluation;
using Kiln.Core.Profiles;
using Kiln.Core.Results;
using Kiln.Core.Runs;
using Kiln.Native;

namespace Kiln.Core.Net;

public static class ProbeRun
{
    /// <summary>The "device" a probe's rows and verdict carry: backend net, index 0, named by its peer.</summary>
    public static DeviceInfo PeerDevice(NetEndpoint peer, string over = "tcp") =>
        new(Profile.NetBackend, $"{over} to {peer}", "", "", 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0);

    public static (TestOutcome Outcome, VerdictRow Verdict) Run(NetEndpoint peer, NetParams parameters, RunContext context, Profile profile, CancellationToken cancel) =>
        Measure(TestKind.Tcp, peer, context, profile, sink => NetProbe.Run(peer.Host, peer.Port, parameters, sink, cancel));

    /// <summary>The RDMA probe against a peer running <see cref="RdmaProbe.Serve"/> (kiln net rdma serve).</summary>
    public static (TestOutcome Outcome, VerdictRow Verdict) RunRdma(RdmaProbe rdma, NetEndpoint peer, RdmaParams parameters, RunContext context, Profile profile,
        CancellationToken cancel) =>
        Measure(TestKind.Rdma, peer, context, profile, sink => rdma.Probe(peer.Host, peer.Port, parameters, sink, cancel));

    private static (TestOutcome Outcome, VerdictRow Verdict) Measure(TestKind test, NetEndpoint peer, RunContext context, Profile profile, Func<ITestSink, KilnStatus> probe)
    {
        var outcome = new TestOutcome(test, PeerDevice(peer, Catalog.Key(test)), TestParams.Defaults(test));
        context.Observer.TestStarted(outcome, 1, 1);
        var recorder = new TestExecutor.Recorder(context, outcome, null);
        try
        {
            outcome.End = probe(recorder) == KilnStatus.Ok ? TestEnd.Completed : TestEnd.Cancelled;
        }
        catch (KilnException e) when (e.Status is KilnStatus.PeerError or KilnStatus.BackendError)
        {
            // The native text names the peer and what it did: "10.0.0.2:7300: send phase: stream 1: stalled ..."
            (outcome.End, outcome.Detail) = (TestEnd.Failed, e.Message);
        }
        var verdict = Evaluator.Judge(outcome, context.Host, profile);
        if (outcome.End == TestEnd.Completed) verdict = verdict with { Reason = $"peer {peer}: {verdict.Reason}" };
        context.Files?.Verdicts?.Write(verdict);
        context.Observer.TestFinished(outcome, verdict);
        return (outcome, verdict);
    }
}
