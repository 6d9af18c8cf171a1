// `kiln --version`: "kiln 0.1.0 (native 0.1.0, abi 1)". Touches only Kiln.Core's version and the
// native library's, no host, no command-line parser, no plotting.
using Kiln.Core;
using Kiln.Native;

namespace Kiln.Cli;

public static class VersionCommand
{
    /// <summary>True for `kiln --version` (options only, no command word), e.g. `kiln --verbose --version`.</summary>
    public static bool IsRequested(string[] args) =>
        args.Contains("--version") && args.All(a => a.StartsWith('-'));

    public static int Print(string[] args)
    {
        try
        {
            KilnLibrary.EnsureLoaded();
            Console.Out.WriteLine($"kiln {KilnVersion.Text} (native {KilnLibrary.Version}, abi {KilnLibrary.AbiVersion})");
            return ExitCodes.Passed;
        }
        catch (KilnLoadException e)
        {
            Console.Out.WriteLine($"kiln {KilnVersion.Text} (native library not loaded)");
            Console.Error.WriteLine($"kiln: error: {CliApp.Describe(e, verbose: args.Contains("--verbose"))}");
            return ExitCodes.Internal;
        }
    }
}
