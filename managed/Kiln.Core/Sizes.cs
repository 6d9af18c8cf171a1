// Memory sizes as a user writes them ("64MiB", "1.5GiB", "4GB", "25%", "1073741824") and as kiln
// prints them ("23.1 GiB").
using System.Globalization;

namespace Kiln.Core;

/// <summary>
/// A test size: an exact byte count, a fraction of the device's available memory, or a byte
/// count capped at a fraction of available memory (the plans' defaults).
/// </summary>
public sealed record SizeSpec
{
    public ulong? Bytes { get; private init; }
    /// <summary>Fraction of available memory; with Bytes set, the cap applied to Bytes.</summary>
    public double? Fraction { get; private init; }

    public static SizeSpec Exact(ulong bytes) => new() { Bytes = bytes };
    public static SizeSpec OfAvailable(double fraction) => new() { Fraction = fraction };
    public static SizeSpec AtMost(ulong bytes, double fractionOfAvailable) =>
        new() { Bytes = bytes, Fraction = fractionOfAvailable };

    /// <summary>The size_bytes and size_fraction to hand the native test for a device.</summary>
    public (ulong SizeBytes, double SizeFraction) Resolve(ulong availableBytes) => (Bytes, Fraction) switch
    {
        ({ } bytes, { } cap) => (Math.Min(bytes, (ulong)(availableBytes * cap)), 0),
        ({ } bytes, null) => (bytes, 0),
        (null, { } fraction) => (0, fraction),
        _ => (0, 0),
    };

    public override string ToString() => (Bytes, Fraction) switch
    {
        ({ } bytes, { } cap) => $"{ByteSize.Format(bytes)} (at most {cap * 100:0.##}% of available)",
        ({ } bytes, null) => ByteSize.Format(bytes),
        (null, { } fraction) => $"{fraction * 100:0.##}% of available",
        _ => "default",
    };

    /// <summary>Parses "BYTES", "N%" or "N&lt;unit&gt;"; a mistake is a UsageException naming option.</summary>
    public static SizeSpec Parse(string text, string option)
    {
        var s = text.Trim();
        if (s.EndsWith('%'))
        {
            if (!double.TryParse(s[..^1], NumberStyles.Float, CultureInfo.InvariantCulture, out var percent)
                || !double.IsFinite(percent))
                throw new UsageException(option, $"cannot read '{text}' as a size (e.g. 512MiB, 4GiB, 25%)");
            if (percent <= 0 || percent > 100)
                throw new UsageException(option, $"{s} is not a percentage in (0, 100]");
            return OfAvailable(percent / 100.0);
        }
        return Exact(ByteSize.Parse(text, option));
    }
}

public static class ByteSize
{
    private static readonly (string Suffix, double Factor)[] Units =
    [
        ("kib", 1L << 10), ("mib", 1L << 20), ("gib", 1L << 30), ("tib", 1L << 40),
        ("kb", 1e3), ("mb", 1e6), ("gb", 1e9), ("tb", 1e12),
        ("k", 1L << 10), ("m", 1L << 20), ("g", 1L << 30), ("t", 1L << 40),
        ("b", 1),
    ];

    private static readonly string[] BinaryNames = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];

    /// <summary>"64MiB" -> 67108864. Units: B, KiB..TiB (and K..T), kB..TB (powers of 1000).</summary>
    public static ulong Parse(string text, string option)
    {
        var s = text.Trim().Replace(" ", "");
        var lower = s.ToLowerInvariant();
        double factor = 1;
        foreach (var (suffix, f) in Units)
        {
            if (lower.EndsWith(suffix, StringComparison.Ordinal))
            {
                (s, factor) = (s[..^suffix.Length], f);
                break;
            }
        }
        if (!double.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture, out var number)
            || !double.IsFinite(number))
            throw new UsageException(option, $"cannot read '{text}' as a size (e.g. 512MiB, 4GiB, 25%)");
        if (number <= 0)
            throw new UsageException(option, $"'{text}' is not a positive size");
        var bytes = number * factor;
        if (bytes >= ulong.MaxValue)
            throw new UsageException(option, $"'{text}' is too large");
        return (ulong)Math.Round(bytes);
    }

    /// <summary>67108864 -> "64 MiB"; 24.8e9 -> "23.1 GiB" (one decimal, dropped when zero).</summary>
    public static string Format(ulong bytes)
    {
        double value = bytes;
        var unit = 0;
        while (value >= 1024 && unit < BinaryNames.Length - 1)
        {
            value /= 1024;
            unit++;
        }
        var rounded = Math.Round(value, 1);
        return unit == 0
            ? $"{bytes} B"
            : rounded.ToString(rounded == Math.Floor(rounded) ? "0" : "0.0", CultureInfo.InvariantCulture) + " " + BinaryNames[unit];
    }
}
