// Telemetry while a burn runs: one thread samples every NVML / ROCm SMI GPU at the chosen rate (10 Hz
// by default) into telemetry.csv (rows flushed per tick), feeds TelemetryRules, follows the kernel
// log for Xids, and keeps a thinned series per device for the plots. On a node without GPU telemetry
// it says so once and samples the CPU temperatures (thermal zones, hwmon) at 1 Hz, if there are any.
using System.Diagnostics;
using System.Globalization;
using Kiln.Core.Health;
using Kiln.Core.Health.KernelLog;
using Kiln.Core.Health.Sources;
using Kiln.Core.Results;
using Kiln.Native;

namespace Kiln.Core.Telemetry;

/// <param name="KernelLogFile">Follow this file instead of /dev/kmsg (tests, containers).</param>
/// <param name="Root">Where sys/class/thermal and sys/class/hwmon are ("/" on a live node).</param>
public sealed record TelemetryOptions(string Host, HealthPolicy Policy, double SampleHz = 10, string? KernelLogFile = null, string Root = "/");

public sealed class BurnTelemetry : IDisposable
{
    public const string FileName = "telemetry.csv";
    private const int CpuEveryTicks = 10;

    private readonly TelemetryOptions _options;
    private readonly CsvTable<TelemetryRow, TelemetryRowMap> _csv;
    private readonly List<(string Source, GpuTelemetry Telemetry, string Prefix)> _sources = [];
    private readonly List<(string Source, int Index, string Device, string PciBusId)> _gpus = [];
    private readonly List<(string Device, string Sensor, string Path, double Scale)> _cpuSensors;
    private readonly Dictionary<string, TelemetrySeries> _series = new(StringComparer.Ordinal);
    private readonly TelemetryRules _rules;
    private readonly KernelLogFollower? _kernelLog;
    private readonly KernelLogParser _parser;
    private readonly CancellationTokenSource _stop = new();
    private readonly Thread _thread;
    private IReadOnlyList<VerdictRow>? _verdicts;
    private readonly Action<string> _log;
    private bool _writeFailed;

    private BurnTelemetry(ResultFolder folder, TelemetryOptions options, Action<string> log)
    {
        _options = options;
        _log = log;
        _rules = new TelemetryRules(options.Policy);
        _csv = new CsvTable<TelemetryRow, TelemetryRowMap>(folder.File(FileName));
        var reasons = new List<string>();
        foreach (var (source, check, prefix) in new[] { (TelemetrySource.Nvml, "nvml", "gpu"), (TelemetrySource.RocmSmi, "rocm_smi", "amdgpu"), (TelemetrySource.Emu, "emu", "emu") })
        {
            GpuTelemetry? t;
            string why;
            try { t = GpuTelemetry.TryOpen(source, null, out why); }
            catch (KilnException e) { (t, why) = (null, e.Message); }
            if (t is null)
            {
                // The emulator is off on every real node: not worth a word there.
                if (source != TelemetrySource.Emu) reasons.Add($"{check}: {why}");
                continue;
            }
            _sources.Add((check, t, prefix));
            for (var i = 0; i < t.DeviceCount; i++)
            {
                // The PCI address maps kernel-log Xids to the GPU; read once, the health call is slow.
                string pci;
                try { pci = t.Health(i).PciBusId; }
                catch (KilnException) { pci = ""; }
                _gpus.Add((check, i, $"{prefix}{i}", pci));
                _rules.Track(check, i);
            }
        }
        _cpuSensors = _gpus.Count == 0 ? CpuSensors(options.Root) : [];
        if (_gpus.Count == 0)
            log($"telemetry: no GPU to sample ({string.Join("; ", reasons)}); " +
                (_cpuSensors.Count > 0 ? $"sampling {_cpuSensors.Count} CPU temperature sensors at 1 Hz" : "no CPU temperature sensors either: telemetry.csv stays empty"));
        _kernelLog = KernelLogFollower.Start(options.KernelLogFile, out var kmsgWhy);
        if (_kernelLog is null) log($"telemetry: kernel log not followed ({kmsgWhy}): Xids during the run are not seen");
        _parser = new KernelLogParser(KernelLogCheck.BootTime(options.Root), DateTimeOffset.UtcNow, TimeZoneInfo.Local);
        _thread = new Thread(Loop) { IsBackground = true, Name = "kiln telemetry", Priority = ThreadPriority.AboveNormal };
    }

    /// <summary>Opens the sources, writes telemetry.csv's header and starts sampling.</summary>
    public static BurnTelemetry Start(ResultFolder folder, TelemetryOptions options, Action<string> log)
    {
        var telemetry = new BurnTelemetry(folder, options, log);
        telemetry._thread.Start();
        return telemetry;
    }

    private readonly List<(string PciKey, TelemetryWindow Window)> _windows = [];

    /// <summary>
    /// Collects the samples of the GPU at this PCI address until disposed (one test's window);
    /// null when no sampled GPU has that address.
    /// </summary>
    public TelemetryWindow? Watch(string pciBusId)
    {
        var key = TelemetryWindow.PciKey(pciBusId);
        if (pciBusId.Length == 0 || !_gpus.Any(g => TelemetryWindow.PciKey(g.PciBusId) == key)) return null;
        var window = new TelemetryWindow(w => { lock (_windows) _windows.RemoveAll(x => x.Window == w); });
        lock (_windows) _windows.Add((key, window));
        return window;
    }

    /// <summary>Devices being sampled ("gpu0" ...), CPU sensors excluded.</summary>
    public IReadOnlyList<string> Devices => _gpus.Select(g => g.Device).ToList();

    /// <summary>Rows written so far.</summary>
    public int RowCount => _csv.RowCount;

    /// <summary>Stops sampling and returns the verdict rows (test=telemetry); idempotent.</summary>
    public IReadOnlyList<VerdictRow> Finish()
    {
        if (_verdicts is not null) return _verdicts;
        _stop.Cancel();
        if (_thread.IsAlive) _thread.Join();
        PollKernelLog();  // lines logged in the last tick
        // Row remapping is read once, now that the tests are done: a remap they caused waits for a
        // reset, and the burn must not pass that GPU (whether or not the plan runs health checks after).
        foreach (var (source, t, _) in _sources)
            foreach (var gpu in _gpus.Where(g => g.Source == source))
            {
                try { _rules.ObserveEnd(source, gpu.Index, gpu.Device, t.Health(gpu.Index)); }
                catch (KilnException) { }  // a lost GPU: its tests and the kernel log say so
            }
        return _verdicts = _rules.Verdicts(_options.Host);
    }

    /// <summary>One PNG per device under plots/ (call after Finish); returns the files written.</summary>
    public IReadOnlyList<string> WritePlots(ResultFolder folder) => TelemetryPlots.Write(folder, _series.Values);

    public void Dispose()
    {
        Finish();
        _csv.Dispose();
        foreach (var (_, t, _) in _sources) t.Dispose();
        _kernelLog?.Dispose();
        _stop.Dispose();
    }

    private void Loop()
    {
        var period = TimeSpan.FromSeconds(1 / _options.SampleHz);
        var clock = Stopwatch.StartNew();
        var rows = new List<TelemetryRow>();
        for (long tick = 0; !_stop.IsCancellationRequested; tick++)
        {
            var now = DateTimeOffset.UtcNow;
            rows.Clear();
            foreach (var (source, t, _) in _sources)
            {
                foreach (var gpu in _gpus.Where(g => g.Source == source))
                {
                    GpuSample sample;
                    try { sample = t.Sample(gpu.Index); }
                    catch (KilnException) { continue; }  // a lost GPU: the kernel log and the test verdicts say so
                    _rules.Observe(source, gpu.Index, now, sample);
                    lock (_windows)
                        foreach (var (key, window) in _windows)
                            if (key == TelemetryWindow.PciKey(gpu.PciBusId)) window.Add(sample);
                    foreach (var (sensor, unit, value) in GpuSensors.Of(sample))
                    {
                        rows.Add(new TelemetryRow(now, _options.Host, gpu.Device, sensor, value, unit));
                        Series(gpu.Device).Add(now, sensor, value);
                    }
                }
            }
            if (_cpuSensors.Count > 0 && tick % CpuEveryTicks == 0)
            {
                foreach (var (device, sensor, path, scale) in _cpuSensors)
                {
                    if (SysfsFile.Number(path, out _) is not { } raw) continue;
                    rows.Add(new TelemetryRow(now, _options.Host, device, sensor, raw * scale, "C"));
                    Series(device).Add(now, sensor, raw * scale);
                }
            }
            if (!_writeFailed)
            {
                try
                {
                    _csv.WriteAll(rows);
                }
                catch (IOException e)
                {
                    // The results disk: the burn stops on its own writes; telemetry keeps judging.
                    _writeFailed = true;
                    _log($"telemetry: telemetry.csv could not be written ({e.Message}); sampling goes on unwritten");
                }
            }
            PollKernelLog();
            // Ticks are scheduled from the start, so a slow tick does not shift the rest.
            var next = period * (tick + 1) - clock.Elapsed;
            if (next > TimeSpan.Zero) _stop.Token.WaitHandle.WaitOne(next);
        }
    }

    private void PollKernelLog()
    {
        if (_kernelLog is null) return;
        foreach (var line in _kernelLog.ReadNew())
            _rules.ObserveKernelLog(line, _parser, GpuAt);
    }

    // The kernel log's short address ("0000:5d:00") or a full one ("0000:5d:00.0").
    private (string Source, int Index)? GpuAt(string pci)
    {
        var i = _gpus.FindIndex(g => g.PciBusId.Length > 0 && (g.PciBusId == pci || g.PciBusId.StartsWith(pci + ".", StringComparison.Ordinal)));
        return i < 0 ? null : (_gpus[i].Source, _gpus[i].Index);
    }

    private TelemetrySeries Series(string device)
    {
        lock (_series)
        {
            return _series.TryGetValue(device, out var s) ? s : _series[device] = new TelemetrySeries(device);
        }
    }

    // ROOT/sys/class/thermal/thermal_zone*/temp (millidegrees, named by type) and
    // ROOT/sys/class/hwmon/hwmon*/temp*_input (millidegrees, named by name and label).
    private static List<(string, string, string, double)> CpuSensors(string root)
    {
        var sensors = new List<(string, string, string, double)>();
        foreach (var zone in SysfsFile.Folders(Path.Combine(root, "sys/class/thermal")).Where(z => Path.GetFileName(z).StartsWith("thermal_zone", StringComparison.Ordinal)))
        {
            var type = SysfsFile.TextOrEmpty(Path.Combine(zone, "type"));
            if (File.Exists(Path.Combine(zone, "temp")))
                sensors.Add(("cpu", $"{Path.GetFileName(zone)}_{(type.Length > 0 ? type : "temp")}", Path.Combine(zone, "temp"), 0.001));
        }
        foreach (var hwmon in SysfsFile.Folders(Path.Combine(root, "sys/class/hwmon")))
        {
            var name = SysfsFile.TextOrEmpty(Path.Combine(hwmon, "name"));
            foreach (var input in Directory.EnumerateFiles(hwmon, "temp*_input").Order(StringComparer.Ordinal))
            {
                var label = SysfsFile.TextOrEmpty(input.Replace("_input", "_label"));
                var id = Path.GetFileName(input)[..^"_input".Length];
                sensors.Add(("cpu", $"{Path.GetFileName(hwmon)}_{name}_{(label.Length > 0 ? label.Replace(' ', '_') : id)}", input, 0.001));
            }
        }
        return sensors;
    }
}

/// <summary>
/// A device's samples for its plot, thinned as it grows: past MaxPoints every other point is
/// dropped and the stride doubles, so a three-day burn keeps a bounded, evenly spread series.
/// </summary>
public sealed class TelemetrySeries(string device)
{
    public const int MaxPoints = 20_000;
    private readonly Dictionary<string, List<(double Seconds, double Value)>> _sensors = new(StringComparer.Ordinal);
    private DateTimeOffset? _start;
    private readonly Dictionary<string, long> _seen = new(StringComparer.Ordinal);
    private int _stride = 1;

    public string Device { get; } = device;
    public DateTimeOffset? Start => _start;

    public void Add(DateTimeOffset at, string sensor, double value)
    {
        _start ??= at;
        var n = _seen[sensor] = _seen.GetValueOrDefault(sensor) + 1;
        if ((n - 1) % _stride != 0) return;
        var points = _sensors.TryGetValue(sensor, out var known) ? known : _sensors[sensor] = [];
        points.Add(((at - _start.Value).TotalSeconds, value));
        if (points.Count < MaxPoints) return;
        _stride *= 2;
        foreach (var list in _sensors.Values)
        {
            var kept = list.Where((_, i) => i % 2 == 0).ToList();
            list.Clear();
            list.AddRange(kept);
        }
    }

    public IReadOnlyList<(double Seconds, double Value)> Points(string sensor) =>
        _sensors.TryGetValue(sensor, out var points) ? points : [];

    public IEnumerable<string> Sensors => _sensors.Keys;

    public override string ToString() => $"{Device}: {string.Join(", ", _sensors.Select(s => $"{s.Key} {s.Value.Count.ToString(CultureInfo.InvariantCulture)}"))}";
}
