// Fault injection as written on the command line: --inject TEST:key=value[,key=value], e.g.
// "memtest:flips=3,seed=7", "stream:slowdown=0.5" or "memtest:hang=1,device=2". It proves the
// detection path on real hardware. hang and crash go with every test, and device=N limits any
// injection to one device of the backend.
using System.Globalization;
using Kiln.Native;

namespace Kiln.Core;

public sealed record InjectionSpec(TestKind Test, int? Flips, int? Corrupt, ulong? Seed, double? Slowdown)
{
    /// <summary>hang=1: the test never returns after its first metric; crash=1: the process dies of SIGSEGV there.</summary>
    public bool Hang { get; init; }
    public bool Crash { get; init; }
    /// <summary>device=N: only that device (its index within the backend); null = every device.</summary>
    public int? Device { get; init; }

    // Keys every test takes.
    private static readonly string[] Common = ["hang", "crash", "device"];

    // Which knob of kiln_test_params each test reacts to; anything else is a usage error.
    private static readonly Dictionary<TestKind, string[]> KeysByTest = new()
    {
        [TestKind.Memtest] = ["flips", "seed"],
        [TestKind.Stream] = ["slowdown", "corrupt", "seed"],
        [TestKind.Gemm] = ["corrupt", "seed"],
        [TestKind.Power] = ["corrupt", "seed"],
        [TestKind.Copy] = ["corrupt", "seed"],
        [TestKind.Launch] = ["slowdown"],
    };

    /// <summary>Parses one "TEST:key=value[,key=value]".</summary>
    public static InjectionSpec Parse(string text)
    {
        var colon = text.IndexOf(':');
        if (colon <= 0 || colon == text.Length - 1)
            throw new UsageException(OptionNames.Inject, $"'{text}' is not TEST:key=value[,key=value] (e.g. memtest:flips=3,seed=7)");
        var test = Catalog.ParseTest(text[..colon], OptionNames.Inject);
        var testKey = Catalog.Key(test);
        string[] allowed = [.. KeysByTest.GetValueOrDefault(test, []), .. Common];

        var spec = new InjectionSpec(test, null, null, null, null);
        foreach (var pair in text[(colon + 1)..].Split(',', StringSplitOptions.TrimEntries))
        {
            var eq = pair.IndexOf('=');
            if (eq <= 0)
                throw new UsageException(OptionNames.Inject, $"'{pair}' in '{text}' is not key=value");
            var (key, value) = (pair[..eq].Trim().ToLowerInvariant(), pair[(eq + 1)..].Trim());
            if (!allowed.Contains(key))
                throw new UsageException(OptionNames.Inject, $"unknown key '{key}' for {testKey} (known: {string.Join(", ", allowed)})");
            var what = $"{testKey} {key}";
            spec = key switch
            {
                "flips" => spec with { Flips = Count(value, what) },
                "corrupt" => spec with { Corrupt = Count(value, what) },
                "seed" => spec with { Seed = ulong.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var seed)
                    ? seed : throw new UsageException(OptionNames.Inject, $"{what}: '{value}' is not a whole number >= 0") },
                "slowdown" => spec with { Slowdown = Fraction(value, what) },
                "hang" => spec with { Hang = Flag(value, what) },
                "crash" => spec with { Crash = Flag(value, what) },
                "device" => spec with { Device = Count(value, what) },
                _ => throw new InvalidOperationException($"key '{key}' allowed but not handled"),
            };
        }
        return spec;
    }

    /// <summary>Sets the injection fields of p for device (its index in the backend); only the keys this spec names.</summary>
    public void ApplyTo(TestParams p, int device)
    {
        if (Device is { } only && only != device) return;
        if (Hang) p.InjectHang = 1;
        if (Crash) p.InjectCrash = 1;
        if (Flips is { } flips) p.InjectFlips = flips;
        if (Corrupt is { } corrupt) p.InjectCorrupt = corrupt;
        if (Seed is { } seed) p.InjectSeed = seed;
        if (Slowdown is { } slowdown) p.InjectSlowdown = slowdown;
    }

    /// <summary>The canonical text, as summary.json records it.</summary>
    public override string ToString()
    {
        var keys = new List<string>();
        if (Flips is { } flips) keys.Add($"flips={flips}");
        if (Corrupt is { } corrupt) keys.Add($"corrupt={corrupt}");
        if (Seed is { } seed) keys.Add($"seed={seed}");
        if (Slowdown is { } slowdown) keys.Add(FormattableString.Invariant($"slowdown={slowdown}"));
        if (Hang) keys.Add("hang=1");
        if (Crash) keys.Add("crash=1");
        if (Device is { } device) keys.Add($"device={device}");
        return $"{Catalog.Key(Test)}:{string.Join(',', keys)}";
    }

    private static int Count(string value, string what)
    {
        if (!long.TryParse(value, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var n))
            throw new UsageException(OptionNames.Inject, $"{what}: '{value}' is not a whole number");
        if (n < 0) throw new UsageException(OptionNames.Inject, $"{what}: {n} is negative");
        if (n > int.MaxValue) throw new UsageException(OptionNames.Inject, $"{what}: {n} is too large");
        return (int)n;
    }

    private static bool Flag(string value, string what) => value switch
    {
        "1" => true,
        "0" => false,
        _ => throw new UsageException(OptionNames.Inject, $"{what}: '{value}' is not 0 or 1"),
    };

    private static double Fraction(string value, string what)
    {
        if (!double.TryParse(value, NumberStyles.Float, CultureInfo.InvariantCulture, out var x) || !double.IsFinite(x))
            throw new UsageException(OptionNames.Inject, $"{what}: '{value}' is not a number");
        if (x <= 0 || x > 1)
            throw new UsageException(OptionNames.Inject, $"{what}: {value} is not a fraction of full speed in (0, 1]");
        return x;
    }
}
