// Finds and loads libkiln.so for the "kiln" LibraryImports (an ordered candidate list, every miss
// recorded) and refuses a library whose ABI version differs from the header the bindings came from.
using System.Reflection;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Kiln.Native.Interop;

namespace Kiln.Native;

public static class KilnLibrary
{
    internal const string FileName = "libkiln.so";
    internal const string DirectoryVariable = "KILN_LIB_DIR";

    internal sealed record Loaded(nint Handle, string Path, IReadOnlyList<string> Tried);

    private static readonly Lock Gate = new();
    private static Loaded? s_loaded;

    /// <summary>Loads the library now (normally the first native call does), so a failure surfaces here.</summary>
    /// <exception cref="KilnLoadException">No candidate loaded; the message lists each and why.</exception>
    public static void EnsureLoaded() => Load();

    /// <summary>kiln_version(): the native library's version text.</summary>
    public static unsafe string Version
    {
        get
        {
            EnsureLoaded();
            return NativeText.FromStatic(KilnNative.kiln_version());
        }
    }

    public static string LibraryPath => Load().Path;

    /// <summary>kiln_abi_version() of the loaded library (the loader refused any other than the bindings').</summary>
    public static uint AbiVersion
    {
        get
        {
            EnsureLoaded();
            return KilnNative.kiln_abi_version();
        }
    }

    // Registered when the module loads, so even a direct KilnNative call goes through the probe
    // and the ABI check instead of the runtime's default search (hence CA2255 does not apply).
#pragma warning disable CA2255
    [ModuleInitializer]
#pragma warning restore CA2255
    internal static void RegisterResolver() =>
        NativeLibrary.SetDllImportResolver(typeof(KilnLibrary).Assembly, Resolve);

    private static nint Resolve(string name, Assembly assembly, DllImportSearchPath? searchPath) =>
        name == KilnNative.Library ? Load().Handle : nint.Zero;

    private static Loaded Load()
    {
        if (Volatile.Read(ref s_loaded) is { } loaded) return loaded;
        lock (Gate)
        {
            // A failure is not cached: a later call may succeed once KILN_LIB_DIR is fixed.
            return s_loaded ??= Probe(DefaultCandidates());
        }
    }

    internal static IReadOnlyList<string> DefaultCandidates() =>
        Candidates(Environment.GetEnvironmentVariable(DirectoryVariable), AppContext.BaseDirectory);

    /// <summary>
    /// Where libkiln.so may be, in order: $KILN_LIB_DIR, the installed layout (bin/../lib), beside
    /// the application, then build/lib of every folder above the application (a repo checkout).
    /// </summary>
    internal static IReadOnlyList<string> Candidates(string? libDirectory, string baseDirectory)
    {
        var candidates = new List<string>();
        if (!string.IsNullOrEmpty(libDirectory)) candidates.Add(Path.GetFullPath(Path.Combine(libDirectory, FileName)));
        candidates.Add(Path.GetFullPath(Path.Combine(baseDirectory, "..", "lib", FileName)));
        candidates.Add(Path.GetFullPath(Path.Combine(baseDirectory, FileName)));
        for (var folder = new DirectoryInfo(baseDirectory); folder is not null; folder = folder.Parent)
            candidates.Add(Path.Combine(folder.FullName, "build", "lib", FileName));
        return candidates.Distinct().ToList();
    }

    /// <summary>Loads the first candidate that exists, loads and has the right ABI version.</summary>
    /// <exception cref="KilnLoadException">None did; Tried says why for each.</exception>
    internal static Loaded Probe(IReadOnlyList<string> candidates)
    {
        var tried = new List<string>();
        foreach (var path in candidates)
        {
            if (!File.Exists(path))
            {
                tried.Add($"{path}: not found");
                continue;
            }
            nint handle;
            try
            {
                handle = NativeLibrary.Load(path);
            }
            catch (Exception e) when (e is DllNotFoundException or BadImageFormatException)
            {
                tried.Add($"{path}: {LoaderReason(e.Message, path)}");
                continue;
            }
            if (AbiMismatch(handle) is { } mismatch)
            {
                NativeLibrary.Free(handle);
                tried.Add($"{path}: {mismatch}");
                continue;
            }
            tried.Add($"{path}: loaded");
            return new Loaded(handle, path, tried);
        }
        throw new KilnLoadException(tried);
    }

    // .NET wraps dlerror() ("<path>: invalid ELF header") in a paragraph of generic advice; the
    // last line is the loader's reason, and the path is already at the start of the entry.
    private static string LoaderReason(string message, string path)
    {
        string reason = message.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .LastOrDefault() ?? message;
        return reason.StartsWith(path + ": ", StringComparison.Ordinal) ? reason[(path.Length + 2)..] : reason;
    }

    // Called through the raw export: the LibraryImport would re-enter the resolver being answered.
    private static unsafe string? AbiMismatch(nint handle)
    {
        if (!NativeLibrary.TryGetExport(handle, nameof(KilnNative.kiln_abi_version), out nint export))
            return "no kiln_abi_version export; not a Kiln library";
        uint found = ((delegate* unmanaged<uint>)export)();
        uint wanted = (uint)kiln_constants.KILN_ABI_VERSION;
        return found == wanted ? null : $"ABI version {found}, these bindings need {wanted}";
    }
}
