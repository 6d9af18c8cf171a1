// The options burn and bench share: where to run (--backend, --device), how big (--size,
// --threads), what to inject, and where to write (--out).
using System.CommandLine;
using Kiln.Core;
using Kiln.Core.Runs;
using Microsoft.Extensions.Logging;

namespace Kiln.Cli.Commands;

public sealed class RunOptions
{
    public Option<string> Backend { get; } = CommandTree.Text(OptionNames.Backend, "NAME", "Run on this backend only (default: every backend loaded)");
    public Option<string> Device { get; } = CommandTree.Text(OptionNames.Device, "N", "Run on device N of the backend only (default: every device)");
    public Option<string> Size { get; } = CommandTree.Text(OptionNames.Size, "BYTES|N%|NGiB", "Memory per test: bytes (stream: per array), e.g. 512MiB, 4GiB; or N% of available memory (stream: its 3 arrays together)");
    public Option<string> Threads { get; } = CommandTree.Text(OptionNames.Threads, "N", "Worker threads of the cpu backend (0 = every allowed CPU)");
    public Option<string[]> Inject { get; } = CommandTree.Repeatable(OptionNames.Inject, "TEST:key=value[,key=value]",
        "Fault injection, repeatable: memtest:flips=3,seed=7, stream:slowdown=0.5, stream:corrupt=2,seed=1, gemm:corrupt=1");
    public Option<string> Out { get; } = CommandTree.Text(OptionNames.Out, "DIR", "Result folder");

    public void AddTo(Command command)
    {
        foreach (var option in new Option[] { Backend, Device, Size, Threads, Inject, Out })
            command.Options.Add(option);
    }

    public string? BackendName(ParseResult parse) => parse.GetValue(Backend);

    public int? DeviceIndex(ParseResult parse) => Values.Count(parse, Device, min: 0);

    /// <summary>With --verbose: the parameters each test will really run with, after defaults and caps.</summary>
    public static void LogPlanned(ILogger log, IEnumerable<PlannedTest> tests)
    {
        foreach (var t in tests)
        {
            var p = t.Parameters;
            log.LogDebug("{Test} on {Backend}{Index}: size {Size}, iterations {Iterations}, threads {Threads}, " +
                         "op_mask 0x{Ops:x}, pattern_mask 0x{Patterns:x}, seed {Seed}, inject flips={Flips} seed={InjectSeed} slowdown={Slowdown}{Skip}",
                t.Spec.Key, t.Device.Info.Backend, t.Device.Info.Index,
                p.SizeBytes > 0 ? ByteSize.Format(p.SizeBytes) : $"{p.SizeFraction * 100:0.##}% of available",
                p.Iterations, p.Threads == 0 ? "all" : p.Threads, p.OpMask, p.PatternMask, p.Seed,
                p.InjectFlips, p.InjectSeed, p.InjectSlowdown, t.Unsupported is { } why ? $" (skipped: {why})" : "");
        }
    }
}
