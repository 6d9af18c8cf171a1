// kiln bench TEST for every test, its kernel knobs taken from libkiln's knob catalog, and every rate
// printed with its share of the device's peak (or why there is none): gemm and power on the cpu,
// copy and launch on the emulated GPU.
using System.Text.RegularExpressions;

namespace Kiln.Tests.Cli;

public sealed class BenchEveryTestTests
{
    private static readonly TimeSpan Limit = TimeSpan.FromMinutes(3);

    [Test]
    public void Every_test_has_a_bench_command()
    {
        var help = KilnCli.Run("bench", "--help");
        Assert.That(help.ExitCode, Is.Zero, help.ToString());
        foreach (var test in new[] { "stream", "memtest", "gemm", "power", "copy", "launch" })
            Assert.That(help.Stdout, Does.Match($@"\n\s+{test}\s"), test);
    }

    [TestCase("stream", new[] { "--block", "--grid", "--vec", "--unroll", "--ops" }, new[] { "--matrix-n", "--pattern" })]
    [TestCase("gemm", new[] { "--matrix-n", "--duration" }, new[] { "--block", "--vec", "--param" })]
    [TestCase("power", new[] { "--block", "--grid" }, new[] { "--vec", "--matrix-n" })]
    [TestCase("launch", new[] { "--iterations" }, new[] { "--block", "--grid" })]
    public void A_tests_options_are_its_knobs_from_the_catalog(string test, string[] has, string[] hasNot)
    {
        var help = KilnCli.Run("bench", test, "--help").Stdout;
        foreach (var option in has) Assert.That(help, Does.Contain(option + " "), option);
        foreach (var option in hasNot) Assert.That(help, Does.Not.Contain(option + " "), option);
        if (test == "stream") Assert.That(help, Does.Contain("elements per access: 1 (8-byte) or 2 (16-byte): 1, 2, default 2 (cuda, hip, emu)"));
    }

    [Test]
    public void Gemm_on_the_cpu_prints_its_rate_against_the_fp64_peak()
    {
        var run = KilnCli.Run(Limit, "bench", "gemm", "--backend", "cpu", "--matrix-n", "256", "--duration", "1s", "--threads", "2");
        Assert.That(run.ExitCode, Is.Zero, run.ToString());
        Assert.That(run.Stdout, Does.Match(@"fp64_tflops\s+best\s+\d+\.\d\d TFLOP/s \(\d+% of the fp64 peak \d"));
        Assert.That(run.Stdout, Does.Contain("matrix_n 256"), "the knob reached the kernel");
    }

    [Test]
    public void Power_on_the_cpu_prints_both_burners_against_their_peaks()
    {
        var run = KilnCli.Run(Limit, "bench", "power", "--backend", "cpu", "--duration", "1s", "--threads", "2");
        Assert.That(run.ExitCode, Is.Zero, run.ToString());
        Assert.That(run.Stdout, Does.Match(@"fp64_tflops\s+best\s+\d+\.\d\d TFLOP/s \(\d+% of the fp64 peak"));
        Assert.That(run.Stdout, Does.Match(@"fp32_tflops\s+best\s+\d+\.\d\d TFLOP/s \(\d+% of the fp32 peak"));
    }

    [Test]
    public void Copy_on_an_emulated_gpu_says_which_rates_have_a_peak()
    {
        var run = KilnCli.RunWith(new Dictionary<string, string?> { ["KILN_EMU_DEVICES"] = "1" }, Limit,
            "bench", "copy", "--backend", "emu", "--iterations", "2", "--grid", "8");
        Assert.That(run.ExitCode, Is.Zero, run.ToString());
        Assert.That(run.Stdout, Does.Match(@"h2d_gbps\s+best\s+\d+\.\d\d GB/s \(no peak: the link's rate is not reported\)"));
        Assert.That(run.Stdout, Does.Match(@"d2d_gbps\s+best\s+\d+\.\d\d GB/s \(\d+% of the memory peak \d"));
    }

    [Test]
    public void Launch_on_an_emulated_gpu_prints_its_latencies()
    {
        var run = KilnCli.RunWith(new Dictionary<string, string?> { ["KILN_EMU_DEVICES"] = "1" }, Limit,
            "bench", "launch", "--backend", "emu", "--iterations", "200");
        Assert.That(run.ExitCode, Is.Zero, run.ToString());
        Assert.That(Regex.Matches(run.Stdout, @"^  launch_latency_us_(min|median|p99|max)\s+\d+\.\d\d us$", RegexOptions.Multiline), Has.Count.EqualTo(4), run.ToString());
    }

    [Test]
    public void A_knob_the_device_cannot_take_is_refused_before_anything_runs()
    {
        var run = KilnCli.RunWith(new Dictionary<string, string?> { ["KILN_EMU_DEVICES"] = "1" }, Limit,
            "bench", "power", "--backend", "emu", "--block", "128");
        Assert.That(run.ExitCode, Is.EqualTo(2), run.ToString());
        Assert.That(run.StderrLines, Has.Some.Contains("--block: 128 is not one of 256 (cuda, hip, emu)"));
    }
}
