// The AMD path end to end through the fake librocm_smi64.so (tests/native/fake_rocm_smi.c, built
// against the real rocm_smi.h): kiln check's rocm_smi source on a fixture node with eight MI300X on
// its PCI bus passes a healthy node and fails an unhealthy GPU by name, and a burn samples the AMD
// GPUs' telemetry and fails the node on an uncorrectable ECC error that appears during the run.
using Kiln.Tests.Cli;
using Kiln.Tests.Core;

namespace Kiln.Tests.Health;

[NonParallelizable]  // burns take both cores; the environment is set for the children
public sealed class RocmSmiTests
{
    /// <summary>The fake's default BDFIDs (bus &lt;&lt; 8), in sysfs form.</summary>
    private static readonly string[] AmdAddresses =
        ["0000:05:00.0", "0000:15:00.0", "0000:65:00.0", "0000:75:00.0", "0000:85:00.0", "0000:95:00.0", "0000:e5:00.0", "0000:f5:00.0"];

    private static string FakeRocmPath => Path.Combine(TestEnvironment.RepoRoot, "build", "cmake", "tests", "native", "fake-rocm", "librocm_smi64.so");

    /// <summary>A node with eight MI300X (class 0x1200, processing accelerator) and nothing else to judge.</summary>
    private static FixtureNode AmdNode(int gpus = 8)
    {
        var node = new FixtureNode();
        for (var i = 0; i < gpus; i++) node.PciDevice(AmdAddresses[i], "0x120000", "0x1002", "32.0 GT/s PCIe", 16);
        node.Write("proc/cpuinfo", "processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC 9654 96-Core Processor\n");
        node.Write("proc/meminfo", "MemTotal:       2113785236 kB\nMemFree:        2000000000 kB\nMemAvailable:   2050000000 kB\nHugePages_Total:       0\n");
        node.Write("proc/sys/kernel/hostname", "fixture-mi300x\n");
        node.Write("sys/devices/system/cpu/online", "0-191\n");
        node.Write("sys/devices/system/cpu/present", "0-191\n");
        return node;
    }

    /// <summary>kiln ARGS with NVML absent and ROCm SMI the fake (configured by <paramref name="fakeRocm"/>).</summary>
    private static CliResult Kiln(FixtureNode node, string fakeRocm, params string[] args)
    {
        if (!File.Exists(FakeRocmPath)) TestEnvironment.Missing($"the fake ROCm SMI is not built ({FakeRocmPath}): cmake --build build/cmake");
        return KilnCli.RunWith(new Dictionary<string, string?>
        {
            ["KILN_NVML_LIBRARY"] = CheckRunner.Absent,
            ["KILN_ROCM_SMI_LIBRARY"] = FakeRocmPath,
            ["KILN_FAKE_ROCM_SMI"] = fakeRocm,
            ["KILN_SYSFS_ROOT"] = node.Root,  // libkiln's gate: an AMD GPU on this PCI bus
        }, TimeSpan.FromMinutes(4), args);
    }

    private static CheckRun Check(FixtureNode node, string fakeRocm)
    {
        var output = Path.Combine(HealthTemp.NewFolder("check"), "out");
        return new CheckRun(Kiln(node, fakeRocm, "check", "--sysfs-root", node.Root, "--kmsg", CheckRunner.Fixture("kmsg/clean.dmesg"), "--out", output), output);
    }

    [Test]
    public void A_healthy_mi300x_node_passes_with_every_gpu_read_through_rocm_smi()
    {
        var run = Check(AmdNode(), "");

        Assert.That(run.Cli.ExitCode, Is.Zero, run.ToString());
        Assert.That(run.Findings.Rows.Where(r => r["severity"] != "INFO"), Is.Empty, run.ToString());
        var inventory = run.Summary.GetProperty("inventory");
        var gpus = inventory.GetProperty("gpus").EnumerateArray().ToList();
        Assert.That(gpus, Has.Count.EqualTo(8));
        Assert.That(gpus.Select(g => g.GetProperty("pci_bus_id").GetString()), Is.EquivalentTo(AmdAddresses));
        Assert.That(inventory.GetProperty("gpu_drivers").GetProperty("rocm_smi").GetString(), Is.EqualTo("6.7.0"));
        Assert.That(run.Cli.Stdout, Does.Contain("8x AMD Instinct MI300X"), run.ToString());
        Assert.That(run.WithCode("SKIPPED_ROCM_SMI"), Is.Empty, "ROCm SMI ran");
    }

    [TestCase("gpu3.ecc_uncorrectable=2", "GPU_ECC_UNCORRECTABLE", "amdgpu3")]
    [TestCase("gpu5.ecc_enabled=0", "GPU_ECC_DISABLED", "amdgpu5")]
    [TestCase("gpu6.temperature=100", "GPU_TEMPERATURE_HIGH", "amdgpu6")]
    [TestCase("gpus=7", "GPU_COUNT_MISMATCH", "node")]
    public void An_unhealthy_amd_gpu_fails_the_check_naming_it(string fakeRocm, string code, string component)
    {
        var run = Check(AmdNode(), fakeRocm);

        Assert.That(run.Cli.ExitCode, Is.EqualTo(1), run.ToString());
        var rows = run.WithCode(code);
        Assert.That(rows, Is.Not.Empty, run.ToString());
        Assert.That(rows.Select(r => (r["check"], r["severity"])), Has.All.EqualTo(("rocm_smi", "FAIL")), run.ToString());
        Assert.That(rows.Select(r => r["component"]), Has.Some.StartsWith(component), run.ToString());
    }

    [Test]
    public void Rocm_smi_that_cannot_start_on_an_amd_node_is_a_warning_with_what_it_printed()
    {
        var run = Check(AmdNode(), "init_error=8");

        var skipped = run.WithCode("SKIPPED_ROCM_SMI").Single();
        Assert.That(skipped["message"], Does.Contain("status 8; it printed: Failed to open drm root directory"), run.ToString());
        Assert.That(run.WithCode("GPU_DRIVER_UNAVAILABLE").Single()["severity"], Is.EqualTo("WARN"), run.ToString());
        Assert.That(run.Cli.Stderr, Does.Not.Contain("Exception caught"), "what rsmi_init prints never reaches the terminal");
    }

    private static (CliResult Run, string Out) Burn(string fakeRocm)
    {
        var node = AmdNode(2);
        var output = Path.Combine(HealthTemp.NewFolder("burn"), "out");
        var kmsg = Path.Combine(Path.GetDirectoryName(output)!, "kmsg.log");
        File.WriteAllText(kmsg, "");
        var profile = Path.Combine(Path.GetDirectoryName(output)!, "profile.yaml");
        File.WriteAllText(profile, """
            name: cpu-with-fake-amd-gpus
            description: cpu tests beside two fake ROCm SMI GPUs
            health:
              expected_gpu_count: 2
            thresholds:
              cpu:
                stream:
                  copy_gbps_best: { min: 1 GB/s }
            """);
        var plan = Path.Combine(Path.GetDirectoryName(output)!, "plan.yaml");
        File.WriteAllText(plan, "name: sampled\ndescription: stream while telemetry samples\nhealth:\n  before: [rocm_smi]\n  after: [rocm_smi]\n" +
                                "tests:\n  - test: stream\n    size: 32MiB\n    iterations: 20\n");
        var run = Kiln(node, fakeRocm, "burn", "--plan", plan, "--profile", profile, "--backend", "cpu", "--kmsg", kmsg, "--out", output);
        return (run, output);
    }

    [Test]
    public void A_burn_samples_the_amd_gpus_and_passes_them()
    {
        var (run, output) = Burn("gpus=2;gpu1.power_w=640");

        Assert.That(run.ExitCode, Is.Zero, run.ToString());
        var telemetry = CsvFile.Read(Path.Combine(output, "telemetry.csv"));
        Assert.That(telemetry.Rows.Select(r => r["device"]).Distinct(), Is.EquivalentTo(new[] { "amdgpu0", "amdgpu1" }), run.ToString());
        Assert.That(telemetry.Rows.Where(r => r["device"] == "amdgpu1" && r["sensor"] == "power").Select(r => r["value"]), Has.All.EqualTo("640"));
        var rows = CsvFile.Read(Path.Combine(output, "verdicts.csv")).Rows.Where(r => r["test"] == "telemetry").ToList();
        Assert.That(rows.Select(r => (r["backend"], r["device"], r["status"])), Is.EquivalentTo(new[] { ("rocm_smi", "0", "PASS"), ("rocm_smi", "1", "PASS") }));
    }

    [Test]
    public void New_uncorrectable_ecc_on_an_amd_gpu_during_the_burn_fails_the_node()
    {
        var (run, output) = Burn("gpus=2;gpu1.ecc_uncorrectable_step=1");

        Assert.That(run.ExitCode, Is.EqualTo(1), run.ToString());
        var row = CsvFile.Read(Path.Combine(output, "verdicts.csv")).Rows.Single(r => r["test"] == "telemetry" && r["device"] == "1");
        Assert.That((row["backend"], row["status"], row["metric"]), Is.EqualTo(("rocm_smi", "FAIL", "ecc_volatile_uncorrected_new")));
    }
}
