// The rows of metrics.csv, errors.csv and verdicts.csv and their column maps: the column names and
// cell formats here are the contract other tools read (see managed/Kiln.Core/RESULTS.md).
using CsvHelper.Configuration;

namespace Kiln.Core.Results;

/// <summary>One measured value. Device is the index within its backend.</summary>
public sealed record MetricRow(DateTimeOffset Timestamp, string Host, string RunId, string Test, string Backend,
    int Device, string Metric, double Value, string Unit, bool Injected);

/// <summary>One wrong word a verify pass found; offset in bytes from the start of the tested region.</summary>
/// <param name="Sm">The SM (or CU) that made or found the word; null when the host checked, or on the CPU.</param>
/// <param name="SmClockMhz">The device's SM clock in the telemetry sample before the error came; null when not sampled.</param>
public sealed record ErrorRow(DateTimeOffset Timestamp, string Host, string Test, string Backend, int Device,
    string Pattern, ulong OffsetBytes, ulong Expected, ulong Actual, IReadOnlyList<int> Bits, int? Sm = null, double? SmClockMhz = null);

public enum VerdictStatus { PASS, WARN, FAIL, SKIP }

/// <summary>The verdict on one (test, device); Value and Threshold are absent for SKIP.</summary>
public sealed record VerdictRow(string Host, string Test, string Backend, int Device, VerdictStatus Status,
    string Metric, double? Value, double? Threshold, string Unit, string Reason);

public sealed class MetricRowMap : ClassMap<MetricRow>
{
    public MetricRowMap()
    {
        Map(r => r.Timestamp).Name("timestamp").TypeConverter<CsvFormats.UtcTimestamp>();
        Map(r => r.Host).Name("host");
        Map(r => r.RunId).Name("run_id");
        Map(r => r.Test).Name("test");
        Map(r => r.Backend).Name("backend");
        Map(r => r.Device).Name("device");
        Map(r => r.Metric).Name("metric");
        Map(r => r.Value).Name("value").TypeConverter<CsvFormats.Number>();
        Map(r => r.Unit).Name("unit");
        // Appended after the contract's columns so readers that index by position keep working.
        Map(r => r.Injected).Name("injected").TypeConverter<CsvFormats.LowerBool>();
    }
}

public sealed class ErrorRowMap : ClassMap<ErrorRow>
{
    public ErrorRowMap()
    {
        Map(r => r.Timestamp).Name("timestamp").TypeConverter<CsvFormats.UtcTimestamp>();
        Map(r => r.Host).Name("host");
        Map(r => r.Test).Name("test");
        Map(r => r.Backend).Name("backend");
        Map(r => r.Device).Name("device");
        Map(r => r.Pattern).Name("pattern");
        Map(r => r.OffsetBytes).Name("offset").TypeConverter<CsvFormats.HexOffset>();
        Map(r => r.Expected).Name("expected").TypeConverter<CsvFormats.HexWord>();
        Map(r => r.Actual).Name("actual").TypeConverter<CsvFormats.HexWord>();
        Map(r => r.Bits).Name("bits").TypeConverter<CsvFormats.BitList>();
        // Appended after the contract's columns so readers that index by position keep working.
        Map(r => r.Sm).Name("sm");
        Map(r => r.SmClockMhz).Name("sm_clock_mhz").TypeConverter<CsvFormats.Number>();
    }
}

public sealed class VerdictRowMap : ClassMap<VerdictRow>
{
    public VerdictRowMap()
    {
        Map(r => r.Host).Name("host");
        Map(r => r.Test).Name("test");
        Map(r => r.Backend).Name("backend");
        Map(r => r.Device).Name("device");
        Map(r => r.Status).Name("status");
        Map(r => r.Metric).Name("metric");
        Map(r => r.Value).Name("value").TypeConverter<CsvFormats.Number>();
        Map(r => r.Threshold).Name("threshold").TypeConverter<CsvFormats.Number>();
        Map(r => r.Unit).Name("unit");
        Map(r => r.Reason).Name("reason");
    }
}
