// What a user types for --size, --inject, --param, --ops and --pattern: good values become the
// right numbers, bad ones a UsageException that names the option and the mistake.
using Kiln.Core;
using Kiln.Native;
using Kiln.Native.Interop;

namespace Kiln.Tests.Core;

public class SizeParsingTests
{
    [TestCase("1073741824", 1073741824UL)]
    [TestCase("64MiB", 64UL << 20)]
    [TestCase("64mib", 64UL << 20)]
    [TestCase("1.5GiB", 3UL << 29)]
    [TestCase("4GB", 4_000_000_000UL)]
    [TestCase("512K", 512UL << 10)]
    [TestCase("2 TiB", 2UL << 40)]
    [TestCase("4096B", 4096UL)]
    public void Sizes_in_bytes_and_units(string text, ulong bytes)
    {
        var size = SizeSpec.Parse(text, "--size");
        Assert.That(size.Bytes, Is.EqualTo(bytes));
        Assert.That(size.Fraction, Is.Null);
    }

    [Test]
    public void A_percentage_is_a_fraction_of_available_memory()
    {
        var size = SizeSpec.Parse("25%", "--size");
        Assert.That(size.Bytes, Is.Null);
        Assert.That(size.Fraction, Is.EqualTo(0.25));
        Assert.That(size.Resolve(availableBytes: 1000), Is.EqualTo((0UL, 0.25)));
    }

    [Test]
    public void A_plan_default_is_capped_by_available_memory()
    {
        var size = SizeSpec.AtMost(512UL << 20, 0.25);
        Assert.That(size.Resolve(availableBytes: 16UL << 30).SizeBytes, Is.EqualTo(512UL << 20));
        Assert.That(size.Resolve(availableBytes: 1UL << 30).SizeBytes, Is.EqualTo(256UL << 20));
    }

    [TestCase("lots", "cannot read 'lots' as a size")]
    [TestCase("-5GiB", "not a positive size")]
    [TestCase("0", "not a positive size")]
    [TestCase("150%", "not a percentage")]
    [TestCase("0%", "not a percentage")]
    [TestCase("12XB", "cannot read '12XB'")]
    [TestCase("", "cannot read")]
    public void Bad_sizes_name_the_option(string text, string problem)
    {
        var e = Assert.Throws<UsageException>(() => SizeSpec.Parse(text, "--size"))!;
        Assert.That(e.Option, Is.EqualTo("--size"));
        Assert.That(e.Message, Does.StartWith("--size: ").And.Contain(problem));
    }

    [TestCase(64UL << 40, "64 TiB")]
    [TestCase(24_800_000_000UL, "23.1 GiB")]
    [TestCase(512UL << 20, "512 MiB")]
    [TestCase(1536UL, "1.5 KiB")]
    [TestCase(100UL, "100 B")]
    public void Sizes_print_in_binary_units(ulong bytes, string text) =>
        Assert.That(ByteSize.Format(bytes), Is.EqualTo(text));
}

public class InjectionParsingTests
{
    [Test]
    public void Memtest_flips_with_a_seed()
    {
        var spec = InjectionSpec.Parse("memtest:flips=3,seed=7");
        Assert.That(spec.Test, Is.EqualTo(TestKind.Memtest));
        Assert.That((spec.Flips, spec.Seed, spec.Slowdown), Is.EqualTo(((int?)3, (ulong?)7, (double?)null)));
        Assert.That(spec.ToString(), Is.EqualTo("memtest:flips=3,seed=7"));

        var p = new TestParams();
        spec.ApplyTo(p, 0);
        Assert.That((p.InjectFlips, p.InjectSeed), Is.EqualTo((3, 7UL)));
        Assert.That(p.Injected, Is.True);
    }

    [Test]
    public void Stream_slowdown()
    {
        var spec = InjectionSpec.Parse("stream:slowdown=0.5");
        var p = new TestParams();
        spec.ApplyTo(p, 0);
        Assert.That(p.InjectSlowdown, Is.EqualTo(0.5));
        Assert.That(p.InjectFlips, Is.Zero);
        Assert.That(spec.ToString(), Is.EqualTo("stream:slowdown=0.5"));
    }

    [Test]
    public void Hang_and_crash_go_with_every_test_and_device_limits_an_injection_to_one_device()
    {
        var hang = InjectionSpec.Parse("memtest:hang=1,device=2");
        Assert.That(hang.ToString(), Is.EqualTo("memtest:hang=1,device=2"));
        var (on, off) = (new TestParams(), new TestParams());
        hang.ApplyTo(on, 2);
        hang.ApplyTo(off, 1);
        Assert.That((on.InjectHang, on.Injected), Is.EqualTo((1, true)));
        Assert.That((off.InjectHang, off.Injected), Is.EqualTo((0, false)), "device 1 runs as it would without --inject");

        foreach (var test in new[] { "stream", "memtest", "gemm", "power", "copy", "launch" })
        {
            var p = new TestParams();
            InjectionSpec.Parse($"{test}:crash=1").ApplyTo(p, 0);
            Assert.That(p.InjectCrash, Is.EqualTo(1), test);
        }
        var corrupt = new TestParams();
        InjectionSpec.Parse("copy:corrupt=4,seed=3").ApplyTo(corrupt, 0);
        Assert.That((corrupt.InjectCorrupt, corrupt.InjectSeed), Is.EqualTo((4, 3UL)));
    }

    [TestCase("gpu:flips=1", "unknown test 'gpu'")]
    [TestCase("memtest:bogus=1", "unknown key 'bogus' for memtest")]
    [TestCase("stream:flips=1", "unknown key 'flips' for stream")]
    [TestCase("memtest:flips=-3", "memtest flips: -3 is negative")]
    [TestCase("memtest:flips=many", "memtest flips: 'many' is not a whole number")]
    [TestCase("memtest:seed=-1", "memtest seed: '-1' is not a whole number >= 0")]
    [TestCase("stream:slowdown=2", "not a fraction of full speed")]
    [TestCase("stream:slowdown=0", "not a fraction of full speed")]
    [TestCase("memtest", "is not TEST:key=value")]
    [TestCase("memtest:", "is not TEST:key=value")]
    [TestCase("memtest:flips", "'flips' in 'memtest:flips' is not key=value")]
    [TestCase("copy:flips=1", "unknown key 'flips' for copy (known: corrupt, seed, hang, crash, device)")]
    [TestCase("launch:hang=yes", "launch hang: 'yes' is not 0 or 1")]
    [TestCase("gemm:crash=1,device=-1", "gemm device: -1 is negative")]
    public void Bad_injections_name_the_option_and_the_mistake(string text, string problem)
    {
        var e = Assert.Throws<UsageException>(() => InjectionSpec.Parse(text))!;
        Assert.That(e.Option, Is.EqualTo("--inject"));
        Assert.That(e.Message, Does.StartWith("--inject: ").And.Contain(problem));
    }
}

public class KernelParamParsingTests
{
    [SetUp]
    public void RequireNative() => TestEnvironment.RequireNative();  // the knob catalog is libkiln's

    [Test]
    public void Every_knob_of_a_test_applies_to_its_field()
    {
        var k = new KernelParams().With("stream", "block", 128).With("stream", "grid", 1024).With("stream", "vec", 1).With("stream", "unroll", 8);
        var p = new TestParams();
        k.ApplyTo(p);
        Assert.That((p.Block, p.Grid, p.Vec, p.Unroll), Is.EqualTo((128, 1024, 1, 8)));
        new KernelParams().With("gemm", "matrix_n", 512).ApplyTo(p);
        Assert.That(p.MatrixN, Is.EqualTo(512));
    }

    [Test]
    public void Every_knob_in_the_catalog_has_a_field_here()
    {
        foreach (var knob in KnobCatalog.Entries)
        {
            var value = knob.Values.Count > 0 ? knob.Values[0] : knob.Min;
            Assert.DoesNotThrow(() => new KernelParams().With(knob.Test, knob.Name, value).ApplyTo(new TestParams()), $"{knob.Test}.{knob.Name}");
        }
    }

    [Test]
    public void Zero_keeps_the_backend_default()
    {
        var p = new TestParams { Block = 128 };
        new KernelParams().With("stream", "block", 0).With("stream", "vec", 2).ApplyTo(p);
        Assert.That((p.Block, p.Vec), Is.EqualTo((128, 2)));
    }

    [TestCase("stream", "warp", 32, "--warp: stream has no knob 'warp' (stream's knobs: block, grid, vec, unroll)")]
    [TestCase("stream", "vec", 4, "--vec: 4 is not one of 1, 2 (cuda, hip, emu)")]
    [TestCase("stream", "block", -1, "--block: -1 is negative")]
    [TestCase("gemm", "block", 256, "--block: gemm has no knob 'block' (gemm's knobs: matrix_n)")]
    [TestCase("gemm", "matrix_n", 2_000_000, "--matrix-n: 2000000 is not in 1..1048576 (cpu, cuda, hip, emu)")]
    [TestCase("launch", "grid", 8, "--grid: launch has no knob 'grid' (launch's knobs: none)")]
    public void A_knob_the_catalog_does_not_allow_names_the_option_and_the_range(string test, string name, long value, string message)
    {
        var e = Assert.Throws<UsageException>(() => new KernelParams().With(test, name, value))!;
        Assert.That(e.Message, Is.EqualTo(message));
    }
}

public class CatalogTests
{
    [Test]
    public void Keys_come_from_the_C_enums()
    {
        Assert.That(Catalog.Tests.Keys, Is.EqualTo(new[] { "stream", "memtest", "gemm", "power", "copy", "launch", "tcp", "rdma", "allreduce" }));
        Assert.That(Catalog.StreamOps.Keys, Is.EqualTo(new[] { "copy", "scale", "add", "triad", "read", "write" }));
        Assert.That(Catalog.Patterns.Keys, Is.EqualTo(new[]
            { "walking_ones", "walking_zeros", "own_address", "moving_inv_fixed", "moving_inv_random", "modulo_20" }));
    }

    [Test]
    public void Keys_match_the_names_the_library_writes()
    {
        TestEnvironment.RequireNative();
        foreach (var (key, test) in Catalog.Tests) Assert.That(Names.Test(test), Is.EqualTo(key));
        foreach (var (key, pattern) in Catalog.Patterns) Assert.That(Names.Pattern(pattern), Is.EqualTo(key));
    }

    [Test]
    public void Op_and_pattern_lists_become_masks()
    {
        Assert.That(Catalog.ParseOpMask("copy,triad", "--ops"), Is.EqualTo(1u | 8u));
        Assert.That(Catalog.ParsePatternMask("walking_ones, modulo_20", "--pattern"), Is.EqualTo(1u | 32u));
        Assert.That(Catalog.OpsIn(1u | 8u), Is.EqualTo(new[] { "copy", "triad" }));
        Assert.That(Catalog.PatternsIn(0), Has.Exactly(6).Items);
    }

    [Test]
    public void Unknown_names_are_refused()
    {
        var e = Assert.Throws<UsageException>(() => Catalog.ParsePatternMask("walking_ones,checkerboard", "--pattern"))!;
        Assert.That(e.Message, Does.StartWith("--pattern: unknown pattern 'checkerboard'").And.Contain("walking_ones"));
        e = Assert.Throws<UsageException>(() => Catalog.ParseOpMask("copy,fma", "--ops"))!;
        Assert.That(e.Message, Does.StartWith("--ops: unknown operation 'fma'"));
    }
}
