// The exit codes every kiln command shares (see ARCHITECTURE.md, "Results").
namespace Kiln.Core;

public static class ExitCodes
{
    public const int Passed = 0;        // healthy / passed
    public const int Failed = 1;        // unhealthy, failed, or incomplete (cancelled)
    public const int Usage = 2;         // usage or configuration error; nothing was run
    public const int Internal = 3;      // the tool itself could not run
}
