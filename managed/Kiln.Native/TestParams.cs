// A test's parameters: the managed mirror of kiln_test_params, starting from the library's defaults.
using Kiln.Native.Interop;

namespace Kiln.Native;

public sealed class TestParams
{
    public TestKind Test;
    /// <summary>Worker threads of the CPU backend; 0 = every allowed CPU.</summary>
    public int Threads;
    /// <summary>Bytes to test (memtest) or per array (stream); 0 = use <see cref="SizeFraction"/>.</summary>
    public ulong SizeBytes;
    /// <summary>Fraction of available memory when <see cref="SizeBytes"/> is 0.</summary>
    public double SizeFraction;
    public int Iterations;
    /// <summary>kiln_stream_op bits; 0 = all.</summary>
    public uint OpMask;
    /// <summary>Bits (1 &lt;&lt; kiln_memtest_pattern); 0 = all.</summary>
    public uint PatternMask;
    public uint MaxErrorReports;
    public ulong Seed;
    /// <summary>Repeat until this much time passed; 0 = iterations only.</summary>
    public ulong DurationMs;
    public int Block, Grid, Vec, Unroll;
    public int InjectFlips, InjectCorrupt;
    public ulong InjectSeed;
    /// <summary>Run at this fraction of full speed; 0 or 1 = no slowdown.</summary>
    public double InjectSlowdown;
    /// <summary>gemm: the n of the n x n x n product; 0 = backend default.</summary>
    public int MatrixN;
    /// <summary>gemm, power: kiln_dtype bits; 0 = the backend's default set.</summary>
    public uint DtypeMask;
    /// <summary>1: after its first metric the test never returns and ignores cancel (a hung kernel).</summary>
    public int InjectHang;
    /// <summary>1: after its first metric the process dies of SIGSEGV.</summary>
    public int InjectCrash;

    /// <summary>True when any fault injection is set, so every result of the run must say so.</summary>
    public bool Injected => InjectFlips != 0 || InjectCorrupt != 0 || InjectSlowdown is not (0 or 1) || InjectHang != 0 || InjectCrash != 0;

    /// <summary>The library's defaults for a test (kiln_test_params_init).</summary>
    public static unsafe TestParams Defaults(TestKind test)
    {
        KilnLibrary.EnsureLoaded();
        kiln_test_params native;
        KilnException.Check(KilnNative.kiln_test_params_init((int)test, &native));
        return new TestParams
        {
            Test = (TestKind)native.test, Threads = native.threads, SizeBytes = native.size_bytes,
            SizeFraction = native.size_fraction, Iterations = native.iterations, OpMask = native.op_mask,
            PatternMask = native.pattern_mask, MaxErrorReports = native.max_error_reports, Seed = native.seed,
            DurationMs = native.duration_ms, Block = native.block, Grid = native.grid, Vec = native.vec,
            Unroll = native.unroll, InjectFlips = native.inject_flips, InjectCorrupt = native.inject_corrupt,
            InjectSeed = native.inject_seed, InjectSlowdown = native.inject_slowdown,
            MatrixN = native.matrix_n, DtypeMask = native.dtype_mask, InjectHang = native.inject_hang, InjectCrash = native.inject_crash,
        };
    }

    internal kiln_test_params ToNative() => new()
    {
        test = (int)Test, threads = Threads, size_bytes = SizeBytes, size_fraction = SizeFraction,
        iterations = Iterations, op_mask = OpMask, pattern_mask = PatternMask, max_error_reports = MaxErrorReports,
        seed = Seed, duration_ms = DurationMs, block = Block, grid = Grid, vec = Vec, unroll = Unroll,
        inject_flips = InjectFlips, inject_corrupt = InjectCorrupt, inject_seed = InjectSeed,
        inject_slowdown = InjectSlowdown, matrix_n = MatrixN, dtype_mask = DtypeMask, inject_hang = InjectHang, inject_crash = InjectCrash,
    };
}
