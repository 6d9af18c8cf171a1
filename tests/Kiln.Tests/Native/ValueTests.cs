// The managed values that need no native library: flipped bits of a data error, the injection flag.
using Kiln.Native;
using Kiln.Native.Interop;

namespace Kiln.Tests.Native;

public sealed class ValueTests
{
    [Test]
    public void FlippedBitsAreTheDifferingBitsAscending()
    {
        var error = new DataError("memtest", "walking_ones", 0x40, Expected: 0x8000_0000_0000_00A0, Actual: 0x01, 8, false);
        Assert.That(error.FlippedBits, Is.EqualTo(new[] { 0, 5, 7, 63 }));
        Assert.That(error with { Actual = error.Expected }, Has.Property(nameof(DataError.FlippedBits)).Empty);
    }

    [TestCase(0, 0, 0.0, false)]
    [TestCase(0, 0, 1.0, false)]
    [TestCase(3, 0, 0.0, true)]
    [TestCase(0, 2, 0.0, true)]
    [TestCase(0, 0, 0.5, true)]
    public void InjectedMeansAnyInjectionIsSet(int flips, int corrupt, double slowdown, bool injected)
    {
        var p = new TestParams { Test = TestKind.Memtest, InjectFlips = flips, InjectCorrupt = corrupt, InjectSlowdown = slowdown };
        Assert.That(p.Injected, Is.EqualTo(injected));
    }
}
