// The stable keys of tests, stream operations and memtest patterns ("stream", "triad",
// "walking_ones"), as Kiln.Native derives them from the C names, and their parsing from options.
using Kiln.Native;

namespace Kiln.Core;

public static class Catalog
{
    /// <summary>Tests a backend may implement, by key.</summary>
    public static IReadOnlyDictionary<string, TestKind> Tests => NativeKeys.Tests;

    /// <summary>Stream operations by key; the value is the op_mask bit.</summary>
    public static IReadOnlyDictionary<string, uint> StreamOps => NativeKeys.StreamOps;

    /// <summary>Memtest patterns by key; bit (1 &lt;&lt; value) of pattern_mask selects one.</summary>
    public static IReadOnlyDictionary<string, int> Patterns => NativeKeys.Patterns;

    /// <summary>The tests that run between hosts (kiln net, docs/NETWORK.md), never on one device.</summary>
    public static bool IsNetwork(TestKind test) => test is TestKind.Tcp or TestKind.Rdma or TestKind.Allreduce;

    public static string Key(TestKind test) => Tests.First(kv => kv.Value == test).Key;

    public static TestKind ParseTest(string key, string option) =>
        Tests.TryGetValue(key.Trim().ToLowerInvariant(), out var test)
            ? test
            : throw new UsageException(option, $"unknown test '{key}' (known: {string.Join(", ", Tests.Keys)})");

    /// <summary>"copy,triad" -> op_mask bits; every name must be known.</summary>
    public static uint ParseOpMask(string list, string option) =>
        ParseList(list, option, "operation", StreamOps, op => op);

    /// <summary>"walking_ones,modulo_20" -> pattern_mask bits; every name must be known.</summary>
    public static uint ParsePatternMask(string list, string option) =>
        ParseList(list, option, "pattern", Patterns, p => 1u << p);

    /// <summary>Keys of the stream ops selected by op_mask (0 = all), in their kernel order.</summary>
    public static IEnumerable<string> OpsIn(uint opMask) =>
        StreamOps.Where(kv => opMask == 0 || (opMask & kv.Value) != 0).Select(kv => kv.Key);

    /// <summary>Keys of the patterns selected by pattern_mask (0 = all), in their run order.</summary>
    public static IEnumerable<string> PatternsIn(uint patternMask) =>
        Patterns.Where(kv => patternMask == 0 || (patternMask & (1u << kv.Value)) != 0).Select(kv => kv.Key);

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
}
