// `kiln burn --plan quick|standard|soak|FILE --profile NAME|FILE|auto [--duration 24h] ...`: every test
// of the plan on every selected device, results streamed into OUT/, a verdict per (test, device)
// against the profile's thresholds, the node verdict as the exit code.
using System.CommandLine;
using Kiln.Cli.Output;
using Kiln.Core;
using Kiln.Core.Health;
using Kiln.Core.Plans;
using Kiln.Core.Profiles;
using Kiln.Core.Results;
using Kiln.Core.Runs;
using Kiln.Native;
using Microsoft.Extensions.Logging;

namespace Kiln.Cli.Commands;

public static class BurnCommand
{
    public static Command Create(CliServices services)
    {
        var plan = CommandTree.Text(OptionNames.Plan, "NAME|FILE", $"Plan to run: {string.Join(", ", PlanLoader.BuiltInNames)} or a YAML file (default {PlanLoader.DefaultName}; kiln plan show NAME)");
        var profile = CommandTree.Text(OptionNames.Profile, "NAME|FILE|auto",
            $"Thresholds and expected inventory: {string.Join(", ", ProfileCatalog.BuiltInNames)}, a YAML file, or auto (default: by the detected GPU model)");
        var duration = CommandTree.Text(OptionNames.Duration, "DURATION", "How long a looping plan (soak) runs, e.g. 24h (default: the plan's)");
        var kmsg = CommandTree.Text(OptionNames.Kmsg, "FILE", "Kernel log to follow for Xids during the run (default /dev/kmsg)");
        var serial = new Option<bool>("--serial") { Description = "One device at a time, for debugging (default: every device at once, each in its own worker process)" };
        var wait = new Option<bool>("--wait") { Description = "When another kiln run holds the node, wait for it (default: refuse at once, exit 3)" };
        var run = new RunOptions();
        var command = new Command("burn", "Burn-in / acceptance: run a plan, write results, exit 0 pass / 1 fail") { plan, profile, duration, kmsg, serial, wait };
        run.AddTo(command);
        command.SetAction(async (parse, cancel) =>
        {
            // Everything the user typed is checked before anything runs or any folder is made.
            var overrides = new TestOverrides
            {
                Size = Values.Size(parse, run.Size),
                Threads = Values.Count(parse, run.Threads, min: 0),
                Injections = Values.Injections(parse, run.Inject),
            };
            var chosen = PlanLoader.Resolve(parse.GetValue(plan)).With(overrides);
            var loopFor = parse.GetValue(duration) is { } d ? Duration.Parse(d, OptionNames.Duration) : (TimeSpan?)null;
            if (loopFor != null && !chosen.Loop)
                throw new UsageException(OptionNames.Duration, $"plan '{chosen.Name}' runs once; only a looping plan (soak) takes a duration");
            if (chosen.Loop && (loopFor ?? chosen.Duration) is null)
                throw new UsageException(OptionNames.Duration, $"plan '{chosen.Name}' loops and names no duration: give --duration (e.g. 24h)");
            var kmsgFile = parse.GetValue(kmsg);
            if (kmsgFile != null && !File.Exists(kmsgFile)) throw new UsageException(OptionNames.Kmsg, $"cannot read {kmsgFile}: no such file");
            var deviceIndex = run.DeviceIndex(parse);
            var start = DateTimeOffset.UtcNow;
            var host = HostName.Current;

            var registry = services.Native.Registry;
            using var job = BurnJob.Open(registry, run.BackendName(parse), deviceIndex);
            var outPath = parse.GetValue(run.Out) ?? ResultFolder.DefaultPath(host, start);
            var console = services.Console;
            // One run per node: a second burn waits (--wait) or is refused before it touches a device.
            using var node = RunLock.Acquire(RunLock.DefaultFolder(), $"kiln burn --plan {chosen.Name}, results in {outPath}",
                parse.GetValue(wait), message => console.Error.WriteLine($"kiln: {message}"), cancel);
            var request = new BurnRequest(chosen, parse.GetValue(profile), loopFor, kmsgFile, outPath,
                parse.Tokens.Select(t => t.Value).ToList(), overrides.Injections)
            {
                Workers = Workers.Launch(),
                Serial = parse.GetValue(serial),
            };
            var log = services.Logs.CreateLogger("kiln.burn");
            // The tests run in the devices' workers; cancel (Ctrl-C, SIGTERM) stops them within a second.
            var outcome = await Task.Factory.StartNew(
                () => job.Run(request, host, Observers.For(console), console.Out.WriteLine, tests => RunOptions.LogPlanned(log, tests), cancel),
                CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);
            console.Out.WriteLine($"node verdict: {outcome.Result.Verdict} ({outcome.Folder.Path})");
            return outcome.Result.ExitCode;
        });
        return command;
    }
}
