// Every finding code kiln check can report, with what it means and what to do about it: the one
// place remediation text lives. docs/HEALTH.md documents the same list (a test keeps them in step).
namespace Kiln.Core.Health;

/// <param name="Severities">The severities this code is reported with, worst first ("FAIL", "WARN/INFO" ...).</param>
public sealed record FindingCode(string Name, string Severities, string Meaning, string Remediation)
{
    public Finding At(string check, string component, Severity severity, string message) =>
        new(check, component, severity, Name, message, Remediation);

    public override string ToString() => Name;
}

public static class FindingCodes
{
    // ---- any source ----
    public static readonly FindingCode ReadError = new("READ_ERROR", "WARN",
        "A sysfs file, counter or kernel-log line could not be read or parsed; the check it feeds is incomplete.",
        "Look at the named file or line; a driver that stopped answering, a missing module or a corrupt log is worth a ticket.");
    public static readonly FindingCode NothingChecked = new("NOTHING_CHECKED", "WARN",
        "Every source was skipped (no GPU library, no PCI bus, InfiniBand, EDAC, CPU/memory files or kernel log under the root): nothing on the node was checked.",
        "Check that --sysfs-root holds the node's sys/ and proc/ (or run on the node itself); the skip reasons name the paths that were looked for.");
    public static readonly FindingCode CheckTimeout = new("CHECK_TIMEOUT", "FAIL",
        "A source did not finish within kiln slurm healthcheck's deadline (a GPU library or the kernel log that stopped answering); the sources after it did not run.",
        "A hung NVML or ROCm SMI call usually means a hung GPU or driver: check the kernel log for Xids, reset the GPU or reboot the node.");

    // ---- GPUs: NVML / ROCm SMI ----
    public static readonly FindingCode GpuCountMismatch = new("GPU_COUNT_MISMATCH", "FAIL",
        "The number of GPUs the management library sees differs from the profile, or from the GPUs on the PCI bus.",
        "A GPU fell off the bus or was not enumerated: check `lspci`, the kernel log (Xid 79), reseat or RMA the board.");
    public static readonly FindingCode GpuModelMismatch = new("GPU_MODEL_MISMATCH", "FAIL",
        "A GPU's product name does not contain the model the profile expects.",
        "The node has different hardware than planned: fix the profile or the node assignment.");
    public static readonly FindingCode GpuDriverNotPinned = new("GPU_DRIVER_NOT_PINNED", "FAIL",
        "The GPU driver version is not in the profile's pinned list.",
        "Install a pinned driver version (or add this one to the profile after qualifying it).");
    public static readonly FindingCode GpuVbiosNotPinned = new("GPU_VBIOS_NOT_PINNED", "FAIL",
        "A GPU's VBIOS / firmware version is not in the profile's pinned list.",
        "Flash a pinned VBIOS with the vendor's tool (or qualify and pin this one).");
    public static readonly FindingCode GpuDriverUnavailable = new("GPU_DRIVER_UNAVAILABLE", "WARN",
        "GPUs are on the PCI bus but their management library (NVML, ROCm SMI) is absent or could not start.",
        "Install or load the GPU driver (nvidia-smi / rocm-smi must work); until then the GPU checks cannot run.");
    public static readonly FindingCode GpuUnreadable = new("GPU_UNREADABLE", "FAIL",
        "The management library enumerated a GPU but reading its state failed.",
        "The GPU may be lost: check the kernel log for Xid 79 / 'fallen off the bus', then reset or drain the node.");
    public static readonly FindingCode GpuPersistenceOff = new("GPU_PERSISTENCE_OFF", "WARN",
        "Persistence mode is off: the driver tears down GPU state between jobs and first calls are slow.",
        "Enable it: `nvidia-smi -pm 1`, or run nvidia-persistenced.");
    public static readonly FindingCode GpuEccDisabled = new("GPU_ECC_DISABLED", "FAIL",
        "ECC is turned off on a GPU that supports it: memory errors go undetected.",
        "`nvidia-smi -e 1` and reboot (or reset the GPU).");
    public static readonly FindingCode GpuEccUncorrectable = new("GPU_ECC_UNCORRECTABLE", "FAIL",
        "Uncorrectable ECC errors since the driver loaded: data was corrupted.",
        "Drain the node, reset the GPU; if errors recur or a remap fails, RMA the board.");
    public static readonly FindingCode GpuEccAggregateUncorrectable = new("GPU_ECC_AGGREGATE_UNCORRECTABLE", "WARN",
        "The GPU has had uncorrectable ECC errors in its life (not necessarily since this driver load).",
        "Check the row-remap and retired-page state; watch the board.");
    public static readonly FindingCode GpuEccCorrectable = new("GPU_ECC_CORRECTABLE", "FAIL/WARN",
        "Lifetime correctable ECC errors above the profile's levels (REFERENCE.md: SRAM > 10k, DRAM > 20M).",
        "Memory is wearing out: plan an RMA; FAIL means replace now.");
    public static readonly FindingCode GpuRetiredPages = new("GPU_RETIRED_PAGES", "FAIL/WARN",
        "Pages retired for ECC errors; at 60 the board reaches NVIDIA's replacement point.",
        "Track the count; at the FAIL level RMA the board.");
    public static readonly FindingCode GpuRetiredPagesPending = new("GPU_RETIRED_PAGES_PENDING", "FAIL",
        "A page retirement waits for a GPU reset: until then the bad page can still be used.",
        "Drain the node and reset the GPU (`nvidia-smi -r`) or reboot.");
    public static readonly FindingCode GpuRowRemapPending = new("GPU_ROW_REMAP_PENDING", "FAIL",
        "A row remap waits for a GPU reset to take effect.",
        "Drain the node and reset the GPU (`nvidia-smi -r`) or reboot.");
    public static readonly FindingCode GpuRowRemapFailed = new("GPU_ROW_REMAP_FAILED", "FAIL",
        "A row remap failed: the GPU has no spare rows left for a bad row.",
        "RMA the board.");
    public static readonly FindingCode GpuThrottleHwSlowdown = new("GPU_THROTTLE_HW_SLOWDOWN", "FAIL",
        "Hardware slowdown is active (clocks cut by half or more): over-temperature, power brake or a bad power supply.",
        "Check cooling, fans, power supplies and cabling; `nvidia-smi -q -d PERFORMANCE`.");
    public static readonly FindingCode GpuThrottleHwThermal = new("GPU_THROTTLE_HW_THERMAL", "FAIL",
        "Hardware thermal slowdown is active.",
        "Check airflow, fans, heat sinks and inlet temperature.");
    public static readonly FindingCode GpuThrottlePowerBrake = new("GPU_THROTTLE_POWER_BRAKE", "FAIL",
        "The external power-brake signal is slowing the GPU (a power supply or the chassis asked for it).",
        "Check the power supplies and the chassis management controller's log.");
    public static readonly FindingCode GpuThrottleSwThermal = new("GPU_THROTTLE_SW_THERMAL", "WARN",
        "The driver is lowering clocks to stay under the thermal limit.",
        "Check cooling; under sustained load this costs performance.");
    public static readonly FindingCode GpuTemperatureHigh = new("GPU_TEMPERATURE_HIGH", "FAIL/WARN",
        "The GPU is at (FAIL) or within the profile's margin of (WARN) its slowdown temperature.",
        "Check cooling; an idle GPU near its slowdown temperature has a cooling fault.");
    public static readonly FindingCode GpuPowerHigh = new("GPU_POWER_HIGH", "WARN",
        "Power draw is above the enforced power limit by more than the profile allows.",
        "Check the power limit settings and the power sensor; compare with the other GPUs.");
    public static readonly FindingCode GpuPcieDegraded = new("GPU_PCIE_DEGRADED", "FAIL/INFO",
        "The GPU's PCIe link runs below its maximum width, or below its maximum generation under load. An idle GPU's lower generation is INFO: GPUs lower it to save power.",
        "Reseat the GPU or riser, check the slot and the BIOS PCIe settings; confirm under load with `kiln burn`.");
    public static readonly FindingCode NvlinkDown = new("NVLINK_DOWN", "FAIL",
        "Fewer NVLink links are active than the GPU has.",
        "Reset the GPU; if links stay down, check the NVSwitch / fabric manager and RMA.");
    public static readonly FindingCode NvlinkErrors = new("NVLINK_ERRORS", "WARN",
        "NVLink CRC, replay or recovery error counters above the profile's levels.",
        "Watch for growth and for Xid 74; a link with growing errors needs service.");
    public static readonly FindingCode GpuBusyProcesses = new("GPU_BUSY_PROCESSES", "WARN",
        "Processes hold the GPU: a burn or benchmark would share it, and a 'free' node is not free.",
        "Find them with `nvidia-smi` and stop them, or drain the node first.");
    public static readonly FindingCode GpuFieldsUnknown = new("GPU_FIELDS_UNKNOWN", "INFO",
        "The management library does not report some fields on these GPUs, so their checks did not run.",
        "None needed; a newer driver may report them.");

    // ---- PCIe (sysfs) ----
    public static readonly FindingCode PcieLinkDegraded = new("PCIE_LINK_DEGRADED", "FAIL/INFO",
        "A GPU or NIC's PCIe link (sysfs current_link_*) runs below its maximum width, or a NIC's below its maximum speed. A GPU's lower speed is INFO: idle GPUs lower it.",
        "Reseat the card or riser, check the slot and cables; compare with `lspci -vvv` LnkSta.");
    public static readonly FindingCode PcieAer = new("PCIE_AER", "FAIL/WARN/INFO",
        "PCIe Advanced Error Reporting counted errors on a device: fatal (FAIL), non-fatal (WARN), correctable (INFO, WARN above the profile's level).",
        "Check the device's slot, riser and cable; a growing count points at the link.");

    // ---- InfiniBand and NICs ----
    public static readonly FindingCode IbPortDown = new("IB_PORT_DOWN", "FAIL/WARN",
        "An InfiniBand port is not ACTIVE (FAIL); for an Ethernet (RoCE) port WARN, as unused ports are common.",
        "Check the cable and the switch port; 'Polling' means a cable is present but the link does not train.");
    public static readonly FindingCode IbPortCountMismatch = new("IB_PORT_COUNT_MISMATCH", "FAIL",
        "The number of InfiniBand ports differs from the profile.",
        "An HCA is missing or its driver did not load: check `ibstat` and `lspci`.");
    public static readonly FindingCode IbDriverUnavailable = new("IB_DRIVER_UNAVAILABLE", "WARN",
        "InfiniBand or Mellanox/NVIDIA network adapters are on the PCI bus but there are no RDMA devices under /sys/class/infiniband.",
        "Load the HCA driver (mlx5_ib / the vendor OFED stack) and check `ibstat`; until then the InfiniBand checks cannot run.");
    public static readonly FindingCode IbRateLow = new("IB_RATE_LOW", "FAIL/WARN",
        "An active InfiniBand port runs below the profile's rate (FAIL) or below its peers of the same HCA type (WARN).",
        "Check the cable type and the switch port speed; reseat or replace the cable.");
    public static readonly FindingCode IbErrors = new("IB_ERRORS", "FAIL/WARN",
        "InfiniBand port error counters (symbol_error, link_downed, port_rcv_errors ...) above the profile's levels.",
        "Check and replace the cable or transceiver; clear the counters (`perfquery -x -R`) and watch for growth.");
    public static readonly FindingCode NicLinkDown = new("NIC_LINK_DOWN", "WARN/INFO",
        "A network interface is down (sysfs operstate), or its link went down in the kernel log (INFO when it came back up).",
        "Check the cable and switch port; `ip link`, `ethtool`.");
    public static readonly FindingCode LinkFlapping = new("LINK_FLAPPING", "FAIL",
        "A port lost its link (link down / lost carrier) at least the profile's number of times (5) within its window (24 h).",
        "Replace the cable or transceiver; check the switch port's error counters.");

    // ---- host memory and CPUs ----
    public static readonly FindingCode EdacUe = new("EDAC_UE", "FAIL",
        "A memory controller counted uncorrectable errors (EDAC ue_count).",
        "Find the DIMM (the message names the labels EDAC knows) and replace it.");
    public static readonly FindingCode EdacCe = new("EDAC_CE", "WARN",
        "A memory controller's correctable errors grow faster than the profile allows.",
        "Watch the DIMM; a DIMM with a steadily growing count is due for replacement.");
    public static readonly FindingCode CpusOffline = new("CPUS_OFFLINE", "FAIL",
        "Fewer CPUs are online than are present (or than the profile expects).",
        "Bring them online (`echo 1 > /sys/devices/system/cpu/cpuN/online`) or find out why the kernel took them off (MCE).");
    public static readonly FindingCode MemoryLow = new("MEMORY_LOW", "FAIL",
        "Installed memory (MemTotal) is below the profile's minimum.",
        "A DIMM is missing or disabled: check the BIOS memory report and `dmidecode -t memory`.");
    public static readonly FindingCode Hugepages = new("HUGEPAGES", "FAIL",
        "Fewer huge pages are reserved than the profile requires.",
        "Reserve them (vm.nr_hugepages, or hugepagesz=/hugepages= on the kernel command line).");

    // ---- kernel log ----
    public static readonly FindingCode XidFatal = new("XID_FATAL", "FAIL",
        "An NVIDIA Xid that the profile's table marks fatal (hardware: DBE, fallen off the bus, NVLink, GSP ...).",
        "Drain the node; reset the GPU or reboot; recurring fatal Xids mean RMA.");
    public static readonly FindingCode XidWarn = new("XID_WARN", "WARN",
        "An NVIDIA Xid the profile's table marks as a warning (usually the application's fault: 13, 31, 43, 45).",
        "Tell the job's owner; recurring on one GPU only, suspect the GPU.");
    public static readonly FindingCode XidInfo = new("XID_INFO", "INFO",
        "An NVIDIA Xid the profile's table marks informational.",
        "None needed.");
    public static readonly FindingCode XidUnknown = new("XID_UNKNOWN", "WARN",
        "An Xid number that is not in the profile's table.",
        "Look it up in NVIDIA's Xid catalog and add it to the profile's xid table.");
    public static readonly FindingCode GpuFellOffBus = new("GPU_FELL_OFF_BUS", "FAIL",
        "The kernel log says a GPU has fallen off the bus (without an Xid line).",
        "Drain the node and power-cycle it; recurring, reseat or RMA the board.");
    public static readonly FindingCode AmdgpuError = new("AMDGPU_ERROR", "WARN",
        "The amdgpu driver logged an error: a ring timeout, a GPU reset or a page fault.",
        "Check the job; recurring on one GPU, run `kiln burn` on it and check `amd-smi metric`.");
    public static readonly FindingCode AmdgpuRasUe = new("AMDGPU_RAS_UE", "FAIL",
        "The amdgpu driver logged an uncorrectable RAS error.",
        "Drain the node, reset the GPU; recurring, RMA.");
    public static readonly FindingCode Mce = new("MCE", "FAIL/WARN",
        "A machine check or EDAC memory error in the kernel log: uncorrected (FAIL) or corrected (WARN).",
        "Decode it with `rasdaemon`/`mcelog`; replace the DIMM or CPU it names.");
    public static readonly FindingCode KmsgTimesUnplaced = new("KMSG_TIMES_UNPLACED", "INFO",
        "The kernel log's times could not be placed in wall-clock time (relative dmesg times without a boot time), so --since kept every line.",
        "Give the log in an absolute time format (`dmesg --time-format iso`, `journalctl -k -o short-iso`).");

    // ---- inventory ----
    public static readonly FindingCode InventoryMixed = new("INVENTORY_MIXED", "WARN",
        "Devices of one model inside the node run different firmware (GPU VBIOS, HCA fw_ver): configuration drift inside the node.",
        "Flash every device of the model to the same (pinned) version.");

    /// <summary>A source that could not run here (no NVML, no EDAC driver ...): SKIPPED_&lt;SOURCE&gt;, INFO.</summary>
    public static FindingCode Skipped(string check) => new($"SKIPPED_{check.ToUpperInvariant()}", "INFO",
        $"The {check} source is absent on this node; its checks did not run (the message says why).",
        "None needed when the node has no such hardware; otherwise install or load what the message names.");

    /// <summary>Every fixed code, in the order docs/HEALTH.md lists them.</summary>
    public static IReadOnlyList<FindingCode> All { get; } = typeof(FindingCodes)
        .GetFields(System.Reflection.BindingFlags.Public | System.Reflection.BindingFlags.Static)
        .Where(f => f.FieldType == typeof(FindingCode))
        .Select(f => (FindingCode)f.GetValue(null)!)
        .ToList();

    /// <summary>The sources that can be skipped, as they appear in findings.csv's check column.</summary>
    public static IReadOnlyList<string> Sources { get; } =
        ["nvml", "rocm_smi", "emu", "sysfs_pcie", "sysfs_ib", "sysfs_edac", "sysfs_cpu_memory", "kmsg", "inventory"];
}
