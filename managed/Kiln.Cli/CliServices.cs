// What the commands use from the host, handed to each command when the tree is made (after the host
// is built, before it starts): the console, the native session and the loggers. Commands get these
// as values; none of them reaches into the container.
using Kiln.Cli.Output;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Kiln.Cli;

public sealed record CliServices(IConsoleOutput Console, NativeSession Native, ILoggerFactory Logs)
{
    /// <summary>The composition root's one lookup: the host's singletons, resolved once.</summary>
    public static CliServices From(IServiceProvider host) => new(
        host.GetRequiredService<IConsoleOutput>(), host.GetRequiredService<NativeSession>(), host.GetRequiredService<ILoggerFactory>());
}
