// One device of a burn, run in its own worker process (`kiln worker`): started on the device's first
// test and kept for the rest, so a hung kernel, a segfault or a sticky driver error costs that
// device only. The parent enforces each test's deadline from outside (cancel, then SIGKILL after a
// grace period), reads the worker's results as they are measured, and retires a device whose worker
// hung, crashed or broke the protocol: its remaining tests are skipped with that reason.
using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using Kiln.Core.Evaluation;
using Kiln.Core.Profiles;
using Kiln.Native;

namespace Kiln.Core.Runs;

/// <summary>How to start `kiln worker`: the program, the arguments before the worker's own, extra environment.</summary>
public sealed record WorkerLaunch(string FileName, IReadOnlyList<string> Arguments)
{
    public IReadOnlyDictionary<string, string> Environment { get; init; } = new Dictionary<string, string>();
    /// <summary>How long a test may take to stop after its cancel before its worker is killed.</summary>
    public TimeSpan Grace { get; init; } = TimeSpan.FromSeconds(5);
    /// <summary>How long a worker may take to open its device.</summary>
    public TimeSpan StartTimeout { get; init; } = TimeSpan.FromSeconds(120);
}

public sealed class DeviceLane(WorkerLaunch launch, DeviceInfo device) : ITestRunner, IDisposable
{
    private const int StderrLines = 8;
    private readonly BlockingCollection<string?> _lines = new();   // the worker's events; null once its stdout closed
    private readonly Queue<string> _stderr = new();
    private Process? _process;
    private string _lastMetric = "";
    private double _lastProgress = double.NaN;

    /// <summary>Why this device is not used again in the run (its worker hung, crashed ...); null while it is.</summary>
    public string? Retired { get; private set; }

    public (TestEnd End, string Detail) Run(PlannedTest planned, ITestSink sink, TimeSpan? timeout, CancellationToken cancel)
    {
        if (Retired is { } retired) return (TestEnd.Skipped, retired);
        if (_process is null && Start() is { } failed) return failed;
        (_lastMetric, _lastProgress) = ("", double.NaN);
        var test = Catalog.Key(planned.Spec.Test);
        if (!Send(new WorkerRequest(WorkerOps.Run, planned.Parameters))) return Died(test);

        var clock = Stopwatch.StartNew();
        TimeSpan? killAt = null;
        var timedOut = false;
        while (true)
        {
            if (!_lines.TryTake(out var line, 100))
            {
                var now = clock.Elapsed;
                if (killAt is { } k && now >= k)
                {
                    var why = timedOut
                        ? $"hang: {test} still running {Durations.Format(launch.Grace)} after its {Durations.Format(timeout!.Value)} timeout and the cancel; its worker was killed"
                        : $"hang: {test} did not stop within {Durations.Format(launch.Grace)} of the cancel; its worker was killed";
                    return Retire(TestEnd.Hung, why + LastState(), kill: true);
                }
                // Past the deadline, or cancelled: ask once, and kill after the grace period.
                if (killAt is null && (timeout is { } t && now >= t || cancel.IsCancellationRequested))
                {
                    timedOut = !cancel.IsCancellationRequested;
                    if (!Send(new WorkerRequest(WorkerOps.Cancel))) return Died(test);
                    killAt = now + launch.Grace;
                }
                continue;
            }
            if (line is null) return Died(test);
            if (WorkerCodec.DecodeEvent(line, out var bad) is not { } e)
                return Retire(TestEnd.Protocol, $"protocol: the worker wrote {Quote(line)}: {bad}; its worker was killed", kill: true);
            switch (e.E)
            {
                case WorkerEvents.Metric:
                    var metric = e.ToMetric();
                    _lastMetric = $"{metric.Name} {metric.Value.ToString("G6", CultureInfo.InvariantCulture)} {metric.Unit}".TrimEnd();
                    sink.OnMetric(metric);
                    break;
                case WorkerEvents.Error:
                    sink.OnDataError(e.ToDataError());
                    break;
                case WorkerEvents.Progress:
                    _lastProgress = e.Value;
                    sink.OnProgress(e.Value);
                    break;
                case WorkerEvents.End when Enum.TryParse<TestEnd>(e.End, out var end):
                    if (end == TestEnd.Cancelled && timedOut && !cancel.IsCancellationRequested)
                        return (TestEnd.TimedOut, InProcessRunner.TimedOutDetail(timeout!.Value));
                    return (end, e.Detail ?? "");
                default:
                    return Retire(TestEnd.Protocol, $"protocol: the worker wrote {Quote(line)} during {test}; its worker was killed", kill: true);
            }
        }
    }

    public void Dispose()
    {
        if (_process is null) return;
        try
        {
            _process.StandardInput.Close();   // the worker ends at the end of its stdin
            if (!_process.WaitForExit(2000)) _process.Kill(entireProcessTree: true);
        }
        catch (Exception e) when (e is IOException or InvalidOperationException or System.ComponentModel.Win32Exception)
        {
            // already gone
        }
        _process.Dispose();
    }

    // Starts the worker and waits for its device to open; the ending of the test when it could not.
    private (TestEnd, string)? Start()
    {
        var start = new ProcessStartInfo(launch.FileName)
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var a in launch.Arguments) start.ArgumentList.Add(a);
        foreach (var a in new[] { "worker", "--backend", device.Backend, "--device", device.Index.ToString(CultureInfo.InvariantCulture),
                     "--parent", System.Environment.ProcessId.ToString(CultureInfo.InvariantCulture) })
            start.ArgumentList.Add(a);
        foreach (var (name, value) in launch.Environment) start.Environment[name] = value;
        try
        {
            _process = Spawner.Start(start);
        }
        catch (Exception e) when (e is System.ComponentModel.Win32Exception or InvalidOperationException)
        {
            _process = null;
            Retired = $"could not start its worker ({launch.FileName}): {e.Message}";
            return (TestEnd.Failed, Retired);
        }
        _process.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is null) return;
            lock (_stderr)
            {
                _stderr.Enqueue(e.Data);
                while (_stderr.Count > StderrLines) _stderr.Dequeue();
            }
        };
        _process.BeginErrorReadLine();
        var stdout = _process.StandardOutput;
        new Thread(() =>
        {
            try
            {
                for (string? line; (line = stdout.ReadLine()) != null;) _lines.Add(line);
            }
            catch (IOException)
            {
                // the pipe broke: the same as its end
            }
            _lines.Add(null);
        }) { IsBackground = true, Name = $"kiln worker {device.Backend}{device.Index}" }.Start();

        if (!_lines.TryTake(out var first, launch.StartTimeout))
            return Retire(TestEnd.Hung, $"hang: its worker did not open the device within {Durations.Format(launch.StartTimeout)}; killed", kill: true);
        if (first is null) return Died("start-up");
        var hello = WorkerCodec.DecodeEvent(first, out var why);
        return hello?.E switch
        {
            WorkerEvents.Ready => null,
            WorkerEvents.Fatal => Retire(TestEnd.Failed, $"its worker could not open the device: {hello.Detail}", kill: false),
            _ => Retire(TestEnd.Protocol, $"protocol: the worker wrote {Quote(first)} at start-up{(why.Length > 0 ? $": {why}" : "")}; its worker was killed", kill: true),
        };
    }

    private bool Send(WorkerRequest request)
    {
        try
        {
            _process!.StandardInput.WriteLine(WorkerCodec.Encode(request));
            _process.StandardInput.Flush();
            return true;
        }
        catch (IOException)
        {
            return false;   // the worker is gone: its exit says why
        }
    }

    // The worker's stdout closed: it exited, or died of a signal.
    private (TestEnd, string) Died(string during)
    {
        var process = _process!;
        if (!process.WaitForExit(5000)) process.Kill(entireProcessTree: true);
        process.WaitForExit();
        var code = process.ExitCode;
        // .NET reports a child killed by signal N as exit code 128 + N.
        var how = code > 128 && code < 128 + 65 ? $"died of signal {code - 128}{SignalName(code - 128)}" : $"exited with code {code}";
        string tail;
        lock (_stderr) tail = _stderr.Count == 0 ? "" : $"; its last stderr: {string.Join(" | ", _stderr)}";
        return Retire(TestEnd.Crashed, $"crash: its worker {how} during {during}{LastState()}{tail}", kill: false);
    }

    private (TestEnd, string) Retire(TestEnd end, string detail, bool kill)
    {
        if (kill && _process is { } p)
        {
            try { p.Kill(entireProcessTree: true); }
            catch (InvalidOperationException) { }
            p.WaitForExit();
        }
        var what = end switch
        {
            TestEnd.Hung => "hung",
            TestEnd.Crashed => "crashed",
            TestEnd.Protocol => "broke the protocol",
            _ => "could not start",
        };
        Retired = $"not run: {device.Backend}{device.Index} was retired after its worker {what} ({FirstClause(detail)})";
        return (end, detail);
    }

    private string LastState()
    {
        var parts = new List<string>();
        if (!double.IsNaN(_lastProgress)) parts.Add($"last progress {_lastProgress * 100:0.#}%");
        if (_lastMetric.Length > 0) parts.Add($"last metric {_lastMetric}");
        return parts.Count == 0 ? "; nothing reported before" : "; " + string.Join(", ", parts);
    }

    /// <summary>
    /// Starts every worker from one thread that lives as long as the process: a worker asks to die
    /// with the thread that started it (PR_SET_PDEATHSIG follows the forking thread, not the
    /// process), and a burn's per-device threads end between soak passes.
    /// </summary>
    private static class Spawner
    {
        private static readonly BlockingCollection<(ProcessStartInfo Start, TaskCompletionSource<Process> Done)> Queue = new();

        static Spawner() => new Thread(() =>
        {
            foreach (var (start, done) in Queue.GetConsumingEnumerable())
            {
                try { done.SetResult(Process.Start(start) ?? throw new InvalidOperationException("no process")); }
                catch (Exception e) { done.SetException(e); }
            }
        }) { IsBackground = true, Name = "kiln worker spawner" }.Start();

        public static Process Start(ProcessStartInfo start)
        {
            var done = new TaskCompletionSource<Process>(TaskCreationOptions.RunContinuationsAsynchronously);
            Queue.Add((start, done));
            try
            {
                return done.Task.GetAwaiter().GetResult();
            }
            catch (AggregateException e) when (e.InnerException is { } inner)
            {
                throw inner;
            }
        }
    }

    private static string FirstClause(string detail) => detail.Split(';', 2)[0];

    private static string Quote(string line) => line.Length > 80 ? $"'{line[..80]}...'" : $"'{line}'";

    private static string SignalName(int signal) => signal switch
    {
        6 => " (SIGABRT)",
        7 => " (SIGBUS)",
        9 => " (SIGKILL)",
        11 => " (SIGSEGV)",
        15 => " (SIGTERM)",
        _ => "",
    };
}
