// Reads the text of the shared options into Kiln.Core values; a bad value is a UsageException
// naming the option.
using System.CommandLine;
using System.Globalization;
using Kiln.Core;

namespace Kiln.Cli.Commands;

public static class Values
{
    /// <summary>A whole number &gt;= min, or null when the option was not given.</summary>
    public static int? Count(ParseResult parse, Option<string> option, int min)
    {
        if (parse.GetValue(option) is not { } text) return null;
        if (!long.TryParse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var n))
            throw new UsageException(option.Name, $"'{text}' is not a whole number");
        if (n < min)
            throw new UsageException(option.Name, n < 0 ? $"{n} is negative" : $"{n} is less than {min}");
        if (n > int.MaxValue)
            throw new UsageException(option.Name, $"{n} is too large");
        return (int)n;
    }

    public static ulong? Seed(ParseResult parse, Option<string> option) =>
        parse.GetValue(option) is not { } text ? null
        : ulong.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var seed) ? seed
        : throw new UsageException(option.Name, $"'{text}' is not a whole number >= 0");

    public static SizeSpec? Size(ParseResult parse, Option<string> option) =>
        parse.GetValue(option) is { } text ? SizeSpec.Parse(text, option.Name) : null;

    public static IReadOnlyList<InjectionSpec> Injections(ParseResult parse, Option<string[]> option) =>
        (parse.GetValue(option) ?? []).Select(InjectionSpec.Parse).ToList();
}
