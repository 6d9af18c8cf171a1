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
    public static IReadOnlyList<string> Write(ResultFolder folder, IEnumerable<TestOutcome> outcomes, Profile profile)
    {
        Directory.CreateDirectory(folder.PlotsPath);
        var written = new List<string>();
        foreach (var o in outcomes.Where(o => o.Metrics.Count > 0))
        {
            var path = Path.Combine(folder.PlotsPath, $"{o.TestKey}_{o.Device.Backend}{o.Device.Index}.png");
            var drawn = o.Test == TestKind.Memtest ? MemtestErrors(o, path) : AgainstLimits(o, profile, path);
            if (drawn) written.Add(path);
        }
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

    private static bool MemtestErrors(TestOutcome o, string path)
    {
        var patterns = Catalog.PatternsIn(o.Parameters.PatternMask)
            .Select(p => (Pattern: p, Errors: o.Sum($"errors_{p}"))).ToList();
        var plot = new Plot();
        var bars = patterns.Select((x, i) => new Bar
        {
            Position = i,
            Value = x.Errors ?? 0,
            FillColor = x.Errors > 0 ? FigureStyle.Fail : FigureStyle.Pass,
            Label = x.Errors is { } n ? n.ToString("0") : "not run",
        }).ToList();
        FigureStyle.Label(plot.Add.Bars(bars));
        plot.Axes.Bottom.SetTicks(patterns.Select((_, i) => (double)i).ToArray(), patterns.Select(x => x.Pattern).ToArray());
        plot.Axes.Left.TickGenerator = new ScottPlot.TickGenerators.NumericAutomatic { IntegerTicksOnly = true };
        // Keep a visible axis when every count is 0, so "no errors" reads as a measured zero.
        plot.Axes.SetLimitsY(0, Math.Max(1, patterns.Max(x => x.Errors ?? 0)) * 1.15);
        plot.Title($"memtest on {o.Device.Backend}{o.Device.Index}: data errors per pattern{Injected(o)}");
        plot.YLabel("wrong words (count)");
        FigureStyle.Save(plot, path);
        return true;
    }

    private static string Injected(TestOutcome o) => o.Injected ? " (injected)" : "";
}
