// Kiln's own names for the C enums the rest of the host keys on (tests, statuses) and the stable
// keys of tests, stream operations, memtest patterns and number formats. The generated enums meet
// the managed ones here and nowhere else; a test proves the two lists agree.
using Kiln.Native.Interop;

namespace Kiln.Native;

/// <summary>The tests a backend may implement (kiln_test_kind).</summary>
public enum TestKind
{
    Stream = (int)kiln_test_kind.KILN_TEST_STREAM,
    Memtest = (int)kiln_test_kind.KILN_TEST_MEMTEST,
    Gemm = (int)kiln_test_kind.KILN_TEST_GEMM,
    Power = (int)kiln_test_kind.KILN_TEST_POWER,
    Copy = (int)kiln_test_kind.KILN_TEST_COPY,
    Launch = (int)kiln_test_kind.KILN_TEST_LAUNCH,
    Tcp = (int)kiln_test_kind.KILN_TEST_TCP,
    Rdma = (int)kiln_test_kind.KILN_TEST_RDMA,
    Allreduce = (int)kiln_test_kind.KILN_TEST_ALLREDUCE,
}

/// <summary>What a native call returned (kiln_status).</summary>
public enum KilnStatus
{
    Ok = (int)kiln_status.KILN_OK,
    Cancelled = (int)kiln_status.KILN_CANCELLED,
    InvalidArgument = (int)kiln_status.KILN_INVALID_ARGUMENT,
    NotFound = (int)kiln_status.KILN_NOT_FOUND,
    Unsupported = (int)kiln_status.KILN_UNSUPPORTED,
    OutOfMemory = (int)kiln_status.KILN_OUT_OF_MEMORY,
    BackendError = (int)kiln_status.KILN_BACKEND_ERROR,
    Internal = (int)kiln_status.KILN_INTERNAL,
    PeerError = (int)kiln_status.KILN_PEER_ERROR,
}

/// <summary>The stable keys ("stream", "triad", "walking_ones", "fp64"), derived from the C names so no second list can drift.</summary>
public static class NativeKeys
{
    /// <summary>Tests by key, in their C order (KILN_TEST_COUNT excluded).</summary>
    public static IReadOnlyDictionary<string, TestKind> Tests { get; } =
        KeysOf<kiln_test_kind, TestKind>("KILN_TEST_", v => v != kiln_test_kind.KILN_TEST_COUNT, v => (TestKind)v);

    /// <summary>Stream operations by key; the value is the op_mask bit.</summary>
    public static IReadOnlyDictionary<string, uint> StreamOps { get; } =
        KeysOf<kiln_stream_op, uint>("KILN_STREAM_", v => v != kiln_stream_op.KILN_STREAM_ALL, v => (uint)v);

    /// <summary>Memtest patterns by key; the value is the pattern's index (bit 1 &lt;&lt; index of pattern_mask).</summary>
    public static IReadOnlyDictionary<string, int> Patterns { get; } =
        KeysOf<kiln_memtest_pattern, int>("KILN_PATTERN_", v => v != kiln_memtest_pattern.KILN_PATTERN_COUNT, v => (int)v);

    /// <summary>Number formats by key; the value is the dtype_mask bit.</summary>
    public static IReadOnlyDictionary<string, uint> Dtypes { get; } =
        KeysOf<kiln_dtype, uint>("KILN_DTYPE_", v => v != kiln_dtype.KILN_DTYPE_ALL, v => (uint)v);

    // KILN_PATTERN_WALKING_ONES -> "walking_ones": the C names are the single source of the keys.
    private static IReadOnlyDictionary<string, TOut> KeysOf<T, TOut>(string prefix, Func<T, bool> keep, Func<int, TOut> map)
        where T : struct, Enum
    {
        var keys = new Dictionary<string, TOut>();
        foreach (var value in Enum.GetValues<T>().Where(keep).OrderBy(v => Convert.ToInt64(v)))
            keys[Enum.GetName(value)![prefix.Length..].ToLowerInvariant()] = map(Convert.ToInt32(value));
        return keys;
    }
}
