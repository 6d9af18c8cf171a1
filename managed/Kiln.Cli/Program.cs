// kiln's entry point. `kiln --version` is answered before anything else is loaded (it must take
// well under 0.3 s); every other command goes through the generic host in CliApp.
namespace Kiln.Cli;

public static class Program
{
    public static int Main(string[] args) =>
        VersionCommand.IsRequested(args) ? VersionCommand.Print(args) : CliApp.Run(args);
}
