// Extracts prometheus' ttar text archives (the real sysfs fixture trees) into a folder, per the
// format in tests/fixtures/health/real/PROVENANCE.md: "Directory:", "Path:" + "SymlinkTo:" or
// "Lines: N" + N raw lines + "Mode:"; "EOF" marks a last line without newline; NULLBYTE is a NUL.
using System.Globalization;
using System.Text;

namespace Kiln.Tests.Health;

public static class Ttar
{
    // Latin-1 maps every byte to one char and back, so binary content (PCI config space) survives.
    private static readonly Encoding Bytes = Encoding.Latin1;

    /// <summary>Extracts <paramref name="archive"/> under <paramref name="destination"/>; returns the paths written.</summary>
    public static IReadOnlyList<string> Extract(string archive, string destination)
    {
        var lines = Bytes.GetString(File.ReadAllBytes(archive)).Split('\n');
        var written = new List<string>();
        for (var i = 0; i < lines.Length; i++)
        {
            var line = lines[i];
            if (line.StartsWith("Directory: ", StringComparison.Ordinal))
            {
                Directory.CreateDirectory(Target(destination, line["Directory: ".Length..]));
                continue;
            }
            if (!line.StartsWith("Path: ", StringComparison.Ordinal)) continue;  // "# " separators and comments, "Mode:"
            var path = Target(destination, line["Path: ".Length..]);
            Directory.CreateDirectory(Path.GetDirectoryName(path)!);
            var next = lines[++i];
            if (next.StartsWith("SymlinkTo: ", StringComparison.Ordinal))
            {
                if (!Path.Exists(path) && new FileInfo(path).LinkTarget is null) File.CreateSymbolicLink(path, next["SymlinkTo: ".Length..]);
                written.Add(path);
                continue;
            }
            if (!next.StartsWith("Lines: ", StringComparison.Ordinal))
                throw new InvalidDataException($"{archive} line {i + 1}: expected 'Lines:' or 'SymlinkTo:' after {line}");
            var count = int.Parse(next["Lines: ".Length..], CultureInfo.InvariantCulture);
            var content = new StringBuilder();
            for (var n = 0; n < count; n++)
            {
                var text = lines[++i];
                var last = n == count - 1;
                var noNewline = last && text.EndsWith("EOF", StringComparison.Ordinal) && !text.EndsWith("\\EOF", StringComparison.Ordinal);
                if (noNewline) text = text[..^3];
                content.Append(Unescape(text));
                if (!noNewline) content.Append('\n');
            }
            File.WriteAllBytes(path, Bytes.GetBytes(content.ToString()));
            written.Add(path);
        }
        return written;
    }

    // NULLBYTE -> NUL; \NULLBYTE and \EOF -> the literal words.
    private static string Unescape(string text)
    {
        var result = new StringBuilder(text.Length);
        for (var i = 0; i < text.Length;)
        {
            if (text[i] == '\\' && Starts(text, i + 1, "NULLBYTE")) { result.Append("NULLBYTE"); i += 9; }
            else if (text[i] == '\\' && Starts(text, i + 1, "EOF")) { result.Append("EOF"); i += 4; }
            else if (Starts(text, i, "NULLBYTE")) { result.Append('\0'); i += 8; }
            else result.Append(text[i++]);
        }
        return result.ToString();
    }

    private static bool Starts(string text, int at, string word) => string.CompareOrdinal(text, at, word, 0, word.Length) == 0;

    private static string Target(string destination, string relative)
    {
        var full = Path.GetFullPath(Path.Combine(destination, relative));
        if (!full.StartsWith(Path.GetFullPath(destination), StringComparison.Ordinal))
            throw new InvalidDataException($"{relative} escapes the destination");
        return full;
    }
}
