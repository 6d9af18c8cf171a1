// The header's raw bytes, for the comments libclang does not attach: the C convention here is a
// comment on the line above a declaration or after it on the same line, which clang would misplace.
using System.Text;

namespace Kiln.Bindgen;

internal sealed class HeaderSource(byte[] text)
{
    /// <summary>The comment block ending on the line right above the line holding <paramref name="declStart"/>.</summary>
    public string? LeadingComment(int declStart)
    {
        int lineStart = LineStart(declStart);
        int end = lineStart;  // exclusive end of the text above the declaration's line
        int newlines = 0;
        while (end > 0 && IsSpace(text[end - 1]))
        {
            if (text[end - 1] == '\n') newlines++;
            end--;
        }
        // A blank line between comment and declaration makes it a section comment, not this one's.
        if (newlines > 1 || end < 2) return null;

        if (text[end - 2] == '*' && text[end - 1] == '/')
        {
            int open = LastIndexOf("/*"u8, end - 2);
            // "/*" after code on its line is the trailing comment of the declaration above.
            if (open < 0 || !OnlySpaceBefore(open)) return null;
            return Clean(Slice(open, end));
        }

        // A run of "//" lines ending right above.
        var lines = new List<string>();
        int lineEnd = end;
        while (lineEnd > 0)
        {
            int start = LineStart(lineEnd - 1);
            string line = Slice(start, lineEnd).Trim();
            if (!line.StartsWith("//", StringComparison.Ordinal)) break;
            lines.Insert(0, line);
            lineEnd = start - 1;
        }
        return lines.Count == 0 ? null : Clean(string.Join("\n", lines));
    }

    /// <summary>The comment after a declaration on the same line, past its ';' or ','.</summary>
    public string? TrailingComment(int declEnd)
    {
        int i = declEnd;
        while (i < text.Length && (text[i] is (byte)' ' or (byte)'\t' or (byte)';' or (byte)',')) i++;
        if (i + 1 >= text.Length || text[i] != '/') return null;
        if (text[i + 1] == '*')
        {
            int close = text.AsSpan(i + 2).IndexOf("*/"u8);
            return close < 0 ? null : Clean(Slice(i, i + 2 + close + 2));
        }
        if (text[i + 1] == '/')
        {
            int newline = text.AsSpan(i).IndexOf((byte)'\n');
            return Clean(Slice(i, newline < 0 ? text.Length : i + newline));
        }
        return null;
    }

    private int LineStart(int offset)
    {
        while (offset > 0 && text[offset - 1] != '\n') offset--;
        return offset;
    }

    private bool OnlySpaceBefore(int offset)
    {
        for (int i = offset - 1; i >= 0 && text[i] != '\n'; i--)
            if (!IsSpace(text[i])) return false;
        return true;
    }

    private int LastIndexOf(ReadOnlySpan<byte> needle, int before) => text.AsSpan(0, before).LastIndexOf(needle);

    private string Slice(int start, int end) => Encoding.UTF8.GetString(text, start, end - start);

    private static bool IsSpace(byte b) => b is (byte)' ' or (byte)'\t' or (byte)'\r' or (byte)'\n';

    /// <summary>Comment text without its markers and the " * " gutter; lines kept, ends trimmed.</summary>
    private static string? Clean(string comment)
    {
        var lines = new List<string>();
        foreach (var raw in comment.Split('\n'))
        {
            string line = raw.Trim();
            if (line.StartsWith("/*", StringComparison.Ordinal)) line = line[2..];
            else if (line.StartsWith("//", StringComparison.Ordinal)) line = line[2..];
            if (line.EndsWith("*/", StringComparison.Ordinal)) line = line[..^2];
            line = line.Trim();
            if (line.StartsWith('*')) line = line[1..].Trim();
            lines.Add(line);
        }
        while (lines.Count > 0 && lines[0].Length == 0) lines.RemoveAt(0);
        while (lines.Count > 0 && lines[^1].Length == 0) lines.RemoveAt(lines.Count - 1);
        return lines.Count == 0 ? null : string.Join("\n", lines);
    }
}
