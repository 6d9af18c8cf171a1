// What a running test reports (ITestSink, Metric, DataError) and the bridge from the native
// kiln_sink callbacks to it; no exception from the sink ever unwinds into native frames.
using System.Numerics;
using System.Runtime.ExceptionServices;
using System.Runtime.InteropServices;
using System.Text;
using Kiln.Native.Interop;

namespace Kiln.Native;

/// <summary>Receives a test's results as they are measured: from native threads, never concurrently.</summary>
public interface ITestSink
{
    void OnMetric(in Metric metric);
    void OnDataError(in DataError error);
    void OnProgress(double fraction);
}

public readonly record struct Metric(string Test, string Name, double Value, string Unit, bool Injected);

/// <param name="Sm">The SM (or CU) that made or found the wrong word; -1 when the host checked, or on the CPU.</param>
public readonly record struct DataError(string Test, string Pattern, ulong OffsetBytes, ulong Expected,
    ulong Actual, uint WordBytes, bool Injected, int Sm = -1)
{
    /// <summary>Bit numbers set in Expected ^ Actual, ascending.</summary>
    public IReadOnlyList<int> FlippedBits
    {
        get
        {
            ulong flipped = Expected ^ Actual;
            var bits = new int[BitOperations.PopCount(flipped)];
            for (int i = 0; flipped != 0; flipped &= flipped - 1) bits[i++] = BitOperations.TrailingZeroCount(flipped);
            return bits;
        }
    }
}

/// <summary>
/// One native call that streams into a kiln_sink and polls a cancel flag (kiln_run, kiln_net_probe,
/// kiln_coll_run): the sink bridged, the token mirrored into a native flag the call's threads may read
/// until it returns, a sink's exception rethrown, and any status but OK and CANCELLED thrown.
/// </summary>
internal static unsafe class SinkCall
{
    /// <param name="call">Called with the kiln_sink* and the int* cancel flag, as nint.</param>
    public static KilnStatus Run(ITestSink sink, CancellationToken cancel, string name, Func<nint, nint, kiln_status> call)
    {
        ArgumentNullException.ThrowIfNull(sink);
        // Native memory, not a pinned managed int: native threads poll it until the call returns.
        int* cancelFlag = (int*)NativeMemory.AllocZeroed(sizeof(int));
        var bridge = new SinkBridge(sink, cancelFlag);
        var bridgeHandle = GCHandle.Alloc(bridge);
        try
        {
            kiln_status status;
            KilnException? failure = null;
            // Disposing the registration waits for a callback in flight, so the flag outlives every write.
            using (cancel.Register(static flag => Volatile.Write(ref *(int*)(nint)flag!, 1), (nint)cancelFlag))
            {
                var nativeSink = bridge.ToNative(GCHandle.ToIntPtr(bridgeHandle));
                status = call((nint)(&nativeSink), (nint)cancelFlag);
                if (status is not (kiln_status.KILN_OK or kiln_status.KILN_CANCELLED))
                    failure = KilnException.FromLastError(status, name);
            }
            bridge.RethrowSinkFailure();
            return failure is null ? (KilnStatus)status : throw failure;
        }
        finally
        {
            bridgeHandle.Free();
            NativeMemory.Free(cancelFlag);
        }
    }
}

/// <summary>A native call that polls a cancel flag but reports through no sink (a server, the rendezvous).</summary>
internal static unsafe class CancelCall
{
    /// <param name="call">Called with the int* cancel flag, as nint; its status is returned as is.</param>
    public static kiln_status Run(CancellationToken cancel, Func<nint, kiln_status> call)
    {
        int* flag = (int*)NativeMemory.AllocZeroed(sizeof(int));
        try
        {
            using (cancel.Register(static f => Volatile.Write(ref *(int*)(nint)f!, 1), (nint)flag))
                return call((nint)flag);
        }
        finally
        {
            NativeMemory.Free(flag);
        }
    }
}

/// <summary>The managed end of one kiln_run's kiln_sink; the native ctx is a GCHandle to it.</summary>
internal sealed unsafe class SinkBridge(ITestSink sink, int* cancelFlag)
{
    // Rows repeat a handful of texts (test, metric, unit, pattern), so each is decoded once per
    // pointer. The pointer alone is not a key: the library may pass a reused buffer (memtest builds
    // "errors_<pattern>" in one std::string), so a hit is only taken when the bytes still match.
    private readonly Dictionary<nint, (byte[] Utf8, string Text)> _texts = new();
    private ExceptionDispatchInfo? _sinkFailure;

    public kiln_sink ToNative(nint self) => new()
    {
        ctx = (void*)self,
        on_metric = &OnMetric,
        on_data_error = &OnDataError,
        on_progress = &OnProgress,
    };

    /// <summary>Rethrows, with its original stack, the first exception the sink threw.</summary>
    public void RethrowSinkFailure() => _sinkFailure?.Throw();

    [UnmanagedCallersOnly]
    private static void OnMetric(void* ctx, kiln_metric* metric)
    {
        var bridge = From(ctx);
        if (bridge._sinkFailure is not null) return;
        try
        {
            var row = new Metric(bridge.Text(metric->test), bridge.Text(metric->metric), metric->value,
                bridge.Text(metric->unit), metric->injected != 0);
            bridge.Sink.OnMetric(in row);
        }
        catch (Exception e)
        {
            bridge.Fail(e);
        }
    }

    [UnmanagedCallersOnly]
    private static void OnDataError(void* ctx, kiln_data_error* error)
    {
        var bridge = From(ctx);
        if (bridge._sinkFailure is not null) return;
        try
        {
            var row = new DataError(bridge.Text(error->test), bridge.Text(error->pattern), error->offset_bytes,
                error->expected, error->actual, error->word_bytes, error->injected != 0, error->sm);
            bridge.Sink.OnDataError(in row);
        }
        catch (Exception e)
        {
            bridge.Fail(e);
        }
    }

    [UnmanagedCallersOnly]
    private static void OnProgress(void* ctx, double fraction)
    {
        var bridge = From(ctx);
        if (bridge._sinkFailure is not null) return;
        try
        {
            bridge.Sink.OnProgress(fraction);
        }
        catch (Exception e)
        {
            bridge.Fail(e);
        }
    }

    private ITestSink Sink => sink;

    private static SinkBridge From(void* ctx) => (SinkBridge)GCHandle.FromIntPtr((nint)ctx).Target!;

    internal string Text(byte* text)
    {
        if (text is null) return "";
        var bytes = MemoryMarshal.CreateReadOnlySpanFromNullTerminated(text);
        if (_texts.TryGetValue((nint)text, out var cached) && bytes.SequenceEqual(cached.Utf8)) return cached.Text;
        string decoded = Encoding.UTF8.GetString(bytes);
        _texts[(nint)text] = (bytes.ToArray(), decoded);
        return decoded;
    }

    // A sink that cannot take rows (disk full, a bug) makes the rest of a long burn worthless:
    // keep the first exception and ask the test to stop as if cancelled.
    private void Fail(Exception e)
    {
        _sinkFailure = ExceptionDispatchInfo.Capture(e);
        Volatile.Write(ref *cancelFlag, 1);
    }
}
