// kiln check end to end, as an operator runs it: a healthy fixture node exits 0, and every FAIL code
// the default profile can raise makes the real CLI exit 1 with that code on the named component in
// findings.csv. The node is the FixtureNode tree plus the fake NVML; kernel logs come from fixtures.
using System.Globalization;

namespace Kiln.Tests.Health;

[NonParallelizable]  // sets the environment its child processes inherit
public class CheckCliTests
{
    private const string Gpu3 = "gpu3 GPU-0000fake-0000-0000-0000-000000000003 0000:5d:00.0";

    [Test]
    public void Healthy_node_exits_0_with_no_warn_or_fail_and_writes_every_file()
    {
        var node = FixtureNode.Healthy();
        var run = CheckRunner.Cli("", "--sysfs-root", node.Root, "--kmsg", CheckRunner.Fixture("kmsg/clean.dmesg"));

        Assert.That(run.Cli.ExitCode, Is.Zero, run.ToString());
        var findings = run.Findings;
        Assert.That(findings.Header, Is.EqualTo("host,check,component,severity,code,message,remediation"));
        Assert.That(findings.Rows.Where(r => r["severity"] != "INFO"), Is.Empty, run.ToString());
        Assert.That(findings.Rows.Select(r => r["code"]), Is.EquivalentTo(new[] { "SKIPPED_ROCM_SMI" }), "only ROCm SMI is absent");
        Assert.That(findings.Rows.Select(r => r["host"]), Is.All.EqualTo("fixture-h100"));

        var summary = run.Summary;
        Assert.That(summary.GetProperty("verdict").GetString(), Is.EqualTo("PASS"));
        Assert.That(summary.GetProperty("exit_code").GetInt32(), Is.Zero);
        Assert.That(summary.GetProperty("skipped")[0].GetProperty("check").GetString(), Is.EqualTo("rocm_smi"));
        var inventory = summary.GetProperty("inventory");
        Assert.That(inventory.GetProperty("gpus").GetArrayLength(), Is.EqualTo(8));
        Assert.That(inventory.GetProperty("gpu_drivers").GetProperty("nvml").GetString(), Is.EqualTo("535.183.01"));
        Assert.That(inventory.GetProperty("hcas")[0].GetProperty("firmware_version").GetString(), Is.EqualTo("28.41.1000"));
        Assert.That(summary.GetProperty("inventory_fingerprint").GetString(), Does.Match("^[0-9a-f]{16}$"));

        Assert.That(run.Prometheus, Does.Contain("# TYPE kiln_check_healthy gauge\nkiln_check_healthy{host=\"fixture-h100\"} 1\n"));
        Assert.That(run.Prometheus, Does.Contain($"kiln_gpu_ecc_volatile_uncorrected{{host=\"fixture-h100\",gpu=\"3\",uuid=\"GPU-0000fake-0000-0000-0000-000000000003\",pci=\"0000:5d:00.0\",source=\"nvml\"}} 0"));
        Assert.That(run.Prometheus, Does.Contain("kiln_ib_port_rate_gbps{host=\"fixture-h100\",hca=\"mlx5_0\",port=\"1\"} 400"));

        var text = run.Cli.Stdout.TrimEnd('\n').Split('\n');
        Assert.That(text[0], Does.StartWith("kiln check on fixture-h100: 8 GPUs (8x NVIDIA H100 80GB HBM3, driver 535.183.01), 8 HCAs (8 ports), 2 memory controllers"));
        Assert.That(text[^1], Does.StartWith("verdict: PASS (0 FAIL, 0 WARN)"));
        Assert.That(text, Has.Length.LessThanOrEqualTo(25), "one screen");
    }

    [Test]
    public void Same_configuration_gives_the_same_fingerprint_and_a_changed_vbios_another()
    {
        var node = FixtureNode.Healthy();
        var kmsg = CheckRunner.Fixture("kmsg/clean.dmesg");
        string Fingerprint(string nvml) =>
            CheckRunner.Cli(nvml, "--sysfs-root", node.Root, "--kmsg", kmsg).Summary.GetProperty("inventory_fingerprint").GetString()!;

        var first = Fingerprint("");
        Assert.That(Fingerprint("gpu0.uuid=GPU-other;gpu0.serial=999"), Is.EqualTo(first), "serials and UUIDs are not configuration");
        Assert.That(Fingerprint("gpu0.vbios=96.00.74.00.01"), Is.Not.EqualTo(first));
    }

    // (name, fake NVML configuration, change to the healthy tree, kernel log, code, component)
    private static IEnumerable<TestCaseData> FailCases()
    {
        TestCaseData Case(string code, string component, string nvml = "", Action<FixtureNode>? tree = null, string? kmsg = null) =>
            new TestCaseData(nvml, tree ?? (_ => { }), kmsg, code, component).SetName($"FAIL {code} on {component}");

        yield return Case("GPU_COUNT_MISMATCH", "node", nvml: "gpus=7");
        yield return Case("GPU_UNREADABLE", "gpu16", nvml: "gpus=17");
        yield return Case("GPU_ECC_DISABLED", "gpu1 GPU-0000fake-0000-0000-0000-000000000001 0000:2a:00.0", nvml: "gpu1.ecc_mode=0");
        yield return Case("GPU_ECC_UNCORRECTABLE", Gpu3, nvml: "gpu3.ecc_volatile_uncorrected=2");
        yield return Case("GPU_ECC_CORRECTABLE", Gpu3, nvml: "gpu3.ecc_aggregate_corrected=20000001");
        yield return Case("GPU_RETIRED_PAGES", Gpu3, nvml: "gpu3.retired_dbe=40;gpu3.retired_sbe=20");
        yield return Case("GPU_RETIRED_PAGES_PENDING", Gpu3, nvml: "gpu3.retired_pending=1");
        yield return Case("GPU_ROW_REMAP_PENDING", Gpu3, nvml: "gpu3.remap_pending=1;gpu3.remap_uncorrectable=1");
        yield return Case("GPU_ROW_REMAP_FAILED", Gpu3, nvml: "gpu3.remap_failed=1");
        yield return Case("GPU_THROTTLE_HW_SLOWDOWN", Gpu3, nvml: "gpu3.throttle=8");
        yield return Case("GPU_THROTTLE_HW_THERMAL", Gpu3, nvml: "gpu3.throttle=64");
        yield return Case("GPU_THROTTLE_POWER_BRAKE", Gpu3, nvml: "gpu3.throttle=128");
        yield return Case("GPU_TEMPERATURE_HIGH", Gpu3, nvml: "gpu3.temperature=88");
        yield return Case("GPU_PCIE_DEGRADED", Gpu3, nvml: "gpu3.pcie_width=8");
        yield return Case("NVLINK_DOWN", Gpu3, nvml: "gpu3.nvlinks_down=2");
        yield return Case("PCIE_LINK_DEGRADED", "nic 0000:3b:00.0",
            tree: n => n.Write(FixtureNode.DevicePath("0000:3b:00.0") + "/current_link_width", "8\n"));
        yield return Case("PCIE_AER", Gpu3,
            tree: n => n.Write(FixtureNode.DevicePath("0000:5d:00.0") + "/aer_dev_fatal", "Undefined 0\nDLP 1\nTOTAL_ERR_FATAL 1\n"));
        yield return Case("IB_PORT_DOWN", "mlx5_3 port 1", tree: n =>
        {
            n.Write("sys/class/infiniband/mlx5_3/ports/1/state", "1: DOWN\n");
            n.Write("sys/class/infiniband/mlx5_3/ports/1/phys_state", "2: Polling\n");
        });
        yield return Case("IB_ERRORS", "mlx5_1 port 1", tree: n => n.Write("sys/class/infiniband/mlx5_1/ports/1/counters/symbol_error", "5000\n"));
        yield return Case("EDAC_UE", "mc1 (Intel_10nm Socket#0 IMC#0)", tree: n =>
        {
            n.Write("sys/devices/system/edac/mc/mc1/ue_count", "3\n");
            n.Write("sys/devices/system/edac/mc/mc1/dimm1/dimm_ue_count", "3\n");
        });
        yield return Case("CPUS_OFFLINE", "cpus", tree: n => n.Write("sys/devices/system/cpu/online", "0-95,97-191\n"));
        yield return Case("LINK_FLAPPING", "ib6", kmsg: "real/azurehpc_syslog_ib6_lost_carrier_flap.log");
        yield return Case("XID_FATAL", "gpu0 GPU-0000fake-0000-0000-0000-000000000000 0000:19:00.0", nvml: "gpu0.bus_id=00000000:19:00.0",
            kmsg: "real/gpud_dmesg_iso_xid48_63_94_peermem.log");
        yield return Case("XID_FATAL", "pci 0000:9b:00", kmsg: "real/gpud_dmesg_ctime_xid119_gsp_timeout_h100.log");
        yield return Case("GPU_FELL_OFF_BUS", "gpu6 GPU-0000fake-0000-0000-0000-000000000006 0000:ba:00.0", kmsg: "kmsg/gpu_fell_off_bus.dmesg");
        yield return Case("AMDGPU_RAS_UE", "pci 0000:05:00.0", kmsg: "kmsg/amdgpu_errors.dmesg");
        yield return Case("MCE", "cpu3", kmsg: "kmsg/mce_edac.dmesg");
        yield return Case("PCIE_AER", Gpu3, kmsg: "kmsg/pcie_aer.dmesg");
    }

    [TestCaseSource(nameof(FailCases))]
    public void Fail_code_exits_1_naming_the_component(string nvml, Action<FixtureNode> change, string? kmsg, string code, string component)
    {
        var node = FixtureNode.Healthy();
        change(node);
        var run = CheckRunner.Cli(nvml, "--sysfs-root", node.Root, "--kmsg", CheckRunner.Fixture(kmsg ?? "kmsg/clean.dmesg"));

        Assert.That(run.Cli.ExitCode, Is.EqualTo(1), run.ToString());
        var rows = run.WithCode(code).Where(r => r["severity"] == "FAIL").ToList();
        Assert.That(rows.Select(r => r["component"]), Does.Contain(component), run.ToString());
        var row = rows.First(r => r["component"] == component);
        Assert.That(row["message"], Is.Not.Empty);
        Assert.That(row["remediation"], Is.Not.Empty);
        Assert.That(run.Cli.Stdout, Does.Contain($"FAIL {code}"), "the screen shows it");
        Assert.That(run.Summary.GetProperty("verdict").GetString(), Is.EqualTo("FAIL"));
        Assert.That(run.Prometheus, Does.Contain("kiln_check_healthy{host=\"fixture-h100\"} 0"));
    }

    [Test]
    public void Application_xids_13_and_43_warn_but_do_not_fail_the_node()
    {
        var run = CheckRunner.Cli("gpu2.bus_id=00000000:38:00.0", "--sysfs-root", FixtureNode.Healthy().Root,
            "--kmsg", CheckRunner.Fixture("real/gpud_dmesg_decode_iso_xid13_43.log"));

        Assert.That(run.Cli.ExitCode, Is.Zero, run.ToString());
        var xids = run.WithCode("XID_WARN");
        Assert.That(xids.Select(r => r["component"]).Distinct(), Is.EqualTo(new[] { "gpu2 GPU-0000fake-0000-0000-0000-000000000002 0000:38:00.0" }));
        Assert.That(xids.Select(r => r["message"][..6]), Is.EquivalentTo(new[] { "Xid 13", "Xid 43" }));
        Assert.That(xids.Single(r => r["message"].StartsWith("Xid 13", StringComparison.Ordinal))["message"], Does.Contain("629 lines"));
    }

    [Test]
    public void Since_drops_old_kernel_events_and_keeps_recent_ones()
    {
        var now = DateTimeOffset.UtcNow;
        string Iso(DateTimeOffset t) => t.ToString("yyyy-MM-dd'T'HH:mm:ss,ffffff'+00:00'", CultureInfo.InvariantCulture);
        var log = Path.Combine(HealthTemp.NewFolder("kmsg"), "dmesg.iso");
        File.WriteAllText(log,
            $"{Iso(now.AddDays(-3))} NVRM: Xid (PCI:0000:5d:00): 79, pid=1, name=x, GPU has fallen off the bus.\n" +
            $"{Iso(now.AddHours(-1))} NVRM: Xid (PCI:0000:5d:00): 13, pid=1, name=x, Graphics SM Warp Exception\n");
        var node = FixtureNode.Healthy();

        var all = CheckRunner.Cli("", "--sysfs-root", node.Root, "--kmsg", log);
        var recent = CheckRunner.Cli("", "--sysfs-root", node.Root, "--kmsg", log, "--since", "24h");

        Assert.That(all.Cli.ExitCode, Is.EqualTo(1), all.ToString());
        Assert.That(all.WithCode("XID_FATAL").Single()["component"], Is.EqualTo(Gpu3));
        Assert.That(recent.Cli.ExitCode, Is.Zero, recent.ToString());
        Assert.That(recent.WithCode("XID_FATAL"), Is.Empty);
        Assert.That(recent.WithCode("XID_WARN").Single()["message"], Does.StartWith("Xid 13"));
        Assert.That(recent.Summary.GetProperty("since_seconds").GetDouble(), Is.EqualTo(86400));
    }

    [Test]
    public void Json_format_prints_the_summary()
    {
        var run = CheckRunner.Cli(null, "--sysfs-root", FixtureNode.Healthy().Root, "--kmsg", CheckRunner.Fixture("kmsg/clean.dmesg"),
            "--format", "json");

        Assert.That(run.Cli.ExitCode, Is.Zero, run.ToString());
        using var printed = System.Text.Json.JsonDocument.Parse(run.Cli.Stdout);
        Assert.That(printed.RootElement.GetProperty("verdict").GetString(), Is.EqualTo("PASS"));
        Assert.That(printed.RootElement.GetProperty("skipped").EnumerateArray().Select(s => s.GetProperty("check").GetString()),
            Is.EquivalentTo(new[] { "nvml", "rocm_smi" }));
        Assert.That(printed.RootElement.GetProperty("findings").EnumerateArray().Select(f => f.GetProperty("code").GetString()),
            Does.Contain("SKIPPED_NVML").And.Contain("GPU_DRIVER_UNAVAILABLE"), "8 NVIDIA GPUs on the bus, no NVML");
    }

    [TestCase(new[] { "--sysfs-root", "/nonexistent/kiln" }, "--sysfs-root: /nonexistent/kiln is not a directory")]
    [TestCase(new[] { "--kmsg", "/nonexistent/kiln.log" }, "--kmsg: cannot read /nonexistent/kiln.log")]
    [TestCase(new[] { "--since", "yesterday" }, "--since: cannot read 'yesterday' as a duration")]
    [TestCase(new[] { "--profile", "/nonexistent/kiln-profile.yaml" }, "--profile: ")]
    [TestCase(new[] { "--format", "xml" }, "--format: unknown format 'xml'")]
    public void Bad_input_exits_2_with_one_line_naming_the_option(string[] args, string message)
    {
        var run = CheckRunner.Cli(null, args);

        Assert.That(run.Cli.ExitCode, Is.EqualTo(2), run.ToString());
        Assert.That(run.Cli.StderrLines, Has.Length.EqualTo(1), run.ToString());
        Assert.That(run.Cli.StderrLines[0], Does.StartWith("kiln: error: " + message));
        Assert.That(Directory.Exists(run.Out), Is.False, "nothing is written on bad input");
    }

    /// <summary>
    /// Benchmark, not a timed test (run it by name, in Release): kiln check's wall time as a user sees
    /// it (process start to exit), median of 7 runs, on this node's own root without NVML, and on the
    /// 8-GPU / 8-HCA fixture node with the fake NVML and a 2,400-line kernel log. docs/PERFORMANCE.md.
    /// </summary>
    [Test, Explicit("benchmark: prints kiln check's wall time")]
    public void Benchmark_check_wall_time()
    {
        double Median(string? nvml, params string[] args)
        {
            var times = Enumerable.Range(0, 7).Select(_ => CheckRunner.Cli(nvml, args).Cli.Elapsed.TotalSeconds).Order().ToList();
            return times[times.Count / 2];
        }
        var node = FixtureNode.Healthy();
        var local = Median(null);
        var full = Median("", "--sysfs-root", node.Root, "--kmsg", CheckRunner.Fixture("real/gpud_dmesg_decode_iso_boot_spr_cx7_edac.log"));
        TestContext.Out.WriteLine($"kiln check wall time (median of 7): this node, no GPU {local:0.00} s; " +
                                  $"8 fake GPUs + 8 HCAs + 2 memory controllers + 2,382-line log {full:0.00} s");
        Assert.That(full, Is.LessThan(5), "the design target for 8 GPUs and 8 HCAs");
    }
}
