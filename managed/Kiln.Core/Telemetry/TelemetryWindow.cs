// What telemetry saw of one GPU while one test ran: the board's power draw, temperature and SM
// clock, accumulated from the samples the burn's telemetry loop takes anyway. The power test turns
// it into power_w_mean and friends (declared in the native metric catalog as measured by the host).
using Kiln.Native;

namespace Kiln.Core.Telemetry;

public sealed class TelemetryWindow(Action<TelemetryWindow> close) : IDisposable
{
    private readonly Lock _gate = new();
    private double _powerSum, _clockSum;
    private int _power, _clock;

    public double PowerMaxW { get; private set; } = double.NaN;
    public double TemperatureMaxC { get; private set; } = double.NaN;

    public int Samples { get { lock (_gate) return _power; } }

    /// <summary>The SM clock of the latest sample, MHz; null before the first one that had it.</summary>
    public double? LatestSmClockMhz { get { lock (_gate) return _latestClock; } }
    private double? _latestClock;

    internal void Add(in GpuSample s)
    {
        lock (_gate)
        {
            _latest = s;
            if (s.PowerW >= 0)
            {
                _powerSum += s.PowerW;
                _power++;
                PowerMaxW = double.IsNaN(PowerMaxW) ? s.PowerW : Math.Max(PowerMaxW, s.PowerW);
            }
            if (s.TemperatureC >= 0) TemperatureMaxC = double.IsNaN(TemperatureMaxC) ? s.TemperatureC : Math.Max(TemperatureMaxC, s.TemperatureC);
            if (s.SmClockMhz >= 0)
            {
                _clockSum += s.SmClockMhz;
                _clock++;
                _latestClock = s.SmClockMhz;
            }
        }
    }

    /// <summary>The latest sample in words ("71 C, 1410 MHz, 350 W"), for a hang's or crash's reason; null before any.</summary>
    public string? Describe()
    {
        lock (_gate)
        {
            if (_latest is not { } s) return null;
            var parts = new List<string>();
            if (s.TemperatureC >= 0) parts.Add(FormattableString.Invariant($"{s.TemperatureC:0} C"));
            if (s.SmClockMhz >= 0) parts.Add(FormattableString.Invariant($"{s.SmClockMhz:0} MHz"));
            if (s.PowerW >= 0) parts.Add(FormattableString.Invariant($"{s.PowerW:0} W"));
            if (s.UtilizationPct >= 0) parts.Add(FormattableString.Invariant($"{s.UtilizationPct:0}% busy"));
            return parts.Count == 0 ? null : string.Join(", ", parts);
        }
    }
    private GpuSample? _latest;

    /// <summary>The readings as metrics (name, value, unit); none when no sample came.</summary>
    public IReadOnlyList<(string Name, double Value, string Unit)> Metrics()
    {
        lock (_gate)
        {
            if (_power == 0) return [];
            var list = new List<(string, double, string)>
            {
                ("power_w_mean", _powerSum / _power, "W"), ("power_w_max", PowerMaxW, "W"), ("power_samples", _power, "count"),
            };
            if (!double.IsNaN(TemperatureMaxC)) list.Add(("temperature_c_max", TemperatureMaxC, "C"));
            if (_clock > 0) list.Add(("sm_clock_mhz_mean", _clockSum / _clock, "MHz"));
            return list;
        }
    }

    public void Dispose() => close(this);

    /// <summary>"0000:3b:00.0" and "00000000:3B:00.0" are one address: the domain as a number, the rest lower case.</summary>
    public static string PciKey(string address)
    {
        var colon = address.IndexOf(':');
        if (colon <= 0) return address.ToLowerInvariant();
        return int.TryParse(address.AsSpan(0, colon), System.Globalization.NumberStyles.HexNumber, null, out var domain)
            ? $"{domain:x}:{address[(colon + 1)..].ToLowerInvariant()}"
            : address.ToLowerInvariant();
    }
}
