// nvml / rocm_smi: opens the vendor library through libkiln (dlopen, never linked), reads every GPU
// and judges it against the policy: versions, persistence, ECC, retired pages, row remap, throttle
// reasons, temperature, power, PCIe link, NVLink and processes. Then the node-level GPU count.
using Kiln.Native;

namespace Kiln.Core.Health.Sources;

public static class GpuCheck
{
    public const string Nvml = "nvml";
    public const string RocmSmi = "rocm_smi";
    /// <summary>The emulated devices' SMI (KILN_EMU_DEVICES): the same checks, run only when the emulator is on.</summary>
    public const string Emu = "emu";

    /// <summary>KILN_EMU_DEVICES is set: the emulated devices are asked for.</summary>
    public static bool EmuRequested => !string.IsNullOrEmpty(Environment.GetEnvironmentVariable("KILN_EMU_DEVICES"));

    public static string CheckOf(TelemetrySource source) => source switch
    {
        TelemetrySource.Nvml => Nvml,
        TelemetrySource.RocmSmi => RocmSmi,
        _ => Emu,
    };

    /// <summary>Reads one source's GPUs into ctx.Gpus and judges them; an absent library is a skip.</summary>
    public static void Run(CheckContext ctx, TelemetrySource source)
    {
        var check = CheckOf(source);
        // A node that did not ask for emulated devices has none: not even a skip line.
        if (source == TelemetrySource.Emu && !EmuRequested) return;
        GpuTelemetry? telemetry;
        string reason;
        try
        {
            telemetry = GpuTelemetry.TryOpen(source, null, out reason);
        }
        catch (KilnException e)
        {
            telemetry = null;
            reason = e.Message;
        }
        if (telemetry is null)
        {
            ctx.Skip(check, reason);
            return;
        }
        using (telemetry)
        {
            ctx.DriverVersions[check] = telemetry.DriverVersion;
            var records = new List<GpuRecord>();
            for (var i = 0; i < telemetry.DeviceCount; i++)
            {
                try
                {
                    records.Add(new GpuRecord(check, telemetry.Health(i)));
                }
                catch (KilnException e)
                {
                    ctx.Add(FindingCodes.GpuUnreadable.At(check, $"{ComponentPrefix(check)}{i}", Severity.Fail,
                        $"reading GPU {i} failed: {e.Message}"));
                }
            }
            ctx.Gpus.AddRange(records);
            Judge(ctx, check, telemetry.DriverVersion, records);
        }
    }

    /// <summary>How a GPU of this source is named in findings: gpu0 (NVML), amdgpu0 (ROCm SMI), emu0.</summary>
    public static string ComponentPrefix(string check) => check switch
    {
        RocmSmi => "amdgpu",
        Emu => "emu",
        _ => "gpu",
    };

    /// <summary>The per-GPU judgement, separate from the library so it can be tested on any record.</summary>
    public static void Judge(CheckContext ctx, string check, string driverVersion, IReadOnlyList<GpuRecord> gpus)
    {
        var p = ctx.Policy;
        if (p.DriverVersions.Count > 0 && !p.DriverVersions.Contains(driverVersion))
            ctx.Add(FindingCodes.GpuDriverNotPinned.At(check, "node", Severity.Fail,
                $"driver {driverVersion} is not pinned (allowed: {string.Join(", ", p.DriverVersions)})"));
        var unknown = new SortedSet<string>(StringComparer.Ordinal);
        foreach (var gpu in gpus)
        {
            var h = gpu.Health;
            var at = gpu.Component;
            void Add(FindingCode code, Severity severity, string message) => ctx.Add(code.At(check, at, severity, message));
            void Unknown(bool isUnknown, string field)
            {
                if (isUnknown) unknown.Add(field);
            }

            if (p.ExpectedGpuModel is { } model && !h.Name.Contains(model, StringComparison.OrdinalIgnoreCase))
                Add(FindingCodes.GpuModelMismatch, Severity.Fail, $"{h.Name} is not a '{model}'");
            if (p.VbiosVersions.Count > 0 && !p.VbiosVersions.Contains(h.VbiosVersion))
                Add(FindingCodes.GpuVbiosNotPinned, Severity.Fail,
                    $"VBIOS {h.VbiosVersion} is not pinned (allowed: {string.Join(", ", p.VbiosVersions)})");

            Unknown(h.PersistenceMode is null, "persistence mode");
            if (p.RequirePersistenceMode && h.PersistenceMode == false)
                Add(FindingCodes.GpuPersistenceOff, Severity.Warn, "persistence mode is off");
            if (h.EccEnabled == false)
                Add(FindingCodes.GpuEccDisabled, Severity.Fail, "ECC is disabled");

            Unknown(h.EccVolatileUncorrected < 0, "ECC counts");
            if (h.EccVolatileUncorrected > p.EccVolatileUncorrectedFailAbove)
                Add(FindingCodes.GpuEccUncorrectable, Severity.Fail,
                    $"{h.EccVolatileUncorrected} uncorrectable ECC errors since the driver loaded");
            if (h.EccAggregateUncorrected >= 0 && p.EccAggregateUncorrected.Judge(h.EccAggregateUncorrected) is { } aggU)
                Add(FindingCodes.GpuEccAggregateUncorrectable, aggU, $"{h.EccAggregateUncorrected} uncorrectable ECC errors over the GPU's life");
            if (h.EccAggregateCorrected >= 0 && p.EccAggregateCorrected.Judge(h.EccAggregateCorrected) is { } aggC)
                Add(FindingCodes.GpuEccCorrectable, aggC,
                    $"{h.EccAggregateCorrected} correctable ECC errors over the GPU's life ({p.EccAggregateCorrected})");

            Unknown(h.RetiredPagesSbe < 0 && h.RetiredPagesPending is null, "retired pages");
            if (h.RetiredPagesPending == true)
                Add(FindingCodes.GpuRetiredPagesPending, Severity.Fail, "a page retirement is pending until the GPU is reset");
            var retired = Math.Max(0, h.RetiredPagesSbe) + Math.Max(0, h.RetiredPagesDbe);
            if (p.RetiredPages.Judge(retired) is { } ret)
                Add(FindingCodes.GpuRetiredPages, ret,
                    $"{retired} retired pages ({Math.Max(0, h.RetiredPagesSbe)} single-bit, {Math.Max(0, h.RetiredPagesDbe)} double-bit; {p.RetiredPages})");

            Unknown(h.RemapPending is null, "row remapping");
            if (h.RemapPending == true)
                Add(FindingCodes.GpuRowRemapPending, Severity.Fail,
                    $"a row remap is pending until the GPU is reset ({h.RemappedRowsUncorrectable} rows remapped for uncorrectable, {h.RemappedRowsCorrectable} for correctable errors)");
            if (h.RemapFailed == true)
                Add(FindingCodes.GpuRowRemapFailed, Severity.Fail, "a row remap failed: no spare rows left");

            foreach (var (reason, code) in ThrottleCodes)
            {
                if (!h.Throttle.HasFlag(reason)) continue;
                Severity? severity = p.ThrottleFail.HasFlag(reason) ? Severity.Fail : p.ThrottleWarn.HasFlag(reason) ? Severity.Warn : null;
                if (severity is { } s) Add(code, s, $"clock throttle reason active: {reason} (reasons 0x{(ulong)h.Throttle:x})");
            }

            Unknown(h.TemperatureC < 0 || h.TemperatureSlowdownC <= 0, "temperature or slowdown temperature");
            if (h.TemperatureC >= 0 && h.TemperatureSlowdownC > 0)
            {
                if (h.TemperatureC >= h.TemperatureSlowdownC)
                    Add(FindingCodes.GpuTemperatureHigh, Severity.Fail, $"{h.TemperatureC:0} C, at or above its slowdown temperature {h.TemperatureSlowdownC:0} C");
                else if (h.TemperatureC >= h.TemperatureSlowdownC - p.TemperatureMarginC)
                    Add(FindingCodes.GpuTemperatureHigh, Severity.Warn,
                        $"{h.TemperatureC:0} C, within {p.TemperatureMarginC:0.#} C of its slowdown temperature {h.TemperatureSlowdownC:0} C");
            }
            Unknown(h.PowerW < 0 || h.PowerLimitW <= 0, "power or power limit");
            if (h.PowerW >= 0 && h.PowerLimitW > 0 && h.PowerW > h.PowerLimitW * p.PowerOverLimitFraction)
                Add(FindingCodes.GpuPowerHigh, Severity.Warn, $"drawing {h.PowerW:0} W against a {h.PowerLimitW:0} W limit");

            JudgePcie(h, p, Add, Unknown);

            Unknown(h.NvlinkLinksTotal < 0, "NVLink");
            if (h.NvlinkLinksTotal > 0 && h.NvlinkLinksActive >= 0 && h.NvlinkLinksActive < h.NvlinkLinksTotal)
                Add(FindingCodes.NvlinkDown, Severity.Fail, $"{h.NvlinkLinksTotal - h.NvlinkLinksActive} of {h.NvlinkLinksTotal} NVLink links are down");
            var nvlinkErrors = new[]
            {
                ("CRC", h.NvlinkCrcErrors, p.NvlinkCrcErrors), ("replay", h.NvlinkReplayErrors, p.NvlinkReplayErrors),
                ("recovery", h.NvlinkRecoveryErrors, p.NvlinkRecoveryErrors),
            }.Select(x => (x.Item1, x.Item2, Severity: x.Item2 >= 0 ? x.Item3.Judge(x.Item2) : null)).Where(x => x.Severity is not null).ToList();
            if (nvlinkErrors.Count > 0)
                Add(FindingCodes.NvlinkErrors, nvlinkErrors.Max(x => x.Severity!.Value),
                    "NVLink errors summed over links: " + string.Join(", ", nvlinkErrors.Select(x => $"{x.Item1} {x.Item2}")));

            Unknown(h.ComputeProcesses < 0, "processes");
            if (p.WarnOnBusyGpu && h.ComputeProcesses > 0)
                Add(FindingCodes.GpuBusyProcesses, Severity.Warn, $"{CheckContext.Count(h.ComputeProcesses, "process", "processes")} hold the GPU");
        }
        if (unknown.Count > 0)
            ctx.Add(FindingCodes.GpuFieldsUnknown.At(check, "node", Severity.Info, $"not reported by {check}: {string.Join(", ", unknown)}"));
    }

    private static void JudgePcie(GpuHealth h, HealthPolicy p, Action<FindingCode, Severity, string> add, Action<bool, string> unknown)
    {
        unknown(h.PcieWidthCurrent < 0 || h.PcieWidthMax < 0 || h.PcieGenCurrent < 0 || h.PcieGenMax < 0, "PCIe link");
        var link = $"PCIe Gen{h.PcieGenCurrent} x{h.PcieWidthCurrent} (max Gen{h.PcieGenMax} x{h.PcieWidthMax})";
        if (h.PcieWidthCurrent >= 0 && h.PcieWidthMax > 0 && h.PcieWidthCurrent < h.PcieWidthMax)
            add(FindingCodes.GpuPcieDegraded, Severity.Fail, $"link width below its maximum: {link}");
        else if (h.PcieGenCurrent >= 0 && h.PcieGenMax > 0 && h.PcieGenCurrent < h.PcieGenMax)
        {
            var idle = h.Throttle.HasFlag(ThrottleReasons.GpuIdle);
            add(FindingCodes.GpuPcieDegraded, idle ? p.PcieSpeedBelowMaxIdleGpu : Severity.Fail,
                idle ? $"link generation below its maximum while idle (GPUs lower it to save power; kiln burn judges it under load): {link}"
                     : $"link generation below its maximum while not idle: {link}");
        }
    }

    /// <summary>After every GPU source: the count against the profile and against the GPUs on the PCI bus.</summary>
    public static void JudgeCount(CheckContext ctx)
    {
        var p = ctx.Policy;
        foreach (var (vendor, check, library) in new[] { (PciVendors.Nvidia, Nvml, "NVML"), (PciVendors.Amd, RocmSmi, "ROCm SMI") })
        {
            var onBus = ctx.PciFunctions.Count(f => f.Vendor == vendor && f.IsGpu && !f.IsVirtualFunction);
            if (onBus == 0) continue;
            var seen = ctx.Gpus.Count(g => g.Source == check);
            if (ctx.Skipped.FirstOrDefault(s => s.Check == check) is { } skipped)
                ctx.Add(FindingCodes.GpuDriverUnavailable.At(check, "node", Severity.Warn,
                    $"{CheckContext.Count(onBus, "GPU")} on the PCI bus, but {library} is not available: {skipped.Reason}"));
            else if (seen < onBus)
                ctx.Add(FindingCodes.GpuCountMismatch.At(check, "node", Severity.Fail,
                    $"{library} sees {seen} GPUs, the PCI bus has {onBus}: {string.Join(", ", Missing(ctx, vendor))} not enumerated"));
        }
        if (p.ExpectedGpuCount is { } expected && ctx.Gpus.Count != expected)
            ctx.Add(FindingCodes.GpuCountMismatch.At(ctx.Gpus.FirstOrDefault()?.Source ?? Nvml, "node", Severity.Fail,
                $"{CheckContext.Count(ctx.Gpus.Count, "GPU")} found, the profile expects {expected}"));
    }

    private static IEnumerable<string> Missing(CheckContext ctx, string vendor) =>
        ctx.PciFunctions.Where(f => f.Vendor == vendor && f.IsGpu && !f.IsVirtualFunction && ctx.GpuAt(f.Address) is null)
            .Select(f => f.Address);

    private static readonly (ThrottleReasons Reason, FindingCode Code)[] ThrottleCodes =
    [
        (ThrottleReasons.HwSlowdown, FindingCodes.GpuThrottleHwSlowdown),
        (ThrottleReasons.HwThermal, FindingCodes.GpuThrottleHwThermal),
        (ThrottleReasons.HwPowerBrake, FindingCodes.GpuThrottlePowerBrake),
        (ThrottleReasons.SwThermal, FindingCodes.GpuThrottleSwThermal),
    ];
}
