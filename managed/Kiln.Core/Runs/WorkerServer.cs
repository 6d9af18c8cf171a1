// The worker's side of a burn (`kiln worker`): one device, opened once, runs the tests the parent
// sends one at a time, every result written on the protocol stream as it is measured. A cancel
// request or the end of stdin (the parent went away) stops the running test.
using System.Collections.Concurrent;
using Kiln.Core.Evaluation;
using Kiln.Native;

namespace Kiln.Core.Runs;

public static class WorkerServer
{
    /// <summary>Serves until stdin ends; returns the process exit code (0, or 3 when the device cannot be opened).</summary>
    public static int Serve(Func<Device> open, TextReader input, Stream output, CancellationToken stop)
    {
        var events = new EventWriter(output);
        Device device;
        try
        {
            device = open();
        }
        catch (Exception e) when (e is KilnException or UsageException or KilnLoadException)
        {
            events.Write(new WorkerEvent(WorkerEvents.Fatal) { Detail = e.Message });
            return ExitCodes.Internal;
        }
        using (device)
        {
            events.Write(new WorkerEvent(WorkerEvents.Ready) { Detail = device.Info.Name });
            var runs = new BlockingCollection<WorkerRequest>();
            CancellationTokenSource? current = null;
            var gate = new Lock();
            var reader = new Thread(() =>
            {
                // Requests arrive while a test runs: a cancel must reach it.
                for (string? line; (line = input.ReadLine()) != null;)
                {
                    if (WorkerCodec.DecodeRequest(line, out _) is not { } request) continue;
                    if (request.Op == WorkerOps.Cancel) lock (gate) current?.Cancel();
                    else runs.Add(request);
                }
                lock (gate) current?.Cancel();
                runs.CompleteAdding();
            }) { IsBackground = true, Name = "kiln worker requests" };
            reader.Start();
            using var stopping = stop.Register(() => { lock (gate) current?.Cancel(); });
            foreach (var request in runs.GetConsumingEnumerable())
            {
                var cts = new CancellationTokenSource();
                lock (gate) current = cts;
                if (stop.IsCancellationRequested) cts.Cancel();
                var (end, detail) = InProcessRunner.Run(device, request.Params!, new Forwarder(events), cts.Token);
                lock (gate) current = null;
                cts.Dispose();
                events.Write(new WorkerEvent(WorkerEvents.End) { End = end.ToString(), Detail = detail });
            }
        }
        return ExitCodes.Passed;
    }

    private sealed class Forwarder(EventWriter events) : ITestSink
    {
        public void OnMetric(in Metric metric) => events.Write(WorkerEvent.Of(metric));
        public void OnDataError(in DataError error) => events.Write(WorkerEvent.Of(error));
        public void OnProgress(double fraction) => events.Write(new WorkerEvent(WorkerEvents.Progress) { Value = fraction });
    }

    /// <summary>Whole lines, flushed one by one: the parent sees each result as it is measured.</summary>
    private sealed class EventWriter(Stream output)
    {
        private readonly StreamWriter _writer = new(output, new System.Text.UTF8Encoding(false)) { AutoFlush = false, NewLine = "\n" };
        private readonly Lock _gate = new();

        public void Write(WorkerEvent e)
        {
            var line = WorkerCodec.Encode(e);
            lock (_gate)
            {
                _writer.WriteLine(line);
                _writer.Flush();
            }
        }
    }
}
