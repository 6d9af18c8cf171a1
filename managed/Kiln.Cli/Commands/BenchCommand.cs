// `kiln bench TEST` for every test: one test with every knob exposed, for tuning. The kernel knobs
// (--block, --grid, --vec, --unroll, --matrix-n) come from libkiln's knob catalog, per test; prints
// each rate it achieved with its share of the device's peak where the peak is known, and writes
// metrics.csv with --out.
using System.CommandLine;
using System.Globalization;
using Kiln.Cli.Output;
using Kiln.Core;
using Kiln.Core.Evaluation;
using Kiln.Core.Health;
using Kiln.Core.Plans;
using Kiln.Core.Results;
using Kiln.Core.Runs;
using Kiln.Native;
using Microsoft.Extensions.Logging;

namespace Kiln.Cli.Commands;

public static class BenchCommand
{
    private static readonly Dictionary<TestKind, string> Descriptions = new()
    {
        [TestKind.Stream] = "Memory bandwidth: copy, scale, add, triad (verified)",
        [TestKind.Memtest] = "Memory patterns: write pass, then a separate verify pass",
        [TestKind.Gemm] = "Verified matrix products in every number format the device has",
        [TestKind.Power] = "The power burner: verified FMA (and tensor) work for a duration",
        [TestKind.Copy] = "Host/device and peer copies (verified)",
        [TestKind.Launch] = "Kernel launch latency",
    };

    public static Command Create(CliServices services)
    {
        var bench = new Command("bench", "Run one test with every knob exposed and print what it achieved");
        foreach (var (_, test) in Catalog.Tests)
            bench.Subcommands.Add(Test(services, test, Descriptions.GetValueOrDefault(test, "")));
        return bench;
    }

    /// <summary>The test's knobs from libkiln's catalog, one per name; none when libkiln cannot be loaded (the run says why).</summary>
    private static IReadOnlyList<IGrouping<string, KnobInfo>> Knobs(string test)
    {
        try
        {
            return KnobCatalog.For(test).GroupBy(k => k.Name).ToList();
        }
        catch (KilnLoadException)
        {
            return [];
        }
    }

    private static string Help(IGrouping<string, KnobInfo> knob) => string.Join("; ", knob.Select(k =>
        $"{k.Description}: {k.Range}, default {(k.Default is { } d ? d.ToString(CultureInfo.InvariantCulture) : "from the device")} ({KernelParams.Backends(k.Backends)})"));

    private static Command Test(CliServices services, TestKind test, string description)
    {
        var key = Catalog.Key(test);
        var run = new RunOptions();
        var iterations = CommandTree.Text(OptionNames.Iterations, "N", test switch
        {
            TestKind.Memtest => "Rounds over the patterns",
            TestKind.Launch => "Launches timed",
            _ => "Timed repetitions",
        });
        var seed = CommandTree.Text(OptionNames.Seed, "N", "Seed of the random patterns and inputs");
        var duration = CommandTree.Text(OptionNames.Duration, "DURATION", "Run at least this long, e.g. 10s (gemm, power: how long; launch: its deadline)");
        var ops = CommandTree.Text(OptionNames.Ops, "copy,scale,add,triad", "Stream operations to run (default all)");
        var pattern = CommandTree.Text(OptionNames.Pattern, string.Join(",", Catalog.Patterns.Keys.Take(2)) + ",...",
            $"Patterns to run (default all: {string.Join(", ", Catalog.Patterns.Keys)})");
        var knobs = Knobs(key).Select(k => (Name: k.Key, Option: CommandTree.Text(OptionNames.Knob(k.Key), "N", Help(k)))).ToList();

        var command = new Command(key, description) { iterations, seed, duration };
        if (test == TestKind.Stream) command.Options.Add(ops);
        if (test == TestKind.Memtest) command.Options.Add(pattern);
        foreach (var (_, option) in knobs) command.Options.Add(option);
        run.AddTo(command);
        command.SetAction(async (parse, cancel) =>
        {
            var kernel = new KernelParams();
            foreach (var (name, option) in knobs)
            {
                if (Values.Count(parse, option, min: 0) is { } v) kernel = kernel.With(key, name, v);
            }
            var spec = new TestSpec(test)
            {
                Kernel = kernel,
                DurationMs = parse.GetValue(duration) is { } d ? (ulong)Duration.Parse(d, OptionNames.Duration).TotalMilliseconds : null,
            };
            // A one-test plan, so a foreign --inject is refused by the same rule as in burn.
            var bench = new Plan($"bench {key}", description, [spec]).With(new TestOverrides
            {
                Size = Values.Size(parse, run.Size),
                Threads = Values.Count(parse, run.Threads, min: 0),
                Iterations = Values.Count(parse, iterations, min: 1),
                Seed = Values.Seed(parse, seed),
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

    /// <summary>
    /// The numbers a tuner reads: every rate (GB/s, TFLOP/s) at its best with its share of the
    /// device's peak (or why there is none), every latency at its best, and the data errors.
    /// </summary>
    private static void Report(TextWriter o, TestOutcome t)
    {
        o.WriteLine($"{t.TestKey} on {t.Device.Backend}{t.Device.Index} ({t.Device.Name}): {Observers.Ending(t, null)}");
        // name_best and name are one rate: per iteration, and the best of them.
        foreach (var group in t.Metrics.Where(m => m.Value.Count > 0).GroupBy(m => m.Key.EndsWith("_best", StringComparison.Ordinal) ? m.Key[..^5] : m.Key))
        {
            var unit = t.UnitOf(group.First().Key);
            var values = group.SelectMany(m => m.Value).ToList();
            if (unit is "GB/s" or "TFLOP/s" && !group.Key.StartsWith("peak_", StringComparison.Ordinal))
                o.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  {group.Key,-24} best {values.Max(),10:0.00} {unit}{OfPeak(t, group.Key, unit, values.Max())}"));
            else if (unit is "us" or "ms" or "ns")
                o.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  {group.Key,-24} {values.Min(),15:0.00} {unit}"));
        }
        foreach (var p in Catalog.PatternsIn(t.Parameters.PatternMask))
        {
            if (t.Test == TestKind.Memtest && t.Sum($"errors_{p}") is { } n) o.WriteLine($"  errors {p,-15} {n,8:0}");
        }
        var errors = Evaluator.DataErrors(t);
        if (errors > 0 || t.Test == TestKind.Memtest)
            o.WriteLine($"  data errors total {errors}{(t.FirstError is { } f ? $", first at offset 0x{f.OffsetBytes:x} ({f.Pattern})" : "")}");
    }

    /// <summary>" (41% of peak 204.8 GB/s)", or why no peak applies.</summary>
    private static string OfPeak(TestOutcome t, string name, string unit, double value)
    {
        double peak;
        string what;
        if (unit == "GB/s")
        {
            // Copies between host and device or between devices run over PCIe / NVLink, whose peak the device does not report.
            if (t.Test == TestKind.Copy && !name.StartsWith("d2d", StringComparison.Ordinal))
                return " (no peak: the link's rate is not reported)";
            (peak, what) = (t.Device.PeakMemoryBandwidthGbps, "memory");
            if (peak <= 0) return $" ({(t.Device.PeakMemoryBasis.Length > 0 ? t.Device.PeakMemoryBasis : "peak unknown")})";
        }
        else
        {
            var dtype = name.Split('_')[0];
            peak = t.Last($"peak_{dtype}_tflops") ?? dtype switch
            {
                "fp64" => t.Device.PeakFp64Tflops,
                "fp32" => t.Device.PeakFp32Tflops,
                "tf32" => t.Device.PeakTf32Tflops,
                "bf16" => t.Device.PeakBf16Tflops,
                "fp16" => t.Device.PeakFp16Tflops,
                _ => 0,
            };
            what = dtype;
            if (peak <= 0) return $" (peak unknown: the device reports no {dtype} rate)";
        }
        return string.Create(CultureInfo.InvariantCulture, $" ({value / peak * 100:0}% of the {what} peak {peak:0.###} {unit})");
    }
}
