// A healthy 8x H100 + 8x NDR node as a filesystem root for `kiln check --sysfs-root`, built from the
// kernel's documented sysfs layout (Documentation/ABI: sysfs-bus-pci, sysfs-class-infiniband,
// sysfs-devices-edac, sysfs-devices-system-cpu, sysfs-kernel-mm-hugepages) plus proc/meminfo, stat,
// uptime, cpuinfo. Devices are real directories under sys/devices with the class/bus symlinks the
// kernel makes. GPU addresses match the fake NVML's defaults, so NVML and sysfs agree.
namespace Kiln.Tests.Health;

public sealed class FixtureNode
{
    /// <summary>The fake NVML's default bus ids, in sysfs form.</summary>
    public static readonly string[] GpuAddresses =
        ["0000:18:00.0", "0000:2a:00.0", "0000:3a:00.0", "0000:5d:00.0", "0000:9a:00.0", "0000:ab:00.0", "0000:ba:00.0", "0000:db:00.0"];

    /// <summary>One ConnectX-7 per GPU, on the same PCIe switch (the next bus).</summary>
    public static readonly string[] HcaAddresses =
        ["0000:19:00.0", "0000:2b:00.0", "0000:3b:00.0", "0000:5e:00.0", "0000:9b:00.0", "0000:ac:00.0", "0000:bb:00.0", "0000:dc:00.0"];

    public const long BootTimeUnix = 1_732_000_000;  // 2024-11-19T07:06:40Z

    public FixtureNode(string? root = null)
    {
        Root = root ?? Path.Combine(HealthTemp.NewFolder("node"), "root");
        Directory.CreateDirectory(Root);
    }

    public string Root { get; }

    /// <summary>The whole healthy node.</summary>
    public static FixtureNode Healthy()
    {
        var node = new FixtureNode();
        for (var i = 0; i < 8; i++)
        {
            node.PciDevice(GpuAddresses[i], "0x030200", "0x10de", "32.0 GT/s PCIe", 16);
            node.PciDevice(HcaAddresses[i], "0x020700", "0x15b3", "32.0 GT/s PCIe", 16);
            node.Hca($"mlx5_{i}", HcaAddresses[i], $"ib{i}");
        }
        node.Edac("mc0");
        node.Edac("mc1");
        node.Write("sys/devices/system/cpu/online", "0-191\n");
        node.Write("sys/devices/system/cpu/present", "0-191\n");
        node.Write("sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages", "0\n");
        node.Write("sys/kernel/mm/hugepages/hugepages-1048576kB/nr_hugepages", "0\n");
        node.Write("proc/meminfo", "MemTotal:       2113785236 kB\nMemFree:        2000000000 kB\nMemAvailable:   2050000000 kB\nHugePages_Total:       0\n");
        node.Write("proc/stat", $"cpu  1 2 3 4 5 6 7 0 0 0\nbtime {BootTimeUnix}\nprocesses 12345\n");
        node.Write("proc/uptime", "86400.00 16000000.00\n");
        node.Write("proc/cpuinfo", "processor\t: 0\nvendor_id\t: GenuineIntel\nmodel name\t: Intel(R) Xeon(R) Platinum 8480+\n");
        node.Write("proc/sys/kernel/osrelease", "5.15.0-112-generic\n");
        node.Write("proc/sys/kernel/hostname", "fixture-h100\n");
        return node;
    }

    /// <summary>Writes ROOT/relative (folders made as needed).</summary>
    public string Write(string relative, string content)
    {
        var path = Path.Combine(Root, relative);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.WriteAllText(path, content);
        return path;
    }

    public void Delete(string relative) => File.Delete(Path.Combine(Root, relative));

    /// <summary>sys/devices/pci0000:BB/ADDR with class, vendor, link and AER files; sys/bus/pci/devices/ADDR links to it.</summary>
    public string PciDevice(string address, string cls, string vendor, string speed, int width)
    {
        var device = DevicePath(address);
        Write($"{device}/class", cls + "\n");
        Write($"{device}/vendor", vendor + "\n");
        Write($"{device}/current_link_speed", speed + "\n");
        Write($"{device}/max_link_speed", speed + "\n");
        Write($"{device}/current_link_width", $"{width}\n");
        Write($"{device}/max_link_width", $"{width}\n");
        Write($"{device}/aer_dev_correctable", "RxErr 0\nBadTLP 0\nBadDLLP 0\nRollover 0\nTimeout 0\nNonFatalErr 0\nCorrIntErr 0\nHeaderOF 0\nTOTAL_ERR_COR 0\n");
        Write($"{device}/aer_dev_fatal", "Undefined 0\nDLP 0\nSDES 0\nTLP 0\nFCP 0\nCmpltTO 0\nCmpltAbrt 0\nUnxCmplt 0\nRxOF 0\nMalfTLP 0\nECRC 0\nUnsupReq 0\nACSViol 0\nTOTAL_ERR_FATAL 0\n");
        Write($"{device}/aer_dev_nonfatal", "Undefined 0\nDLP 0\nSDES 0\nTLP 0\nFCP 0\nCmpltTO 0\nCmpltAbrt 0\nUnxCmplt 0\nRxOF 0\nMalfTLP 0\nECRC 0\nUnsupReq 0\nACSViol 0\nTOTAL_ERR_NONFATAL 0\n");
        Link($"sys/bus/pci/devices/{address}", $"../../../{device[4..]}");
        return device;
    }

    /// <summary>An HCA with one active NDR port, zero counters and its IPoIB netdev, under its PCI device.</summary>
    public void Hca(string name, string address, string netdev)
    {
        var device = DevicePath(address);
        var hca = $"{device}/infiniband/{name}";
        Write($"{hca}/hca_type", "MT4129\n");
        Write($"{hca}/fw_ver", "28.41.1000\n");
        Write($"{hca}/board_id", "MT_0000000838\n");
        Write($"{hca}/node_type", "1: CA\n");
        var port = $"{hca}/ports/1";
        Write($"{port}/state", "4: ACTIVE\n");
        Write($"{port}/phys_state", "5: LinkUp\n");
        Write($"{port}/rate", "400 Gb/sec (4X NDR)\n");
        Write($"{port}/link_layer", "InfiniBand\n");
        foreach (var counter in new[]
                 {
                     "symbol_error", "link_error_recovery", "link_downed", "port_rcv_errors", "port_rcv_remote_physical_errors",
                     "port_rcv_switch_relay_errors", "local_link_integrity_errors", "excessive_buffer_overrun_errors",
                     "port_xmit_discards", "VL15_dropped", "port_xmit_data", "port_rcv_data",
                 })
            Write($"{port}/counters/{counter}", "0\n");
        Link($"{hca}/device", "../../../" + address);
        Write($"{device}/net/{netdev}/operstate", "up\n");
        Link($"sys/class/infiniband/{name}", $"../../{hca[4..]}");
    }

    /// <summary>A memory controller with no errors, reset a day ago, with two labelled DIMMs.</summary>
    public void Edac(string mc)
    {
        var dir = $"sys/devices/system/edac/mc/{mc}";
        Write($"{dir}/mc_name", "Intel_10nm Socket#0 IMC#0\n");
        Write($"{dir}/ce_count", "0\n");
        Write($"{dir}/ue_count", "0\n");
        Write($"{dir}/seconds_since_reset", "86400\n");
        for (var d = 0; d < 2; d++)
        {
            Write($"{dir}/dimm{d}/dimm_label", $"CPU_SrcID#0_MC#{mc[2..]}_Chan#{d}_DIMM#0\n");
            Write($"{dir}/dimm{d}/dimm_ce_count", "0\n");
            Write($"{dir}/dimm{d}/dimm_ue_count", "0\n");
        }
    }

    /// <summary>sys/devices/pci0000:BB/ADDR, BB the device's bus (one root port per bus keeps it simple).</summary>
    public static string DevicePath(string address) => $"sys/devices/pci0000:{address[5..7]}/{address}";

    public void Link(string relative, string target)
    {
        var path = Path.Combine(Root, relative);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        if (new FileInfo(path).LinkTarget is null) File.CreateSymbolicLink(path, target);
    }
}
