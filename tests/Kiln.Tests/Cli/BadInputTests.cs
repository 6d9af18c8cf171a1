// Every kind of bad input exits 2 with exactly one line on stderr that names the option and what
// is wrong with it, before anything runs; never a stack trace.
using Kiln.Tests.Core;

namespace Kiln.Tests.Cli;

public class BadInputTests
{
    private string _dir = "";

    [SetUp]
    public void SetUp() => _dir = TestEnvironment.NewTempFolder("kiln-bad-input");

    [TearDown]
    public void TearDown() => Directory.Delete(_dir, recursive: true);

    [TestCase("--plan", "unknown plan 'nosuch' (known: quick, standard, soak;", "burn", "--plan", "nosuch")]
    [TestCase("--profile", "unknown profile 'b300'", "burn", "--profile", "b300")]
    [TestCase("--duration", "plan 'quick' runs once; only a looping plan (soak) takes a duration", "burn", "--duration", "1h")]
    [TestCase("--duration", "cannot read 'forever' as a duration", "burn", "--plan", "soak", "--duration", "forever")]
    [TestCase("--backend", "no backend 'cuda'", "burn", "--backend", "cuda")]
    [TestCase("--device", "no device 7", "burn", "--backend", "cpu", "--device", "7")]
    [TestCase("--device", "-1 is negative", "burn", "--device", "-1")]
    [TestCase("--inject", "unknown test 'gpu'", "burn", "--inject", "gpu:flips=1")]
    [TestCase("--inject", "unknown key 'bogus' for memtest", "burn", "--inject", "memtest:bogus=1")]
    [TestCase("--inject", "memtest flips: -3 is negative", "burn", "--inject", "memtest:flips=-3")]
    [TestCase("--inject", "test 'memtest' is not in plan 'bench stream'", "bench", "stream", "--inject", "memtest:flips=1")]
    [TestCase("--bogus-flag", "Unrecognized", "burn", "--bogus-flag")]
    [TestCase("--size", "64 TiB is larger than available memory (", "burn", "--size", "64TiB")]
    [TestCase("--size", "cannot read 'lots' as a size", "burn", "--size", "lots")]
    [TestCase("--threads", "-1 is negative", "burn", "--threads", "-1")]
    [TestCase("--size", "size_fraction: 0.96 is outside 0..0.95 of available memory", "bench", "stream", "--size", "96%")]
    [TestCase("--iterations", "0 is less than 1", "bench", "stream", "--iterations", "0")]
    [TestCase("--pattern", "unknown pattern 'checkerboard'", "bench", "memtest", "--pattern", "checkerboard")]
    [TestCase("--ops", "unknown operation 'fma'", "bench", "stream", "--ops", "copy,fma")]
    [TestCase("--vec", "4 is not one of 1, 2 (cuda, hip, emu)", "bench", "stream", "--vec", "4")]
    [TestCase("--unroll", "3 is not one of 1, 2, 4, 8 (cuda, hip, emu)", "bench", "memtest", "--unroll", "3")]
    [TestCase("--seed", "'-5' is not a whole number >= 0", "bench", "memtest", "--seed", "-5")]
    [TestCase("--format", "unknown format 'xml'", "inventory", "--format", "xml")]
    [TestCase("frob", "Unrecognized", "bench", "frob")]
    [TestCase("frobnicate", "Unrecognized", "frobnicate")]
    public void Exits_2_with_one_line_naming_the_option(string option, string problem, params string[] args)
    {
        var run = KilnCli.Run(args);
        Assert.That(run.ExitCode, Is.EqualTo(2), run.ToString());
        Assert.That(run.StderrLines, Has.Length.EqualTo(1), run.ToString());
        Assert.That(run.StderrLines[0], Does.StartWith("kiln: error: ").And.Contain(option).And.Contain(problem));
    }

    [Test]
    public void An_unwritable_out_folder_is_refused_before_any_test_runs()
    {
        var file = Path.Combine(_dir, "a-file");
        File.WriteAllText(file, "");
        var run = KilnCli.Run("burn", "--backend", "cpu", "--size", "64MiB", "--out", Path.Combine(file, "out"));
        Assert.That(run.ExitCode, Is.EqualTo(2), run.ToString());
        Assert.That(run.StderrLines, Has.Length.EqualTo(1), run.ToString());
        Assert.That(run.StderrLines[0], Does.StartWith($"kiln: error: --out: cannot write to {Path.Combine(file, "out")}: "));
        Assert.That(run.Stdout, Does.Not.Contain("start"), "nothing ran");
    }

    [Test]
    public void No_command_is_a_usage_error()
    {
        var run = KilnCli.Run();
        Assert.That(run.ExitCode, Is.EqualTo(2), run.ToString());
        Assert.That(run.StderrLines, Has.Length.EqualTo(1));
    }

    [Test]
    public void Help_is_not_an_error()
    {
        var run = KilnCli.Run("burn", "--help");
        Assert.That(run.ExitCode, Is.Zero, run.ToString());
        Assert.That(run.Stdout, Does.Contain("--inject").And.Contain("--size").And.Contain("--out"));
    }
}
