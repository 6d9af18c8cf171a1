// One collectives test (all-reduce, all-gather, reduce-scatter through NCCL/RCCL) over this node's
// GPUs of one backend, as ranks of one communicator (this node alone, or with other processes that
// met at the rendezvous): metrics streamed into metrics.csv as each op ends, wrong words into
// errors.csv, then one verdict judged by the profile's net: allreduce: thresholds. No library (or
// one too old) is a SKIP with the reason; another rank that does not come, or stops, is a FAIL.
using Kiln.Core.Evaluation;
using Kiln.Core.Profiles;
using Kiln.Core.Results;
using Kiln.Core.Runs;
using Kiln.Native;

namespace Kiln.Core.Net;

/// <summary>Which ranks this process is of a communicator that spans other processes (from the rendezvous).</summary>
public sealed record CollectiveRanks(int NRanks, int FirstRank, byte[] UniqueId);

public static class CollectiveRun
{
    /// <summary>The "device" a collectives test's rows and verdict carry: backend net, index 0, named by what it spans.</summary>
    public static DeviceInfo NodeDevice(string description) =>
        new(Profile.NetBackend, description, "", "", 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0);

    /// <param name="meet">For a run over several processes: meets the others (the rendezvous) and says this
    /// process's ranks; its failure (a process that never came) is this run's FAIL. Null: these devices alone.</param>
    public static (TestOutcome Outcome, VerdictRow Verdict) Run(IReadOnlyList<Device> devices, CollParams parameters,
        Func<CollectiveRanks>? meet, RunContext context, Profile profile, CancellationToken cancel)
    {
        ArgumentNullException.ThrowIfNull(devices);
        var backend = devices.Count > 0 ? devices[0].Info.Backend : "-";
        var reason = "no GPU to run collectives on (NCCL/RCCL run between GPUs)";
        var library = devices.Count > 0 ? Collectives.Library(devices[0], out reason) : null;
        if (library is not null && meet is null && devices.Count < 2)
            (library, reason) = (null, $"one {backend} GPU: a collective needs two ranks (busbw is 0 by definition at one)");
        var spans = meet is null ? $"{devices.Count} {backend} GPU(s)" : $"{devices.Count} {backend} GPU(s) and other processes'";
        var name = library is null ? $"collectives over {spans}" : $"{library.Name} {library.VersionText} over {spans}";
        var outcome = new TestOutcome(TestKind.Allreduce, NodeDevice(name), TestParams.Defaults(TestKind.Allreduce));
        if (library is null)
        {
            (outcome.End, outcome.Detail) = (TestEnd.Unsupported, reason);
            var skipped = Evaluator.Judge(outcome, context.Host, profile);
            context.Files?.Verdicts?.Write(skipped);
            context.Observer.TestFinished(outcome, skipped);
            return (outcome, skipped);
        }
        context.Observer.TestStarted(outcome, 1, 1);
        var recorder = new TestExecutor.Recorder(context, outcome, null);
        try
        {
            var ranks = meet?.Invoke();
            var status = Collectives.Run(devices, parameters, ranks?.NRanks ?? 0, ranks?.FirstRank ?? 0, ranks?.UniqueId, recorder, cancel);
            outcome.End = status == KilnStatus.Ok ? TestEnd.Completed : TestEnd.Cancelled;
        }
        catch (KilnException e) when (e.Status == KilnStatus.Cancelled)
        {
            (outcome.End, outcome.Detail) = (TestEnd.Cancelled, e.Message);
        }
        catch (KilnException e) when (e.Status == KilnStatus.Unsupported)
        {
            (outcome.End, outcome.Detail) = (TestEnd.Unsupported, e.Message);
        }
        catch (KilnException e)
        {
            // A rank that never came, a link that hung, the library's own failure, a size this node cannot
            // hold: the node's collectives failed, with the reason.
            (outcome.End, outcome.Detail) = (TestEnd.Failed, e.Message);
        }
        var verdict = Evaluator.Judge(outcome, context.Host, profile);
        context.Files?.Verdicts?.Write(verdict);
        context.Observer.TestFinished(outcome, verdict);
        return (outcome, verdict);
    }

    /// <summary>The knobs a plan's allreduce test gives: its size and iterations on top of the library's defaults.</summary>
    public static CollParams FromSpec(Plans.TestSpec spec)
    {
        var p = CollParams.Defaults();
        if (spec.Size?.Bytes is { } bytes) p.SizeBytes = bytes;
        if (spec.Iterations is { } n) p.Iterations = n;
        return p;
    }
}
