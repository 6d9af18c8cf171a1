// Reading one small sysfs / procfs file: text, a number, or why not. Never throws for a missing,
// unreadable or garbage file; the caller turns the reason into a READ_ERROR finding.
using System.Globalization;

namespace Kiln.Core.Health.Sources;

public static class SysfsFile
{
    /// <summary>The file's text without the trailing newline; null and the reason when it cannot be read.</summary>
    public static string? Text(string path, out string why)
    {
        why = "";
        try
        {
            return File.ReadAllText(path).TrimEnd('\n', '\r', ' ', '\0');
        }
        catch (FileNotFoundException) { why = "no such file"; }
        catch (DirectoryNotFoundException) { why = "no such file"; }
        catch (UnauthorizedAccessException) { why = "permission denied"; }
        catch (IOException e) { why = e.Message; }
        return null;
    }

    /// <summary>The text, or "" when absent: for optional inventory attributes.</summary>
    public static string TextOrEmpty(string path) => Text(path, out _) ?? "";

    /// <summary>A whole number (decimal, or 0x hex); null and the reason ("'N/A (no PMA)' is not a number") otherwise.</summary>
    public static long? Number(string path, out string why)
    {
        var text = Text(path, out why);
        if (text is null) return null;
        if (ParseNumber(text) is { } value) return value;
        why = text.Length == 0 ? "empty file" : $"'{Shorten(text)}' is not a number";
        return null;
    }

    public static long? ParseNumber(string text)
    {
        var t = text.Trim();
        if (t.StartsWith("0x", StringComparison.OrdinalIgnoreCase))
            return long.TryParse(t.AsSpan(2), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out var hex) ? hex : null;
        return long.TryParse(t, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var n) ? n : null;
    }

    /// <summary>Subdirectories (symlinks to directories included), sorted by name; empty when the folder is absent.</summary>
    public static IReadOnlyList<string> Folders(string path)
    {
        try
        {
            return Directory.Exists(path) ? Directory.GetDirectories(path).Order(StringComparer.Ordinal).ToList() : [];
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return [];
        }
    }

    /// <summary>Garbage can be long or binary; a finding quotes at most 40 printable characters of it.</summary>
    public static string Shorten(string text)
    {
        var printable = new string(text.Select(c => char.IsControl(c) ? '?' : c).Take(41).ToArray());
        return printable.Length > 40 ? printable[..40] + "…" : printable;
    }
}
