// One test per finding code not covered end to end by CheckCliTests: the WARN and INFO codes, the
// FAIL codes only a profile can arm (pinned versions, expected counts, minimums), skips and read
// errors. Each runs HealthCheck in-process on a FixtureNode (plus the fake NVML) and asserts the code,
// the component, the severity and the exit code the report would give.
using Kiln.Core;
using Kiln.Core.Health;
using Kiln.Core.Health.Sources;
using Kiln.Native;

namespace Kiln.Tests.Health;

[NonParallelizable]  // sets the C environment the fake NVML reads
public class CheckCodeTests
{
    private const string Gpu3 = "gpu3 GPU-0000fake-0000-0000-0000-000000000003 0000:5d:00.0";
    private static readonly string Clean = CheckRunner.Fixture("kmsg/clean.dmesg");

    private static CheckReport Run(string? nvml = "", Action<FixtureNode>? change = null, HealthPolicy? policy = null, string? kmsg = null)
    {
        var node = FixtureNode.Healthy();
        change?.Invoke(node);
        return CheckRunner.InProcess(node.Root, nvml, policy, kmsg ?? Clean);
    }

    /// <summary>Exactly one finding with the code on the component, with this severity; returns it.</summary>
    private static Finding Expect(CheckReport report, string code, string component, Severity severity)
    {
        var all = string.Join("\n", report.Findings.Select(f => $"{Finding.Name(f.Severity)} {f.Code} [{f.Component}] {f.Message}"));
        var matching = report.Findings.Where(f => f.Code == code && f.Component == component).ToList();
        Assert.That(matching, Has.Count.EqualTo(1), all);
        Assert.That(matching[0].Severity, Is.EqualTo(severity), all);
        Assert.That(matching[0].Remediation, Is.Not.Empty);
        Assert.That(report.ExitCode, Is.EqualTo(report.Findings.Any(f => f.Severity == Severity.Fail) ? 1 : 0));
        if (severity == Severity.Fail) Assert.That(report.ExitCode, Is.EqualTo(ExitCodes.Failed));
        return matching[0];
    }

    // ---- FAIL codes a profile arms ----

    [Test]
    public void Gpu_model_not_the_profiles_fails() =>
        Expect(Run(policy: new HealthPolicy { ExpectedGpuModel = "H200" }), "GPU_MODEL_MISMATCH", Gpu3, Severity.Fail);

    [Test]
    public void Gpu_count_not_the_profiles_fails() =>
        Assert.That(Expect(Run(policy: new HealthPolicy { ExpectedGpuCount = 4 }), "GPU_COUNT_MISMATCH", "node", Severity.Fail).Message,
            Is.EqualTo("8 GPUs found, the profile expects 4"));

    [Test]
    public void Driver_not_pinned_fails() =>
        Assert.That(Expect(Run(policy: new HealthPolicy { DriverVersions = ["550.90.07"] }), "GPU_DRIVER_NOT_PINNED", "node", Severity.Fail).Message,
            Does.Contain("535.183.01"));

    [Test]
    public void Vbios_not_pinned_fails() =>
        Expect(Run("gpu3.vbios=96.00.61.00.01", policy: new HealthPolicy { VbiosVersions = ["96.00.99.00.01"] }),
            "GPU_VBIOS_NOT_PINNED", Gpu3, Severity.Fail);

    [Test]
    public void Ib_port_count_not_the_profiles_fails() =>
        Expect(Run(policy: new HealthPolicy { ExpectedIbPorts = 9 }), "IB_PORT_COUNT_MISMATCH", "node", Severity.Fail);

    [Test]
    public void Ib_rate_below_the_profiles_fails() =>
        Expect(Run(change: n => n.Write("sys/class/infiniband/mlx5_5/ports/1/rate", "200 Gb/sec (4X HDR)\n"),
            policy: new HealthPolicy { ExpectedIbRateGbps = 400 }), "IB_RATE_LOW", "mlx5_5 port 1", Severity.Fail);

    [Test]
    public void Memory_below_the_profiles_minimum_fails() =>
        Assert.That(Expect(Run(policy: new HealthPolicy { MinMemoryBytes = 4UL << 40 }), "MEMORY_LOW", "memory", Severity.Fail).Message,
            Does.StartWith("MemTotal 2 TiB, the profile requires at least 4 TiB"));

    [Test]
    public void Hugepages_below_the_profiles_minimum_fail() =>
        Expect(Run(policy: new HealthPolicy { MinHugepages = new Dictionary<long, long> { [1048576] = 16 } }),
            "HUGEPAGES", "hugepages-1048576kB", Severity.Fail);

    [Test]
    public void Cpus_online_not_the_profiles_fail() =>
        Expect(Run(policy: new HealthPolicy { ExpectedCpusOnline = 224 }), "CPUS_OFFLINE", "cpus", Severity.Fail);

    // ---- GPU WARN and INFO ----

    [TestCase("gpu3.persistence=0", "GPU_PERSISTENCE_OFF")]
    [TestCase("gpu3.ecc_aggregate_uncorrected=1", "GPU_ECC_AGGREGATE_UNCORRECTABLE")]
    [TestCase("gpu3.ecc_aggregate_corrected=10001", "GPU_ECC_CORRECTABLE")]
    [TestCase("gpu3.retired_sbe=2", "GPU_RETIRED_PAGES")]
    [TestCase("gpu3.throttle=32", "GPU_THROTTLE_SW_THERMAL")]
    [TestCase("gpu3.temperature=83", "GPU_TEMPERATURE_HIGH")]
    [TestCase("gpu3.power_mw=760000", "GPU_POWER_HIGH")]
    [TestCase("gpu3.nvlink_recovery=3", "NVLINK_ERRORS")]
    [TestCase("gpu3.processes=2", "GPU_BUSY_PROCESSES")]
    public void Gpu_warning(string nvml, string code) => Expect(Run(nvml), code, Gpu3, Severity.Warn);

    [Test]
    public void Idle_gpu_at_a_lower_pcie_generation_is_info_and_busy_one_fails()
    {
        Assert.That(Expect(Run("gpu3.pcie_gen=1;gpu3.throttle=1"), "GPU_PCIE_DEGRADED", Gpu3, Severity.Info).Message, Does.Contain("while idle"));
        Expect(Run("gpu3.pcie_gen=4"), "GPU_PCIE_DEGRADED", Gpu3, Severity.Fail);
    }

    [Test]
    public void Gpus_on_the_bus_without_a_working_nvml_warn()
    {
        var report = Run("init_error=9");
        Assert.That(Expect(report, "GPU_DRIVER_UNAVAILABLE", "node", Severity.Warn).Message,
            Does.StartWith("8 GPUs on the PCI bus, but NVML is not available: NVML could not start"));
        Expect(report, "SKIPPED_NVML", "node", Severity.Info);
    }

    [Test]
    public void Fields_the_library_does_not_report_are_one_info_finding()
    {
        var ctx = new CheckContext("/", HealthPolicy.Default, DateTimeOffset.UtcNow);
        var unknown = new GpuHealth(0, "AMD Instinct MI300X", "GPU-x", "", "0000:05:00.0", "113-M3000100-102", true, null,
            5, 5, 16, 16, null, -1, -1, 0, 0, 0, 0, -1, -1, null, null, -1, -1, -1, -1, -1, 0, ThrottleReasons.None, 0, 40, 100, 150, 750);
        GpuCheck.Judge(ctx, GpuCheck.RocmSmi, "6.8.5", [new GpuRecord(GpuCheck.RocmSmi, unknown)]);
        var finding = ctx.Findings.Single();
        Assert.That((finding.Code, finding.Severity, finding.Component), Is.EqualTo(("GPU_FIELDS_UNKNOWN", Severity.Info, "node")));
        Assert.That(finding.Message, Is.EqualTo("not reported by rocm_smi: NVLink, retired pages, row remapping"));
    }

    [Test]
    public void Mixed_vbios_inside_the_node_warns() =>
        Assert.That(Expect(Run("gpu5.vbios=96.00.74.00.01"), "INVENTORY_MIXED", "NVIDIA H100 80GB HBM3", Severity.Warn).Message,
            Is.EqualTo("VBIOS versions differ: 96.00.99.00.01 on gpu0,1,2,3,4,6,7, 96.00.74.00.01 on gpu5"));

    // ---- PCIe, InfiniBand, memory ----

    [Test]
    public void Gpu_link_speed_below_max_in_sysfs_is_info() =>
        Expect(Run(change: n => n.Write(FixtureNode.DevicePath("0000:5d:00.0") + "/current_link_speed", "2.5 GT/s PCIe\n")),
            "PCIE_LINK_DEGRADED", Gpu3, Severity.Info);

    [Test]
    public void Non_fatal_aer_errors_warn() =>
        Expect(Run(change: n => n.Write(FixtureNode.DevicePath("0000:19:00.0") + "/aer_dev_nonfatal", "DLP 0\nCmpltTO 2\nTOTAL_ERR_NONFATAL 2\n")),
            "PCIE_AER", "nic 0000:19:00.0", Severity.Warn);

    [Test]
    public void Down_ethernet_port_warns()
    {
        var report = Run(change: n =>
        {
            n.Write("sys/class/infiniband/mlx5_7/ports/1/link_layer", "Ethernet\n");
            n.Write("sys/class/infiniband/mlx5_7/ports/1/state", "1: DOWN\n");
            n.Write("sys/class/infiniband/mlx5_7/ports/1/phys_state", "3: Disabled\n");
        });
        Expect(report, "IB_PORT_DOWN", "mlx5_7 port 1", Severity.Warn);
    }

    [Test]
    public void Port_slower_than_its_peers_warns() =>
        Assert.That(Expect(Run(change: n => n.Write("sys/class/infiniband/mlx5_1/ports/1/rate", "100 Gb/sec (2X NDR)\n")),
            "IB_RATE_LOW", "mlx5_1 port 1", Severity.Warn).Message, Is.EqualTo("100 Gb/s while other MT4129 ports run at 400 Gb/s"));

    [Test]
    public void Few_port_errors_warn() =>
        Assert.That(Expect(Run(change: n => n.Write("sys/class/infiniband/mlx5_2/ports/1/counters/link_downed", "2\n")),
            "IB_ERRORS", "mlx5_2 port 1", Severity.Warn).Message, Is.EqualTo("link_downed 2 (WARN above 0, FAIL above 10)"));

    [Test]
    public void Netdev_down_under_an_active_port_warns() =>
        Expect(Run(change: n => n.Write(FixtureNode.DevicePath("0000:2b:00.0") + "/net/ib1/operstate", "down\n")),
            "NIC_LINK_DOWN", "ib1 (mlx5_1)", Severity.Warn);

    [Test]
    public void Correctable_memory_errors_growing_fast_warn() =>
        Assert.That(Expect(Run(change: n => n.Write("sys/devices/system/edac/mc/mc0/ce_count", "480\n")),
            "EDAC_CE", "mc0 (Intel_10nm Socket#0 IMC#0)", Severity.Warn).Message, Does.StartWith("480 correctable memory errors in 24 h (20 per hour"));

    [Test]
    public void Few_correctable_memory_errors_over_a_day_pass()
    {
        var report = Run(change: n => n.Write("sys/devices/system/edac/mc/mc0/ce_count", "3\n"));
        Assert.That(report.Findings.Where(f => f.Code == "EDAC_CE"), Is.Empty);
    }

    // ---- the kernel log ----

    [Test]
    public void Xid_the_table_marks_info_is_info()
    {
        var xids = HealthPolicy.DefaultXids();
        xids[13] = XidAction.Info;
        var report = Run(kmsg: CheckRunner.Fixture("kmsg/xid_unknown_and_garbage.dmesg"), policy: new HealthPolicy { Xids = xids });
        Assert.That(Expect(report, "XID_INFO", "gpu1 GPU-0000fake-0000-0000-0000-000000000001 0000:2a:00.0", Severity.Info).Message,
            Does.StartWith("Xid 13: Graphics SM Warp Exception (1 line at 2024-11-19 07:08:53Z"));
    }

    [Test]
    public void Unknown_xid_and_malformed_lines_warn_naming_file_and_line()
    {
        var log = CheckRunner.Fixture("kmsg/xid_unknown_and_garbage.dmesg");
        var report = Run(kmsg: log);
        Assert.That(Expect(report, "XID_UNKNOWN", "gpu1 GPU-0000fake-0000-0000-0000-000000000001 0000:2a:00.0", Severity.Warn).Message,
            Does.StartWith("unknown Xid 999: a new failure nobody has catalogued"));
        var errors = report.Findings.Where(f => f.Code == "READ_ERROR").Select(f => f.Message).ToList();
        Assert.That(errors, Has.Count.EqualTo(3));
        Assert.That(errors[0], Does.StartWith($"could not read {log} line 3: truncated or malformed timestamp"));
        Assert.That(errors[1], Does.StartWith($"could not read {log} line 4: truncated Xid line"));
        Assert.That(errors[2], Does.StartWith($"could not read {log} line 5: binary garbage"));
    }

    [Test]
    public void Amdgpu_ring_timeout_warns() =>
        Expect(Run(kmsg: CheckRunner.Fixture("kmsg/amdgpu_errors.dmesg")), "AMDGPU_ERROR", "amdgpu", Severity.Warn);

    [Test]
    public void Corrected_machine_check_warns_and_names_the_memory_controller() =>
        Assert.That(Expect(Run(kmsg: CheckRunner.Fixture("kmsg/mce_edac.dmesg")), "MCE", "mc0", Severity.Warn).Message,
            Does.Contain("CPU_SrcID#0_MC#0_Chan#1_DIMM#0"));

    [Test]
    public void Link_that_came_back_is_info() =>
        Expect(Run(kmsg: WriteLog("[  10.000000] mlx5_core 0000:19:00.0 ib0: Link down\n[  12.000000] mlx5_core 0000:19:00.0 ib0: Link up\n")),
            "NIC_LINK_DOWN", "ib0", Severity.Info);

    [Test]
    public void Relative_times_without_a_boot_time_keep_every_line_and_say_so()
    {
        var report = Run(change: n => n.Delete("proc/stat"), kmsg: CheckRunner.Fixture("kmsg/gpu_fell_off_bus.dmesg"),
            policy: new HealthPolicy { Since = TimeSpan.FromHours(1) });
        Assert.That(Expect(report, "KMSG_TIMES_UNPLACED", "node", Severity.Info).Message, Does.Contain("--since kept all"));
        Expect(report, "XID_FATAL", Gpu3, Severity.Fail);
    }

    // ---- skips and read errors ----

    [Test]
    public void Every_absent_source_is_one_info_skip_with_its_reason()
    {
        var report = CheckRunner.InProcess(HealthTemp.NewFolder("empty-root"), fakeNvml: null);
        var skipped = report.Findings.Where(f => f.Code.StartsWith("SKIPPED_", StringComparison.Ordinal)).ToList();
        Assert.That(skipped.Select(f => f.Code), Is.EquivalentTo(new[]
        {
            "SKIPPED_NVML", "SKIPPED_ROCM_SMI", "SKIPPED_SYSFS_PCIE", "SKIPPED_SYSFS_IB", "SKIPPED_SYSFS_EDAC", "SKIPPED_SYSFS_CPU_MEMORY", "SKIPPED_KMSG",
        }));
        Assert.That(skipped.Select(f => f.Severity), Is.All.EqualTo(Severity.Info));
        Assert.That(skipped.Select(f => f.Message), Is.All.StartWith("SKIPPED: "));
        Assert.That(report.Skipped.Select(s => s.Check), Is.EquivalentTo(new[] { "nvml", "rocm_smi", "sysfs_pcie", "sysfs_ib", "sysfs_edac", "sysfs_cpu_memory", "kmsg" }));
        Assert.That(report.ExitCode, Is.Zero, "a node without the hardware is not unhealthy");
    }

    [Test]
    public void Missing_sysfs_counter_warns_could_not_read() =>
        Assert.That(Expect(Run(change: n => n.Delete("sys/devices/system/edac/mc/mc1/ue_count")), "READ_ERROR", "mc1", Severity.Warn).Message,
            Is.EqualTo("could not read /sys/devices/system/edac/mc/mc1/ue_count: no such file"));

    [Test]
    public void Garbage_in_a_counter_warns_could_not_read() =>
        Assert.That(Expect(Run(change: n => n.Write("sys/class/infiniband/mlx5_4/ports/1/counters/symbol_error", "\u0001\u0002zz\n")),
            "READ_ERROR", "mlx5_4 port 1", Severity.Warn).Message, Does.StartWith("could not read /sys/class/infiniband/mlx5_4/ports/1/counters: symbol_error ('??zz' is not a number)"));

    private static string WriteLog(string text)
    {
        var path = Path.Combine(HealthTemp.NewFolder("kmsg"), "dmesg");
        File.WriteAllText(path, text);
        return path;
    }
}
