// kiln check must not pass a node it could not look at: a root with nothing under it, HCAs on the PCI
// bus whose RDMA driver did not load, and --profile auto on a root whose GPUs no backend answers for.
// Each case runs the real CLI and asserts what the operator reads: exit code, verdict, findings.
namespace Kiln.Tests.Health;

[NonParallelizable]  // CheckRunner sets the environment its child processes inherit
public class CheckEvidenceTests
{
    [Test]
    public void An_empty_root_is_WARN_nothing_checked_and_the_skip_reasons_name_that_root()
    {
        var root = Path.Combine(HealthTemp.NewFolder("empty"), "root");
        Directory.CreateDirectory(root);

        var run = CheckRunner.Cli(null, "--sysfs-root", root);

        Assert.That(run.Cli.ExitCode, Is.Zero, "nothing checked is a WARN, not a FAIL: " + run);
        Assert.That(run.Summary.GetProperty("verdict").GetString(), Is.EqualTo("WARN"));
        Assert.That(run.Cli.Stdout.TrimEnd('\n').Split('\n')[^1], Does.StartWith("verdict: WARN (0 FAIL, 1 WARN)"));
        var warn = run.WithCode("NOTHING_CHECKED").Single();
        Assert.That((warn["severity"], warn["component"]), Is.EqualTo(("WARN", "node")));
        Assert.That(warn["message"], Does.StartWith("nothing checked: every source was skipped"));
        var reasons = run.Summary.GetProperty("skipped").EnumerateArray()
            .ToDictionary(s => s.GetProperty("check").GetString()!, s => s.GetProperty("reason").GetString()!);
        Assert.That(reasons["sysfs_pcie"], Does.StartWith($"{root}/sys/bus/pci/devices does not exist"));
        Assert.That(reasons["sysfs_ib"], Does.Contain($"under {root}/sys/class/infiniband"));
        Assert.That(reasons["sysfs_edac"], Does.Contain($"under {root}/sys/devices/system/edac/mc"));
        Assert.That(reasons["sysfs_cpu_memory"], Does.Contain($"{root}/sys/devices/system/cpu"));
    }

    [Test]
    public void A_node_with_one_source_left_is_not_nothing_checked()
    {
        var node = new FixtureNode();
        node.Write("proc/meminfo", "MemTotal:       16000000 kB\nMemAvailable:   15000000 kB\n");

        var run = CheckRunner.Cli(null, "--sysfs-root", node.Root);

        Assert.That(run.WithCode("NOTHING_CHECKED"), Is.Empty, run.ToString());
        Assert.That(run.Summary.GetProperty("verdict").GetString(), Is.EqualTo("PASS"));
    }

    [Test]
    public void HCAs_on_the_bus_without_RDMA_devices_WARN_and_fail_a_profile_expecting_ports()
    {
        var node = FixtureNode.Healthy();
        Directory.Delete(Path.Combine(node.Root, "sys/class/infiniband"), recursive: true);  // mlx5_ib did not load
        var kmsg = CheckRunner.Fixture("kmsg/clean.dmesg");

        var plain = CheckRunner.Cli("", "--sysfs-root", node.Root, "--kmsg", kmsg);
        Assert.That(plain.Cli.ExitCode, Is.Zero, plain.ToString());
        var warn = plain.WithCode("IB_DRIVER_UNAVAILABLE").Single();
        Assert.That((warn["check"], warn["severity"]), Is.EqualTo(("sysfs_ib", "WARN")));
        Assert.That(warn["message"], Does.StartWith("8 RDMA adapters on the PCI bus (0000:19:00.0, 0000:2b:00.0, 0000:3b:00.0, ...)"));

        var h100 = CheckRunner.Cli("", "--sysfs-root", node.Root, "--kmsg", kmsg, "--profile", "h100-sxm");
        Assert.That(h100.Cli.ExitCode, Is.EqualTo(1), h100.ToString());
        var fail = h100.WithCode("IB_PORT_COUNT_MISMATCH").Single();
        Assert.That((fail["severity"], fail["message"]), Is.EqualTo(("FAIL", "0 InfiniBand ports found, the profile expects 8")));
        Assert.That(h100.Summary.GetProperty("verdict").GetString(), Is.EqualTo("FAIL"));
    }

    [Test]
    public void The_healthy_node_under_its_profile_has_no_port_finding()
    {
        var run = CheckRunner.Cli("", "--sysfs-root", FixtureNode.Healthy().Root, "--kmsg", CheckRunner.Fixture("kmsg/clean.dmesg"),
            "--profile", "h100-sxm");

        Assert.That(run.WithCode("IB_PORT_COUNT_MISMATCH").Concat(run.WithCode("IB_DRIVER_UNAVAILABLE")), Is.Empty, run.ToString());
    }

    [Test]
    public void Profile_auto_refuses_a_root_with_an_NVIDIA_GPU_on_the_bus_that_no_backend_sees()
    {
        var node = FixtureNode.Healthy();

        var run = CheckRunner.Cli(null, "--sysfs-root", node.Root, "--kmsg", CheckRunner.Fixture("kmsg/clean.dmesg"), "--profile", "auto");

        Assert.That(run.Cli.ExitCode, Is.EqualTo(2), run.ToString());
        Assert.That(run.Cli.Stderr, Does.Contain("--profile: auto: 8 GPU(s) on the PCI bus (0000:18:00.0, 0000:2a:00.0, 0000:3a:00.0, ...)"));
        Assert.That(File.Exists(Path.Combine(run.Out, "summary.json")), Is.False, "refused before anything is written");
    }
}
