// The stable names of tests, patterns and statuses (the keys in CSV), as the library spells them.
using System.Collections.Concurrent;
using Kiln.Native.Interop;

namespace Kiln.Native;

public static unsafe class Names
{
    // The names are static in the library; looked up once each, since writers ask per row.
    private static readonly ConcurrentDictionary<TestKind, string> s_tests = new();
    private static readonly ConcurrentDictionary<int, string> s_patterns = new();
    private static readonly ConcurrentDictionary<KilnStatus, string> s_statuses = new();

    /// <summary>"stream", "memtest" ...; "unknown" out of range.</summary>
    public static string Test(TestKind test) =>
        s_tests.GetOrAdd(test, static t => Fetch(&KilnNative.kiln_test_name, (int)t));

    /// <summary>"walking_ones" ... by pattern index; "unknown" out of range.</summary>
    public static string Pattern(int pattern) =>
        s_patterns.GetOrAdd(pattern, static p => Fetch(&KilnNative.kiln_pattern_name, (int)p));

    /// <summary>"KILN_OK" ... as the library names its statuses.</summary>
    public static string Status(KilnStatus status) =>
        s_statuses.GetOrAdd(status, static s => Fetch(&KilnNative.kiln_status_name, (int)s));

    private static string Fetch(delegate*<int, byte*> name, int value)
    {
        KilnLibrary.EnsureLoaded();
        return NativeText.FromStatic(name(value));
    }
}
