// plots/*.png through ScottPlot: per device, stream's best bandwidth per operation against the
// floor it must clear, and memtest's data errors per pattern.
using Kiln.Core.Evaluation;
using Kiln.Native.Interop;
using ScottPlot;

namespace Kiln.Core.Results;

public static class Plots
{
    private const int Width = 900, Height = 520;
    // Debian's fonts-dejavu-core; where it is missing ScottPlot falls back to the system default face.
    private const string FontFamily = "DejaVu Sans";
    private static readonly Color Pass = Color.FromHex("#2e7d32"), Warn = Color.FromHex("#f9a825"), Fail = Color.FromHex("#c62828");

    /// <summary>Draws every plot the outcomes allow; returns the files written.</summary>
    public static IReadOnlyList<string> Write(ResultFolder folder, IEnumerable<TestOutcome> outcomes)
    {
        Directory.CreateDirectory(folder.PlotsPath);
        var written = new List<string>();
        foreach (var o in outcomes.Where(o => o.Metrics.Count > 0))
        {
            var path = Path.Combine(folder.PlotsPath, $"{o.TestKey}_{o.Device.Backend}{o.Device.Index}.png");
            var drawn = o.Test switch
            {
                kiln_test_kind.KILN_TEST_STREAM => StreamBandwidth(o, path),
                kiln_test_kind.KILN_TEST_MEMTEST => MemtestErrors(o, path),
                _ => false,
            };
            if (drawn) written.Add(path);
        }
        return written;
    }

    private static bool StreamBandwidth(TestOutcome o, string path)
    {
        var (floor, basis) = Evaluator.StreamFloor(o.Device);
        var ops = Catalog.OpsIn(o.Parameters.OpMask).Select(op => (Op: op, Best: Evaluator.StreamBest(o, op) ?? 0)).ToList();
        var plot = new Plot();
        var bars = ops.Select((x, i) => new Bar
        {
            Position = i,
            Value = x.Best,
            FillColor = x.Best < floor ? Fail : x.Best < floor * Evaluator.WarnBand ? Warn : Pass,
            Label = x.Best.ToString("0.0"),
        }).ToList();
        var barPlot = plot.Add.Bars(bars);
        barPlot.ValueLabelStyle.FontSize = 14;
        barPlot.ValueLabelStyle.FontName = FontFamily;
        var line = plot.Add.HorizontalLine(floor, width: 2, color: Fail, pattern: LinePattern.Dashed);
        line.LegendText = $"floor {floor:0.0} GB/s ({basis})";
        plot.ShowLegend(Alignment.UpperLeft);
        plot.Axes.Bottom.SetTicks(ops.Select((_, i) => (double)i).ToArray(), ops.Select(x => x.Op).ToArray());
        plot.Axes.Margins(bottom: 0, top: 0.2);
        plot.Title($"stream on {o.Device.Backend}{o.Device.Index} ({o.Device.Name}): best GB/s per operation{Injected(o)}");
        plot.YLabel("GB/s (1e9 bytes/s)");
        Save(plot, path);
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
            FillColor = x.Errors > 0 ? Fail : Pass,
            Label = x.Errors is { } n ? n.ToString("0") : "not run",
        }).ToList();
        var barPlot = plot.Add.Bars(bars);
        barPlot.ValueLabelStyle.FontSize = 14;
        barPlot.ValueLabelStyle.FontName = FontFamily;
        plot.Axes.Bottom.SetTicks(patterns.Select((_, i) => (double)i).ToArray(), patterns.Select(x => x.Pattern).ToArray());
        plot.Axes.Left.TickGenerator = new ScottPlot.TickGenerators.NumericAutomatic { IntegerTicksOnly = true };
        // Keep a visible axis when every count is 0, so "no errors" reads as a measured zero.
        plot.Axes.SetLimitsY(0, Math.Max(1, patterns.Max(x => x.Errors ?? 0)) * 1.15);
        plot.Title($"memtest on {o.Device.Backend}{o.Device.Index}: data errors per pattern{Injected(o)}");
        plot.YLabel("wrong words (count)");
        Save(plot, path);
        return true;
    }

    private static void Save(Plot plot, string path)
    {
        plot.Font.Set(FontFamily);
        plot.SavePng(path, Width, Height);
    }

    private static string Injected(TestOutcome o) => o.Injected ? " (injected)" : "";
}
