// The command-line option names, in one place: the CLI declares its options with them, and Core
// names them in usage errors (a native validation error about size_bytes is a --size error).
namespace Kiln.Core;

public static class OptionNames
{
    public const string Plan = "--plan";
    public const string Duration = "--duration";
    public const string Backend = "--backend";
    public const string Device = "--device";
    public const string Out = "--out";
    public const string Size = "--size";
    public const string Threads = "--threads";
    public const string Iterations = "--iterations";
    public const string Ops = "--ops";
    public const string Pattern = "--pattern";
    public const string Seed = "--seed";
    public const string Inject = "--inject";
    public const string Format = "--format";
    public const string Verbose = "--verbose";
    public const string Profile = "--profile";
    public const string SysfsRoot = "--sysfs-root";
    public const string Kmsg = "--kmsg";
    public const string Since = "--since";
    public const string Config = "--config";
    public const string StateDir = "--state-dir";
    public const string Clear = "--clear";
    public const string Reason = "--reason";

    // kiln_test_params field -> the option that sets it.
    private static readonly (string Field, string Option)[] ByParamsField =
    [
        ("size_bytes", Size), ("size_fraction", Size), ("size", Size), ("threads", Threads),
        ("iterations", Iterations), ("op_mask", Ops), ("pattern_mask", Pattern), ("seed", Seed),
        ("inject", Inject),
    ];

    /// <summary>kiln bench's option for a knob of the knob catalog: --block, --matrix-n.</summary>
    public static string Knob(string name) => "--" + name.Replace('_', '-');

    /// <summary>The option behind a native error text that starts with (or names) a kiln_test_params field.</summary>
    public static string? ForNativeText(string text)
    {
        // A knob's error ("block: ...", "matrix_n: ..."): its own option.
        var colon = text.IndexOf(':');
        if (colon > 0 && Kiln.Native.KnobCatalog.Entries.Any(k => k.Name == text[..colon])) return Knob(text[..colon]);
        foreach (var (field, option) in ByParamsField)
        {
            if (text.StartsWith(field, StringComparison.Ordinal)) return option;
        }
        foreach (var (field, option) in ByParamsField)
        {
            if (text.Contains(field, StringComparison.Ordinal)) return option;
        }
        return null;
    }
}
