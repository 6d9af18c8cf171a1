// What fails a burn while it runs, judged sample by sample (no history kept): new uncorrectable ECC
// errors since the first sample, throttling by the policy's reasons held for its window, and new
// Xid / fallen-off-the-bus lines in the kernel log; and, read once after the last test, a row remap
// that is pending or failed. Turned into verdict rows (test=telemetry).
using Kiln.Core.Health;
using Kiln.Core.Health.KernelLog;
using Kiln.Core.Results;
using Kiln.Native;

namespace Kiln.Core.Telemetry;

public sealed class TelemetryRules(HealthPolicy policy)
{
    public const string TestName = "telemetry";

    private sealed class DeviceState
    {
        public long? BaselineEcc;
        public long NewEcc;
        public long? BaselineCorrected;
        public long NewCorrected;
        public DateTimeOffset? StreakStart;
        public TimeSpan LongestStreak;
        public ThrottleReasons StreakReasons;
        public int Samples;
        public (string Device, GpuHealth Health)? End;  // read after the last test
    }

    private readonly Dictionary<(string Source, int Index), DeviceState> _devices = [];
    private readonly List<(string Source, int Index, int Xid, Severity Severity, string Text)> _events = [];
    private readonly Lock _gate = new();

    /// <summary>Registers a device, so it gets a PASS row even if it never reports a sample.</summary>
    public void Track(string source, int index)
    {
        lock (_gate) _devices.TryAdd((source, index), new DeviceState());
    }

    public void Observe(string source, int index, DateTimeOffset at, in GpuSample sample)
    {
        lock (_gate)
        {
            var d = _devices.TryGetValue((source, index), out var known) ? known : _devices[(source, index)] = new DeviceState();
            d.Samples++;
            if (sample.EccVolatileUncorrected >= 0)
            {
                d.BaselineEcc ??= sample.EccVolatileUncorrected;
                d.NewEcc = Math.Max(d.NewEcc, sample.EccVolatileUncorrected - d.BaselineEcc.Value);
            }
            if (sample.EccVolatileCorrected >= 0)
            {
                d.BaselineCorrected ??= sample.EccVolatileCorrected;
                d.NewCorrected = Math.Max(d.NewCorrected, sample.EccVolatileCorrected - d.BaselineCorrected.Value);
            }
            var reasons = sample.Throttle & policy.SustainedThrottleReasons;
            if (reasons != ThrottleReasons.None)
            {
                d.StreakStart ??= at;
                var streak = at - d.StreakStart.Value;
                if (streak >= d.LongestStreak) (d.LongestStreak, d.StreakReasons) = (streak, d.StreakReasons | reasons);
            }
            else
            {
                d.StreakStart = null;
            }
        }
    }

    /// <summary>
    /// The device's health read once its tests are done: the memtest and the other tests may have made
    /// the memory remap a row, which waits for a reset (the burn then FAILs the device).
    /// </summary>
    public void ObserveEnd(string source, int index, string device, GpuHealth health)
    {
        lock (_gate)
        {
            var d = _devices.TryGetValue((source, index), out var known) ? known : _devices[(source, index)] = new DeviceState();
            d.End = (device, health);
        }
    }

    /// <summary>A kernel-log line that arrived during the run; Xids (through the policy's table) and lost GPUs count.</summary>
    public void ObserveKernelLog(string line, KernelLogParser parser, Func<string, (string Source, int Index)?> gpuAt)
    {
        if (parser.Parse(0, line, out _) is not { } parsed || KernelEvents.Classify(parsed.Message, out _) is not { } e) return;
        if (e.Kind is not (KernelEventKind.Xid or KernelEventKind.FellOffBus)) return;
        var (_, severity) = e.Kind == KernelEventKind.Xid ? KernelLogCheck.XidVerdict(policy, e.Xid) : (FindingCodes.GpuFellOffBus, Severity.Fail);
        if (severity == Severity.Info) return;
        var gpu = e.Key is null ? null : gpuAt(e.Key);
        lock (_gate) _events.Add((gpu?.Source ?? "kmsg", gpu?.Index ?? -1, e.Xid, severity, parsed.Message.Trim()));
    }

    /// <summary>One row per device and rule that fired, else one PASS row per device; kernel-log events on their GPU.</summary>
    public IReadOnlyList<VerdictRow> Verdicts(string host)
    {
        lock (_gate)
        {
            var rows = new List<VerdictRow>();
            foreach (var ((source, index), d) in _devices.OrderBy(x => x.Key.Source, StringComparer.Ordinal).ThenBy(x => x.Key.Index))
            {
                var before = rows.Count;
                if (d.NewEcc > 0)
                    rows.Add(new VerdictRow(host, TestName, source, index, VerdictStatus.FAIL, "ecc_volatile_uncorrected_new", d.NewEcc, 0, "count",
                        $"{d.NewEcc} new uncorrectable ECC errors during the run"));
                if (d.NewCorrected > policy.EccCorrectedMaxNew)
                    rows.Add(new VerdictRow(host, TestName, source, index, VerdictStatus.FAIL, "ecc_volatile_corrected_new", d.NewCorrected,
                        policy.EccCorrectedMaxNew, "count",
                        $"{d.NewCorrected} new correctable ECC errors during the run, more than the policy's {policy.EccCorrectedMaxNew} (ecc_corrected_max_new): memory that corrects itself this often is failing"));
                var window = policy.SustainedThrottleWindow;
                if (d.LongestStreak >= window)
                    rows.Add(new VerdictRow(host, TestName, source, index, VerdictStatus.FAIL, "throttle_sustained_s", Math.Round(d.LongestStreak.TotalSeconds, 1),
                        window.TotalSeconds, "s", $"throttled ({d.StreakReasons}) for {d.LongestStreak.TotalSeconds:0.#} s without a break (FAIL at {window.TotalSeconds:0.#} s)"));
                if (d.End is ({ } device, { RemapPending: true } pending))
                    rows.Add(new VerdictRow(host, TestName, source, index, VerdictStatus.FAIL, "row_remap_pending", 1, 0, "flag",
                        $"{Describe(device, pending)}: a row remap is pending after the burn ({pending.RemappedRowsUncorrectable} rows remapped for uncorrectable, " +
                        $"{pending.RemappedRowsCorrectable} for correctable errors): its memory has a bad row that is spared only after a GPU reset; reset it and burn again"));
                if (d.End is ({ } name, { RemapFailed: true } failed))
                    rows.Add(new VerdictRow(host, TestName, source, index, VerdictStatus.FAIL, "row_remap_failed", 1, 0, "flag",
                        $"{Describe(name, failed)}: a row remap failed after the burn: no spare rows left for a bad row"));
                foreach (var g in _events.Where(e => e.Source == source && e.Index == index).GroupBy(e => (e.Xid, e.Severity)))
                    rows.Add(EventRow(host, source, index, g.Key.Xid, g.Key.Severity, g.Count(), g.First().Text));
                if (rows.Count == before)
                    rows.Add(new VerdictRow(host, TestName, source, index, VerdictStatus.PASS, "samples", d.Samples, null, "count",
                        $"{d.Samples} samples: no new uncorrectable ECC error, {d.NewCorrected} new correctable (at most {policy.EccCorrectedMaxNew}), no sustained throttling, no Xid" +
                        (d.End is { Health.RemapPending: false } ? ", no row remap pending after the burn" : "")));
            }
            foreach (var g in _events.Where(e => e.Index < 0).GroupBy(e => (e.Xid, e.Severity)))
                rows.Add(EventRow(host, "kmsg", -1, g.Key.Xid, g.Key.Severity, g.Count(), g.First().Text));
            return rows;
        }
    }

    private static string Describe(string device, GpuHealth h) => $"{device} ({h.Uuid}, PCI {h.PciBusId})";

    private static VerdictRow EventRow(string host, string source, int index, int xid, Severity severity, int count, string text) =>
        new(host, TestName, source, index, severity == Severity.Fail ? VerdictStatus.FAIL : VerdictStatus.WARN,
            xid > 0 ? "xid" : "gpu_fell_off_bus", xid > 0 ? xid : count, null, xid > 0 ? "xid" : "count",
            $"{(count == 1 ? "" : $"{count} lines like ")}'{text}' in the kernel log during the run");
}
