// Telemetry inside a real `kiln burn` (cpu tests, fake NVML GPUs beside them): telemetry.csv and the
// plots are written, a healthy run passes with telemetry PASS rows, and an uncorrectable ECC error
// that appears during the run fails the node through a verdict row test=telemetry.
using Kiln.Tests.Cli;
using Kiln.Tests.Health;

namespace Kiln.Tests.Telemetry;

[NonParallelizable]  // a burn takes both cores; the environment is set for the child
public class BurnTelemetryCliTests
{
    private static (CliResult Run, string Out) Burn(string fakeNvml)
    {
        var output = Path.Combine(HealthTemp.NewFolder("burn"), "out");
        var kmsg = Path.Combine(Path.GetDirectoryName(output)!, "kmsg.log");
        File.WriteAllText(kmsg, "");
        // cpu-only's thresholds for the tests, and the fake's two GPUs expected by the health checks.
        var profile = Path.Combine(Path.GetDirectoryName(output)!, "profile.yaml");
        File.WriteAllText(profile, """
            name: cpu-with-fake-gpus
            description: cpu tests beside two fake NVML GPUs
            health:
              expected_gpu_count: 2
            thresholds:
              cpu:
                stream:
                  copy_gbps_best: { min: 1 GB/s }
            """);
        var run = CheckRunner.Kiln(fakeNvml, "burn", "--plan", "quick", "--profile", profile, "--backend", "cpu", "--size", "32MiB",
            "--kmsg", kmsg, "--out", output);
        return (run, output);
    }

    [Test]
    public void Healthy_burn_samples_the_gpus_and_passes_them()
    {
        var (run, output) = Burn("gpus=2");

        Assert.That(run.ExitCode, Is.Zero, run.ToString());
        var telemetry = CsvFile.Read(Path.Combine(output, "telemetry.csv"));
        Assert.That(telemetry.Rows.Select(r => r["device"]).Distinct(), Is.EquivalentTo(new[] { "gpu0", "gpu1" }));
        var rows = CsvFile.Read(Path.Combine(output, "verdicts.csv")).Rows.Where(r => r["test"] == "telemetry").ToList();
        Assert.That(rows.Select(r => (r["backend"], r["device"], r["status"])), Is.EquivalentTo(new[] { ("nvml", "0", "PASS"), ("nvml", "1", "PASS") }));
        Assert.That(File.Exists(Path.Combine(output, "plots", "telemetry_gpu0.png")), Is.True);
    }

    [Test]
    public void New_uncorrectable_ecc_during_the_burn_fails_the_node()
    {
        var (run, output) = Burn("gpus=2;gpu1.ecc_uncorrected_step=1");

        Assert.That(run.ExitCode, Is.EqualTo(1), run.ToString());
        var row = CsvFile.Read(Path.Combine(output, "verdicts.csv")).Rows.Single(r => r["test"] == "telemetry" && r["device"] == "1");
        Assert.That((row["status"], row["metric"]), Is.EqualTo(("FAIL", "ecc_volatile_uncorrected_new")));
        Assert.That(run.Stdout, Does.Contain("FAIL"));
    }
}
