// `kiln bench stream|memtest`: one test with every knob exposed, for tuning; prints what it
// achieved (and the share of the device's peak when known), writes metrics.csv with --out.
using System.CommandLine;
using System.Globalization;
using Kiln.Cli.Output;
using Kiln.Core;
using Kiln.Core.Evaluation;
using Kiln.Core.Plans;
using Kiln.Core.Results;
using Kiln.Core.Runs;
using Kiln.Native;
using Microsoft.Extensions.Logging;

namespace Kiln.Cli.Commands;

public static class BenchCommand
{
    public static Command Create(CliServices services) =>
        new("bench", "Run one test with every knob exposed and print what it achieved")
        {
            Test(services, TestKind.Stream, "Memory bandwidth: copy, scale, add, triad (verified)"),
            Test(services, TestKind.Memtest, "Memory patterns: write pass, then a separate verify pass"),
        };

    private static Command Test(CliServices services, TestKind test, string description)
    {
        var run = new RunOptions();
        var iterations = CommandTree.Text(OptionNames.Iterations, "N",
            test == TestKind.Stream ? "Timed repetitions" : "Rounds over the patterns");
        var seed = CommandTree.Text(OptionNames.Seed, "N", "Seed of the random patterns");
        var param = CommandTree.Text(OptionNames.Param, "block=N,grid=N,vec=N,unroll=N", "GPU launch knobs (0 = backend default)");
        var ops = CommandTree.Text(OptionNames.Ops, "copy,scale,add,triad", "Stream operations to run (default all)");
        var pattern = CommandTree.Text(OptionNames.Pattern, string.Join(",", Catalog.Patterns.Keys.Take(2)) + ",...",
            $"Patterns to run (default all: {string.Join(", ", Catalog.Patterns.Keys)})");

        var command = new Command(Catalog.Key(test), description) { iterations, seed, param };
        command.Options.Add(test == TestKind.Stream ? ops : pattern);
        run.AddTo(command);
        command.SetAction(async (parse, cancel) =>
        {
            // A one-test plan, so a foreign --inject is refused by the same rule as in burn.
            var bench = new Plan($"bench {Catalog.Key(test)}", description, [new TestSpec(test)]).With(new TestOverrides
            {
                Size = Values.Size(parse, run.Size),
                Threads = Values.Count(parse, run.Threads, min: 0),
                Iterations = Values.Count(parse, iterations, min: 1),
                Seed = Values.Seed(parse, seed),
                Kernel = parse.GetValue(param) is { } p ? KernelParams.Parse(p) : null,
                OpMask = parse.GetValue(ops) is { } o ? Catalog.ParseOpMask(o, OptionNames.Ops) : null,
                PatternMask = parse.GetValue(pattern) is { } pt ? Catalog.ParsePatternMask(pt, OptionNames.Pattern) : null,
                Injections = Values.Injections(parse, run.Inject),
            });

            var registry = services.Native.Registry;
            var devices = Targets.Open(registry, run.BackendName(parse), run.DeviceIndex(parse));
            try
            {
                var planned = Targets.Plan(bench, devices);
                RunOptions.LogPlanned(services.Logs.CreateLogger("kiln.bench"), planned);
                var folder = parse.GetValue(run.Out) is { } outPath ? ResultFolder.Create(outPath) : null;
                using var files = folder != null ? new ResultFiles(folder, withVerdicts: false) : null;
                var console = services.Console;
                var context = new RunContext(HostName.Current, RunContext.NewRunId(DateTimeOffset.UtcNow), files, Observers.For(console));

                var outcomes = await Task.Factory.StartNew(() =>
                {
                    var done = new List<TestOutcome>();
                    for (var i = 0; i < planned.Count; i++)
                    {
                        var outcome = TestExecutor.Execute(planned[i], context, i + 1, planned.Count, cancel);
                        context.Observer.TestFinished(outcome, null);
                        done.Add(outcome);
                    }
                    return done;
                }, CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);

                foreach (var outcome in outcomes) Report(console.Out, outcome);
                if (folder != null) console.Out.WriteLine($"metrics in {folder.File("metrics.csv")}");
                // A bench judges nothing, but wrong data or a run that did not finish is never a success.
                return outcomes.All(o => o.End == TestEnd.Completed && Evaluator.DataErrors(o) == 0)
                    ? ExitCodes.Passed : ExitCodes.Failed;
            }
            finally
            {
                foreach (var device in devices) device.Dispose();
            }
        });
        return command;
    }

    /// <summary>The numbers a tuner reads: best GB/s per op, or traffic and errors per pattern.</summary>
    private static void Report(TextWriter o, TestOutcome t)
    {
        var peak = t.Device.PeakMemoryBandwidthGbps;
        string OfPeak(double gbps) => peak > 0 ? $" ({gbps / peak * 100:0}% of peak {peak:0.#} GB/s)" : "";
        o.WriteLine($"{t.TestKey} on {t.Device.Backend}{t.Device.Index} ({t.Device.Name}): {Observers.Ending(t, null)}");
        if (t.Test == TestKind.Stream)
        {
            foreach (var op in Catalog.OpsIn(t.Parameters.OpMask))
            {
                if (Evaluator.StreamBest(t, op) is { } best)
                    o.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  {op,-8} best {best,8:0.00} GB/s{OfPeak(best)}"));
            }
        }
        else
        {
            foreach (var name in new[] { "traffic_gbps", "verified_gbps" })
            {
                if (t.Last(name) is { } gbps)
                    o.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  {name,-22} {gbps,8:0.00} GB/s{OfPeak(gbps)}"));
            }
            foreach (var p in Catalog.PatternsIn(t.Parameters.PatternMask))
            {
                if (t.Sum($"errors_{p}") is { } n) o.WriteLine($"  errors {p,-15} {n,8:0}");
            }
        }
        var errors = Evaluator.DataErrors(t);
        if (errors > 0 || t.Test == TestKind.Memtest)
            o.WriteLine($"  data errors total {errors}{(t.FirstError is { } f ? $", first at offset 0x{f.OffsetBytes:x} ({f.Pattern})" : "")}");
    }
}
