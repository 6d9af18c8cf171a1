// How a burn starts its device workers: this same program with `worker`, its emulated devices (if
// any) shared with the parent's telemetry through one emulation session.
using Kiln.Core.Runs;

namespace Kiln.Cli.Commands;

public static class Workers
{
    /// <summary>
    /// This executable (or `dotnet kiln.dll` when run through dotnet). KILN_WORKER_EXEC names another
    /// program to start instead, with the same arguments (a debugger or tracing wrapper, or a test's
    /// stand-in).
    /// </summary>
    public static WorkerLaunch Launch()
    {
        var environment = new Dictionary<string, string> { ["KILN_EMU_SESSION"] = Environment.GetEnvironmentVariable("KILN_EMU_SESSION") is { Length: > 0 } s ? s : Environment.ProcessId.ToString(System.Globalization.CultureInfo.InvariantCulture) };
        if (Environment.GetEnvironmentVariable("KILN_WORKER_EXEC") is { Length: > 0 } other)
            return new WorkerLaunch(other, []) { Environment = environment };
        var self = Environment.ProcessPath ?? throw new InvalidOperationException("cannot tell this program's path");
        var isDotnet = Path.GetFileNameWithoutExtension(self).Equals("dotnet", StringComparison.OrdinalIgnoreCase);
        return new WorkerLaunch(self, isDotnet ? [typeof(Workers).Assembly.Location] : []) { Environment = environment };
    }
}
