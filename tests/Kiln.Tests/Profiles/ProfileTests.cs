// Profiles: the built-in SKUs carry REFERENCE.md's numbers in canonical units; the loader refuses
// unknown keys, missing units, units of the wrong kind and values outside a sane range, naming
// file, line and field; the health: section reaches HealthPolicy; --profile auto picks by model.
using Kiln.Core;
using Kiln.Core.Health;
using Kiln.Core.Profiles;
using Kiln.Native;
using Kiln.Tests.Core;

namespace Kiln.Tests.Profiles;

public class ProfileTests
{
    private string _dir = "";

    [SetUp]
    public void SetUp() => _dir = TestEnvironment.NewTempFolder("kiln-profiles");

    [TearDown]
    public void TearDown() => Directory.Delete(_dir, recursive: true);

    [Test]
    public void Every_built_in_profile_loads_and_shows_its_yaml_as_shipped()
    {
        foreach (var name in ProfileCatalog.BuiltInNames)
        {
            var profile = ProfileCatalog.BuiltIn(name);
            Assert.That(profile.Name, Is.EqualTo(name));
            var file = Path.Combine(TestEnvironment.RepoRoot, "managed", "Kiln.Core", "Profiles", "BuiltIn", $"{name}.yaml");
            Assert.That(profile.Text, Is.EqualTo(File.ReadAllText(file)));
            Assert.That(profile.Thresholds.Where(t => t.Class == DeviceClass.Cpu && t.Test == "stream").ToList(), Has.Count.EqualTo(4), $"{name}: the host CPU is judged too");
        }
    }

    [Test]
    public void H100_thresholds_are_the_reference_numbers_in_canonical_units()
    {
        var h100 = ProfileCatalog.BuiltIn("h100-sxm");
        double Limit(string test, string metric) => h100.For(test, DeviceClass.Gpu).Single(t => t.Metric == metric).Value!.Value;
        Assert.That(Limit("stream", "copy_gbps_best"), Is.EqualTo(2400), "2.4 TB/s is 2400 GB/s");
        Assert.That(Limit("gemm", "bf16_tflops"), Is.EqualTo(650));
        Assert.That((Limit("copy", "h2d_gbps"), Limit("copy", "p2p_ce_gbps")), Is.EqualTo((48.0, 335.0)));
        var latency = h100.For("launch", DeviceClass.Gpu).Single();
        Assert.That((latency.Direction, latency.Value, latency.Unit), Is.EqualTo((Direction.AtMost, (double?)15, "us")));
        Assert.That((h100.Health.ExpectedGpuCount, h100.Health.ExpectedGpuModel, h100.Health.ExpectedIbRateGbps),
            Is.EqualTo(((int?)8, "H100 80GB HBM3", (double?)400)));
        Assert.That(ProfileCatalog.BuiltIn("h200").For("stream", DeviceClass.Gpu).First().Value, Is.EqualTo(3450));
        Assert.That(ProfileCatalog.BuiltIn("a100-sxm").Health.ExpectedIbRateGbps, Is.EqualTo(200));
        Assert.That(ProfileCatalog.BuiltIn("mi300x").For("copy", DeviceClass.Gpu).Single(t => t.Metric == "d2h_gbps").Value, Is.EqualTo(44));
    }

    [Test]
    public void A_fraction_of_peak_uses_the_devices_own_peak_and_falls_back_when_unknown()
    {
        var a100 = ProfileCatalog.BuiltIn("a100-sxm").For("stream", DeviceClass.Gpu).First();
        Assert.That(a100.Resolve(Gpu("NVIDIA A100-SXM4-80GB", peakGbps: 2039))!.Value.Limit, Is.EqualTo(0.65 * 2039).Within(1e-9));
        var (limit, basis) = a100.Resolve(Gpu("NVIDIA A100-SXM4-80GB", peakGbps: 0))!.Value;
        Assert.That(limit, Is.EqualTo(1300.0));
        Assert.That(basis, Does.StartWith("peak unknown; judged against the min 1300 GB/s of "));
        var only = Load("name: p\nthresholds:\n  gpu:\n    stream:\n      triad_gbps_best: { fraction_of_peak: 0.75 }\n").Thresholds.Single();
        Assert.That(only.Resolve(Gpu("x", peakGbps: 0)), Is.Null, "no peak and no fallback: nothing to judge against");
    }

    [Test]
    public void Units_are_converted_to_the_canonical_unit_of_their_kind()
    {
        Assert.That(Units.Parse("2.4 TB/s", QuantityKind.Bandwidth, out _)!.Value.Value, Is.EqualTo(2400));
        Assert.That(Units.Parse("500 MB/s", null, out _)!.Value, Is.EqualTo(new Quantity(0.5, QuantityKind.Bandwidth)));
        Assert.That(Units.Parse("2 ms", QuantityKind.Time, out _)!.Value.Value, Is.EqualTo(2000), "times are kept in us");
        Assert.That(Units.Parse("1.2 PFLOP/s", QuantityKind.Compute, out _)!.Value.Value, Is.EqualTo(1200));
        Assert.That(Units.Parse("400 Gb/s", null, out _)!.Value.Kind, Is.EqualTo(QuantityKind.LinkRate), "Gb/s is bits, GB/s bytes");
        Assert.That(Units.KindOfMetric("p2p_ce_gbps_0_3"), Is.EqualTo(QuantityKind.Bandwidth));
        Assert.That(Units.KindOfMetric("launch_latency_us_p99"), Is.EqualTo(QuantityKind.Time));
        Assert.That(Units.KindOfMetric("power_w_mean"), Is.EqualTo(QuantityKind.Power));
    }

    // Each bad threshold: "file:line: field: problem".
    [TestCase("copy_gbps_best: { min: 2400 GB }", "thresholds.gpu.stream.copy_gbps_best: unit 'GB' is not a bandwidth unit (MB/s, GB/s, TB/s)")]
    [TestCase("copy_gbps_best: { min: 2400 }", "thresholds.gpu.stream.copy_gbps_best: '2400' has no unit (bandwidth: MB/s, GB/s, TB/s)")]
    [TestCase("copy_gbps_best: { min: 3000 TB/s }", "thresholds.gpu.stream.copy_gbps_best: 3000 TB/s is outside the sane range for bandwidth (above 0 GB/s to 20000 GB/s)")]
    [TestCase("copy_gbps_best: { min: 2400 TFLOP/s }", "thresholds.gpu.stream.copy_gbps_best: unit 'TFLOP/s' is not a bandwidth unit")]
    [TestCase("copy_gbps_best: { minimum: 2400 GB/s }", "thresholds.gpu.stream.copy_gbps_best.minimum: unknown key (known: min, max, fraction_of_peak, peak, severity)")]
    [TestCase("copy_gbps_best: { min: 2400 GB/s, severity: mild }", "thresholds.gpu.stream.copy_gbps_best.severity: 'mild' is not a severity (fail, warn)")]
    [TestCase("copy_gbps_best: { fraction_of_peak: 1.5 }", "thresholds.gpu.stream.copy_gbps_best.fraction_of_peak: 1.5 is not in 0..1")]
    [TestCase("copy_gbps_best: { min: 1 GB/s, max: 9 GB/s }", "thresholds.gpu.stream.copy_gbps_best.max: a threshold is a floor (min, fraction_of_peak) or a ceiling (max), not both")]
    [TestCase("copy_gbps_best: 2400 GB/s", "thresholds.gpu.stream.copy_gbps_best: expected { min: VALUE UNIT }")]
    [TestCase("launch_latency_us_p99: { max: 20 us }", "thresholds.gpu.stream.launch_latency_us_p99: gpu stream emits no metric 'launch_latency_us_p99' (known: ")]
    [TestCase("p2p_gbps: { min: 335 GB/s }", "thresholds.gpu.stream.p2p_gbps: gpu stream emits no metric 'p2p_gbps'")]
    public void A_bad_threshold_names_file_line_and_field(string entry, string problem)
    {
        var path = WriteFile("h100.yaml", $"name: mine\n# the floors\nthresholds:\n  gpu:\n    stream:\n      {entry}\n");
        var e = Assert.Throws<UsageException>(() => ProfileLoader.Load(path, "--profile"))!;
        Assert.That(e.Message, Does.StartWith($"{path}:6: {problem}"));
    }

    [Test]
    public void A_memtest_coverage_floor_is_a_warn_only_ratio_in_every_gpu_profile()
    {
        var path = WriteFile("mine.yaml", "name: mine\nthresholds:\n  gpu:\n    memtest:\n      fraction_of_planned: { min: 90%, severity: warn }\n");
        var t = ProfileLoader.Load(path, "--profile").Thresholds.Single();
        Assert.That((t.Kind, t.Value, t.Severity, t.Direction), Is.EqualTo((QuantityKind.Ratio, 0.9, ThresholdSeverity.Warn, Direction.AtLeast)));
        Assert.That(Units.Format(0.5263, QuantityKind.Ratio), Is.EqualTo("52.63%"));
        // Higher than the whole is a typo, and the host's memtest emits no such name.
        var over = WriteFile("over.yaml", "name: over\nthresholds:\n  gpu:\n    memtest:\n      fraction_of_planned: { min: 150% }\n");
        Assert.That(Assert.Throws<UsageException>(() => ProfileLoader.Load(over, "--profile"))!.Message, Does.Contain("outside the sane range for ratio"));
        var cpu = WriteFile("cpu.yaml", "name: cpu\nthresholds:\n  cpu:\n    memtest:\n      fraction_of_planned: { min: 90% }\n");
        Assert.That(Assert.Throws<UsageException>(() => ProfileLoader.Load(cpu, "--profile"))!.Message, Does.Contain("cpu memtest emits no metric 'fraction_of_planned'"));
        foreach (var name in new[] { "emu", "h100-sxm", "h200", "a100-sxm", "mi300x" })
        {
            var floor = ProfileCatalog.BuiltIn(name).For("memtest", DeviceClass.Gpu).Single(x => x.Metric == "fraction_of_planned");
            Assert.That((floor.Value, floor.Severity), Is.EqualTo((0.9, ThresholdSeverity.Warn)), name);
        }
    }

    [TestCase("thresholds:\n  tpu:\n    stream: {}\n", 2, "thresholds.tpu: unknown key (known: cpu, gpu, net)")]
    [TestCase("thresholds:\n  gpu:\n    gemmm: {}\n", 3, "thresholds.gpu.gemmm: unknown key (known: stream, memtest, gemm, power, copy, launch)")]
    [TestCase("matches: [H100]\n", 1, "matches: unknown key (known: name, description, match, warn_band, health, thresholds)")]
    [TestCase("warn_band: 2\n", 1, "warn_band: 2 is not in 0..0.5")]
    [TestCase("health:\n  expected_gpu_cnt: 8\n", 2, "health.expected_gpu_cnt: unknown key (known: expected_gpu_count,")]
    [TestCase("health:\n  expected_ib_rate_gbps: 400\n", 2, "health.expected_ib_rate_gbps: '400' has no unit (link rate: Mb/s, Gb/s, Tb/s)")]
    [TestCase("health:\n  expected_gpu_count: 99\n", 2, "health.expected_gpu_count: 99 is not in 0..64")]
    [TestCase("health:\n  xids: { 79: deadly }\n", 2, "health.xids.79: unknown value 'deadly' (known: fatal, warn, info)")]
    public void A_bad_profile_names_file_line_and_field(string yaml, int line, string problem)
    {
        var path = WriteFile("p.yaml", yaml);
        var e = Assert.Throws<UsageException>(() => ProfileLoader.Load(path, "--profile"))!;
        Assert.That(e.Message, Does.StartWith($"{path}:{line}: {problem}"));
    }

    [Test]
    public void The_health_section_maps_onto_the_health_policy()
    {
        var p = Load("""
            name: pinned
            health:
              expected_gpu_count: 8
              expected_gpu_model: H100 80GB HBM3
              driver_versions: ["550.54.15", "550.90.07"]
              expected_ib_ports: 8
              expected_ib_rate_gbps: 400 Gb/s
              temperature_margin_c: 8 C
              xids: { 13: fatal, 999: warn }
              ib_error_counters: { symbol_error: { warn_above: 1, fail_above: 5 } }
              ecc_aggregate_corrected: { warn_above: 100, fail_above: 1000 }
              throttle_fail: [hw_slowdown, hw_thermal]
              link_flap_count: 3
              link_flap_window: 12h
              min_memory_bytes: 1TiB
              pcie_speed_below_max_idle_gpu: warn
            """).Health;
        Assert.That((p.ExpectedGpuCount, p.ExpectedGpuModel, p.ExpectedIbPorts, p.ExpectedIbRateGbps), Is.EqualTo(((int?)8, "H100 80GB HBM3", (int?)8, (double?)400)));
        Assert.That(p.DriverVersions, Is.EqualTo(new[] { "550.54.15", "550.90.07" }));
        Assert.That(p.TemperatureMarginC, Is.EqualTo(8));
        Assert.That((p.Xids[13], p.Xids[999], p.Xids[79]), Is.EqualTo((XidAction.Fatal, XidAction.Warn, XidAction.Fatal)), "merged onto the default table");
        Assert.That(p.IbErrorCounters["symbol_error"], Is.EqualTo(new CounterLimit(1, 5)));
        Assert.That(p.IbErrorCounters["link_downed"], Is.EqualTo(HealthPolicy.Default.IbErrorCounters["link_downed"]), "untouched counters keep their default");
        Assert.That(p.EccAggregateCorrected, Is.EqualTo(new CounterLimit(100, 1000)));
        Assert.That(p.ThrottleFail, Is.EqualTo(ThrottleReasons.HwSlowdown | ThrottleReasons.HwThermal));
        Assert.That((p.LinkFlapCount, p.LinkFlapWindow, p.MinMemoryBytes), Is.EqualTo((3, TimeSpan.FromHours(12), (ulong?)(1UL << 40))));
        Assert.That(p.PcieSpeedBelowMaxIdleGpu, Is.EqualTo(Severity.Warn));
    }

    [Test]
    public void Every_health_policy_setting_can_be_written_in_yaml()
    {
        // A setting added to HealthPolicy with a type the binder cannot read fails here, not in the field.
        Assert.That(HealthBinder.Keys, Has.Count.GreaterThan(10), "the binder found HealthPolicy's settings");
        foreach (var (key, property) in HealthBinder.Keys)
            Assert.That(HealthBinder.CanRead(property.PropertyType), Is.True, $"health.{key} ({property.PropertyType.Name})");
    }

    [Test]
    public void Kiln_check_resolves_its_profile_through_the_catalog()
    {
        Assert.That(HealthPolicyResolver.Resolve(null), Is.EqualTo((HealthPolicy.Default, "default")));
        var (policy, name) = HealthPolicyResolver.Resolve("h200");
        Assert.That((name, policy.ExpectedGpuCount, policy.ExpectedGpuModel), Is.EqualTo(("h200", (int?)8, "H200")));
        var file = WriteFile("site.yaml", "name: site\nhealth:\n  expected_gpu_count: 4\n");
        Assert.That(HealthPolicyResolver.Resolve(file).Policy.ExpectedGpuCount, Is.EqualTo(4));
        Assert.Throws<UsageException>(() => HealthPolicyResolver.Resolve("b300"));
    }

    [Test]
    public void Auto_picks_the_profile_by_the_detected_model()
    {
        var cpu = new DeviceInfo("cpu", "AMD EPYC", "", "", 0, 8, 1, 2, 1UL << 30, 1UL << 30, 0, 0, 0, 0, 0);
        var empty = Path.Combine(_dir, "empty-root");
        Directory.CreateDirectory(empty);
        Assert.That(ProfileCatalog.Resolve("auto", [cpu], empty).Name, Is.EqualTo("cpu-only"));
        Assert.That(ProfileCatalog.Resolve(null, [cpu, Gpu("NVIDIA H100 80GB HBM3", 3352), Gpu("NVIDIA H100 80GB HBM3", 3352)], empty).Name, Is.EqualTo("h100-sxm"));
        Assert.That(ProfileCatalog.Resolve("auto", [Gpu("NVIDIA H200", 4800)], empty).Name, Is.EqualTo("h200"));
        Assert.That(ProfileCatalog.Resolve("auto", [Gpu("NVIDIA A100-SXM4-80GB", 2039)], empty).Name, Is.EqualTo("a100-sxm"));
        Assert.That(ProfileCatalog.Resolve("auto", [Gpu("AMD Instinct MI300X", 5300)], empty).Name, Is.EqualTo("mi300x"));
        var e = Assert.Throws<UsageException>(() => ProfileCatalog.Resolve("auto", [Gpu("NVIDIA L40S", 864)], empty))!;
        Assert.That(e.Message, Does.Contain("no built-in profile matches 'NVIDIA L40S'"));
    }

    [Test]
    public void Auto_refuses_a_gpu_node_whose_gpu_backend_did_not_load()
    {
        // An H100 on the PCI bus but only the cpu backend loaded: judging it as cpu-only would pass it.
        var root = Path.Combine(_dir, "root");
        var gpu = Path.Combine(root, "sys", "bus", "pci", "devices", "0000:3b:00.0");
        Directory.CreateDirectory(gpu);
        File.WriteAllText(Path.Combine(gpu, "class"), "0x030200\n");
        File.WriteAllText(Path.Combine(gpu, "vendor"), "0x10de\n");
        var cpu = new DeviceInfo("cpu", "AMD EPYC", "", "", 0, 8, 1, 2, 1UL << 30, 1UL << 30, 0, 0, 0, 0, 0);
        var e = Assert.Throws<UsageException>(() => ProfileCatalog.Resolve("auto", [cpu], root))!;
        Assert.That(e.Message, Does.Contain("1 GPU(s) on the PCI bus (0000:3b:00.0) but no GPU backend is loaded"));
    }

    internal static DeviceInfo Gpu(string name, double peakGbps, int index = 0) =>
        new("cuda", name, $"GPU-{index}", $"0000:{0x18 + index:x2}:00.0", index, 132, 1, 2048, 80UL << 30, 79UL << 30, 50UL << 20, 1980, peakGbps, 67, 67);

    private Profile Load(string yaml) => ProfileLoader.Load(WriteFile("profile.yaml", yaml), "--profile");

    private string WriteFile(string name, string text)
    {
        var path = Path.Combine(_dir, name);
        File.WriteAllText(path, text);
        return path;
    }
}
