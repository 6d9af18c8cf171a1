// Plans from YAML (docs/PLANS.md): the built-in quick, standard and soak (embedded, printable with
// `kiln plan show NAME`) and user files. Every mistake names the file, line and field.
using System.Reflection;
using Kiln.Core.Health.KernelLog;
using Kiln.Core.Health.Sources;
using Kiln.Core.Profiles;
using Kiln.Native;

namespace Kiln.Core.Plans;

public static class PlanLoader
{
    /// <summary>The built-in plans, in the order `kiln plan list` shows them.</summary>
    public static IReadOnlyList<string> BuiltInNames { get; } = ["quick", "standard", "soak"];

    public const string DefaultName = "quick";

    /// <summary>kiln check's source names a plan may list under health.before / health.after ("all" = every one).</summary>
    public static IReadOnlyList<string> HealthSources { get; } =
    [
        InventoryCheck.Name, GpuCheck.Nvml, GpuCheck.RocmSmi, GpuCheck.Emu, PcieCheck.Name, InfinibandCheck.Name, EdacCheck.Name,
        CpuMemoryCheck.Name, KernelLogCheck.Name,
    ];

    private static readonly string[] PlanKeys = ["name", "description", "loop", "duration", "retest", "health", "tests"];
    private static readonly string[] TestKeys =
        ["test", "size", "size_cap", "gpu_size", "iterations", "threads", "ops", "patterns", "seed", "duration", "timeout", "params",
         "peer", "streams"];

    // The keys each test's kernels read (cpu and GPU backends alike), beyond test, timeout and params:
    // a key a test ignores (ops on memtest, size on gemm) is a mistake to point out, not to run with.
    private static readonly Dictionary<TestKind, string[]> KeysByTest = new()
    {
        [TestKind.Stream] = ["size", "size_cap", "iterations", "threads", "ops", "duration"],
        [TestKind.Memtest] = ["size", "size_cap", "gpu_size", "iterations", "threads", "patterns", "seed", "duration"],
        [TestKind.Gemm] = ["iterations", "threads", "seed", "duration"],
        [TestKind.Power] = ["threads", "seed", "duration"],
        [TestKind.Copy] = ["size", "size_cap", "iterations", "seed"],
        [TestKind.Launch] = ["iterations"],
        // The network tests run once per node against a peer (docs/NETWORK.md); duration: each bandwidth phase.
        [TestKind.Tcp] = ["peer", "streams", "duration"],
        [TestKind.Rdma] = ["peer", "duration"],
        [TestKind.Allreduce] = ["size", "iterations"],
    };

    /// <summary>The plan keys a test takes (test, timeout and params always).</summary>
    public static IReadOnlyList<string> KeysOf(TestKind test) =>
        ["test", .. KeysByTest.GetValueOrDefault(test, []), "timeout", "params"];

    /// <summary>A built-in name (case-insensitive) or a YAML file; anything else is a --plan usage error.</summary>
    public static Plan Resolve(string? nameOrFile)
    {
        var text = (nameOrFile ?? DefaultName).Trim();
        if (BuiltInNames.FirstOrDefault(n => n.Equals(text, StringComparison.OrdinalIgnoreCase)) is { } name)
            return BuiltIn(name);
        if (File.Exists(text)) return Load(text);
        throw new UsageException(OptionNames.Plan,
            $"unknown plan '{text}' (known: {string.Join(", ", BuiltInNames)}; or a YAML file, which does not exist here)");
    }

    public static Plan BuiltIn(string name) => Parse(YamlConfig.Parse($"built-in plan {name}", BuiltInText(name)), name);

    /// <summary>The embedded YAML of a built-in plan, exactly as shipped.</summary>
    public static string BuiltInText(string name)
    {
        using var stream = Assembly.GetExecutingAssembly().GetManifestResourceStream($"Kiln.Plans.{name}.yaml")
            ?? throw new UsageException(OptionNames.Plan, $"unknown plan '{name}' (known: {string.Join(", ", BuiltInNames)})");
        return new StreamReader(stream).ReadToEnd();
    }

    public static Plan Load(string path) =>
        Parse(YamlConfig.Load(path, OptionNames.Plan), Path.GetFileNameWithoutExtension(path)) with { Source = path };

    public static Plan Parse(YamlConfig config, string defaultName)
    {
        var root = config.Root;
        root.Only(PlanKeys);
        var loop = root.Bool("loop") ?? false;
        var duration = root.Duration("duration", TimeSpan.FromSeconds(1), TimeSpan.FromDays(30));
        if (duration != null && !loop)
            throw config.Error(root.Require("duration"), "duration", "only a looping plan (loop: true) has a duration");
        var tests = root.Maps("tests").Select(ParseTest).ToList();
        if (tests.Count == 0)
            throw config.Error(root.Get("tests") ?? root.Node, "tests", "a plan needs at least one test");
        var (before, after) = ParseHealth(root.Map("health"));
        return new Plan(root.String("name") ?? defaultName, root.String("description") ?? "", tests)
        {
            Text = config.Text,
            Loop = loop,
            Duration = duration,
            Retest = root.Int("retest", 0, 10) ?? 0,
            HealthBefore = before,
            HealthAfter = after,
        };
    }

    private static TestSpec ParseTest(YamlMap t)
    {
        t.Only(TestKeys);
        var testNode = t.Require("test");
        var test = Checked(t, testNode, "test", () => Catalog.ParseTest(t.Scalar(testNode, t.Field("test")), "test"));
        var known = KeysOf(test);
        foreach (var (key, _, keyNode) in t.Entries)
        {
            if (!known.Contains(key))
                throw t.Config.Error(keyNode, t.Field(key), $"means nothing for {Catalog.Key(test)} ({Catalog.Key(test)} takes: {string.Join(", ", known)})");
        }
        var spec = new TestSpec(test)
        {
            Iterations = t.Int("iterations", 1, 1_000_000),
            Threads = t.Int("threads", 0, 65_536),
            Seed = t.Get("seed") is { } seedNode
                ? Checked(t, seedNode, "seed", () => ulong.Parse(t.Scalar(seedNode, t.Field("seed")), System.Globalization.CultureInfo.InvariantCulture))
                : null,
            DurationMs = t.Duration("duration", TimeSpan.FromMilliseconds(1), TimeSpan.FromDays(30)) is { } d ? (ulong)d.TotalMilliseconds : null,
            Timeout = t.Duration("timeout", TimeSpan.FromSeconds(1), TimeSpan.FromDays(30)),
        };
        if (t.Get("peer") is { } peerNode)
            spec = spec with { Peer = Checked(t, peerNode, "peer", () => Net.NetEndpoint.Parse(t.Scalar(peerNode, t.Field("peer")), "peer")).ToString() };
        else if (test == TestKind.Tcp)
            throw t.Config.Error(testNode, t.Field("peer"), "tcp needs peer: HOST:PORT, the node whose kiln net serve it probes");
        spec = spec with { Streams = t.Int("streams", 1, 128) };
        if (t.Get("size") is { } sizeNode)
        {
            var size = Checked(t, sizeNode, "size", () => SizeSpec.Parse(t.Scalar(sizeNode, t.Field("size")), "size"));
            if (t.Get("size_cap") is { } capNode)
            {
                var cap = Checked(t, capNode, "size_cap", () => SizeSpec.Parse(t.Scalar(capNode, t.Field("size_cap")), "size_cap"));
                if (size.Bytes is not { } bytes || cap.Fraction is not { } fraction || cap.Bytes != null)
                    throw t.Config.Error(capNode, t.Field("size_cap"), "a cap is a percentage of available memory (12.5%) on a size in bytes (256MiB)");
                size = SizeSpec.AtMost(bytes, fraction);
            }
            spec = spec with { Size = size };
        }
        else if (t.Get("size_cap") is { } lonely)
        {
            throw t.Config.Error(lonely, t.Field("size_cap"), "caps a size: give size too");
        }
        // memtest on a GPU: its own size (95% of free device memory in standard), so a host-sized
        // region (size, size_cap) does not shrink the GPU's coverage, nor a GPU's share size the host's.
        if (t.Get("gpu_size") is { } gpuSizeNode)
            spec = spec with { GpuSize = Checked(t, gpuSizeNode, "gpu_size", () => SizeSpec.Parse(t.Scalar(gpuSizeNode, t.Field("gpu_size")), "gpu_size")) };
        if (t.List("ops") is { Count: > 0 } ops)
            spec = spec with { OpMask = Checked(t, ops[0].Node, "ops", () => Catalog.ParseOpMask(string.Join(",", ops.Select(o => o.Text)), "ops")) };
        if (t.List("patterns") is { Count: > 0 } patterns && !(patterns.Count == 1 && patterns[0].Text == "all"))
            spec = spec with { PatternMask = Checked(t, patterns[0].Node, "patterns", () => Catalog.ParsePatternMask(string.Join(",", patterns.Select(p => p.Text)), "patterns")) };
        if (t.Map("params") is { } knobs)
        {
            // The test's kernel knobs, as libkiln's knob catalog declares them (docs/PLANS.md's table).
            var kernel = new KernelParams();
            foreach (var (key, value, keyNode) in knobs.Entries)
            {
                var text = knobs.Scalar(value, knobs.Field(key));
                if (!long.TryParse(text, System.Globalization.NumberStyles.AllowLeadingSign, System.Globalization.CultureInfo.InvariantCulture, out var n))
                    throw knobs.Config.Error(value, knobs.Field(key), $"'{text}' is not a whole number");
                if (KernelParams.Problem(Catalog.Key(test), key, n) is { } problem)
                    throw knobs.Config.Error(KnobCatalog.For(Catalog.Key(test)).Any(k => k.Name == key) ? value : keyNode, knobs.Field(key), problem);
                kernel = kernel.With(Catalog.Key(test), key, n);
            }
            spec = spec with { Kernel = kernel };
        }
        return spec;
    }

    private static (IReadOnlyList<string> Before, IReadOnlyList<string> After) ParseHealth(YamlMap? health)
    {
        if (health is not { } h) return ([], []);
        h.Only("before", "after");
        return (Sources(h, "before"), Sources(h, "after"));
    }

    private static IReadOnlyList<string> Sources(YamlMap h, string key)
    {
        var names = h.List(key);
        if (names.Count == 1 && names[0].Text == "all") return HealthSources;
        foreach (var (name, node) in names)
        {
            if (!HealthSources.Contains(name))
                throw h.Config.Error(node, h.Field(key), $"unknown health check '{name}' (known: all, {string.Join(", ", HealthSources)})");
        }
        return names.Select(n => n.Text).Distinct().ToList();
    }

    /// <summary>Runs a parser that throws UsageException(option, problem) and re-throws it at the node's line.</summary>
    private static T Checked<T>(YamlMap map, YamlDotNet.RepresentationModel.YamlNode node, string key, Func<T> parse)
    {
        try
        {
            return parse();
        }
        catch (UsageException e)
        {
            throw map.Config.Error(node, map.Field(key), e.Problem);
        }
        catch (Exception e) when (e is FormatException or OverflowException)
        {
            throw map.Config.Error(node, map.Field(key), $"'{map.Scalar(node, map.Field(key))}' is not a whole number >= 0");
        }
    }
}
