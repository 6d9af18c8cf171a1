// The fleet report's figures (ScottPlot PNGs in the house style of Results/Plots.cs): a histogram per
// metric with its outliers marked (the copy matrix heatmap is Plots.CopyMatrix, shared with a run's page). (Telemetry series
// are drawn by the burn itself: Telemetry/TelemetryPlots.cs.)
using Kiln.Core.Profiles;
using Kiln.Core.Results;
using ScottPlot;

namespace Kiln.Core.Report;

public static class Charts
{
    private const int Bins = 40;

    /// <summary>
    /// Device values of one metric as a histogram, the fleet median dashed, device outliers as red
    /// marks on the axis and slow node medians as red lines.
    /// </summary>
    public static void Histogram(MetricSummary summary, IReadOnlyList<double> values, IEnumerable<Outlier> outliers, string path)
    {
        var metric = summary.Family;
        var (min, max) = (values.Min(), values.Max());
        var width = max > min ? (max - min) / Bins : Math.Max(Math.Abs(min) * 0.01, 1e-9);
        var counts = new int[Bins + 1];
        foreach (var v in values) counts[Math.Clamp((int)((v - min) / width), 0, Bins)]++;
        var plot = new Plot();
        var bars = plot.Add.Bars(counts.Select((c, i) => new Bar
        {
            Position = min + (i + 0.5) * width, Value = c, Size = width * 0.95, FillColor = FigureStyle.Neutral, LineWidth = 0,
        }).ToList());
        bars.LegendText = $"{values.Count} {(metric.IsMatrix ? "device pairs" : "devices")}";
        var median = plot.Add.VerticalLine(summary.Devices.Median, width: 2, color: Colors.Black, pattern: LinePattern.Dashed);
        median.LegendText = $"fleet median {Units.Number(summary.Devices.Median)} {metric.Unit}";
        var list = outliers.ToList();
        var devices = list.Where(o => o.Level == "device").ToList();
        if (devices.Count > 0)
        {
            var marks = plot.Add.Markers(devices.Select(o => o.Value).ToArray(), devices.Select(_ => 0.0).ToArray(),
                MarkerShape.FilledTriangleUp, 12, FigureStyle.Fail);
            marks.LegendText = $"{devices.Count} device outlier{(devices.Count == 1 ? "" : "s")}";
        }
        foreach (var (node, i) in list.Where(o => o.Level == "node").Select((o, i) => (o, i)))
        {
            var line = plot.Add.VerticalLine(node.Value, width: 2, color: FigureStyle.Fail);
            if (i == 0) line.LegendText = "outlier node (median of its devices)";
            if (i < 6) line.Text = node.Host;
        }
        plot.ShowLegend(Alignment.UpperLeft);
        plot.Axes.Margins(bottom: 0, top: 0.25);
        plot.Axes.Left.TickGenerator = new ScottPlot.TickGenerators.NumericAutomatic { IntegerTicksOnly = true };
        plot.Title($"{metric.Test} {metric.Name}{(metric.IsMatrix ? " (every pair)" : "")} on {metric.Backend}: " +
                   $"{summary.Devices.Count} {(metric.IsMatrix ? "values" : "devices")}, {summary.Nodes.Count} nodes");
        plot.XLabel($"{metric.Name} ({metric.Unit})");
        plot.YLabel(metric.IsMatrix ? "device pairs" : "devices");
        FigureStyle.Save(plot, path);
    }
}
