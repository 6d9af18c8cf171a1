// Every CSV kiln writes whole or reads goes through CsvHelper with one configuration: RFC 4180 quoting
// (a quoted field may span lines), "\n" line ends, UTF-8 without BOM. A result file's columns are the
// ClassMap of its row (Rows.cs), and a row becomes text only through that map: in the file, in a
// bundle and on a page alike. CsvTable (CsvTable.cs) is the streaming writer of a run's files.
using System.Globalization;
using System.Text;
using CsvHelper;
using CsvHelper.Configuration;

namespace Kiln.Core.Results;

public static class Csv
{
    internal static readonly UTF8Encoding Utf8 = new(encoderShouldEmitUTF8Identifier: false);

    internal static CsvConfiguration Configuration() => new(CultureInfo.InvariantCulture)
    {
        NewLine = "\n",
        // Repeated cells (host, test, metric, unit) come back as one string each, not one per row.
        CacheFields = true,
        // A stray quote in a damaged file is data, not a crash; the reader judges the fields.
        BadDataFound = null,
    };

    /// <summary>The column names a ClassMap declares, in order: the file's header.</summary>
    public static IReadOnlyList<string> Columns<TMap>() where TMap : ClassMap, new() =>
        new TMap().MemberMaps.Select(m => m.Data.Names[0]).ToList();

    /// <summary>A file of rows written whole through a temporary file and a rename.</summary>
    public static void Write<TRow, TMap>(string path, IEnumerable<TRow> rows) where TMap : ClassMap<TRow> =>
        AtomicFile.Write(path, temp =>
        {
            using var writer = new StreamWriter(temp, append: false, Utf8);
            WriteRows<TRow, TMap>(writer, rows);
        });

    /// <summary>The text of such a file (for a bundle).</summary>
    public static string Text<TRow, TMap>(IEnumerable<TRow> rows) where TMap : ClassMap<TRow>
    {
        using var text = new StringWriter(CultureInfo.InvariantCulture);
        WriteRows<TRow, TMap>(text, rows);
        return text.ToString();
    }

    /// <summary>A table with no row type of its own (the fleet report's tables): a header and each row's cells.</summary>
    public static void Write(string path, IReadOnlyList<string> header, IEnumerable<IReadOnlyList<string>> rows) =>
        AtomicFile.Write(path, temp =>
        {
            using var writer = new StreamWriter(temp, append: false, Utf8);
            WriteCells(writer, header, rows);
        });

    public static string Text(IReadOnlyList<string> header, IEnumerable<IReadOnlyList<string>> rows)
    {
        using var text = new StringWriter(CultureInfo.InvariantCulture);
        WriteCells(text, header, rows);
        return text.ToString();
    }

    /// <summary>Each row as the cells of its line in the file, for a page that shows it.</summary>
    public static IEnumerable<IReadOnlyList<string>> Cells<TRow, TMap>(IEnumerable<TRow> rows) where TMap : ClassMap<TRow>
    {
        var line = new StringWriter(CultureInfo.InvariantCulture);
        using var csv = new CsvWriter(line, Configuration());
        csv.Context.RegisterClassMap<TMap>();
        foreach (var row in rows)
        {
            line.GetStringBuilder().Clear();
            csv.WriteRecord(row);
            csv.NextRecord();
            csv.Flush();
            using var parser = new CsvParser(new StringReader(line.ToString()), Configuration());
            yield return parser.Read() ? parser.Record! : [];
        }
    }

    private static void WriteRows<TRow, TMap>(TextWriter writer, IEnumerable<TRow> rows) where TMap : ClassMap<TRow>
    {
        using var csv = new CsvWriter(writer, Configuration(), leaveOpen: true);
        csv.Context.RegisterClassMap<TMap>();
        csv.WriteHeader<TRow>();
        csv.NextRecord();
        foreach (var row in rows)
        {
            csv.WriteRecord(row);
            csv.NextRecord();
        }
    }

    private static void WriteCells(TextWriter writer, IReadOnlyList<string> header, IEnumerable<IReadOnlyList<string>> rows)
    {
        using var csv = new CsvWriter(writer, Configuration(), leaveOpen: true);
        foreach (var row in rows.Prepend(header))
        {
            foreach (var cell in row) csv.WriteField(cell);
            csv.NextRecord();
        }
    }
}

/// <summary>
/// A CSV file read row by row through CsvHelper's parser: the header, fields by index, the line a row
/// ends on. Forward only, so a fleet's millions of rows stream past without being held.
/// </summary>
public sealed class CsvInput : IDisposable
{
    private readonly StreamReader _reader;
    private readonly CsvParser _parser;

    private CsvInput(string path, StreamReader reader, CsvParser parser, IReadOnlyList<string> header)
    {
        Path = path;
        _reader = reader;
        _parser = parser;
        Header = header;
    }

    public string Path { get; }
    public IReadOnlyList<string> Header { get; }
    /// <summary>1-based line number (the header is line 1) where the current row ends.</summary>
    public int LineNumber => _parser.RawRow;
    public int FieldCount => _parser.Count;

    public string this[int i] => _parser[i];

    /// <summary>Opens a file and reads its header; null (with the reason) when it is missing or empty.</summary>
    public static CsvInput? Open(string path, out string problem)
    {
        problem = "";
        StreamReader reader;
        try
        {
            reader = new StreamReader(path, Encoding.UTF8, detectEncodingFromByteOrderMarks: true, bufferSize: 1 << 16);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            problem = e is FileNotFoundException ? "missing" : $"cannot read: {e.Message}";
            return null;
        }
        var parser = new CsvParser(reader, Csv.Configuration());
        if (!parser.Read() || parser.Record is not { Length: > 0 } header || header.All(string.IsNullOrWhiteSpace))
        {
            parser.Dispose();
            reader.Dispose();
            problem = "empty: no header row";
            return null;
        }
        return new CsvInput(path, reader, parser, header.Select(h => h.Trim()).ToList());
    }

    /// <summary>Column indexes by name; the names missing from the header, if any.</summary>
    public int[] Columns(IReadOnlyList<string> names, out IReadOnlyList<string> missing)
    {
        var header = Header.ToList();
        var indexes = names.Select(n => header.IndexOf(n)).ToArray();
        missing = names.Where((_, i) => indexes[i] < 0).ToList();
        return indexes;
    }

    /// <summary>Advances to the next row (blank lines are skipped); false at the end of the file.</summary>
    public bool Read() => _parser.Read();

    public bool TryDouble(int i, out double value) =>
        double.TryParse(_parser[i], NumberStyles.Float, CultureInfo.InvariantCulture, out value) && double.IsFinite(value);

    public bool TryInt(int i, out int value) =>
        int.TryParse(_parser[i], NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out value);

    /// <summary>A small file's rows (at most <paramref name="limit"/>) as text cells; null when it is missing or empty.</summary>
    public static CsvSheet? ReadAll(string path, int limit = int.MaxValue)
    {
        using var csv = Open(path, out _);
        if (csv is null) return null;
        var rows = new List<IReadOnlyList<string>>();
        while (rows.Count < limit && csv.Read()) rows.Add(csv._parser.Record!);
        return new CsvSheet(csv.Header, rows);
    }

    public void Dispose()
    {
        _parser.Dispose();
        _reader.Dispose();
    }
}

/// <summary>A small CSV file read whole (findings.csv, errors.csv for pages and bundles).</summary>
public sealed record CsvSheet(IReadOnlyList<string> Header, IReadOnlyList<IReadOnlyList<string>> Rows)
{
    /// <summary>The cell of a named column, "" when the row is short or the column absent.</summary>
    public string Cell(IReadOnlyList<string> row, string column)
    {
        var i = Header.ToList().IndexOf(column);
        return i >= 0 && i < row.Count ? row[i] : "";
    }
}
