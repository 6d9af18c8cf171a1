// The knob catalog as libkiln declares it (kiln_knob_at): every kernel knob a test reads, with its
// range, default, allowed values and the backends whose kernels read it. Read once.
using Kiln.Native.Interop;

namespace Kiln.Native;

/// <param name="Name">The kiln_test_params field, the plan's params key and kiln bench's --NAME option.</param>
/// <param name="Default">What 0 (or leaving it out) means; null when the backend computes it from the device.</param>
/// <param name="Values">The only values allowed; empty when any in [Min, Max].</param>
public sealed record KnobInfo(string Test, string Name, string Description, long Min, long Max, long? Default,
    IReadOnlyList<long> Values, BackendBits Backends)
{
    public bool Allows(long value) => Values.Count > 0 ? Values.Contains(value) : value >= Min && value <= Max;

    /// <summary>"1, 2" or "1..1024", for messages and help.</summary>
    public string Range => Values.Count > 0 ? string.Join(", ", Values) : $"{Min}..{Max}";
}

public static class KnobCatalog
{
    private static readonly Lazy<IReadOnlyList<KnobInfo>> Loaded = new(Read);

    public static IReadOnlyList<KnobInfo> Entries => Loaded.Value;

    /// <summary>The knobs of one test, one per name (a knob declared per backend comes first as the cpu's, then the GPUs').</summary>
    public static IReadOnlyList<KnobInfo> For(string test) => Entries.Where(k => k.Test == test).ToList();

    private static unsafe IReadOnlyList<KnobInfo> Read()
    {
        KilnLibrary.EnsureLoaded();
        var entries = new List<KnobInfo>();
        var count = KilnNative.kiln_knob_count();
        for (var i = 0; i < count; i++)
        {
            kiln_knob_info k;
            KilnException.Check(KilnNative.kiln_knob_at(i, &k));
            var values = NativeText.FromStatic(k.values).Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
                .Select(v => long.Parse(v, System.Globalization.CultureInfo.InvariantCulture)).ToList();
            entries.Add(new KnobInfo(NativeText.FromStatic(k.test), NativeText.FromStatic(k.name), NativeText.FromStatic(k.description),
                k.min, k.max, k.default_value < 0 ? null : k.default_value, values, (BackendBits)k.backends));
        }
        return entries;
    }
}
