// The kernel knobs a test runs with: a plan's `params:` or kiln bench's --block, --grid ... options,
// each checked against the knob catalog libkiln declares (KnobCatalog: name, range, allowed values,
// backends). 0 (or absent) leaves the backend's default.
using Kiln.Native;

namespace Kiln.Core;

public sealed record KernelParams
{
    private readonly SortedDictionary<string, long> _values = new(StringComparer.Ordinal);

    /// <summary>The knobs set, by name ("block" -> 256).</summary>
    public IReadOnlyDictionary<string, long> Values => _values;

    public long? this[string name] => _values.TryGetValue(name, out var v) ? v : null;

    /// <summary>
    /// This set with one more knob of <paramref name="test"/>; the problem (for "FIELD: problem") when the
    /// test has no such knob or the value is outside what the catalog allows.
    /// </summary>
    public KernelParams With(string test, string name, long value)
    {
        if (Problem(test, name, value) is { } problem) throw new UsageException(OptionNames.Knob(name), problem);
        var next = new KernelParams();
        foreach (var (k, v) in _values) next._values[k] = v;
        next._values[name] = value;
        return next;
    }

    /// <summary>Why <paramref name="value"/> is not a value of knob <paramref name="name"/> of <paramref name="test"/>; null when it is.</summary>
    public static string? Problem(string test, string name, long value)
    {
        var knobs = KnobCatalog.For(test);
        var declared = knobs.Where(k => k.Name == name).ToList();
        if (declared.Count == 0)
            return $"{test} has no knob '{name}' ({test}'s knobs: {(knobs.Count == 0 ? "none" : string.Join(", ", knobs.Select(k => k.Name).Distinct()))})";
        if (value == 0) return null;  // the backend's default
        if (value < 0) return $"{value} is negative";
        if (declared.Any(k => k.Allows(value))) return null;
        var allowed = declared.GroupBy(k => (k.Values.Count > 0 ? "one of " : "in ") + k.Range)
            .Select(g => $"{g.Key} ({Backends(g.Aggregate((BackendBits)0, (bits, k) => bits | k.Backends))})");
        return $"{value} is not {string.Join(" or ", allowed)}";
    }

    /// <summary>"cpu", "cuda, hip, emu" ...</summary>
    public static string Backends(BackendBits bits) =>
        string.Join(", ", new[] { (BackendBits.Cpu, "cpu"), (BackendBits.Cuda, "cuda"), (BackendBits.Hip, "hip"), (BackendBits.Emu, "emu") }
            .Where(b => bits.HasFlag(b.Item1)).Select(b => b.Item2));

    public void ApplyTo(TestParams p)
    {
        foreach (var (name, value) in _values)
        {
            if (value == 0) continue;
            var v = checked((int)value);
            switch (name)
            {
                case "block": p.Block = v; break;
                case "grid": p.Grid = v; break;
                case "vec": p.Vec = v; break;
                case "unroll": p.Unroll = v; break;
                case "matrix_n": p.MatrixN = v; break;
                default: throw new InvalidOperationException($"knob '{name}' has no kiln_test_params field here: add it to KernelParams.ApplyTo");
            }
        }
    }

    public bool Equals(KernelParams? other) => other is not null && _values.SequenceEqual(other._values);

    public override int GetHashCode() => _values.Count;
}
