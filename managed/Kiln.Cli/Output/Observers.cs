// How a run shows itself while it runs: on a terminal a progress line per device and one for the
// whole plan with its ETA; plain timestamped log lines (one per test start and end, per metric, per
// data error) when stdout is a pipe or file. Both take events from every device's thread at once.
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

/// <summary>
/// On a terminal: one line per device (its current test, a bar, the latest value), redrawn in
/// place at most ten times a second, and a last line with the whole plan's progress and ETA. A
/// finished test prints its verdict line above them; a warning too.
/// </summary>
public sealed class ProgressBarObserver(IConsoleOutput console) : IRunObserver
{
    private const int BarCells = 20;
    private static readonly TimeSpan Redraw = TimeSpan.FromMilliseconds(100);

    private sealed class Lane
    {
        public string Label = "", Latest = "";
        public double Fraction;
        public int Ordinal, Total;
        public long Errors;
        public bool Done;
    }

    private readonly Lock _gate = new();
    private readonly Stopwatch _sinceDraw = Stopwatch.StartNew();
    private readonly Stopwatch _run = Stopwatch.StartNew();
    private readonly SortedDictionary<string, Lane> _lanes = new(StringComparer.Ordinal);
    private int _drawn;   // lines of the block on screen now

    private Lane Of(TestOutcome t)
    {
        var key = $"{t.Device.Backend}{t.Device.Index}";
        return _lanes.TryGetValue(key, out var lane) ? lane : _lanes[key] = new Lane();
    }

    public void TestStarted(TestOutcome test, int ordinal, int total)
    {
        lock (_gate)
        {
            var lane = Of(test);
            (lane.Label, lane.Latest, lane.Fraction, lane.Errors, lane.Ordinal, lane.Total, lane.Done) =
                ($"[{ordinal}/{total}] {Observers.Label(test)}", "", 0, 0, ordinal, total, false);
            Draw(force: true);
        }
    }

    public void MetricMeasured(TestOutcome test, in Metric metric)
    {
        lock (_gate)
        {
            Of(test).Latest = $"{metric.Name} {Observers.Value(metric.Value, metric.Unit)}";
            Draw(force: false);
        }
    }

    public void DataErrorFound(TestOutcome test, in DataError error)
    {
        lock (_gate)
        {
            Of(test).Errors++;
            Draw(force: false);
        }
    }

    public void Progress(TestOutcome test, double fraction)
    {
        lock (_gate)
        {
            Of(test).Fraction = Math.Clamp(fraction, 0, 1);
            Draw(force: false);
        }
    }

    public void TestFinished(TestOutcome test, VerdictRow? verdict)
    {
        lock (_gate)
        {
            var lane = Of(test);
            Clear();
            console.Out.WriteLine($"{(lane.Label.Length > 0 ? lane.Label : Observers.Label(test))}: {Observers.Ending(test, verdict)}");
            (lane.Fraction, lane.Latest) = (1, "");
            lane.Done = lane.Ordinal >= lane.Total;
            Draw(force: true);
        }
    }

    public void Warning(string message)
    {
        lock (_gate)
        {
            Clear();
            console.Error.WriteLine($"kiln: warning: {message}");
            Draw(force: true);
        }
    }

    // Throttled: the native side may report progress thousands of times a second.
    private void Draw(bool force)
    {
        if (!force && _sinceDraw.Elapsed < Redraw) return;
        _sinceDraw.Restart();
        var width = Math.Max(20, console.Width - 1);
        var lines = new List<string>();
        foreach (var lane in _lanes.Values.Where(l => !l.Done && l.Label.Length > 0))
        {
            var filled = (int)Math.Round(lane.Fraction * BarCells);
            var line = $"{lane.Label} [{new string('#', filled)}{new string('-', BarCells - filled)}] {lane.Fraction * 100,3:0}%  {lane.Latest}";
            if (lane.Errors > 0) line += $"  errors {lane.Errors}";
            lines.Add(line);
        }
        // The plan: each device's share done, its tests counted equal; the ETA from the time so far.
        var done = _lanes.Count == 0 ? 0 : _lanes.Values.Average(l => l.Total == 0 ? 0 : (l.Ordinal - 1 + l.Fraction) / l.Total);
        if (lines.Count > 0)
        {
            var eta = done > 0.02 ? TimeSpan.FromSeconds(_run.Elapsed.TotalSeconds * (1 - done) / done) : (TimeSpan?)null;
            lines.Add($"plan {done * 100:0}%  elapsed {Clock(_run.Elapsed)}{(eta is { } e ? $"  ETA {Clock(e)}" : "")}");
        }
        var text = new System.Text.StringBuilder();
        if (_drawn > 0) text.Append($"\u001b[{_drawn}F");   // to the start of the block
        foreach (var line in lines) text.Append("\u001b[2K").Append(line.Length > width ? line[..width] : line).Append('\n');
        for (var extra = lines.Count; extra < _drawn; extra++) text.Append("\u001b[2K\n");
        if (_drawn > lines.Count) text.Append($"\u001b[{_drawn - lines.Count}F");
        console.Out.Write(text.ToString());
        console.Out.Flush();
        _drawn = lines.Count;
    }

    private static string Clock(TimeSpan t) => $"{(int)t.TotalMinutes:00}:{t.Seconds:00}";

    // Erases the block; the cursor ends where it began.
    private void Clear()
    {
        if (_drawn == 0) return;
        var text = new System.Text.StringBuilder($"\u001b[{_drawn}F");
        for (var i = 0; i < _drawn; i++) text.Append("\u001b[2K\n");
        text.Append($"\u001b[{_drawn}F");
        console.Out.Write(text.ToString());
        _drawn = 0;
    }
}
