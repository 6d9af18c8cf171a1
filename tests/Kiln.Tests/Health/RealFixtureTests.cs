// kiln check on sysfs trees and kernel logs captured by other projects (tests/fixtures/health/real,
// see its PROVENANCE.md): the ttar archives extracted with Ttar, the GCM JSON dumps written out as
// files. Expectations are cross-checked against what PROVENANCE.md (and the sibling ibstat /
// nvidia-smi captures) say about the hardware.
using System.Text.Json;
using Kiln.Core.Health;

namespace Kiln.Tests.Health;

[NonParallelizable]
public class RealFixtureTests
{
    private static string Extract(string archive, string? into = null)
    {
        var root = HealthTemp.NewFolder("real");
        Ttar.Extract(CheckRunner.Fixture("real/" + archive), root);
        return into is null ? root : Path.Combine(root, into);
    }

    private static List<Finding> Serious(CheckReport r) => r.Findings.Where(f => f.Severity != Severity.Info).ToList();

    [Test]
    public void Ttar_extraction_keeps_symlinks_missing_newlines_and_nul_bytes()
    {
        var root = Extract("node_exporter_sys.ttar");
        var link = new FileInfo(Path.Combine(root, "sys/bus/pci/devices/0000:01:00.0"));
        Assert.That(link.LinkTarget, Is.EqualTo("../../../devices/pci0000:00/0000:00:02.1/0000:01:00.0"));
        Assert.That(File.ReadAllText(Path.Combine(root, "sys/bus/pci/devices/0000:01:00.0/max_link_speed")), Is.EqualTo("16.0 GT/s PCIe\n"));

        var gpud = Extract("gpud_sys-class-infiniband-h100.ttar");
        Assert.That(File.ReadAllText(Path.Combine(gpud, "sys-class-infiniband-h100.0/mlx5_1/ports/1/counters/link_downed")), Is.EqualTo("255"),
            "upstream stored these without a trailing newline (an EOF marker in the archive)");
    }

    [Test]
    public void Node_exporter_tree_fails_on_edac_ue_and_warns_on_unreadable_counters()
    {
        var report = CheckRunner.InProcess(Extract("node_exporter_sys.ttar"), fakeNvml: null);

        var ue = report.Findings.Single(f => f.Code == "EDAC_UE");
        Assert.That((ue.Component, ue.Severity), Is.EqualTo(("mc0", Severity.Fail)));
        Assert.That(ue.Message, Does.StartWith("5 uncorrectable memory errors"), "PROVENANCE: mc0 ue_count=5");
        var i40iw = report.Findings.Single(f => f.Code == "READ_ERROR" && f.Component == "i40iw0 port 1");
        Assert.That(i40iw.Message, Does.Contain("symbol_error ('N/A (no PMA)' is not a number)"));
        Assert.That(report.Findings.Where(f => f.Code == "PCIE_LINK_DEGRADED"), Is.Empty,
            "the downgraded devices are a bridge and an NVMe drive, neither a GPU nor a NIC");
        Assert.That(report.ExitCode, Is.EqualTo(1));
    }

    [Test]
    public void Procfs_tree_with_qdr_edr_and_omnipath_ports_is_healthy()
    {
        var report = CheckRunner.InProcess(Extract("procfs_sys_gpu_ib_pci_excerpt.ttar", "fixtures"), fakeNvml: null);

        Assert.That(Serious(report), Is.Empty, string.Join("\n", report.Findings.Select(f => f.Code + " " + f.Component + " " + f.Message)));
        Assert.That(report.Hcas.Select(h => h.Name), Is.EqualTo(new[] { "hfi1_0", "mlx4_0", "mlx5_0" }));
        Assert.That(report.Hcas.Single(h => h.Name == "mlx4_0").Ports, Has.Count.EqualTo(2));
        Assert.That(report.Hcas.Single(h => h.Name == "mlx4_0").Ports.Select(p => p.LinkLayer), Is.All.EqualTo("InfiniBand"),
            "port 2's link_layer holds two lines; the first counts");
    }

    [Test]
    public void Gpud_h100_tree_fails_the_port_whose_link_went_down_255_times()
    {
        var root = HealthTemp.NewFolder("gpud");
        var extracted = Extract("gpud_sys-class-infiniband-h100.ttar");
        Directory.CreateDirectory(Path.Combine(root, "sys/class"));
        Directory.Move(Path.Combine(extracted, "sys-class-infiniband-h100.0"), Path.Combine(root, "sys/class/infiniband"));

        var report = CheckRunner.InProcess(root, fakeNvml: null);

        var errors = report.Findings.Where(f => f.Code == "IB_ERRORS").ToList();
        var mlx5_1 = errors.Single(f => f.Component == "mlx5_1 port 1");
        Assert.That(mlx5_1.Severity, Is.EqualTo(Severity.Fail));
        Assert.That(mlx5_1.Message, Does.Contain("link_downed 255"));
        // PROVENANCE: port_rcv_errors 14 and excessive_buffer_overrun_errors 15 on every port.
        Assert.That(errors.Where(f => f.Component != "mlx5_1 port 1").Select(f => f.Severity), Is.All.EqualTo(Severity.Warn));
        Assert.That(errors, Has.Count.EqualTo(9), "8 ConnectX-7 ports and the BlueField bond");
        Assert.That(report.Findings.Where(f => f.Code is "IB_PORT_DOWN" or "IB_RATE_LOW"), Is.Empty,
            "all NDR ports active at 400; the bond is Ethernet at 200 and is not compared with them");
        Assert.That(report.Inventory.Hcas.Where(h => h.HcaType == "MT4129").Select(h => h.FirmwareVersion), Is.All.EqualTo("28.41.1000"));
    }

    [Test]
    public void Gcm_dump_with_ipoib_interface_down_under_an_active_port_warns()
    {
        var report = CheckRunner.InProcess(FromGcmDump("gcm_sysfs_dump_ib4_operstate_down.json"), fakeNvml: null);

        var down = report.Findings.Single(f => f.Code == "NIC_LINK_DOWN");
        Assert.That((down.Component, down.Severity), Is.EqualTo(("ib4 (mlx5_6)", Severity.Warn)));
        Assert.That(report.Findings.Where(f => f.Code == "IB_PORT_DOWN"), Is.Empty, "the port itself reads ACTIVE / LinkUp");
    }

    [Test]
    public void Gcm_dump_of_an_hdr_node_has_eight_active_200g_ports()
    {
        var report = CheckRunner.InProcess(FromGcmDump("gcm_sysfs_dump_pcie_downgraded.json"), fakeNvml: null,
            policy: new HealthPolicy { ExpectedIbPorts = 8, ExpectedIbRateGbps = 200, IbErrorCounters = new Dictionary<string, CounterLimit>() });

        Assert.That(report.Findings.Where(f => f.Check == "sysfs_ib"), Is.Empty);
        var rates = report.Hcas.SelectMany(h => h.Ports).Select(p => p.RateGbps).ToList();
        Assert.That(rates, Has.Count.EqualTo(8));
        Assert.That(rates, Is.All.EqualTo(200));
    }

    [Test]
    public void Boot_log_of_a_sapphire_rapids_node_has_no_failure()
    {
        var report = CheckRunner.InProcess(FixtureNode.Healthy().Root, fakeNvml: "",
            kmsg: CheckRunner.Fixture("real/gpud_dmesg_decode_iso_boot_spr_cx7_edac.log"));

        Assert.That(report.ExitCode, Is.Zero);
        Assert.That(report.Findings.Where(f => f.Check == "kmsg").Select(f => f.Component),
            Is.EquivalentTo(new[] { "enp157s0f1np1", "enp157s0f0np0", "enp27s0f1np1" }), "three unused ports went down; no Xid, MCE or AER");
    }

    // GCM's dumps map device paths to file contents; the class links the kernel would add
    // (/sys/class/infiniband/NAME -> the device's infiniband/NAME, and its device link) are made here.
    private static string FromGcmDump(string name)
    {
        var root = HealthTemp.NewFolder("gcm");
        using var dump = JsonDocument.Parse(File.ReadAllText(CheckRunner.Fixture("real/" + name)));
        foreach (var file in dump.RootElement.EnumerateObject())
        {
            var path = Path.Combine(root, file.Name.TrimStart('/'));
            Directory.CreateDirectory(Path.GetDirectoryName(path)!);
            File.WriteAllText(path, file.Value.GetString());
        }
        var node = new FixtureNode(root);
        foreach (var hca in Directory.GetDirectories(Path.Combine(root, "sys/bus/pci/devices"), "*", SearchOption.TopDirectoryOnly)
                     .SelectMany(d => Directory.Exists(Path.Combine(d, "infiniband")) ? Directory.GetDirectories(Path.Combine(d, "infiniband")) : []))
        {
            var relative = Path.GetRelativePath(root, hca);
            node.Link($"sys/class/infiniband/{Path.GetFileName(hca)}", "../../" + relative[4..]);
            node.Link($"{relative}/device", "../..");
        }
        return root;
    }
}
