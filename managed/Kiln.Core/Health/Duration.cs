// Durations as a user writes them ("90s", "30m", "24h", "7d", "1h30m", "2w") for --since and the
// health policy's windows; a mistake is a UsageException naming the option.
using System.Globalization;
using System.Text.RegularExpressions;

namespace Kiln.Core.Health;

public static partial class Duration
{
    public static TimeSpan Parse(string text, string option)
    {
        var s = text.Trim().ToLowerInvariant();
        var parts = Part().Matches(s);
        if (s.Length == 0 || parts.Sum(m => m.Length) != s.Replace(" ", "").Length || parts.Count == 0)
            throw new UsageException(option, $"cannot read '{text}' as a duration (e.g. 90s, 30m, 24h, 7d, 1h30m)");
        var total = TimeSpan.Zero;
        foreach (Match m in parts)
        {
            var n = double.Parse(m.Groups["n"].ValueSpan, CultureInfo.InvariantCulture);
            total += m.Groups["unit"].Value switch
            {
                "ms" => TimeSpan.FromMilliseconds(n),
                "s" => TimeSpan.FromSeconds(n),
                "m" or "min" => TimeSpan.FromMinutes(n),
                "h" => TimeSpan.FromHours(n),
                "d" => TimeSpan.FromDays(n),
                _ => TimeSpan.FromDays(7 * n),
            };
        }
        if (total <= TimeSpan.Zero) throw new UsageException(option, $"'{text}' is not a positive duration");
        if (total > TimeSpan.FromDays(3650)) throw new UsageException(option, $"'{text}' is longer than ten years");
        return total;
    }

    [GeneratedRegex(@"(?<n>\d+(?:\.\d+)?)\s*(?<unit>ms|min|s|m|h|d|w)")]
    private static partial Regex Part();
}
