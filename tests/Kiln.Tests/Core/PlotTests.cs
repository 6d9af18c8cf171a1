// The figures render: real PNG files of a sensible size for stream bandwidth and memtest errors.
using Kiln.Core.Evaluation;
using Kiln.Core.Results;
using Kiln.Native;
using Kiln.Native.Interop;

namespace Kiln.Tests.Core;

public class PlotTests
{
    private string _dir = "";

    [SetUp]
    public void SetUp() => _dir = TestEnvironment.NewTempFolder("kiln-plots");

    [TearDown]
    public void TearDown()
    {
        if (Environment.GetEnvironmentVariable("KILN_KEEP_PLOTS") == null) Directory.Delete(_dir, recursive: true);
        else TestContext.Out.WriteLine($"plots kept in {_dir}");
    }

    [Test]
    public void Stream_and_memtest_plots_are_png_files()
    {
        var stream = EvaluationTests.Stream(EvaluationTests.Device(peakGbps: 200), copy: 80, scale: 52, add: 49, triad: 90);
        var memtest = EvaluationTests.Memtest(errors: 3, new TestParams { InjectFlips = 3 });
        var folder = ResultFolder.Create(_dir);

        var written = Plots.Write(folder, [stream, memtest], EvaluationTests.CpuOnly);

        Assert.That(written.Select(Path.GetFileName), Is.EqualTo(new[] { "stream_cpu0.png", "memtest_cpu0.png" }));
        foreach (var png in written)
        {
            var bytes = File.ReadAllBytes(png);
            Assert.That(bytes.Take(8), Is.EqualTo(new byte[] { 0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A }), png);
            Assert.That(bytes, Has.Length.GreaterThan(10_000), $"{png} looks empty");
        }
    }

    [Test]
    public void A_memtest_figure_shows_each_patterns_bandwidth_the_bytes_covered_and_marks_the_errors()
    {
        var o = new TestOutcome(TestKind.Memtest, EvaluationTests.Device(0), new TestParams()) { End = TestEnd.Completed };
        foreach (var (name, value) in new[] { ("walking_ones_gbps", 2700.0), ("walking_ones_gbps", 2500), ("errors_walking_ones", 3), ("walking_zeros_gbps", 2710),
                     ("errors_walking_zeros", 0), ("bytes_tested", 8.0 * (1UL << 30)) })
            o.Add(name, value, name.EndsWith("_gbps", StringComparison.Ordinal) ? "GB/s" : name == "bytes_tested" ? "bytes" : "count");

        var figure = Plots.Memtest(o);

        var bars = figure.Bars.ToDictionary(b => b.Pattern);
        Assert.That((bars["walking_ones"].Gbps, bars["walking_ones"].Errors), Is.EqualTo(((double?)2600, 3.0)), "the mean of its rounds, and its errors");
        Assert.That((bars["walking_zeros"].Gbps, bars["walking_zeros"].Errors), Is.EqualTo(((double?)2710, 0.0)));
        Assert.That(bars["modulo_20"].Gbps, Is.Null, "a pattern that did not run has no bar height");
        Assert.That(figure.Title, Does.Contain("8 GiB tested").And.Contain("3 wrong words in walking_ones"));
        Assert.That(Plots.Write(ResultFolder.Create(_dir), [o], EvaluationTests.CpuOnly).Select(Path.GetFileName), Is.EqualTo(new[] { "memtest_cpu0.png" }));
    }

    [Test]
    public void Tests_without_metrics_draw_nothing()
    {
        var o = new TestOutcome(TestKind.Stream, EvaluationTests.Device(0), new TestParams()) { End = TestEnd.NotRun };
        Assert.That(Plots.Write(ResultFolder.Create(_dir), [o], EvaluationTests.CpuOnly), Is.Empty);
    }
}
