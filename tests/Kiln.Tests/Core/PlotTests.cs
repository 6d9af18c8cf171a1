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
    public void Tests_without_metrics_draw_nothing()
    {
        var o = new TestOutcome(TestKind.Stream, EvaluationTests.Device(0), new TestParams()) { End = TestEnd.NotRun };
        Assert.That(Plots.Write(ResultFolder.Create(_dir), [o], EvaluationTests.CpuOnly), Is.Empty);
    }
}
