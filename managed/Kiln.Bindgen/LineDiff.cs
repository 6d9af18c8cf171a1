// A short line diff for --check, so a CI failure shows what drifted without another tool.
namespace Kiln.Bindgen;

internal static class LineDiff
{
    /// <summary>"-"/"+" lines (with 1-based line numbers of the old/new text), at most <paramref name="maxLines"/>.</summary>
    public static IReadOnlyList<string> Summarize(string oldText, string newText, int maxLines)
    {
        string[] a = oldText.Split('\n'), b = newText.Split('\n');
        // Longest common subsequence table from the end; both files are a few hundred lines.
        var lcs = new int[a.Length + 1, b.Length + 1];
        for (int i = a.Length - 1; i >= 0; i--)
            for (int j = b.Length - 1; j >= 0; j--)
                lcs[i, j] = a[i] == b[j] ? lcs[i + 1, j + 1] + 1 : Math.Max(lcs[i + 1, j], lcs[i, j + 1]);

        var lines = new List<string>();
        int removed = 0, added = 0, x = 0, y = 0;
        while (x < a.Length || y < b.Length)
        {
            if (x < a.Length && y < b.Length && a[x] == b[y]) { x++; y++; }
            else if (x < a.Length && (y == b.Length || lcs[x + 1, y] >= lcs[x, y + 1]))
            {
                if (lines.Count < maxLines) lines.Add($"-{x + 1,5}: {a[x]}");
                removed++; x++;
            }
            else
            {
                if (lines.Count < maxLines) lines.Add($"+{y + 1,5}: {b[y]}");
                added++; y++;
            }
        }
        lines.Insert(0, $"{removed} line(s) removed, {added} added");
        if (removed + added > maxLines) lines.Add($"... {removed + added - maxLines} more");
        return lines;
    }
}
