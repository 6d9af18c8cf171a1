// Plans from YAML: the built-in tiers (quick, standard, soak) load and say what they run, command-line
// overrides reach every test, and a mistake in a user's plan file names its file, line and field.
using Kiln.Core;
using Kiln.Core.Plans;
using Kiln.Core.Profiles;
using Kiln.Native;
using Kiln.Native.Interop;
using Kiln.Tests.Core;

namespace Kiln.Tests.Plans;

public class PlanTests
{
    private static readonly DeviceInfo Host16G = new("cpu", "Test CPU", "", "", 0, 8, 1, 2, 32UL << 30, 16UL << 30,
        32UL << 20, 3000, 0, 0, 0);

    private string _dir = "";

    [SetUp]
    public void SetUp() => _dir = TestEnvironment.NewTempFolder("kiln-plans");

    [TearDown]
    public void TearDown() => Directory.Delete(_dir, recursive: true);

    [Test]
    public void Quick_runs_stream_and_memtest_then_the_gpu_tests()
    {
        var quick = PlanLoader.Resolve("quick");
        Assert.That(quick.Tests.Select(t => t.Key), Is.EqualTo(new[] { "stream", "memtest", "gemm", "power", "copy", "launch" }));
        Assert.That((quick.Tests[0].Iterations, quick.Tests[1].Iterations), Is.EqualTo((5, 1)));
        Assert.That(quick.Tests[0].Size!.Resolve(16UL << 30).SizeBytes, Is.EqualTo(256UL << 20));
        Assert.That(quick.Tests[1].Size!.Resolve(1UL << 30).SizeBytes, Is.EqualTo(256UL << 20), "memtest takes at most 1/4 of available");
        Assert.That(quick.Tests[2].DurationMs, Is.EqualTo(4000));
        Assert.That(quick.Tests.Select(t => t.Timeout), Is.All.Not.Null, "every quick test has a timeout");
        Assert.That((quick.Loop, quick.Retest), Is.EqualTo((false, 2)));
        Assert.That(quick.HealthBefore, Does.Contain("kmsg"));
    }

    [Test]
    public void The_tiers_fit_their_budgets_on_an_eight_gpu_node()
    {
        // Timed tests run device after device: their durations bound the wall time of a tier.
        static double TimedSeconds(Plan p) => p.Tests.Sum(t => (t.DurationMs ?? 0) / 1000.0) * 8;
        Assert.That(TimedSeconds(PlanLoader.Resolve("quick")), Is.LessThanOrEqualTo(60), "quick: <= 2 min with everything else");
        Assert.That(TimedSeconds(PlanLoader.Resolve("standard")), Is.LessThanOrEqualTo(17 * 60), "standard: <= 20 min");
        var soak = PlanLoader.Resolve("soak");
        Assert.That((soak.Loop, soak.Duration), Is.EqualTo((true, (TimeSpan?)TimeSpan.FromHours(24))));
    }

    [Test]
    public void Plan_show_prints_the_embedded_yaml_as_shipped()
    {
        foreach (var name in PlanLoader.BuiltInNames)
        {
            var file = Path.Combine(TestEnvironment.RepoRoot, "managed", "Kiln.Core", "Plans", "BuiltIn", $"{name}.yaml");
            Assert.That(PlanLoader.BuiltInText(name), Is.EqualTo(File.ReadAllText(file)));
            Assert.That(PlanLoader.BuiltIn(name).Text, Is.EqualTo(File.ReadAllText(file)));
        }
    }

    [Test]
    public void An_unknown_plan_names_the_known_ones()
    {
        var e = Assert.Throws<UsageException>(() => PlanLoader.Resolve("nosuch"))!;
        Assert.That(e.Message, Does.StartWith("--plan: unknown plan 'nosuch' (known: quick, standard, soak; or a YAML file"));
    }

    [Test]
    public void A_user_plan_file_loads_every_knob()
    {
        TestEnvironment.RequireNative();  // params: come from the knob catalog
        var path = Write("mine.yaml", """
            name: mine
            description: a short acceptance
            retest: 1
            health:
              before: [inventory, kmsg]
              after: all
            tests:
              - test: stream
                size: 64MiB
                size_cap: 10%
                iterations: 3
                ops: [copy, triad]
                timeout: 90s
              - test: memtest
                size: 25%
                patterns: [walking_ones, modulo_20]
                seed: 42
                threads: 2
              - test: gemm
                duration: 30s
                params: { matrix_n: 4096 }
            """);
        var plan = PlanLoader.Resolve(path);
        Assert.That((plan.Name, plan.Source, plan.Retest), Is.EqualTo(("mine", path, 1)));
        Assert.That(plan.HealthBefore, Is.EqualTo(new[] { "inventory", "kmsg" }));
        Assert.That(plan.HealthAfter, Is.EqualTo(PlanLoader.HealthSources));
        var (stream, memtest, gemm) = (plan.Tests[0], plan.Tests[1], plan.Tests[2]);
        Assert.That(stream.OpMask, Is.EqualTo((uint)(kiln_stream_op.KILN_STREAM_COPY | kiln_stream_op.KILN_STREAM_TRIAD)));
        Assert.That(stream.Size!.Resolve(100UL << 20).SizeBytes, Is.EqualTo(10UL << 20), "the cap applies");
        Assert.That(stream.Timeout, Is.EqualTo(TimeSpan.FromSeconds(90)));
        Assert.That((memtest.Size!.Fraction, memtest.Seed, memtest.Threads), Is.EqualTo(((double?)0.25, (ulong?)42, (int?)2)));
        Assert.That(Catalog.PatternsIn(memtest.PatternMask), Is.EqualTo(new[] { "walking_ones", "modulo_20" }));
        Assert.That((gemm.DurationMs, gemm.Kernel["matrix_n"]), Is.EqualTo(((ulong?)30000, (long?)4096)));
    }

    // Each bad plan: the exact "file:line: field: problem" a user reads.
    [TestCase("tests:\n  - test: stream\n    itterations: 3\n", 3, "tests[0].itterations: unknown key (known: test, size, size_cap,")]
    [TestCase("tests:\n  - test: strem\n", 2, "tests[0].test: unknown test 'strem' (known: stream, memtest, gemm, power, copy, launch, tcp, rdma, allreduce)")]
    [TestCase("tests:\n  - test: stream\n    size: lots\n", 3, "tests[0].size: cannot read 'lots' as a size")]
    [TestCase("tests:\n  - test: stream\n    iterations: 0\n", 3, "tests[0].iterations: 0 is not in 1..1000000")]
    [TestCase("tests:\n  - test: stream\n    timeout: soon\n", 3, "tests[0].timeout: cannot read 'soon' as a duration")]
    [TestCase("tests:\n  - test: stream\n    ops: [copy, fma]\n", 3, "tests[0].ops: unknown operation 'fma'")]
    [TestCase("tests:\n  - test: stream\n    size_cap: 10%\n", 3, "tests[0].size_cap: caps a size: give size too")]
    [TestCase("duration: 24h\ntests:\n  - test: stream\n", 1, "duration: only a looping plan (loop: true) has a duration")]
    [TestCase("health:\n  before: [nvml, smart]\ntests:\n  - test: stream\n", 2, "health.before: unknown health check 'smart' (known: all, inventory, nvml,")]
    [TestCase("name: empty\ntests: []\n", 2, "tests: a plan needs at least one test")]
    [TestCase("tests:\n  - test: stream\n   bad: [\n", 3, "not valid YAML")]
    public void A_bad_plan_file_names_file_line_and_field(string yaml, int line, string problem)
    {
        var path = Write("bad.yaml", yaml);
        var e = Assert.Throws<UsageException>(() => PlanLoader.Resolve(path))!;
        Assert.That(e.Message, Does.StartWith($"{path}:{line}: {problem}"));
    }

    // params: takes the test's knobs from libkiln's knob catalog, with its ranges.
    [TestCase("tests:\n  - test: stream\n    params: { vec: 4 }\n", 3, "tests[0].params.vec: 4 is not one of 1, 2 (cuda, hip, emu)")]
    [TestCase("tests:\n  - test: gemm\n    params: { block: 256 }\n", 3, "tests[0].params.block: gemm has no knob 'block' (gemm's knobs: matrix_n)")]
    [TestCase("tests:\n  - test: memtest\n    params:\n      unroll: 3\n", 4, "tests[0].params.unroll: 3 is not one of 1, 2, 4, 8 (cuda, hip, emu)")]
    [TestCase("tests:\n  - test: gemm\n    params: { matrix_n: big }\n", 3, "tests[0].params.matrix_n: 'big' is not a whole number")]
    public void Params_are_the_tests_knobs_from_the_catalog(string yaml, int line, string problem)
    {
        TestEnvironment.RequireNative();
        var path = Write("knobs.yaml", yaml);
        var e = Assert.Throws<UsageException>(() => PlanLoader.Resolve(path))!;
        Assert.That(e.Message, Does.StartWith($"{path}:{line}: {problem}"));
    }

    [Test]
    public void Overrides_reach_every_test_and_injections_only_theirs()
    {
        var plan = PlanLoader.Resolve("quick").With(new TestOverrides
        {
            Size = SizeSpec.Exact(64UL << 20),
            Threads = 2,
            Injections = [InjectionSpec.Parse("memtest:flips=3,seed=7")],
        });
        Assert.That(plan.Tests.Select(t => t.Size!.Bytes), Is.All.EqualTo(64UL << 20));
        Assert.That(plan.Tests.Select(t => t.Threads), Is.All.EqualTo(2));
        Assert.That(plan.Tests[0].Injections, Is.Empty);
        Assert.That(plan.Tests[1].Injections.Single().Flips, Is.EqualTo(3));
    }

    [Test]
    public void An_injection_for_a_test_outside_the_plan_is_refused()
    {
        var plan = PlanLoader.Parse(YamlConfig.Parse("t.yaml", "name: t\ntests:\n  - test: stream\n"), "t");
        var e = Assert.Throws<UsageException>(() => plan.With(new TestOverrides { Injections = [InjectionSpec.Parse("gemm:corrupt=1")] }))!;
        Assert.That(e.Message, Is.EqualTo("--inject: test 'gemm' is not in plan 't' (stream)"));
    }

    [Test]
    public void A_spec_becomes_native_parameters()
    {
        TestEnvironment.RequireNative();
        var spec = new TestSpec(TestKind.Memtest)
        {
            Size = SizeSpec.Exact(64UL << 20), PatternMask = 1, Injections = [InjectionSpec.Parse("memtest:flips=3,seed=7")],
        };
        var p = spec.ToParams(Host16G);
        Assert.That((p.Test, p.SizeBytes, p.PatternMask, p.InjectFlips, p.InjectSeed),
            Is.EqualTo((TestKind.Memtest, 64UL << 20, 1u, 3, 7UL)));
        Assert.That(p.MaxErrorReports, Is.GreaterThan(0u), "native defaults are kept where the spec is silent");
    }

    private string Write(string name, string text)
    {
        var path = Path.Combine(_dir, name);
        File.WriteAllText(path, text);
        return path;
    }

    [TestCase("  - test: memtest\n    ops: [copy]\n", "t.yaml:4: tests[0].ops: means nothing for memtest (memtest takes: test, size, size_cap, gpu_size, iterations, threads, patterns, seed, duration, timeout, params)")]
    [TestCase("  - test: stream\n    patterns: [walking_ones]\n", "t.yaml:4: tests[0].patterns: means nothing for stream")]
    [TestCase("  - test: gemm\n    size: 1GiB\n", "t.yaml:4: tests[0].size: means nothing for gemm")]
    [TestCase("  - test: launch\n    duration: 10s\n", "t.yaml:4: tests[0].duration: means nothing for launch")]
    [TestCase("  - test: copy\n    threads: 4\n", "t.yaml:4: tests[0].threads: means nothing for copy")]
    public void A_key_its_test_does_not_read_is_refused_with_the_line(string test, string message)
    {
        var e = Assert.Throws<Kiln.Core.UsageException>(() => PlanLoader.Parse(YamlConfig.Parse("t.yaml", "name: t\ntests:\n" + test), "t"));
        Assert.That(e!.Message, Does.Contain(message));
    }

    [Test]
    public void Keys_each_test_reads_are_accepted()
    {
        TestEnvironment.RequireNative();  // params: come from the knob catalog
        var plan = PlanLoader.Parse(YamlConfig.Parse("t.yaml", """
            name: t
            tests:
              - { test: stream, size: 64MiB, size_cap: 10%, iterations: 2, threads: 1, ops: [triad], duration: 1s, timeout: 10s }
              - { test: memtest, size: 64MiB, iterations: 1, threads: 1, patterns: [walking_ones], seed: 3, duration: 1s }
              - { test: gemm, iterations: 1, threads: 1, seed: 1, duration: 1s, params: { matrix_n: 512 } }
              - { test: power, threads: 1, seed: 1, duration: 1s }
              - { test: copy, size: 64MiB, iterations: 2, seed: 1 }
              - { test: launch, iterations: 100 }
            """), "t");
        Assert.That(plan.Tests, Has.Count.EqualTo(6));
    }
}
