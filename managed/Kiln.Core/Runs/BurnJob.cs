// One burn as `kiln burn` and the service both run it: the devices opened, the tests planned and
// validated, the profile resolved for the inventory, the result folder and its files, the summary's
// identity, then BurnRunner. The caller holds the node lock (RunLock) around Run.
using Kiln.Core.Plans;
using Kiln.Core.Profiles;
using Kiln.Core.Results;
using Kiln.Native;

namespace Kiln.Core.Runs;

/// <param name="Profile">--profile: a name, a file, auto, or null (auto).</param>
/// <param name="LoopFor">A looping plan's duration (--duration); null: the plan's.</param>
public sealed record BurnRequest(Plan Plan, string? Profile, TimeSpan? LoopFor, string? KernelLogFile, string OutPath,
    IReadOnlyList<string> Arguments, IReadOnlyList<InjectionSpec> Injections)
{
    public bool Serial { get; init; }
    public WorkerLaunch? Workers { get; init; }
    public string Command { get; init; } = "burn";
}

/// <summary>What a finished burn leaves: the runner's result, the final summary's identity, where it is, on what.</summary>
public sealed record BurnOutcome(BurnResult Result, ResultFolder Folder, IReadOnlyList<DeviceInfo> Devices, string RunId);

public sealed class BurnJob : IDisposable
{
    private readonly Registry _registry;

    private BurnJob(Registry registry, IReadOnlyList<Device> devices)
    {
        _registry = registry;
        Devices = devices;
    }

    public IReadOnlyList<Device> Devices { get; }

    /// <summary>Opens the selected devices (every device of every, or the named, backend).</summary>
    public static BurnJob Open(Registry registry, string? backend, int? deviceIndex) => new(registry, Targets.Open(registry, backend, deviceIndex));

    /// <param name="announce">Told the one line that says what is about to run.</param>
    /// <param name="planned">Told the tests as planned (for --verbose).</param>
    public BurnOutcome Run(BurnRequest r, string host, IRunObserver observer, Action<string> announce,
        Action<IReadOnlyList<PlannedTest>>? planned, CancellationToken cancel)
    {
        var start = DateTimeOffset.UtcNow;
        var tests = Targets.Plan(r.Plan, Devices);
        planned?.Invoke(tests);
        var inventory = Inventory.Collect(_registry);
        var judge = ProfileCatalog.Resolve(r.Profile, inventory.Devices);
        var folder = ResultFolder.Create(r.OutPath);
        // A soak rewrites verdicts.csv whole after every pass (each (test, device) keeps its worst pass).
        using var files = new ResultFiles(folder, withVerdicts: !r.Plan.Loop);
        var context = new RunContext(host, RunContext.NewRunId(start), files, observer);
        var summary = new RunSummary
        {
            Host = host,
            RunId = context.RunId,
            KilnVersion = KilnVersion.Text,
            NativeVersion = KilnLibrary.Version,
            AbiVersion = KilnLibrary.AbiVersion,
            Command = r.Command,
            Plan = r.Plan.Name,
            Profile = judge.Name,
            ProfileSource = judge.Source,
            Arguments = r.Arguments,
            StartUtc = start.UtcDateTime,
            Injected = tests.Any(p => p.Parameters.Injected),
            Injections = r.Injections.Select(i => i.ToString()).ToList(),
            Verdict = "INCOMPLETE",
            InventoryFingerprint = inventory.Fingerprint,
            Components = SummaryInventory.Components(inventory, KilnVersion.Text),
            Inventory = SummaryInventory.From(inventory),
        };
        announce($"kiln {r.Command}: plan {r.Plan.Name}{(r.Plan.Loop ? $" for {Durations.Format(r.LoopFor ?? r.Plan.Duration!.Value)}" : "")}, " +
                 $"profile {judge.Name}, {tests.Count} test runs on {Devices.Count} device(s), " +
                 $"results in {folder.Path}{(summary.Injected ? ", FAULT INJECTION ON" : "")}");
        var settings = new BurnSettings(r.Plan, judge, r.LoopFor, r.KernelLogFile) { Workers = r.Workers, Serial = r.Serial, Devices = Devices };
        var result = BurnRunner.Run(tests, context, summary, settings, cancel);
        return new BurnOutcome(result, folder, Devices.Select(d => d.Info).ToList(), context.RunId);
    }

    public void Dispose()
    {
        foreach (var device in Devices) device.Dispose();
    }
}
