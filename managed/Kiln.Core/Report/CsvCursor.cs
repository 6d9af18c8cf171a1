// A forward-only reader of kiln's result CSV files for the fleet report: thousands of files, millions
// of rows, so fields are sliced out of the line and only the ones asked for become strings. RFC 4180
// quotes within a line are understood; a quoted field spanning lines is not (kiln never writes one).
using System.Globalization;

namespace Kiln.Core.Report;

public sealed class CsvCursor : IDisposable
{
    private readonly StreamReader _reader;
    private readonly List<(int Start, int Length, bool Quoted)> _fields = [];
    private string _line = "";

    private CsvCursor(string path, StreamReader reader, IReadOnlyList<string> header)
    {
        Path = path;
        _reader = reader;
        Header = header;
    }

    public string Path { get; }
    public IReadOnlyList<string> Header { get; }
    /// <summary>1-based line number of the current row in the file (the header is line 1).</summary>
    public int LineNumber { get; private set; } = 1;
    public int FieldCount => _fields.Count;

    /// <summary>Opens a file and reads its header; null (with the reason) when it is missing or empty.</summary>
    public static CsvCursor? Open(string path, out string problem)
    {
        problem = "";
        StreamReader reader;
        try
        {
            reader = new StreamReader(path, System.Text.Encoding.UTF8, detectEncodingFromByteOrderMarks: true, bufferSize: 1 << 16);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            problem = e is FileNotFoundException ? "missing" : $"cannot read: {e.Message}";
            return null;
        }
        var headerLine = reader.ReadLine();
        if (string.IsNullOrWhiteSpace(headerLine))
        {
            reader.Dispose();
            problem = "empty: no header row";
            return null;
        }
        var cursor = new CsvCursor(path, reader, []);
        cursor._line = headerLine;
        cursor.Split();
        var header = Enumerable.Range(0, cursor.FieldCount).Select(i => cursor.String(i).Trim()).ToList();
        return new CsvCursor(path, reader, header);
    }

    /// <summary>Column indexes by name; the names missing from the header, if any.</summary>
    public int[] Columns(IReadOnlyList<string> names, out IReadOnlyList<string> missing)
    {
        var indexes = names.Select(n => Header.ToList().IndexOf(n)).ToArray();
        missing = names.Where((_, i) => indexes[i] < 0).ToList();
        return indexes;
    }

    /// <summary>Advances to the next non-empty row; false at the end of the file.</summary>
    public bool Read()
    {
        while (true)
        {
            var line = _reader.ReadLine();
            if (line is null) return false;
            LineNumber++;
            if (line.Length == 0) continue;
            _line = line;
            Split();
            return true;
        }
    }

    public ReadOnlySpan<char> Span(int i)
    {
        var (start, length, _) = _fields[i];
        return _line.AsSpan(start, length);
    }

    public string String(int i)
    {
        var (start, length, quoted) = _fields[i];
        var raw = _line.Substring(start, length);
        return quoted ? raw.Replace("\"\"", "\"") : raw;
    }

    public bool TryDouble(int i, out double value) =>
        double.TryParse(Span(i), NumberStyles.Float, CultureInfo.InvariantCulture, out value) && double.IsFinite(value);

    public bool TryInt(int i, out int value) =>
        int.TryParse(Span(i), NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out value);

    public void Dispose() => _reader.Dispose();

    // Fields as (start, length) of their text inside the line; a quoted field's range excludes its quotes.
    private void Split()
    {
        _fields.Clear();
        var s = _line;
        var i = 0;
        while (true)
        {
            if (i < s.Length && s[i] == '"')
            {
                var start = ++i;
                while (i < s.Length)
                {
                    if (s[i] == '"')
                    {
                        if (i + 1 < s.Length && s[i + 1] == '"') { i += 2; continue; }
                        break;
                    }
                    i++;
                }
                _fields.Add((start, Math.Min(i, s.Length) - start, true));
                i++;   // the closing quote (or past the end of an unterminated field)
                while (i < s.Length && s[i] != ',') i++;
            }
            else
            {
                var comma = s.IndexOf(',', i);
                var end = comma < 0 ? s.Length : comma;
                _fields.Add((i, end - i, false));
                i = end;
            }
            if (i >= s.Length) return;
            i++;   // the comma
            if (i == s.Length)
            {
                _fields.Add((i, 0, false));
                return;
            }
        }
    }
}

/// <summary>A small CSV file read whole as text cells (errors.csv, findings.csv for pages and bundles).</summary>
public sealed record CsvText(IReadOnlyList<string> Header, IReadOnlyList<IReadOnlyList<string>> Rows)
{
    /// <summary>The file's rows (at most <paramref name="limit"/>), or null when it is missing or empty.</summary>
    public static CsvText? Read(string path, int limit = int.MaxValue)
    {
        using var csv = CsvCursor.Open(path, out _);
        if (csv is null) return null;
        var rows = new List<IReadOnlyList<string>>();
        while (rows.Count < limit && csv.Read())
            rows.Add(Enumerable.Range(0, csv.FieldCount).Select(csv.String).ToList());
        return new CsvText(csv.Header, rows);
    }

    /// <summary>The cell of a named column, "" when the row is short or the column absent.</summary>
    public string Cell(IReadOnlyList<string> row, string column)
    {
        var i = Header.ToList().IndexOf(column);
        return i >= 0 && i < row.Count ? row[i] : "";
    }
}

public static class CsvOut
{
    /// <summary>Writes a header and rows (RFC 4180 quoting, \n line ends, UTF-8 without BOM) through a temporary file.</summary>
    public static void Write(string path, IReadOnlyList<string> header, IEnumerable<IReadOnlyList<string>> rows)
    {
        Results.AtomicFile.WriteAllText(path, ToText(header, rows));
    }

    public static string ToText(IReadOnlyList<string> header, IEnumerable<IReadOnlyList<string>> rows)
    {
        var text = new System.Text.StringBuilder().AppendJoin(',', header.Select(Quote)).Append('\n');
        foreach (var row in rows) text.AppendJoin(',', row.Select(Quote)).Append('\n');
        return text.ToString();
    }

    public static string Quote(string cell) =>
        cell.AsSpan().IndexOfAny(",\"\n\r") >= 0 ? "\"" + cell.Replace("\"", "\"\"") + "\"" : cell;
}
