// `kiln burn --plan quick ...`: every test of the plan on every selected device, results streamed
// into OUT/, a verdict per (test, device), the node verdict as the exit code.
using System.CommandLine;
using Kiln.Cli.Output;
using Kiln.Core;
using Kiln.Core.Plans;
using Kiln.Core.Results;
using Kiln.Core.Runs;
using Kiln.Native;
using Kiln.Native.Interop;
using Microsoft.Extensions.Logging;

namespace Kiln.Cli.Commands;

public static class BurnCommand
{
    public static Command Create(ServiceAccess services)
    {
        var plan = CommandTree.Text(OptionNames.Plan, "NAME", $"Plan to run (default quick; known: {string.Join(", ", BuiltInPlans.All.Select(p => p.Name))})");
        var run = new RunOptions();
        var command = new Command("burn", "Burn-in / acceptance: run a plan, write results, exit 0 pass / 1 fail") { plan };
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
            var chosen = BuiltInPlans.Get(parse.GetValue(plan) ?? BuiltInPlans.Quick.Name).With(overrides);
            var deviceIndex = run.DeviceIndex(parse);
            var start = DateTimeOffset.UtcNow;
            var host = Environment.MachineName;

            var registry = services.Get<NativeSession>().Registry;
            var devices = Targets.Open(registry, run.BackendName(parse), deviceIndex);
            try
            {
                var planned = Targets.Plan(chosen, devices);
                RunOptions.LogPlanned(services.Get<ILoggerFactory>().CreateLogger("kiln.burn"), planned);
                var folder = ResultFolder.Create(parse.GetValue(run.Out) ?? ResultFolder.DefaultPath(host, start));
                var inventory = Inventory.Collect(registry);
                using var files = new ResultFiles(folder, withVerdicts: true);
                var console = services.Get<IConsoleOutput>();
                var context = new RunContext(host, RunContext.NewRunId(start), files, Observers.For(console));
                var summary = new RunSummary
                {
                    Host = host,
                    RunId = context.RunId,
                    KilnVersion = KilnVersion.Text,
                    NativeVersion = KilnLibrary.Version,
                    AbiVersion = KilnNative.kiln_abi_version(),
                    Command = "burn",
                    Plan = chosen.Name,
                    Arguments = parse.Tokens.Select(t => t.Value).ToList(),
                    StartUtc = start.UtcDateTime,
                    Injected = planned.Any(p => p.Parameters.Injected),
                    Injections = overrides.Injections.Select(i => i.ToString()).ToList(),
                    Verdict = "INCOMPLETE",
                    InventoryFingerprint = inventory.Fingerprint,
                    Inventory = SummaryInventory.From(inventory),
                };
                console.Out.WriteLine($"kiln burn: plan {chosen.Name}, {planned.Count} test runs on {devices.Count} device(s), " +
                                      $"results in {folder.Path}{(summary.Injected ? ", FAULT INJECTION ON" : "")}");

                // Device.Run blocks its thread until the test ends; cancel (Ctrl-C, SIGTERM) stops it within a second.
                var result = await Task.Factory.StartNew(() => BurnRunner.Run(planned, context, summary, cancel),
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
