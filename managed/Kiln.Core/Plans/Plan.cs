// What a burn runs: a named, ordered list of tests with their knobs, the health checks around them,
// how often a borderline result is re-measured, and (soak) how long to keep looping. Loaded from
// YAML by PlanLoader; the built-in plans are YAML files too (Plans/BuiltIn/).
using Kiln.Core.Profiles;
using Kiln.Native;

namespace Kiln.Core.Plans;

public sealed record Plan(string Name, string Description, IReadOnlyList<TestSpec> Tests)
{
    /// <summary>Where the plan came from: "built-in" or the file's path.</summary>
    public string Source { get; init; } = "built-in";

    /// <summary>The YAML text as loaded ("" for plans made in code, such as bench's one-test plan).</summary>
    public string Text { get; init; } = "";

    /// <summary>Soak: the tests run again and again until the duration is spent (--duration overrides it).</summary>
    public bool Loop { get; init; }

    /// <summary>How long a looping plan runs when --duration is not given.</summary>
    public TimeSpan? Duration { get; init; }

    /// <summary>
    /// A borderline result (Evaluator.IsBorderline: inside the WARN band or just below the floor) is
    /// measured again up to this many times before it is called; 0 = judge the first measurement.
    /// </summary>
    public int Retest { get; init; }

    /// <summary>Health-check sources (kiln check's names) run before the first test and after the last.</summary>
    public IReadOnlyList<string> HealthBefore { get; init; } = [];
    public IReadOnlyList<string> HealthAfter { get; init; } = [];

    /// <summary>Applies command-line overrides to every test of the plan.</summary>
    public Plan With(TestOverrides overrides)
    {
        foreach (var injection in overrides.Injections)
        {
            if (Tests.All(t => t.Test != injection.Test))
                throw new UsageException(OptionNames.Inject,
                    $"test '{Catalog.Key(injection.Test)}' is not in plan '{Name}' ({string.Join(", ", Tests.Select(t => t.Key))})");
        }
        return this with { Tests = Tests.Select(t => t.With(overrides)).ToList() };
    }
}

/// <summary>One test of a plan. Null knobs keep the native defaults (kiln_test_params_init).</summary>
public sealed record TestSpec(TestKind Test)
{
    public SizeSpec? Size { get; init; }
    /// <summary>memtest: the size on GPU devices (plan key gpu_size), instead of Size; null = Size on every device.</summary>
    public SizeSpec? GpuSize { get; init; }
    public int? Iterations { get; init; }
    public int? Threads { get; init; }
    /// <summary>kiln_stream_op bits; 0 = all operations.</summary>
    public uint OpMask { get; init; }
    /// <summary>Bits (1 &lt;&lt; kiln_memtest_pattern); 0 = all patterns.</summary>
    public uint PatternMask { get; init; }
    public ulong? Seed { get; init; }
    public ulong? DurationMs { get; init; }
    /// <summary>A test still running after this long is stopped and FAILs "timed out" (a hang, not a skip); null = no limit.</summary>
    public TimeSpan? Timeout { get; init; }
    public KernelParams Kernel { get; init; } = new();
    /// <summary>tcp, rdma: the node running kiln net serve (HOST:PORT) that this node probes.</summary>
    public string? Peer { get; init; }
    /// <summary>tcp: parallel connections of the bandwidth phases; null = the probe's default (4).</summary>
    public int? Streams { get; init; }
    public IReadOnlyList<InjectionSpec> Injections { get; init; } = [];

    public string Key => Catalog.Key(Test);

    public TestSpec With(TestOverrides o) => this with
    {
        Size = o.Size ?? Size,
        GpuSize = o.Size is null ? GpuSize : null,  // --size sizes every device
        Iterations = o.Iterations ?? Iterations,
        Threads = o.Threads ?? Threads,
        OpMask = o.OpMask ?? OpMask,
        PatternMask = o.PatternMask ?? PatternMask,
        Seed = o.Seed ?? Seed,
        Kernel = o.Kernel ?? Kernel,
        Injections = [.. Injections, .. o.Injections.Where(i => i.Test == Test)],
    };

    /// <summary>The native parameters for one device: defaults, then this spec's knobs.</summary>
    public TestParams ToParams(DeviceInfo device)
    {
        var p = TestParams.Defaults(Test);
        var sized = GpuSize is not null && Profile.ClassOf(device) == DeviceClass.Gpu ? GpuSize : Size;
        if (sized is { } size) (p.SizeBytes, p.SizeFraction) = size.Resolve(device.AvailableMemoryBytes);
        if (Iterations is { } iterations) p.Iterations = iterations;
        if (Threads is { } threads) p.Threads = threads;
        if (OpMask != 0) p.OpMask = OpMask;
        if (PatternMask != 0) p.PatternMask = PatternMask;
        if (Seed is { } seed) p.Seed = seed;
        if (DurationMs is { } duration) p.DurationMs = duration;
        Kernel.ApplyTo(p);
        foreach (var injection in Injections) injection.ApplyTo(p, device.Index);
        return p;
    }
}

/// <summary>What the command line changes in a plan; null = keep the plan's value.</summary>
public sealed record TestOverrides
{
    public SizeSpec? Size { get; init; }
    public int? Iterations { get; init; }
    public int? Threads { get; init; }
    public uint? OpMask { get; init; }
    public uint? PatternMask { get; init; }
    public ulong? Seed { get; init; }
    public KernelParams? Kernel { get; init; }
    public IReadOnlyList<InjectionSpec> Injections { get; init; } = [];
}
