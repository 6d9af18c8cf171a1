// The rows of telemetry.csv (timestamp,host,device,sensor,value,unit) and the sensors a GPU sample
// gives: the column names and units here are the contract other tools read.
using CsvHelper.Configuration;
using Kiln.Core.Results;
using Kiln.Native;

namespace Kiln.Core.Telemetry;

/// <param name="Device">"gpu3" (NVML), "amdgpu0" (ROCm SMI), "cpu" (thermal zones and hwmon).</param>
public sealed record TelemetryRow(DateTimeOffset Timestamp, string Host, string Device, string Sensor, double Value, string Unit);

public sealed class TelemetryRowMap : ClassMap<TelemetryRow>
{
    public TelemetryRowMap()
    {
        Map(r => r.Timestamp).Name("timestamp").TypeConverter<CsvFormats.UtcTimestamp>();
        Map(r => r.Host).Name("host");
        Map(r => r.Device).Name("device");
        Map(r => r.Sensor).Name("sensor");
        Map(r => r.Value).Name("value").TypeConverter<CsvFormats.Number>();
        Map(r => r.Unit).Name("unit");
    }
}

public static class GpuSensors
{
    /// <summary>(sensor, unit, value) of a sample; values the source cannot give (-1) are left out.</summary>
    public static IEnumerable<(string Sensor, string Unit, double Value)> Of(in GpuSample s)
    {
        var all = new (string, string, double)[]
        {
            ("temperature", "C", s.TemperatureC), ("power", "W", s.PowerW), ("sm_clock", "MHz", s.SmClockMhz),
            ("memory_clock", "MHz", s.MemoryClockMhz), ("utilization", "%", s.UtilizationPct),
            ("throttle_reasons", "bitmask", (ulong)s.Throttle), ("ecc_volatile_corrected", "count", s.EccVolatileCorrected),
            ("ecc_volatile_uncorrected", "count", s.EccVolatileUncorrected), ("pcie_replay_count", "count", s.PcieReplayCount),
        };
        return all.Where(x => x.Item3 >= 0);
    }
}
