// The hand-written layer over the bindings against the real libkiln.so: registry and devices,
// errors with the library's text, and runs that stream rows through an ITestSink.
using System.Runtime.InteropServices;
using Kiln.Native;
using Kiln.Native.Interop;
using Kiln.Tests.Core;

namespace Kiln.Tests.Native;

public sealed class WrapperTests
{
    private const ulong SmallBytes = 1 << 20;

    [SetUp]
    public void RequireNative() => TestEnvironment.RequireNative();

    [Test]
    public void TheRegistryListsTheCpuBackendWithOneDevice()
    {
        using var registry = Registry.Open();
        var cpu = registry.Backends.SingleOrDefault(b => b.Name == "cpu");
        Assert.That(cpu, Is.Not.Null, () => "backends: " + string.Join(", ", registry.Backends.Select(b => b.Name)));
        Assert.That(cpu!.DeviceCount, Is.EqualTo(1));
        Assert.That(cpu.PluginApiVersion, Is.EqualTo((uint)kiln_constants.KILN_PLUGIN_API_VERSION));
    }

    [Test]
    public void TheCpuDeviceDescribesItself()
    {
        using var registry = Registry.Open();
        using var device = registry.OpenDevice("cpu", 0);
        Assert.That(device.Info.Backend, Is.EqualTo("cpu"));
        Assert.That(device.Info.Index, Is.Zero);
        Assert.That(device.Info.ComputeUnits, Is.GreaterThanOrEqualTo(1));
        Assert.That(device.Info.TotalMemoryBytes, Is.GreaterThan(0UL));
        Assert.That(device.Info.Name, Is.Not.Empty);
    }

    [Test]
    public void AnUnknownBackendIsNotFoundAndTheMessageNamesIt()
    {
        using var registry = Registry.Open();
        var e = Assert.Throws<KilnException>(() => registry.OpenDevice("nosuch", 0));
        Assert.That(e!.Status, Is.EqualTo(KilnStatus.NotFound));
        Assert.That(e.Message, Does.Contain("nosuch"));
    }

    [Test]
    public void AnUnknownDeviceIndexIsNotFound()
    {
        using var registry = Registry.Open();
        var e = Assert.Throws<KilnException>(() => registry.OpenDevice("cpu", 7));
        Assert.That(e!.Status, Is.EqualTo(KilnStatus.NotFound));
        Assert.That(e.Message, Does.Contain("7"));
    }

    [Test]
    public unsafe void LastErrorTruncatesToTheBufferAndReportsTheWholeLength()
    {
        Assert.That(KilnNative.kiln_registry_create(null, out var registry), Is.EqualTo(kiln_status.KILN_OK));
        using var ownsRegistry = registry;
        var status = KilnNative.kiln_device_open(registry, "nosuch", 0, out var device);
        device.Dispose();  // never opened: no native call that could replace the error text
        Assert.That(status, Is.EqualTo(kiln_status.KILN_NOT_FOUND));

        nuint needed = KilnNative.kiln_last_error(null, 0);
        var whole = new byte[(int)needed];
        var small = new byte[8];
        small.AsSpan().Fill(0xFF);
        nuint reportedBySmall;
        fixed (byte* w = whole)
        fixed (byte* s = small)
        {
            Assert.That(KilnNative.kiln_last_error(w, needed), Is.EqualTo(needed));
            reportedBySmall = KilnNative.kiln_last_error(s, (nuint)small.Length);
        }

        string text = System.Text.Encoding.UTF8.GetString(whole, 0, whole.Length - 1);
        Assert.That(needed, Is.GreaterThan((nuint)small.Length), "the probe text must be longer than the small buffer");
        Assert.That(whole[^1], Is.Zero);
        Assert.That(text, Does.Contain("nosuch"));
        Assert.That(reportedBySmall, Is.EqualTo(needed));
        Assert.That(small[^1], Is.Zero, "truncated text is NUL-terminated");
        Assert.That(System.Text.Encoding.UTF8.GetString(small, 0, small.Length - 1), Is.EqualTo(text[..(small.Length - 1)]));
    }

    [Test]
    public void ValidateNamesTheParameterOutOfRange()
    {
        using var registry = Registry.Open();
        using var device = registry.OpenDevice("cpu", 0);
        var p = TestParams.Defaults(TestKind.Stream);
        p.Iterations = 0;
        var e = Assert.Throws<KilnException>(() => device.Validate(p));
        Assert.That(e!.Status, Is.EqualTo(KilnStatus.InvalidArgument));
        Assert.That(e.Message, Does.Contain("iterations"));
    }

    [Test]
    public void DefaultsComeFromTheLibrary()
    {
        var p = TestParams.Defaults(TestKind.Memtest);
        Assert.That(p.Test, Is.EqualTo(TestKind.Memtest));
        Assert.That(p.Iterations, Is.GreaterThanOrEqualTo(1));
        Assert.That(p.MaxErrorReports, Is.EqualTo(1000u));
        Assert.That(p.Injected, Is.False);
        var e = Assert.Throws<KilnException>(() => TestParams.Defaults((TestKind)99));
        Assert.That(e!.Status, Is.EqualTo(KilnStatus.InvalidArgument));
    }

    [Test]
    public void NamesAreTheLibrarysStableKeys()
    {
        Assert.That(Names.Test(TestKind.Stream), Is.EqualTo("stream"));
        Assert.That(Names.Test(TestKind.Memtest), Is.EqualTo("memtest"));
        Assert.That(Names.Pattern((int)kiln_memtest_pattern.KILN_PATTERN_WALKING_ONES), Is.EqualTo("walking_ones"));
        Assert.That(Names.Test((TestKind)99), Is.EqualTo("unknown"));
        Assert.That(Names.Status(KilnStatus.NotFound), Is.EqualTo("not_found"));
    }

    [Test]
    public void AStreamRunReportsMetricsAndProgressThroughTheSink()
    {
        using var registry = Registry.Open();
        using var device = registry.OpenDevice("cpu", 0);
        var p = TestParams.Defaults(TestKind.Stream);
        p.SizeBytes = SmallBytes;
        p.Iterations = 2;
        p.Threads = 1;
        var sink = new RecordingSink();

        var status = device.Run(p, sink, CancellationToken.None);

        Assert.That(status, Is.EqualTo(KilnStatus.Ok));
        Assert.That(sink.Metrics, Is.Not.Empty);
        Assert.That(sink.Metrics.Select(m => m.Test), Is.All.EqualTo("stream"));
        Assert.That(sink.Metrics.Any(m => m.Name == "triad_gbps" && m.Unit == "GB/s" && m.Value > 0), Is.True,
            () => string.Join("\n", sink.Metrics));
        Assert.That(sink.Metrics.Select(m => m.Injected), Is.All.False);
        Assert.That(sink.Errors, Is.Empty);
        Assert.That(sink.Progress, Is.Not.Empty.And.All.InRange(0.0, 1.0));
    }

    [Test]
    public unsafe void InjectedFlipsArriveAsDataErrorsWherePredicted()
    {
        using var registry = Registry.Open();
        using var device = registry.OpenDevice("cpu", 0);
        var p = TestParams.Defaults(TestKind.Memtest);
        p.SizeBytes = SmallBytes;
        p.Threads = 1;
        p.PatternMask = 1u << (int)kiln_memtest_pattern.KILN_PATTERN_WALKING_ONES
                        | 1u << (int)kiln_memtest_pattern.KILN_PATTERN_WALKING_ZEROS;
        p.InjectFlips = 3;
        p.InjectSeed = 7;
        Assert.That(p.Injected, Is.True);
        var sink = new RecordingSink();

        Assert.That(device.Run(p, sink, CancellationToken.None), Is.EqualTo(KilnStatus.Ok));

        var offsets = new ulong[3];
        var bits = new uint[3];
        fixed (ulong* o = offsets)
        fixed (uint* b = bits)
            Assert.That(KilnNative.kiln_injection_positions(7, 3, SmallBytes, o, b), Is.EqualTo(kiln_status.KILN_OK));
        var predicted = offsets.Zip(bits, (o, b) => (o, (int)b)).OrderBy(x => x.o).ToArray();
        var found = sink.Errors.Select(e => (e.OffsetBytes, e.FlippedBits.Single())).OrderBy(x => x.OffsetBytes).ToArray();
        Assert.That(found, Is.EqualTo(predicted));
        Assert.That(sink.Errors.Select(e => e.Injected), Is.All.True);
        Assert.That(sink.Errors.Select(e => (e.Test, e.Pattern, e.WordBytes)), Is.All.EqualTo(("memtest", "walking_ones", 8u)));
        // memtest builds these names in one reused buffer: each row must still carry its own name.
        Assert.That(sink.Metrics.Select(m => m.Name), Is.SupersetOf(new[]
            { "errors_walking_ones", "walking_ones_gbps", "errors_walking_zeros", "walking_zeros_gbps" }));
        Assert.That(sink.Metrics.Single(m => m.Name == "errors_walking_ones").Value, Is.EqualTo(3));
        Assert.That(sink.Metrics.Single(m => m.Name == "errors_walking_zeros").Value, Is.Zero);
    }

    [Test]
    public void ACancelledTokenStopsTheRunWithCancelled()
    {
        using var registry = Registry.Open();
        using var device = registry.OpenDevice("cpu", 0);
        var p = TestParams.Defaults(TestKind.Stream);
        p.SizeBytes = SmallBytes;
        p.DurationMs = 60_000;  // would run a minute if the flag were not seen
        using var cancel = new CancellationTokenSource();
        var sink = new RecordingSink { OnFirstProgress = cancel.Cancel };
        var clock = System.Diagnostics.Stopwatch.StartNew();

        var status = device.Run(p, sink, cancel.Token);

        Assert.That(status, Is.EqualTo(KilnStatus.Cancelled));
        Assert.That(clock.Elapsed, Is.LessThan(TimeSpan.FromSeconds(10)));
    }

    [Test]
    public void AnExceptionFromTheSinkStopsTheRunAndIsRethrown()
    {
        using var registry = Registry.Open();
        using var device = registry.OpenDevice("cpu", 0);
        var p = TestParams.Defaults(TestKind.Stream);
        p.SizeBytes = SmallBytes;
        p.DurationMs = 60_000;
        var sink = new RecordingSink { ThrowOnMetric = new IOException("disk full") };
        var clock = System.Diagnostics.Stopwatch.StartNew();

        var e = Assert.Throws<IOException>(() => device.Run(p, sink, CancellationToken.None));

        Assert.That(e, Is.SameAs(sink.ThrowOnMetric));
        Assert.That(sink.Metrics, Has.Count.EqualTo(1), "no row reaches a sink after it threw");
        Assert.That(clock.Elapsed, Is.LessThan(TimeSpan.FromSeconds(10)));
    }

    [Test]
    public void ADeviceKeepsItsRegistryAliveAfterTheRegistryIsDisposed()
    {
        var registry = Registry.Open();
        using var device = registry.OpenDevice("cpu", 0);
        registry.Dispose();
        var p = TestParams.Defaults(TestKind.Stream);
        p.SizeBytes = SmallBytes;
        p.Iterations = 1;
        Assert.That(device.Run(p, new RecordingSink(), CancellationToken.None), Is.EqualTo(KilnStatus.Ok));
    }

    [Test]
    public unsafe void TheSinkTextCacheNoticesAReusedBuffer()
    {
        byte* buffer = (byte*)NativeMemory.AllocZeroed(32);
        try
        {
            int cancelFlag = 0;
            var bridge = new SinkBridge(new RecordingSink(), &cancelFlag);
            "errors_walking_ones\0"u8.CopyTo(new Span<byte>(buffer, 31));
            Assert.That(bridge.Text(buffer), Is.EqualTo("errors_walking_ones"));
            Assert.That(bridge.Text(buffer), Is.SameAs(bridge.Text(buffer)), "an unchanged text is decoded once");
            "walking_ones_gbps\0"u8.CopyTo(new Span<byte>(buffer, 31));
            Assert.That(bridge.Text(buffer), Is.EqualTo("walking_ones_gbps"));
        }
        finally
        {
            NativeMemory.Free(buffer);
        }
    }

    private sealed class RecordingSink : ITestSink
    {
        public List<Metric> Metrics { get; } = [];
        public List<DataError> Errors { get; } = [];
        public List<double> Progress { get; } = [];
        public Exception? ThrowOnMetric { get; init; }
        public Action? OnFirstProgress { get; init; }

        public void OnMetric(in Metric metric)
        {
            Metrics.Add(metric);
            if (ThrowOnMetric is not null) throw ThrowOnMetric;
        }

        public void OnDataError(in DataError error) => Errors.Add(error);

        public void OnProgress(double fraction)
        {
            if (Progress.Count == 0) OnFirstProgress?.Invoke();
            Progress.Add(fraction);
        }
    }
}
