// One kernel-log line -> its wall-clock time (when it can be placed) and its message, for every
// format an operator hands kiln: /dev/kmsg records, dmesg "[ 1234.5]" (needs the boot time), dmesg
// --ctime, dmesg --time-format iso (with or without --decode's "kern  :warn  : "), journalctl -k
// short-iso, and syslog ("Aug 17 06:18:01 host prog: ..."). A line that starts like a timestamp but
// is cut, or holds binary garbage, is an error the caller reports; it never throws.
using System.Globalization;
using System.Text.RegularExpressions;

namespace Kiln.Core.Health.KernelLog;

public sealed record KernelLogLine(int Number, DateTimeOffset? Time, string Message);

public sealed partial class KernelLogParser(DateTimeOffset? bootTime, DateTimeOffset now, TimeZoneInfo localZone)
{
    private static readonly string[] Months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

    /// <summary>The wall-clock time of boot, which relative dmesg and /dev/kmsg times count from; null = unknown.</summary>
    public DateTimeOffset? BootTime { get; } = bootTime;

    /// <summary>Whether some line had a relative time that could not be placed (no boot time).</summary>
    public bool SawUnplacedRelativeTimes { get; private set; }

    /// <summary>
    /// The line, or null when it carries nothing (blank, a /dev/kmsg continuation "KEY=value").
    /// <paramref name="error"/> says what is wrong with a malformed line (and null is returned).
    /// </summary>
    public KernelLogLine? Parse(int number, string raw, out string? error)
    {
        error = null;
        var line = raw.TrimEnd('\r');
        if (line.Length == 0 || line.Trim().Length == 0) return null;
        if (line.Any(c => (char.IsControl(c) && c != '\t') || c == '\uFFFD'))
        {
            error = "binary garbage (control characters)";
            return null;
        }
        if (line[0] == ' ') return null;  // /dev/kmsg dictionary continuation (" SUBSYSTEM=pci")
        if (KmsgRecord().Match(line) is { Success: true } k)
        {
            var usec = long.Parse(k.Groups["usec"].ValueSpan, CultureInfo.InvariantCulture);
            return Relative(number, usec / 1e6, k.Groups["msg"].Value);
        }
        if (DecodePrefix().Match(line) is { Success: true } d) line = d.Groups["rest"].Value;
        return ParseTimestamped(number, line, out error);
    }

    private KernelLogLine? ParseTimestamped(int number, string line, out string? error)
    {
        error = null;
        if (line.StartsWith('['))
        {
            if (Relative().Match(line) is { Success: true } r)
                return Relative(number, double.Parse(r.Groups["sec"].ValueSpan, CultureInfo.InvariantCulture), r.Groups["msg"].Value);
            if (Ctime().Match(line) is { Success: true } c)
            {
                var text = $"{c.Groups["day"].Value} {c.Groups["mon"].Value} {c.Groups["year"].Value} {c.Groups["time"].Value}";
                if (DateTime.TryParseExact(text, "d MMM yyyy HH:mm:ss", CultureInfo.InvariantCulture, DateTimeStyles.None, out var local))
                    return new KernelLogLine(number, Local(local), c.Groups["msg"].Value);
            }
            error = "truncated or malformed timestamp";
            return null;
        }
        if (char.IsAsciiDigit(line[0]) && line.Length >= 4 && line[..4].All(char.IsAsciiDigit) && IsoStart().IsMatch(line))
        {
            if (Iso().Match(line) is { Success: true } i && IsoTime(i) is { } time)
                return new KernelLogLine(number, time, i.Groups["msg"].Value);
            error = "truncated or malformed timestamp";
            return null;
        }
        if (KmsgStart().IsMatch(line))
        {
            error = "truncated /dev/kmsg record";
            return null;
        }
        if (Syslog().Match(line) is { Success: true } s)
        {
            var month = Array.IndexOf(Months, s.Groups["mon"].Value) + 1;
            var day = int.Parse(s.Groups["day"].ValueSpan, CultureInfo.InvariantCulture);
            if (TimeSpan.TryParseExact(s.Groups["time"].Value, @"hh\:mm\:ss", CultureInfo.InvariantCulture, out var tod)
                && day <= DateTime.DaysInMonth(now.Year, month))
            {
                // syslog omits the year: the most recent such date that is not in the future.
                var time = Local(new DateTime(now.Year, month, day).Add(tod));
                if (time > now.AddDays(1)) time = Local(new DateTime(now.Year - 1, month, Math.Min(day, DateTime.DaysInMonth(now.Year - 1, month))).Add(tod));
                return new KernelLogLine(number, time, s.Groups["msg"].Value);
            }
            error = "malformed syslog timestamp";
            return null;
        }
        return new KernelLogLine(number, null, line);  // no timestamp (dmesg -t): placed by its neighbours
    }

    private KernelLogLine Relative(int number, double secondsSinceBoot, string message)
    {
        if (BootTime is { } boot) return new KernelLogLine(number, boot.AddSeconds(secondsSinceBoot), message);
        SawUnplacedRelativeTimes = true;
        return new KernelLogLine(number, null, message);
    }

    private DateTimeOffset Local(DateTime unspecified) => new(unspecified, localZone.GetUtcOffset(unspecified));

    private DateTimeOffset? IsoTime(Match m)
    {
        if (!DateTime.TryParseExact(m.Groups["ts"].Value.Replace(' ', 'T'), "yyyy-MM-dd'T'HH:mm:ss", CultureInfo.InvariantCulture,
                DateTimeStyles.None, out var at))
            return null;
        if (m.Groups["frac"].Success)
            at = at.AddTicks((long)(double.Parse("0." + m.Groups["frac"].Value, CultureInfo.InvariantCulture) * TimeSpan.TicksPerSecond));
        if (!m.Groups["tz"].Success) return Local(at);
        var tz = m.Groups["tz"].Value;
        if (tz == "Z") return new DateTimeOffset(at, TimeSpan.Zero);
        var sign = tz[0] == '-' ? -1 : 1;
        var digits = tz[1..].Replace(":", "");
        var offset = new TimeSpan(int.Parse(digits[..2], CultureInfo.InvariantCulture), int.Parse(digits[2..], CultureInfo.InvariantCulture), 0);
        return new DateTimeOffset(at, sign * offset);
    }

    // "6,1234,5678901,-;message" (priority, sequence, microseconds since boot, flags).
    [GeneratedRegex(@"^(?<pri>\d+),(?<seq>\d+),(?<usec>\d+),[^;]*;(?<msg>.*)$")]
    private static partial Regex KmsgRecord();

    [GeneratedRegex(@"^\d+,\d+,\d+")]
    private static partial Regex KmsgStart();

    // dmesg --decode: "kern  :warn  : rest"
    [GeneratedRegex(@"^(?<fac>[a-z0-9]+)\s*:(?<lvl>[a-z]+)\s*:\s(?<rest>.*)$")]
    private static partial Regex DecodePrefix();

    [GeneratedRegex(@"^\[\s*(?<sec>\d+\.\d+)\]\s?(?<msg>.*)$")]
    private static partial Regex Relative();

    // dmesg --ctime: "[Sun Feb 23 16:24:18 2025] msg"
    [GeneratedRegex(@"^\[(?<dow>[A-Z][a-z]{2}) (?<mon>[A-Z][a-z]{2}) +(?<day>\d{1,2}) (?<time>\d\d:\d\d:\d\d) (?<year>\d{4})\]\s?(?<msg>.*)$")]
    private static partial Regex Ctime();

    [GeneratedRegex(@"^\d{4}-\d\d-\d\d")]
    private static partial Regex IsoStart();

    // dmesg iso "2024-11-15T12:02:03,470068+00:00 msg"; journalctl short-iso "2025-01-21T02:21:33+0000 host kernel: msg"
    [GeneratedRegex(@"^(?<ts>\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d)(?:[,.](?<frac>\d{1,9}))?(?<tz>Z|[+-]\d\d:?\d\d)?\s(?<msg>.*)$")]
    private static partial Regex Iso();

    [GeneratedRegex(@"^(?<mon>Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) +(?<day>\d{1,2}) (?<time>\d\d:\d\d:\d\d) (?<msg>.*)$")]
    private static partial Regex Syslog();
}
