// One result CSV file written through CsvHelper: header at creation, every row flushed to the OS as
// it is written (a killed run keeps its rows), safe to call from the native threads of a sink.
using System.Globalization;
using System.Text;
using CsvHelper;
using CsvHelper.Configuration;
using CsvHelper.TypeConversion;

namespace Kiln.Core.Results;

public sealed class CsvTable<TRow, TMap> : IDisposable where TMap : ClassMap<TRow>
{
    private readonly Lock _gate = new();
    private readonly StreamWriter _writer;
    private readonly CsvWriter _csv;

    public CsvTable(string path)
    {
        Path = path;
        _writer = new StreamWriter(new FileStream(path, FileMode.Create, FileAccess.Write, FileShare.Read),
            new UTF8Encoding(encoderShouldEmitUTF8Identifier: false));
        _csv = new CsvWriter(_writer, new CsvConfiguration(CultureInfo.InvariantCulture) { NewLine = "\n" });
        _csv.Context.RegisterClassMap<TMap>();
        _csv.WriteHeader<TRow>();
        _csv.NextRecord();
        FlushUnlocked();
    }

    public string Path { get; }
    public int RowCount { get; private set; }

    public void Write(TRow row)
    {
        lock (_gate)
        {
            _csv.WriteRecord(row);
            _csv.NextRecord();
            FlushUnlocked();
            RowCount++;
        }
    }

    /// <summary>Several rows with one flush: for a sampler that writes a batch per tick.</summary>
    public void WriteAll(IReadOnlyCollection<TRow> rows)
    {
        if (rows.Count == 0) return;
        lock (_gate)
        {
            foreach (var row in rows)
            {
                _csv.WriteRecord(row);
                _csv.NextRecord();
            }
            FlushUnlocked();
            RowCount += rows.Count;
        }
    }

    public void Dispose()
    {
        lock (_gate)
        {
            try
            {
                _csv.Dispose();
            }
            catch (IOException)
            {
                // A full disk: every row that could be written was flushed as it came.
            }
        }
    }

    private void FlushUnlocked()
    {
        _csv.Flush();
        _writer.Flush();
    }
}

/// <summary>Cell formats shared by the result files.</summary>
public static class CsvFormats
{
    /// <summary>UTC, ISO 8601 with milliseconds: 2025-01-31T12:00:00.123Z.</summary>
    public sealed class UtcTimestamp : DefaultTypeConverter
    {
        public override string ConvertToString(object? value, IWriterRow row, MemberMapData data) =>
            ((DateTimeOffset)value!).UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", CultureInfo.InvariantCulture);
    }

    /// <summary>A byte offset: 0x-prefixed hex, no padding (0x1f40).</summary>
    public sealed class HexOffset : DefaultTypeConverter
    {
        public override string ConvertToString(object? value, IWriterRow row, MemberMapData data) =>
            $"0x{(ulong)value!:x}";
    }

    /// <summary>A 64-bit word: 0x-prefixed, 16 hex digits (0x00000000000000ff).</summary>
    public sealed class HexWord : DefaultTypeConverter
    {
        public override string ConvertToString(object? value, IWriterRow row, MemberMapData data) =>
            $"0x{(ulong)value!:x16}";
    }

    /// <summary>Bit numbers joined by ';' (3;17).</summary>
    public sealed class BitList : DefaultTypeConverter
    {
        public override string ConvertToString(object? value, IWriterRow row, MemberMapData data) =>
            string.Join(';', (IEnumerable<int>)value!);
    }

    /// <summary>true / false, lower case.</summary>
    public sealed class LowerBool : DefaultTypeConverter
    {
        public override string ConvertToString(object? value, IWriterRow row, MemberMapData data) =>
            (bool)value! ? "true" : "false";
    }

    /// <summary>A double in the shortest text that reads back exactly; empty when absent.</summary>
    public sealed class Number : DefaultTypeConverter
    {
        public override string ConvertToString(object? value, IWriterRow row, MemberMapData data) =>
            value is double d ? d.ToString("R", CultureInfo.InvariantCulture) : "";
    }
}
