// Where the command's own output goes, and whether it is a terminal (progress bar) or a pipe or
// file (plain log lines). An interface so tests can capture it.
namespace Kiln.Cli.Output;

public interface IConsoleOutput
{
    TextWriter Out { get; }
    TextWriter Error { get; }
    /// <summary>stdout is a terminal: draw a progress bar instead of log lines.</summary>
    bool IsTerminal { get; }
    /// <summary>Columns of the terminal (80 when unknown).</summary>
    int Width { get; }
}

public sealed class ConsoleOutput : IConsoleOutput
{
    public TextWriter Out => Console.Out;
    public TextWriter Error => Console.Error;
    public bool IsTerminal { get; } = !Console.IsOutputRedirected;

    public int Width
    {
        get
        {
            try { return Console.WindowWidth > 20 ? Console.WindowWidth : 80; }
            catch (IOException) { return 80; }
        }
    }
}
