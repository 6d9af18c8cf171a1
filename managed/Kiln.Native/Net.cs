// The TCP probe across the ABI: a server that serves one client's test at a time (NetServer) and
// the probe that measures against it (NetProbe.Run), its metrics streamed to an ITestSink.
using System.Runtime.InteropServices;
using Kiln.Native.Interop;

namespace Kiln.Native;

/// <summary>Knobs of one probe: the managed mirror of kiln_net_params, from the library's defaults.</summary>
public sealed class NetParams
{
    public int Streams;
    /// <summary>kiln_net_phase bits; 0 = all.</summary>
    public uint PhaseMask;
    public ulong DurationMs;
    public ulong LatencyDurationMs;
    public ulong TimeoutMs;
    public uint MessageBytes;
    public uint LatencyBytes;
    public int LatencySamples;

    public static unsafe NetParams Defaults()
    {
        KilnLibrary.EnsureLoaded();
        kiln_net_params n;
        KilnException.Check(KilnNative.kiln_net_params_init(&n));
        return new NetParams
        {
            Streams = n.streams, PhaseMask = n.phase_mask, DurationMs = n.duration_ms, LatencyDurationMs = n.latency_duration_ms,
            TimeoutMs = n.timeout_ms, MessageBytes = n.message_bytes, LatencyBytes = n.latency_bytes, LatencySamples = n.latency_samples,
        };
    }

    /// <summary>The longest a probe with these knobs can take before it must have ended (its deadline).</summary>
    public TimeSpan Deadline => TimeSpan.FromMilliseconds(2 * DurationMs + LatencyDurationMs + 8 * TimeoutMs);

    internal kiln_net_params ToNative() => new()
    {
        streams = Streams, phase_mask = PhaseMask, duration_ms = DurationMs, latency_duration_ms = LatencyDurationMs,
        timeout_ms = TimeoutMs, message_bytes = MessageBytes, latency_bytes = LatencyBytes, latency_samples = LatencySamples,
    };
}

public static class NetProbe
{
    /// <summary>
    /// Probes host:port synchronously; metrics reach <paramref name="sink"/> as each phase ends.
    /// Returns KILN_OK, or KILN_CANCELLED once <paramref name="cancel"/> fired.
    /// </summary>
    /// <exception cref="KilnException">KILN_PEER_ERROR with the reason (unreachable, busy, garbage, stopped, timed out), or a bad parameter.</exception>
    public static unsafe KilnStatus Run(string host, int port, NetParams p, ITestSink sink, CancellationToken cancel)
    {
        ArgumentNullException.ThrowIfNull(p);
        KilnLibrary.EnsureLoaded();
        var native = p.ToNative();
        var parameters = (nint)(&native);
        return SinkCall.Run(sink, cancel, nameof(KilnNative.kiln_net_probe), (nativeSink, flag) =>
            KilnNative.kiln_net_probe(host, port, (kiln_net_params*)parameters, (kiln_sink*)nativeSink, (int*)flag));
    }
}

/// <summary>A listening probe server; <see cref="Serve"/> answers clients until cancelled.</summary>
public sealed class NetServer : IDisposable
{
    private readonly KilnNetServerHandle _handle;

    private NetServer(KilnNetServerHandle handle) => _handle = handle;

    /// <summary>Binds address:port (null address: 127.0.0.1; port 0: a free one).</summary>
    /// <exception cref="KilnException">KILN_INVALID_ARGUMENT: not an address, or the port cannot be bound.</exception>
    public static NetServer Listen(string? address, int port)
    {
        KilnLibrary.EnsureLoaded();
        KilnNetServerHandle? handle = null;
        try
        {
            KilnException.Check(KilnNative.kiln_net_server_create(address, port, out handle));
            return new NetServer(handle);
        }
        catch
        {
            handle?.Dispose();
            throw;
        }
    }

    public int Port => KilnNative.kiln_net_server_port(_handle);

    /// <summary>
    /// Serves until <paramref name="cancel"/> fires (or after maxSessions sessions, when above 0);
    /// each line the server says about a session goes to <paramref name="log"/>, from the serving thread.
    /// </summary>
    public unsafe KilnStatus Serve(int maxSessions, Action<string> log, CancellationToken cancel)
    {
        ArgumentNullException.ThrowIfNull(log);
        int* cancelFlag = (int*)NativeMemory.AllocZeroed(sizeof(int));
        var logHandle = GCHandle.Alloc(log);
        try
        {
            using (cancel.Register(static flag => Volatile.Write(ref *(int*)(nint)flag!, 1), (nint)cancelFlag))
            {
                var nativeLog = new kiln_net_log { ctx = (void*)GCHandle.ToIntPtr(logHandle), on_text = &OnText };
                var status = KilnNative.kiln_net_server_run(_handle, maxSessions, &nativeLog, cancelFlag);
                if (status is not (kiln_status.KILN_OK or kiln_status.KILN_CANCELLED))
                    throw KilnException.FromLastError(status, nameof(KilnNative.kiln_net_server_run));
                return (KilnStatus)status;
            }
        }
        finally
        {
            logHandle.Free();
            NativeMemory.Free(cancelFlag);
        }
    }

    public void Dispose() => _handle.Dispose();

    [UnmanagedCallersOnly]
    private static unsafe void OnText(void* ctx, byte* text)
    {
        try
        {
            var log = (Action<string>)GCHandle.FromIntPtr((nint)ctx).Target!;
            log(NativeText.FromStatic(text));
        }
        catch
        {
            // A log line that cannot be written must not unwind into native frames; the session goes on.
        }
    }
}
