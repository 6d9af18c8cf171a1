// How a run shows itself while it runs: a one-line progress bar on a terminal, plain timestamped
// log lines (one per test start and end, per metric, per data error) when stdout is a pipe or file.
using System.Diagnostics;
using System.Globalization;
using Kiln.Core.Evaluation;
using Kiln.Core.Results;
using Kiln.Core.Runs;
using Kiln.Native;

namespace Kiln.Cli.Output;

public static class Observers
{
    public static IRunObserver For(IConsoleOutput console) =>
        console.IsTerminal ? new ProgressBarObserver(console) : new LogLineObserver(console.Out, console.Error);

    public static string Label(TestOutcome t) => $"{t.TestKey} {t.Device.Backend}{t.Device.Index}";

    public static string Value(double value, string unit) =>
        value.ToString(Math.Abs(value) >= 100 || value == Math.Floor(value) ? "0.##" : "0.###", CultureInfo.InvariantCulture)
        + (unit is "" or "count" ? "" : " " + unit);

    public static string Ending(TestOutcome t, VerdictRow? verdict) =>
        verdict != null ? $"{verdict.Status}: {verdict.Reason}"
        : t.End switch
        {
            TestEnd.Completed => "done" + (t.Injected ? " (injected)" : ""),
            TestEnd.Cancelled or TestEnd.NotRun => "cancelled",
            TestEnd.Unsupported => $"unsupported: {t.Detail}",
            _ => $"could not run: {t.Detail}",
        };
}

public sealed class LogLineObserver(TextWriter output, TextWriter error) : IRunObserver
{
    private readonly Lock _gate = new();

    public void TestStarted(TestOutcome test, int ordinal, int total) =>
        Line($"start  {Observers.Label(test)} ({ordinal}/{total}){(test.Injected ? " injected" : "")}");

    public void MetricMeasured(TestOutcome test, in Metric metric) =>
        Line($"metric {Observers.Label(test)} {metric.Name} {Observers.Value(metric.Value, metric.Unit)}");

    public void DataErrorFound(TestOutcome test, in DataError e) =>
        Line($"error  {Observers.Label(test)} {e.Pattern} offset 0x{e.OffsetBytes:x} expected 0x{e.Expected:x16} actual 0x{e.Actual:x16} bits {string.Join(';', e.FlippedBits)}");

    public void Progress(TestOutcome test, double fraction) { }

    public void TestFinished(TestOutcome test, VerdictRow? verdict) =>
        Line($"end    {Observers.Label(test)} {Observers.Ending(test, verdict)}");

    public void Warning(string message)
    {
        lock (_gate) error.WriteLine($"kiln: warning: {message}");
    }

    private void Line(string text)
    {
        var stamp = DateTime.UtcNow.ToString("HH:mm:ss.fff", CultureInfo.InvariantCulture);
        lock (_gate) output.WriteLine($"{stamp} {text}");
    }
}

public sealed class ProgressBarObserver(IConsoleOutput console) : IRunObserver
{
    private const int BarCells = 24;
    private static readonly TimeSpan Redraw = TimeSpan.FromMilliseconds(100);

    private readonly Lock _gate = new();
    private readonly Stopwatch _sinceDraw = Stopwatch.StartNew();
    private string _label = "";
    private string _latest = "";
    private double _fraction;
    private long _errors;

    public void TestStarted(TestOutcome test, int ordinal, int total)
    {
        lock (_gate)
        {
            (_label, _latest, _fraction, _errors) = ($"[{ordinal}/{total}] {Observers.Label(test)}", "", 0, 0);
            Draw(force: true);
        }
    }

    public void MetricMeasured(TestOutcome test, in Metric metric)
    {
        lock (_gate)
        {
            _latest = $"{metric.Name} {Observers.Value(metric.Value, metric.Unit)}";
            Draw(force: false);
        }
    }

    public void DataErrorFound(TestOutcome test, in DataError error)
    {
        lock (_gate)
        {
            _errors++;
            Draw(force: false);
        }
    }

    public void Progress(TestOutcome test, double fraction)
    {
        lock (_gate)
        {
            _fraction = Math.Clamp(fraction, 0, 1);
            Draw(force: false);
        }
    }

    public void TestFinished(TestOutcome test, VerdictRow? verdict)
    {
        lock (_gate)
        {
            var label = _label.Length > 0 ? _label : Observers.Label(test);
            Clear();
            console.Out.WriteLine($"{label}: {Observers.Ending(test, verdict)}");
            _label = "";
        }
    }

    public void Warning(string message)
    {
        lock (_gate)
        {
            Clear();
            console.Error.WriteLine($"kiln: warning: {message}");
        }
    }

    // Throttled: the native side may report progress thousands of times a second.
    private void Draw(bool force)
    {
        if (_label.Length == 0 || (!force && _sinceDraw.Elapsed < Redraw)) return;
        _sinceDraw.Restart();
        var filled = (int)Math.Round(_fraction * BarCells);
        var line = $"{_label} [{new string('#', filled)}{new string('-', BarCells - filled)}] {_fraction * 100,3:0}%  {_latest}";
        if (_errors > 0) line += $"  errors {_errors}";
        var width = console.Width - 1;
        console.Out.Write("\r" + (line.Length > width ? line[..width] : line.PadRight(width)));
        console.Out.Flush();
    }

    private void Clear()
    {
        console.Out.Write("\r" + new string(' ', console.Width - 1) + "\r");
    }
}
