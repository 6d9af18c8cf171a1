// The host CPU's gemm and power are judged, not only checked for data errors: against a fraction of
// the cpu backend's FMA peak (the built-in profiles), so a CPU far below its peak FAILs.
using Kiln.Tests.Cli;
using Kiln.Tests.Health;

namespace Kiln.Tests.Machine;

public sealed class CpuComputeThresholdTests
{
    private static (CliResult Run, List<Dictionary<string, string>> Verdicts) Burn(string profile)
    {
        var folder = HealthTemp.NewFolder("cpu-compute");
        var plan = Path.Combine(folder, "compute.yaml");
        File.WriteAllText(plan, "name: compute\ndescription: gemm and power alone\ntests:\n  - test: gemm\n    duration: 1s\n  - test: power\n    duration: 1s\n");
        var output = Path.Combine(folder, "out");
        var run = KilnCli.Run(TimeSpan.FromMinutes(3), "burn", "--plan", plan, "--backend", "cpu", "--profile", profile, "--out", output);
        var verdicts = Path.Combine(output, "verdicts.csv");
        Assert.That(File.Exists(verdicts), Is.True, run.ToString());
        return (run, CsvFile.Read(verdicts).Rows);
    }

    [Test]
    public void The_cpu_only_profile_judges_gemm_and_power_against_a_fraction_of_the_fma_peak()
    {
        var (run, verdicts) = Burn("cpu-only");
        var gemm = verdicts.Single(r => r["test"] == "gemm");
        var power = verdicts.Single(r => r["test"] == "power");
        Assert.That(gemm["status"], Is.EqualTo("PASS"), run.ToString());
        Assert.That(gemm["metric"], Is.EqualTo("fp64_tflops_best"));
        Assert.That(gemm["reason"], Does.Contain("5% of peak"), run.ToString());
        Assert.That(power["status"], Is.EqualTo("PASS"), run.ToString());
        Assert.That(power["reason"], Does.Contain("5% of peak"), run.ToString());
        Assert.That(run.ExitCode, Is.Zero, run.ToString());
    }

    [Test]
    public void A_cpu_that_cannot_reach_the_profiles_fraction_of_its_peak_fails()
    {
        var profile = Path.Combine(HealthTemp.NewFolder("cpu-profile"), "strict.yaml");
        File.WriteAllText(profile, "name: strict\ndescription: the whole FMA peak\nthresholds:\n  cpu:\n    gemm:\n" +
                                   "      fp64_tflops_best: { fraction_of_peak: 1.0, peak: fp64 }\n    power:\n" +
                                   "      fp64_tflops: { fraction_of_peak: 1.0, peak: fp64 }\n");
        var (run, verdicts) = Burn(profile);
        Assert.That(run.ExitCode, Is.EqualTo(1), run.ToString());
        Assert.That(verdicts.Single(r => r["test"] == "gemm")["status"], Is.EqualTo("FAIL"), run.ToString());
        Assert.That(verdicts.Single(r => r["test"] == "power")["status"], Is.EqualTo("FAIL"), run.ToString());
    }
}
