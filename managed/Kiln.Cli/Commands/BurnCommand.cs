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
    public static Command Create(ServiceAccess services)
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

            var registry = services.Get<NativeSession>().Registry;
            var devices = Targets.Open(registry, run.BackendName(parse), deviceIndex);
            var outPath = parse.GetValue(run.Out) ?? ResultFolder.DefaultPath(host, start);
            var console = services.Get<IConsoleOutput>();
            // One run per node: a second burn waits (--wait) or is refused before it touches a device.
            using var node = RunLock.Acquire(RunLock.DefaultFolder(), $"kiln burn --plan {chosen.Name}, results in {outPath}",
                parse.GetValue(wait), message => console.Error.WriteLine($"kiln: {message}"), cancel);
            try
            {
                var planned = Targets.Plan(chosen, devices);
                RunOptions.LogPlanned(services.Get<ILoggerFactory>().CreateLogger("kiln.burn"), planned);
                var inventory = Inventory.Collect(registry);
                var judge = ProfileCatalog.Resolve(parse.GetValue(profile), inventory.Devices);
                var folder = ResultFolder.Create(outPath);
                // A soak rewrites verdicts.csv whole after every pass (each (test, device) keeps its worst pass).
                using var files = new ResultFiles(folder, withVerdicts: !chosen.Loop);
                var context = new RunContext(host, RunContext.NewRunId(start), files, Observers.For(console));
                var summary = new RunSummary
                {
                    Host = host,
                    RunId = context.RunId,
                    KilnVersion = KilnVersion.Text,
                    NativeVersion = KilnLibrary.Version,
                    AbiVersion = KilnLibrary.AbiVersion,
                    Command = "burn",
                    Plan = chosen.Name,
                    Profile = judge.Name,
                    ProfileSource = judge.Source,
                    Arguments = parse.Tokens.Select(t => t.Value).ToList(),
                    StartUtc = start.UtcDateTime,
                    Injected = planned.Any(p => p.Parameters.Injected),
                    Injections = overrides.Injections.Select(i => i.ToString()).ToList(),
                    Verdict = "INCOMPLETE",
                    InventoryFingerprint = inventory.Fingerprint,
                    Components = SummaryInventory.Components(inventory, KilnVersion.Text),
                    Inventory = SummaryInventory.From(inventory),
                };
                console.Out.WriteLine($"kiln burn: plan {chosen.Name}{(chosen.Loop ? $" for {Durations.Format(loopFor ?? chosen.Duration!.Value)}" : "")}, " +
                                      $"profile {judge.Name}, {planned.Count} test runs on {devices.Count} device(s), " +
                                      $"results in {folder.Path}{(summary.Injected ? ", FAULT INJECTION ON" : "")}");

                // The tests run in the devices' workers; cancel (Ctrl-C, SIGTERM) stops them within a second.
                var settings = new BurnSettings(chosen, judge, loopFor, kmsgFile) { Workers = Workers.Launch(), Serial = parse.GetValue(serial) };
                var result = await Task.Factory.StartNew(() => BurnRunner.Run(planned, context, summary, settings, cancel),
                    CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);
                console.Out.WriteLine($"node verdict: {result.Verdict} ({folder.Path})");
                return result.ExitCode;
            }
            finally
            {
                foreach (var device in devices) device.Dispose();
            }
        });
        return command;
    }
}
