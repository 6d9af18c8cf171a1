// The stable keys of tests, stream operations and memtest patterns ("stream", "triad",
// "walking_ones"), derived from the generated C enums so no second list of names can drift.
using Kiln.Native.Interop;

namespace Kiln.Core;

public static class Catalog
{
    /// <summary>Tests a backend may implement, by key (KILN_TEST_COUNT excluded).</summary>
    public static IReadOnlyDictionary<string, kiln_test_kind> Tests { get; } =
        KeysOf<kiln_test_kind>("KILN_TEST_", v => v != kiln_test_kind.KILN_TEST_COUNT);

    /// <summary>Stream operations by key; the value is the op_mask bit.</summary>
    public static IReadOnlyDictionary<string, kiln_stream_op> StreamOps { get; } =
        KeysOf<kiln_stream_op>("KILN_STREAM_", v => v != kiln_stream_op.KILN_STREAM_ALL);

    /// <summary>Memtest patterns by key; bit (1 &lt;&lt; value) of pattern_mask selects one.</summary>
    public static IReadOnlyDictionary<string, kiln_memtest_pattern> Patterns { get; } =
        KeysOf<kiln_memtest_pattern>("KILN_PATTERN_", v => v != kiln_memtest_pattern.KILN_PATTERN_COUNT);

    public static string Key(kiln_test_kind test) => Tests.First(kv => kv.Value == test).Key;

    public static string Key(kiln_stream_op op) => StreamOps.First(kv => kv.Value == op).Key;

    public static string Key(kiln_memtest_pattern pattern) => Patterns.First(kv => kv.Value == pattern).Key;

    public static kiln_test_kind ParseTest(string key, string option) =>
        Tests.TryGetValue(key.Trim().ToLowerInvariant(), out var test)
            ? test
            : throw new UsageException(option, $"unknown test '{key}' (known: {string.Join(", ", Tests.Keys)})");

    /// <summary>"copy,triad" -> op_mask bits; every name must be known.</summary>
    public static uint ParseOpMask(string list, string option) =>
        ParseList(list, option, "operation", StreamOps, op => (uint)op);

    /// <summary>"walking_ones,modulo_20" -> pattern_mask bits; every name must be known.</summary>
    public static uint ParsePatternMask(string list, string option) =>
        ParseList(list, option, "pattern", Patterns, p => 1u << (int)p);

    /// <summary>Keys of the stream ops selected by op_mask (0 = all), in their kernel order.</summary>
    public static IEnumerable<string> OpsIn(uint opMask) =>
        StreamOps.Where(kv => opMask == 0 || (opMask & (uint)kv.Value) != 0).Select(kv => kv.Key);

    /// <summary>Keys of the patterns selected by pattern_mask (0 = all), in their run order.</summary>
    public static IEnumerable<string> PatternsIn(uint patternMask) =>
        Patterns.Where(kv => patternMask == 0 || (patternMask & (1u << (int)kv.Value)) != 0).Select(kv => kv.Key);

    private static uint ParseList<T>(string list, string option, string what,
        IReadOnlyDictionary<string, T> known, Func<T, uint> bit)
    {
        uint mask = 0;
        var names = list.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
        if (names.Length == 0) throw new UsageException(option, $"no {what} given");
        foreach (var name in names)
        {
            if (!known.TryGetValue(name.ToLowerInvariant(), out var value))
                throw new UsageException(option, $"unknown {what} '{name}' (known: {string.Join(", ", known.Keys)})");
            mask |= bit(value);
        }
        return mask;
    }

    // KILN_PATTERN_WALKING_ONES -> "walking_ones": the C names are the single source of the keys.
    private static IReadOnlyDictionary<string, T> KeysOf<T>(string prefix, Func<T, bool> keep) where T : struct, Enum
    {
        var keys = new Dictionary<string, T>();
        foreach (var value in Enum.GetValues<T>().Where(keep).OrderBy(v => Convert.ToInt64(v)))
        {
            var name = Enum.GetName(value)!;
            keys[name[prefix.Length..].ToLowerInvariant()] = value;
        }
        return keys;
    }
}
