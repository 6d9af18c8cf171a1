// The built-in quick plan and how command-line overrides change it.
using Kiln.Core;
using Kiln.Core.Plans;
using Kiln.Native;
using Kiln.Native.Interop;

namespace Kiln.Tests.Core;

public class PlanTests
{
    private static readonly DeviceInfo Host16G = new("cpu", "Test CPU", "", "", 0, 8, 1, 2, 32UL << 30, 16UL << 30,
        32UL << 20, 3000, 0, 0, 0);

    [Test]
    public void Quick_runs_stream_then_memtest()
    {
        var quick = BuiltInPlans.Get("quick");
        Assert.That(quick.Tests.Select(t => t.Key), Is.EqualTo(new[] { "stream", "memtest" }));
        Assert.That(quick.Tests[0].Iterations, Is.EqualTo(5));
        Assert.That(quick.Tests[1].Iterations, Is.EqualTo(1));
        Assert.That(quick.Tests[0].Size!.Resolve(16UL << 30).SizeBytes, Is.EqualTo(256UL << 20));
        Assert.That(quick.Tests[1].Size!.Resolve(1UL << 30).SizeBytes, Is.EqualTo(256UL << 20), "memtest takes at most 1/4 of available");
    }

    [Test]
    public void An_unknown_plan_names_the_known_ones()
    {
        var e = Assert.Throws<UsageException>(() => BuiltInPlans.Get("soak"))!;
        Assert.That(e.Message, Is.EqualTo("--plan: unknown plan 'soak' (known: quick)"));
    }

    [Test]
    public void Overrides_reach_every_test_and_injections_only_theirs()
    {
        var plan = BuiltInPlans.Quick.With(new TestOverrides
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
        var e = Assert.Throws<UsageException>(() => BuiltInPlans.Quick.With(new TestOverrides
        {
            Injections = [InjectionSpec.Parse("gemm:corrupt=1")],
        }))!;
        Assert.That(e.Message, Is.EqualTo("--inject: test 'gemm' is not in plan 'quick' (stream, memtest)"));
    }

    [Test]
    public void A_spec_becomes_native_parameters()
    {
        TestEnvironment.RequireNative();
        var spec = new TestSpec(kiln_test_kind.KILN_TEST_MEMTEST)
        {
            Size = SizeSpec.Exact(64UL << 20), PatternMask = 1, Injections = [InjectionSpec.Parse("memtest:flips=3,seed=7")],
        };
        var p = spec.ToParams(Host16G);
        Assert.That((p.Test, p.SizeBytes, p.PatternMask, p.InjectFlips, p.InjectSeed),
            Is.EqualTo((kiln_test_kind.KILN_TEST_MEMTEST, 64UL << 20, 1u, 3, 7UL)));
        Assert.That(p.MaxErrorReports, Is.GreaterThan(0u), "native defaults are kept where the spec is silent");
    }
}
