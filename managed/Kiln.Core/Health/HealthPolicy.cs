// What "healthy" means for `kiln check` and for the telemetry watch during `kiln burn`: expected
// inventory, pinned versions, the Xid table and every threshold. Seeded from shared/REFERENCE.md;
// a profile's `health:` section maps onto it (HealthPolicyResolver picks which one applies).
using Kiln.Native;

namespace Kiln.Core.Health;

/// <summary>What an Xid in the kernel log does to the verdict.</summary>
public enum XidAction { Fatal, Warn, Info }

/// <summary>Limits on one cumulative counter: a value above WarnAbove is WARN, above FailAbove FAIL; null = never.</summary>
public sealed record CounterLimit(long? WarnAbove, long? FailAbove)
{
    public Severity? Judge(long value) =>
        FailAbove is { } fail && value > fail ? Severity.Fail
        : WarnAbove is { } warn && value > warn ? Severity.Warn
        : null;

    /// <summary>"WARN above 10, FAIL above 1000", for finding messages.</summary>
    public override string ToString() =>
        string.Join(", ", new[] { WarnAbove is { } w ? $"WARN above {w}" : null, FailAbove is { } f ? $"FAIL above {f}" : null }
            .Where(s => s is not null));
}

public sealed record HealthPolicy
{
    // ---- GPUs (NVML / ROCm SMI) ----

    /// <summary>GPUs the node must have; null = any number (zero included).</summary>
    public int? ExpectedGpuCount { get; init; }

    /// <summary>Product name every GPU must contain (case-insensitive), e.g. "H100 80GB HBM3"; null = any.</summary>
    public string? ExpectedGpuModel { get; init; }

    /// <summary>Allowed driver versions ("535.183.01"); empty = any.</summary>
    public IReadOnlyList<string> DriverVersions { get; init; } = [];

    /// <summary>Allowed VBIOS / GPU firmware versions; empty = any.</summary>
    public IReadOnlyList<string> VbiosVersions { get; init; } = [];

    /// <summary>Persistence mode off is a WARN: the driver reloads between jobs, and first calls are slow.</summary>
    public bool RequirePersistenceMode { get; init; } = true;

    /// <summary>Volatile (since driver load) uncorrectable ECC errors above this FAIL.</summary>
    public long EccVolatileUncorrectedFailAbove { get; init; }

    /// <summary>
    /// Lifetime correctable ECC errors. REFERENCE.md fails SRAM correctable &gt; 10k and DRAM
    /// correctable &gt; 20M; NVML's aggregate count does not separate the two, so the SRAM figure
    /// is the WARN level and the DRAM figure the FAIL level.
    /// </summary>
    public CounterLimit EccAggregateCorrected { get; init; } = new(10_000, 20_000_000);

    /// <summary>Lifetime uncorrectable ECC errors: any is worth a look; the volatile count and remaps decide FAIL.</summary>
    public CounterLimit EccAggregateUncorrected { get; init; } = new(0, null);

    /// <summary>Retired pages (SBE + DBE). NVIDIA's guidance: at 60 retired pages the board is due for RMA.</summary>
    public CounterLimit RetiredPages { get; init; } = new(0, 59);

    /// <summary>Temperature within this many degrees of the slowdown temperature is WARN; at or above it FAIL.</summary>
    public double TemperatureMarginC { get; init; } = 5;

    /// <summary>Power draw above this fraction of the enforced limit is WARN.</summary>
    public double PowerOverLimitFraction { get; init; } = 1.05;

    /// <summary>Throttle reasons active at check time that FAIL (hardware protection kicked in).</summary>
    public ThrottleReasons ThrottleFail { get; init; } =
        ThrottleReasons.HwSlowdown | ThrottleReasons.HwThermal | ThrottleReasons.HwPowerBrake;

    /// <summary>Throttle reasons active at check time that WARN.</summary>
    public ThrottleReasons ThrottleWarn { get; init; } = ThrottleReasons.SwThermal;

    /// <summary>NVLink counters summed over a GPU's links; FAIL for NVLink comes from Xid 74 and links down.</summary>
    public CounterLimit NvlinkCrcErrors { get; init; } = new(100, null);
    public CounterLimit NvlinkReplayErrors { get; init; } = new(100, null);
    public CounterLimit NvlinkRecoveryErrors { get; init; } = new(0, null);

    /// <summary>Processes holding a GPU are WARN: a burn or benchmark would share it.</summary>
    public bool WarnOnBusyGpu { get; init; } = true;

    // ---- PCIe (NVML and sysfs) ----

    /// <summary>
    /// Severity of a link running below its maximum generation/speed while the device may be idle.
    /// GPUs lower their link generation when idle (power management), so an idle GPU's slow link is
    /// INFO; the same under load (or on a NIC, which never downshifts) is FAIL. Width below the
    /// maximum is always FAIL: no power state narrows a link.
    /// </summary>
    public Severity PcieSpeedBelowMaxIdleGpu { get; init; } = Severity.Info;

    /// <summary>
    /// AER counters of GPUs and NICs (sysfs aer_dev_*, TOTAL_ERR_* lines) and AER lines in the kernel
    /// log: any fatal error FAILs, a non-fatal one WARNs; correctable ones are retried by the link and
    /// only WARN above this count.
    /// </summary>
    public CounterLimit PcieAerCorrectable { get; init; } = new(100, null);

    // ---- InfiniBand (sysfs) ----

    /// <summary>InfiniBand ports (IB link layer, every HCA) the node must have; null = any.</summary>
    public int? ExpectedIbPorts { get; init; }

    /// <summary>Rate every IB port must run at, Gb/s (400 for NDR); null = any.</summary>
    public double? ExpectedIbRateGbps { get; init; }

    /// <summary>
    /// Port counters (ports/N/counters/NAME) and their limits. They count since the last reset, so
    /// small numbers are normal on a port that has run for months; the profile can tighten them.
    /// </summary>
    public IReadOnlyDictionary<string, CounterLimit> IbErrorCounters { get; init; } = new Dictionary<string, CounterLimit>
    {
        ["symbol_error"] = new(10, 1_000),
        ["link_error_recovery"] = new(10, 100),
        ["link_downed"] = new(0, 10),
        ["port_rcv_errors"] = new(0, 1_000),
        ["port_rcv_remote_physical_errors"] = new(0, 1_000),
        ["local_link_integrity_errors"] = new(0, 100),
        ["excessive_buffer_overrun_errors"] = new(0, 100),
    };

    /// <summary>"Link down"/"lost carrier" this many times on one port within FlapWindow is flapping (FAIL).</summary>
    public int LinkFlapCount { get; init; } = 5;
    public TimeSpan LinkFlapWindow { get; init; } = TimeSpan.FromHours(24);

    // ---- Host (sysfs, /proc) ----

    /// <summary>Any uncorrectable memory error (EDAC ue_count) above this FAILs.</summary>
    public long EdacUncorrectedFailAbove { get; init; }

    /// <summary>Correctable memory errors per hour since the counters' reset above this WARN ("growing fast").</summary>
    public double EdacCorrectedWarnPerHour { get; init; } = 1;

    /// <summary>Installed memory (MemTotal) below this FAILs; null = any.</summary>
    public ulong? MinMemoryBytes { get; init; }

    /// <summary>CPUs that must be online; null = every present CPU.</summary>
    public int? ExpectedCpusOnline { get; init; }

    /// <summary>Minimum reserved huge pages per page size in KiB (2048, 1048576); empty = no requirement.</summary>
    public IReadOnlyDictionary<long, long> MinHugepages { get; init; } = new Dictionary<long, long>();

    // ---- Kernel log ----

    /// <summary>
    /// Xid number -> action, seeded from REFERENCE.md ("Kernel log lines that matter"). An Xid not in
    /// the table is WARN "unknown Xid N": never silently passed, never a node drained on a guess.
    /// </summary>
    public IReadOnlyDictionary<int, XidAction> Xids { get; init; } = DefaultXids();

    /// <summary>Kernel-log events older than this are ignored; null = the whole log (for /dev/kmsg: since boot).</summary>
    public TimeSpan? Since { get; init; }

    // ---- Telemetry during a burn ----

    /// <summary>Throttle reasons that fail a burn when held continuously for SustainedThrottleWindow.</summary>
    public ThrottleReasons SustainedThrottleReasons { get; init; } =
        ThrottleReasons.HwSlowdown | ThrottleReasons.HwThermal | ThrottleReasons.HwPowerBrake | ThrottleReasons.SwThermal;

    public TimeSpan SustainedThrottleWindow { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>
    /// Correctable ECC errors a GPU may add during one burn before it FAILs (DCGM's max_sbe_errors):
    /// HBM corrects a single bad cell, so the pattern compare never sees a stuck bit, only this count.
    /// </summary>
    public long EccCorrectedMaxNew { get; init; } = 100;

    /// <summary>The built-in policy: any inventory, the REFERENCE.md thresholds.</summary>
    public static HealthPolicy Default { get; } = new();

    /// <summary>Values outside a sane range, as "field: problem" lines; empty when the policy is usable.</summary>
    public IReadOnlyList<string> Validate()
    {
        var problems = new List<string>();
        if (ExpectedGpuCount is < 0 or > 64) problems.Add($"expected_gpu_count: {ExpectedGpuCount} is not in 0..64");
        if (ExpectedIbPorts is < 0 or > 64) problems.Add($"expected_ib_ports: {ExpectedIbPorts} is not in 0..64");
        if (ExpectedIbRateGbps is <= 0 or > 3200) problems.Add($"expected_ib_rate_gbps: {ExpectedIbRateGbps} Gb/s is not in (0, 3200]");
        if (TemperatureMarginC is < 0 or > 50) problems.Add($"temperature_margin_c: {TemperatureMarginC} C is not in 0..50");
        if (PowerOverLimitFraction is < 1 or > 2) problems.Add($"power_over_limit_fraction: {PowerOverLimitFraction} is not in 1..2");
        if (LinkFlapCount < 2) problems.Add($"link_flap_count: {LinkFlapCount} is below 2");
        if (LinkFlapWindow <= TimeSpan.Zero) problems.Add("link_flap_window: must be positive");
        if (EdacCorrectedWarnPerHour < 0) problems.Add("edac_ce_warn_per_hour: must not be negative");
        if (MinMemoryBytes is 0) problems.Add("min_memory: must be positive");
        if (ExpectedCpusOnline is <= 0) problems.Add($"expected_cpus_online: {ExpectedCpusOnline} must be positive");
        if (Since is { } since && since <= TimeSpan.Zero) problems.Add("since: must be positive");
        if (EccCorrectedMaxNew < 0) problems.Add($"ecc_corrected_max_new: {EccCorrectedMaxNew} is negative");
        if (SustainedThrottleWindow < TimeSpan.FromSeconds(1) || SustainedThrottleWindow > TimeSpan.FromDays(1))
            problems.Add($"sustained_throttle_window: {SustainedThrottleWindow} is not in 1 s..1 day");
        foreach (var (size, count) in MinHugepages)
        {
            if (size <= 0 || count < 0) problems.Add($"min_hugepages: {size} KiB -> {count} is not a positive size and count");
        }
        foreach (var xid in Xids.Keys.Where(x => x is <= 0 or > 1000)) problems.Add($"xid: {xid} is not an Xid number (1..1000)");
        return problems;
    }

    /// <summary>A fresh copy of the seeded Xid table, for a profile to edit.</summary>
    public static Dictionary<int, XidAction> DefaultXids()
    {
        var table = new Dictionary<int, XidAction>();
        // Hardware-fatal per REFERENCE.md: DBE ECC, GPU/NVLink/bus/ECC/GSP faults.
        int[] fatal = [48, 56, 57, 58, 62, 63, 64, 68, 69, 73, 74, 79, 80, 81, 92, 94, 95, 119, 120, 122, 123, 124, 125];
        foreach (int xid in fatal) table[xid] = XidAction.Fatal;
        // Usually the application's fault (bad address, timeout, exception, preemption): WARN.
        foreach (int xid in new[] { 13, 31, 43, 45 }) table[xid] = XidAction.Warn;
        return table;
    }
}
