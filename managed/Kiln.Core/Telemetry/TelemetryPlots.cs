// plots/telemetry_<device>.png: a device's telemetry over the run, temperature and power on the left
// axis, clocks on the right, in the style of the other kiln plots (Results/Plots.cs).
using Kiln.Core.Results;
using ScottPlot;

namespace Kiln.Core.Telemetry;

public static class TelemetryPlots
{
    private const int Width = 1100, Height = 520;

    // (sensor, legend, right axis)
    private static readonly (string Sensor, string Legend, bool Right)[] GpuSeries =
    [
        ("temperature", "temperature (C)", false), ("power", "power (W)", false),
        ("sm_clock", "SM clock (MHz)", true), ("memory_clock", "memory clock (MHz)", true),
    ];

    public static IReadOnlyList<string> Write(Results.ResultFolder folder, IEnumerable<TelemetrySeries> devices)
    {
        Directory.CreateDirectory(folder.PlotsPath);
        var written = new List<string>();
        foreach (var series in devices.Where(d => d.Sensors.Any()))
        {
            var path = Path.Combine(folder.PlotsPath, $"telemetry_{series.Device}.png");
            var plot = new Plot();
            var gpu = series.Sensors.Contains("temperature");
            var lines = gpu ? GpuSeries.Where(s => series.Points(s.Sensor).Count > 0).ToList()
                : series.Sensors.Select(s => (Sensor: s, Legend: $"{s} (C)", Right: false)).ToList();
            foreach (var (sensor, legend, right) in lines)
            {
                var points = series.Points(sensor);
                var line = plot.Add.ScatterLine(points.Select(p => p.Seconds).ToArray(), points.Select(p => p.Value).ToArray());
                line.LegendText = legend;
                if (right) line.Axes.YAxis = plot.Axes.Right;
            }
            plot.ShowLegend(Alignment.UpperLeft);
            plot.Title($"telemetry of {series.Device} during the burn (from {series.Start:yyyy-MM-dd HH:mm:ss} UTC)");
            plot.XLabel("seconds since the start of sampling");
            plot.YLabel(gpu ? "C / W" : "C");
            if (lines.Any(l => l.Right)) plot.Axes.Right.Label.Text = "MHz";
            FigureStyle.Save(plot, path, Width, Height);
            written.Add(path);
        }
        return written;
    }
}
