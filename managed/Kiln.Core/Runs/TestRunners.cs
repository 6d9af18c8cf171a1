// Where a test runs: in this process (the worker's side, and `kiln bench`), or in the device's
// worker process (a burn: DeviceLane). Each returns how the test ended; its results reach the sink.
using Kiln.Core.Evaluation;
using Kiln.Core.Profiles;
using Kiln.Native;

namespace Kiln.Core.Runs;

public interface ITestRunner
{
    /// <summary>Why this runner runs nothing more (its worker hung, crashed ...); null while it runs tests.</summary>
    string? Retired { get; }

    /// <summary>
    /// Runs the test, streaming its results into sink, and says how it ended. timeout: stopped
    /// past it (TimedOut, or Hung when it does not stop), null = no deadline.
    /// </summary>
    (TestEnd End, string Detail) Run(PlannedTest planned, ITestSink sink, TimeSpan? timeout, CancellationToken cancel);
}

public sealed class InProcessRunner : ITestRunner
{
    public static InProcessRunner Instance { get; } = new();

    public string? Retired => null;

    public (TestEnd End, string Detail) Run(PlannedTest planned, ITestSink sink, TimeSpan? timeout, CancellationToken cancel)
    {
        using var limit = CancellationTokenSource.CreateLinkedTokenSource(cancel);
        if (timeout is { } t) limit.CancelAfter(t);
        var (end, detail) = Run(planned.Device, planned.Parameters, sink, limit.Token);
        if (end == TestEnd.Cancelled && timeout is { } limitTime && !cancel.IsCancellationRequested)
            return (TestEnd.TimedOut, TimedOutDetail(limitTime));
        return (end, detail);
    }

    /// <summary>One test on an open device, its ending in the terms of TestEnd.</summary>
    public static (TestEnd End, string Detail) Run(Device device, TestParams parameters, ITestSink sink, CancellationToken cancel)
    {
        try
        {
            var status = device.Run(parameters, sink, cancel);
            return (status == KilnStatus.Cancelled ? TestEnd.Cancelled : TestEnd.Completed, "");
        }
        catch (KilnException e) when (e.Status == KilnStatus.Unsupported)
        {
            return (TestEnd.Unsupported, e.Message);
        }
        catch (KilnException e)
        {
            return (TestEnd.Failed, $"{e.Status}: {e.Message}");
        }
    }

    public static string TimedOutDetail(TimeSpan timeout) => $"timed out: still running after {Durations.Format(timeout)} (plan timeout), stopped";
}
