// plots/*.png through ScottPlot: per (test, device), each judged metric as a bar against the limit
// the profile set for it, and memtest's data errors per pattern. FigureStyle is the one look every
// kiln figure shares (fleet charts in Report/Charts.cs use it too).
using Kiln.Core.Evaluation;
using Kiln.Core.Profiles;
using Kiln.Native;
using ScottPlot;

namespace Kiln.Core.Results;

public static class FigureStyle
{
    public const int Width = 900, Height = 520;
    // Debian's fonts-dejavu-core; where it is missing ScottPlot falls back to the system default face.
    public const string FontFamily = "DejaVu Sans";
    public static readonly Color Pass = Color.FromHex("#2e7d32"), Warn = Color.FromHex("#f9a825"), Fail = Color.FromHex("#c62828"),
        Neutral = Color.FromHex("#1565c0"), Muted = Color.FromHex("#9e9e9e");

    public static Color Of(VerdictStatus status) => status switch
    {
        VerdictStatus.PASS => Pass,
        VerdictStatus.WARN => Warn,
        VerdictStatus.FAIL => Fail,
        _ => Muted,
    };

    public static void Save(Plot plot, string path, int width = Width, int height = Height)
    {
        plot.Font.Set(FontFamily);
        plot.SavePng(path, width, height);
    }

    /// <summary>Value labels on bars in the house font.</summary>
    public static void Label(ScottPlot.Plottables.BarPlot bars)
    {
        bars.ValueLabelStyle.FontSize = 14;
        bars.ValueLabelStyle.FontName = FontFamily;
    }
}

public static class Plots
{
    /// <summary>Draws every plot the outcomes allow; returns the files written.</summary>
    /// <param name="host">Names the run in the copy matrix's title.</param>
    public static IReadOnlyList<string> Write(ResultFolder folder, IReadOnlyList<TestOutcome> outcomes, Profile profile, string host = "")
    {
        Directory.CreateDirectory(folder.PlotsPath);
        var written = new List<string>();
        foreach (var o in outcomes.Where(o => o.Metrics.Count > 0))
        {
            var path = Path.Combine(folder.PlotsPath, $"{o.TestKey}_{o.Device.Backend}{o.Device.Index}.png");
            var drawn = o.Test == TestKind.Memtest ? MemtestErrors(o, path) : AgainstLimits(o, profile, path);
            if (drawn) written.Add(path);
        }
        written.AddRange(CopyMatrices(folder, outcomes, host));
        return written;
    }

    /// <summary>
    /// One bar per judged metric, coloured by its status, with its limit as a dashed mark over the bar.
    /// Metrics of different kinds on one plot are drawn as % of their limit so they share an axis.
    /// </summary>
    private static bool AgainstLimits(TestOutcome o, Profile profile, string path)
    {
        var judged = Evaluator.Assess(o, profile).Judged.ToList();
        if (judged.Count == 0) return o.Test == TestKind.Stream && StreamUnjudged(o, path);
        var oneKind = judged.Select(a => a.Threshold.Kind).Distinct().Count() == 1;
        double Scale(Assessment a, double v) => oneKind ? v : v / a.Limit * 100;
        var plot = new Plot();
        var bars = judged.Select((a, i) => new Bar
        {
            Position = i,
            Value = Scale(a, a.Value),
            FillColor = FigureStyle.Of(Evaluator.StatusOf(a.Margin, profile.WarnBand)),
            Label = Units.Number(a.Value),
        }).ToList();
        FigureStyle.Label(plot.Add.Bars(bars));
        for (var i = 0; i < judged.Count; i++)
        {
            var a = judged[i];
            var mark = plot.Add.Line(i - 0.45, Scale(a, a.Limit), i + 0.45, Scale(a, a.Limit));
            mark.LineWidth = 3;
            mark.LineColor = Colors.Black;
            mark.LinePattern = LinePattern.Dashed;
            if (i == 0)
            {
                var basis = judged.All(x => x.Basis == a.Basis) ? $": {a.Basis}" : "";
                mark.LegendText = $"{(a.Threshold.Direction == Direction.AtLeast ? "floor" : "ceiling")} (profile {profile.Name}{basis})";
            }
        }
        plot.ShowLegend(Alignment.UpperLeft);
        plot.Axes.Bottom.SetTicks(judged.Select((_, i) => (double)i).ToArray(), judged.Select(a => a.Metric).ToArray());
        plot.Axes.Margins(bottom: 0, top: 0.2);
        plot.Title($"{o.TestKey} on {o.Device.Backend}{o.Device.Index} ({o.Device.Name}){Injected(o)}");
        plot.YLabel(oneKind ? $"{Units.Describe(judged[0].Threshold.Kind)} ({judged[0].Threshold.Unit})" : "% of limit");
        FigureStyle.Save(plot, path);
        return true;
    }

    /// <summary>Stream without a threshold in the profile: the best GB/s per op, uncoloured.</summary>
    private static bool StreamUnjudged(TestOutcome o, string path)
    {
        var ops = Catalog.OpsIn(o.Parameters.OpMask).Select(op => (Op: op, Best: Evaluator.StreamBest(o, op) ?? 0)).ToList();
        var plot = new Plot();
        FigureStyle.Label(plot.Add.Bars(ops.Select((x, i) => new Bar
        {
            Position = i, Value = x.Best, FillColor = FigureStyle.Neutral, Label = Units.Number(x.Best),
        }).ToList()));
        plot.Axes.Bottom.SetTicks(ops.Select((_, i) => (double)i).ToArray(), ops.Select(x => x.Op).ToArray());
        plot.Axes.Margins(bottom: 0, top: 0.2);
        plot.Title($"stream on {o.Device.Backend}{o.Device.Index}: best GB/s per operation (no threshold){Injected(o)}");
        plot.YLabel("GB/s (1e9 bytes/s)");
        FigureStyle.Save(plot, path);
        return true;
    }

    /// <summary>One pattern of a memtest: its bandwidth (mean over the rounds; null when it did not run) and the wrong words it found.</summary>
    public sealed record MemtestBar(string Pattern, double? Gbps, double Errors);

    /// <summary>What a memtest figure shows: each pattern's bandwidth, the errors marked on it, and the bytes the test covered.</summary>
    public sealed record MemtestFigure(string Title, IReadOnlyList<MemtestBar> Bars);

    public static MemtestFigure Memtest(TestOutcome o)
    {
        var bars = Catalog.PatternsIn(o.Parameters.PatternMask)
            .Select(p => new MemtestBar(p, o.Metrics.TryGetValue($"{p}_gbps", out var v) && v.Count > 0 ? v.Average() : null, o.Sum($"errors_{p}") ?? 0))
            .ToList();
        var covered = o.Last("bytes_tested") is { } bytes ? $"{ByteSize.Format((ulong)bytes)} tested" : "bytes tested not reported";
        if (o.Last("fraction_of_free") is { } free) covered += $" ({free * 100:0.#}% of free)";
        var errors = bars.Sum(b => b.Errors);
        var verdict = errors > 0
            ? $"{errors:0} wrong words in {string.Join(", ", bars.Where(b => b.Errors > 0).Select(b => b.Pattern))}"
            : "no wrong words";
        return new MemtestFigure($"memtest on {o.Device.Backend}{o.Device.Index}: GB/s per pattern, {covered}; {verdict}{Injected(o)}", bars);
    }

    private static bool MemtestErrors(TestOutcome o, string path)
    {
        var figure = Memtest(o);
        var plot = new Plot();
        var bars = figure.Bars.Select((x, i) => new Bar
        {
            Position = i,
            Value = x.Gbps ?? 0,
            FillColor = x.Errors > 0 ? FigureStyle.Fail : x.Gbps is null ? FigureStyle.Muted : FigureStyle.Pass,
            Label = x.Gbps is not { } gbps ? "not run" : x.Errors > 0 ? $"{Units.Number(gbps)}\n{x.Errors:0} errors" : Units.Number(gbps),
        }).ToList();
        FigureStyle.Label(plot.Add.Bars(bars));
        plot.Axes.Bottom.SetTicks(figure.Bars.Select((_, i) => (double)i).ToArray(), figure.Bars.Select(x => x.Pattern).ToArray());
        plot.Axes.Margins(bottom: 0, top: 0.25);
        plot.Title(figure.Title);
        plot.YLabel("GB/s (1e9 bytes/s); red: wrong words found");
        FigureStyle.Save(plot, path);
        return true;
    }

    /// <summary>plots/&lt;family&gt;_&lt;backend&gt;_matrix.png of a run: the best value of each (source, destination) pair metric.</summary>
    private static IEnumerable<string> CopyMatrices(ResultFolder folder, IEnumerable<TestOutcome> outcomes, string host)
    {
        var pairs = outcomes.SelectMany(o => o.Metrics.Where(m => m.Value.Count > 0)
                .Select(m => (o.Device.Backend, Name: m.Key, Pair: MetricNames.Pair(m.Key), Best: m.Value.Max(), Unit: o.UnitOf(m.Key))))
            .Where(x => x.Pair != null)
            .GroupBy(x => (x.Pair!.Value.Family, x.Backend));
        foreach (var g in pairs)
        {
            var cells = new Dictionary<(int, int), double>();
            foreach (var x in g) cells[(x.Pair!.Value.Source, x.Pair.Value.Destination)] = x.Best;
            var path = Path.Combine(folder.PlotsPath, $"{g.Key.Family}_{g.Key.Backend}_matrix.png");
            CopyMatrix(cells, $"{g.Key.Family} on {host} ({g.Key.Backend}): source -> destination", g.First().Unit, path);
            yield return path;
        }
    }

    /// <summary>The matrix of (source, destination) -> value as a heatmap, each cell labelled with its value.</summary>
    public static void CopyMatrix(IReadOnlyDictionary<(int Source, int Destination), double> cells, string title, string unit, string path)
    {
        var n = cells.Keys.Max(k => Math.Max(k.Source, k.Destination)) + 1;
        var data = new double[n, n];
        for (var s = 0; s < n; s++)
        {
            for (var d = 0; d < n; d++) data[s, d] = cells.TryGetValue((s, d), out var v) ? v : double.NaN;
        }
        var plot = new Plot();
        // Row 0 of the data is drawn at the top, as a matrix is read: source s sits at y = n - 1 - s.
        var map = plot.Add.Heatmap(data);
        map.Colormap = new ScottPlot.Colormaps.Viridis();
        map.NaNCellColor = Colors.White;
        var bar = plot.Add.ColorBar(map);
        bar.Label = unit;
        var (low, high) = (cells.Values.Min(), cells.Values.Max());
        foreach (var ((s, d), v) in cells)
        {
            var text = plot.Add.Text(Units.Number(v), d, n - 1 - s);
            text.LabelFontSize = n > 12 ? 9 : 13;
            // Viridis is dark at the low end and yellow at the high end: pick the readable ink.
            text.LabelFontColor = high > low && (v - low) / (high - low) > 0.6 ? Colors.Black : Colors.White;
            text.LabelAlignment = Alignment.MiddleCenter;
        }
        var ticks = Enumerable.Range(0, n).Select(i => (double)i).ToArray();
        plot.Axes.Bottom.SetTicks(ticks, ticks.Select(i => $"{i}").ToArray());
        plot.Axes.Left.SetTicks(ticks.Select(i => n - 1 - i).ToArray(), ticks.Select(i => $"{i}").ToArray());
        plot.Axes.SetLimits(-0.5, n - 0.5, -0.5, n - 0.5);
        plot.XLabel("destination device");
        plot.YLabel("source device");
        plot.Title(title);
        FigureStyle.Save(plot, path, 760, 640);
    }

    private static string Injected(TestOutcome o) => o.Injected ? " (injected)" : "";
}
