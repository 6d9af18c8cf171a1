// Parses the command line, builds the generic host (logging, DI, lifetime: Ctrl-C and SIGTERM
// cancel the command's token), runs the command and turns every failure into one line and an
// exit code: 2 for bad input, 3 when kiln itself cannot run. Never a stack trace unless --verbose.
using System.CommandLine;
using System.CommandLine.Help;
using Kiln.Core;
using Kiln.Native;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Console;

namespace Kiln.Cli;

public static class CliApp
{
    public static int Run(string[] args)
    {
        // The host is built (not started) first, so the commands get their services when they are made.
        var logLevel = new LogLevelSwitch();
        using var host = BuildHost(logLevel);
        var root = CommandTree.Build(CliServices.From(host.Services));
        var parse = root.Parse(args);
        if (parse.Errors.Count > 0) return Fail(ExitCodes.Usage, MostUseful(parse));
        if (parse.Action is HelpAction) return parse.Invoke();

        var verbose = parse.GetValue(CommandTree.Verbose);
        logLevel.Minimum = verbose ? LogLevel.Debug : LogLevel.Warning;
        // The service is a host of its own: configuration, systemd notify, scheduler, API.
        if (parse.CommandResult.Command.Name == Commands.ServiceCommand.Name) return Commands.ServiceCommand.Run(parse, verbose);
        try
        {
            host.Start();
            var stopping = host.Services.GetRequiredService<IHostApplicationLifetime>().ApplicationStopping;
            var invocation = new InvocationConfiguration
            {
                EnableDefaultExceptionHandler = false,   // our catch blocks below decide the exit code
                ProcessTerminationTimeout = null,        // the host's lifetime owns SIGINT/SIGTERM
            };
            return parse.InvokeAsync(invocation, stopping).GetAwaiter().GetResult();
        }
        catch (UsageException e)
        {
            return Fail(ExitCodes.Usage, e.Message);
        }
        catch (KilnLoadException e)
        {
            return Fail(ExitCodes.Internal, Describe(e, verbose));
        }
        catch (Kiln.Core.Runs.NodeBusyException e)
        {
            return Fail(ExitCodes.Internal, e.Message);
        }
        catch (Exception e)
        {
            return Fail(ExitCodes.Internal, verbose
                ? $"internal error: {e}"
                : $"internal error: {e.GetType().Name}: {FirstLine(e.Message)} (run with --verbose for details)");
        }
        finally
        {
            host.StopAsync().GetAwaiter().GetResult();
        }
    }

    // "kiln frobnicate" yields "Required command was not provided." before the error that names
    // the stray word; the one naming what the user typed is the one worth their one line.
    private static string MostUseful(ParseResult parse)
    {
        var stray = parse.UnmatchedTokens.FirstOrDefault();
        if (stray != null && parse.Errors.FirstOrDefault(e => e.Message.Contains($"'{stray}'")) is { } named)
            return named.Message;
        var command = parse.CommandResult.Command;
        if (command.Action == null && command.Subcommands.Count > 0)
            return $"{(command is RootCommand ? "" : command.Name + ": ")}a command is required ({string.Join(", ", command.Subcommands.Select(c => c.Name))})";
        return parse.Errors[0].Message;
    }

    private static string FirstLine(string text) => text.Split('\n', 2)[0].TrimEnd();

    /// <summary>One line naming the first place tried; with --verbose, every place and why.</summary>
    public static string Describe(KilnLoadException e, bool verbose) =>
        verbose || e.Tried.Count == 0
            ? e.Message
            : $"libkiln.so could not be loaded ({e.Tried[0]}, and {e.Tried.Count - 1} more places: --verbose lists them); " +
              "set KILN_LIB_DIR to the folder that holds it";

    private static int Fail(int exitCode, string message)
    {
        Console.Error.WriteLine($"kiln: error: {message}");
        return exitCode;
    }

    private static IHost BuildHost(LogLevelSwitch level)
    {
        // No appsettings scan or user secrets: kiln's configuration is its command line (and, later, plan files).
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
        builder.Logging.ClearProviders();
        // --verbose is known only once the command line is parsed, after the host is built.
        builder.Logging.SetMinimumLevel(LogLevel.Trace);
        builder.Logging.AddFilter((_, _, l) => l >= level.Minimum);
        // Diagnostics go to stderr so stdout stays the command's own output (tables, JSON, progress).
        builder.Logging.AddSimpleConsole(o => { o.SingleLine = true; o.TimestampFormat = "HH:mm:ss "; });
        builder.Services.Configure<ConsoleLoggerOptions>(o => o.LogToStandardErrorThreshold = LogLevel.Trace);
        builder.Services.Configure<ConsoleLifetimeOptions>(o => o.SuppressStatusMessages = true);
        builder.Services.AddSingleton<NativeSession>();
        builder.Services.AddSingleton<Output.IConsoleOutput, Output.ConsoleOutput>();
        return builder.Build();
    }
}

/// <summary>The lowest level logged; set from --verbose once the command line is parsed.</summary>
public sealed class LogLevelSwitch
{
    public LogLevel Minimum { get; set; } = LogLevel.Warning;
}
