// GPU launch knobs as written on the command line: --param block=256,grid=1024,vec=4,unroll=8.
// 0 (or absent) leaves the backend's default.
using System.Globalization;
using Kiln.Native;

namespace Kiln.Core;

public sealed record KernelParams(int Block = 0, int Grid = 0, int Vec = 0, int Unroll = 0)
{
    private static readonly string[] Keys = ["block", "grid", "vec", "unroll"];

    public static KernelParams Parse(string text)
    {
        var result = new KernelParams();
        foreach (var pair in text.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
        {
            var eq = pair.IndexOf('=');
            if (eq <= 0)
                throw new UsageException(OptionNames.Param, $"'{pair}' is not key=value (keys: {string.Join(", ", Keys)})");
            var (key, value) = (pair[..eq].Trim().ToLowerInvariant(), pair[(eq + 1)..].Trim());
            if (!Keys.Contains(key))
                throw new UsageException(OptionNames.Param, $"unknown key '{key}' (known: {string.Join(", ", Keys)})");
            if (!int.TryParse(value, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var n))
                throw new UsageException(OptionNames.Param, $"{key}: '{value}' is not a whole number");
            if (n < 0)
                throw new UsageException(OptionNames.Param, $"{key}: {n} is negative");
            result = key switch
            {
                "block" => result with { Block = n },
                "grid" => result with { Grid = n },
                "vec" => result with { Vec = n },
                _ => result with { Unroll = n },
            };
        }
        return result;
    }

    public void ApplyTo(TestParams p)
    {
        if (Block > 0) p.Block = Block;
        if (Grid > 0) p.Grid = Grid;
        if (Vec > 0) p.Vec = Vec;
        if (Unroll > 0) p.Unroll = Unroll;
    }
}
