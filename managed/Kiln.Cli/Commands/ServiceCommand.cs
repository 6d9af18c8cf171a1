// `kiln service [--config FILE] [--state-dir DIR]`: the node's resident health service, on its own
// generic host with UseSystemd (READY once configured and the history is open, STOPPING on SIGTERM,
// journal-formatted logs under systemd), a watchdog ping at half of WATCHDOG_USEC, the scheduler
// (NodeService) and, when configured, the local API. A bad configuration is one line naming the file,
// line and key, and exit 2 (the unit's RestartPreventExitStatus=2: no restart loop).
using System.CommandLine;
using Kiln.Core;
using Kiln.Core.Health;
using Kiln.Core.Plans;
using Kiln.Core.Runs;
using Kiln.Core.Service;
using Kiln.Native;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Hosting.Systemd;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Console;

namespace Kiln.Cli.Commands;

public static class ServiceCommand
{
    public const string Name = "service";

    private static readonly Option<string> ConfigOption = CommandTree.Text(OptionNames.Config, "FILE", $"Configuration file (default {ServiceOptions.DefaultConfigPath}; none: safe defaults)");
    private static readonly Option<string> StateDirOption = CommandTree.Text(OptionNames.StateDir, "DIR", $"History, lock and kiln.prom (default {ServiceOptions.DefaultStateDir})");

    public static Command Create()
    {
        var command = new Command(Name, "The node's health service (systemd): scheduled checks, idle-time burns, health history, kiln.prom, local API")
        {
            ConfigOption, StateDirOption,
        };
        // CliApp runs the service on its own host (Run below); this action is never reached.
        command.SetAction(_ => ExitCodes.Internal);
        return command;
    }

    public static int Run(ParseResult parse, bool verbose)
    {
        ServiceOptions options;
        try
        {
            options = ServiceOptions.Load(parse.GetValue(ConfigOption), parse.GetValue(StateDirOption));
            // Everything the schedules will need is checked now, not at 3 a.m.
            HealthPolicyResolver.Resolve(options.Check.Profile, options.SysfsRoot);
            if (options.Burn.Enabled) PlanLoader.Resolve(options.Burn.Plan);
            if (options.KernelLog is { } log && !File.Exists(log))
                throw new UsageException(options.Source, $"kernel_log: cannot read {log}: no such file");
        }
        catch (UsageException e)
        {
            Console.Error.WriteLine($"kiln: error: {e.Message}");
            return ExitCodes.Usage;
        }

        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
        builder.Logging.ClearProviders();
        builder.Logging.SetMinimumLevel(verbose ? LogLevel.Debug : LogLevel.Information);
        builder.Logging.AddSimpleConsole(o => { o.SingleLine = true; o.TimestampFormat = "HH:mm:ss "; });
        builder.Services.Configure<ConsoleLoggerOptions>(o => o.LogToStandardErrorThreshold = LogLevel.Trace);
        builder.Services.Configure<ConsoleLifetimeOptions>(o => o.SuppressStatusMessages = true);
        builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = TimeSpan.FromSeconds(20));
        // Under systemd: sd_notify READY/STOPPING and journal priorities on every log line. AddSystemd's
        // own test (socket activation, or systemd as the parent) misses a unit started through a
        // wrapper; systemd sets INVOCATION_ID for every unit it runs, so that counts too.
        if (SystemdHelpers.IsSystemdService() || Environment.GetEnvironmentVariable("INVOCATION_ID") is { Length: > 0 })
        {
            builder.Services.Configure<ConsoleLoggerOptions>(o => o.FormatterName = ConsoleFormatterNames.Systemd);
            builder.Services.AddSingleton<ISystemdNotifier, SystemdNotifier>();
            builder.Services.AddSingleton<IHostLifetime, SystemdLifetime>();
        }
        builder.Services.AddSingleton(options);
        builder.Services.AddSingleton<NativeSession>();
        builder.Services.AddSingleton(sp => new NodeService(options, sp.GetRequiredService<ILoggerFactory>().CreateLogger("kiln.service"),
            () => sp.GetRequiredService<NativeSession>().Registry, new NodeActivity(),
            () => new Output.LogLineObserver(Console.Out, Console.Error), HostName.Current)
        {
            Workers = Workers.Launch(),
        });
        builder.Services.AddHostedService<ServiceWorker>();
        builder.Services.AddHostedService<Watchdog>();
        if (options.Api.Enabled) builder.Services.AddHostedService<ApiServer>();
        using var host = builder.Build();
        try
        {
            host.Run();
        }
        catch (OperationCanceledException)
        {
            // SIGTERM while starting: a stop like any other.
            return ExitCodes.Passed;
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            Console.Error.WriteLine($"kiln: error: the service failed: {(verbose ? e.ToString() : e.Message)}");
            return ExitCodes.Internal;
        }
        return Environment.ExitCode;
    }
}

/// <summary>Runs the NodeService: its Start before the host reports READY, its loop until STOPPING.</summary>
public sealed class ServiceWorker(NodeService node, ServiceOptions options, IHostApplicationLifetime lifetime, ILogger<ServiceWorker> log) : BackgroundService
{
    public override Task StartAsync(CancellationToken cancellationToken)
    {
        foreach (var warning in options.Warnings) log.LogWarning("{Warning}", warning);
        node.Start();
        return base.StartAsync(cancellationToken);
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        // The first check runs at once, but after the host has started (READY, the API listening).
        await Task.Yield();
        try
        {
            await node.RunAsync(stoppingToken);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            log.LogCritical("the service loop failed: {Error}", e.ToString());
            Environment.ExitCode = ExitCodes.Internal;
            lifetime.StopApplication();
        }
    }

    public override void Dispose()
    {
        node.Dispose();
        base.Dispose();
    }
}

/// <summary>WATCHDOG=1 at half of WATCHDOG_USEC (for this process, when WATCHDOG_PID says so), while the scheduler is alive.</summary>
public sealed class Watchdog(IServiceProvider services, ILogger<Watchdog> log) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (services.GetService<ISystemdNotifier>() is not { IsEnabled: true } notifier) return;
        if (!long.TryParse(Environment.GetEnvironmentVariable("WATCHDOG_USEC"), out var usec) || usec <= 0) return;
        if (Environment.GetEnvironmentVariable("WATCHDOG_PID") is { Length: > 0 } pid && pid != Environment.ProcessId.ToString(System.Globalization.CultureInfo.InvariantCulture)) return;
        var every = TimeSpan.FromMicroseconds(usec / 2.0);
        log.LogDebug("watchdog: a ping every {Seconds} s", every.TotalSeconds);
        using var timer = new PeriodicTimer(every);
        do
        {
            notifier.Notify(new ServiceState("WATCHDOG=1"));
        }
        while (await Tick(timer, stoppingToken));
    }

    private static async Task<bool> Tick(PeriodicTimer timer, CancellationToken stop)
    {
        try
        {
            return await timer.WaitForNextTickAsync(stop);
        }
        catch (OperationCanceledException)
        {
            return false;
        }
    }
}
