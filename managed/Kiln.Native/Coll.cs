// Collectives across the ABI (kiln_coll_*): the NCCL/RCCL library a GPU backend loads (or why it
// cannot), a run over several devices of one backend as ranks of one communicator, and the
// rendezvous that carries the communicator's unique id to the other processes of a multi-node run.
using System.Runtime.InteropServices;
using Kiln.Native.Interop;

namespace Kiln.Native;

/// <summary>The collectives library a backend loaded: "NCCL" 2.18.3 from libnccl.so.2.</summary>
public sealed record CollLibrary(string Path, string Name, string VersionText, int Version);

/// <summary>What the rendezvous settled: ranks over every process, this process's first, processes that met.</summary>
public sealed record CollRanks(int NRanks, int FirstRank, int Processes);

/// <summary>Knobs of one collectives test: the managed mirror of kiln_coll_params, from the library's defaults.</summary>
public sealed class CollParams
{
    /// <summary>kiln_coll_op bits; 0 = all.</summary>
    public uint OpMask;
    public int Iterations;
    public int WarmupIterations;
    public uint MaxErrorReports;
    /// <summary>nccl-tests' size; 0 = 16 GiB, less to fit.</summary>
    public ulong SizeBytes;
    public ulong TimeoutMs;

    public static unsafe CollParams Defaults()
    {
        KilnLibrary.EnsureLoaded();
        kiln_coll_params n;
        KilnException.Check(KilnNative.kiln_coll_params_init(&n));
        return new CollParams
        {
            OpMask = n.op_mask, Iterations = n.iterations, WarmupIterations = n.warmup_iterations,
            MaxErrorReports = n.max_error_reports, SizeBytes = n.size_bytes, TimeoutMs = n.timeout_ms,
        };
    }
}

public static class Collectives
{
    /// <summary>The library device's backend uses; null and the reason when it has none (not installed, too old, the cpu backend).</summary>
    public static unsafe CollLibrary? Library(Device device, out string reason)
    {
        ArgumentNullException.ThrowIfNull(device);
        kiln_coll_library_info info;
        var status = KilnNative.kiln_coll_library(device.Handle, &info);
        reason = "";
        if (status == kiln_status.KILN_UNSUPPORTED)
        {
            reason = KilnException.LastErrorText();
            return null;
        }
        KilnException.Check(status);
        const int Path = (int)kiln_constants.KILN_PATH_BYTES, Short = (int)kiln_constants.KILN_SHORT_BYTES;
        return new CollLibrary(NativeText.FromBuffer(info.path, Path), NativeText.FromBuffer(info.name, Short),
            NativeText.FromBuffer(info.version_text, Short), info.version);
    }

    /// <summary>A new communicator id, made by the process of rank 0.</summary>
    public static unsafe byte[] UniqueId(Device device)
    {
        ArgumentNullException.ThrowIfNull(device);
        var id = new byte[(int)kiln_constants.KILN_COLL_ID_BYTES];
        fixed (byte* p = id) KilnException.Check(KilnNative.kiln_coll_unique_id(device.Handle, p, (nuint)id.Length));
        return id;
    }

    /// <summary>
    /// Runs the ops over <paramref name="devices"/> (one backend) as ranks <paramref name="firstRank"/>.. of
    /// <paramref name="nranks"/> (0: these devices alone); metrics and wrong words reach <paramref name="sink"/>
    /// as each op ends. Returns Ok, or Cancelled once <paramref name="cancel"/> fired.
    /// </summary>
    /// <exception cref="KilnException">KILN_PEER_ERROR when another rank did not come or stopped; a bad parameter; the library's failure.</exception>
    public static unsafe KilnStatus Run(IReadOnlyList<Device> devices, CollParams p, int nranks, int firstRank, byte[]? uniqueId,
        ITestSink sink, CancellationToken cancel)
    {
        ArgumentNullException.ThrowIfNull(devices);
        ArgumentNullException.ThrowIfNull(p);
        var native = new kiln_coll_params
        {
            op_mask = p.OpMask, iterations = p.Iterations, warmup_iterations = p.WarmupIterations, nranks = nranks,
            first_rank = firstRank, max_error_reports = p.MaxErrorReports, size_bytes = p.SizeBytes, timeout_ms = p.TimeoutMs,
        };
        if (uniqueId is not null)
        {
            if (uniqueId.Length != (int)kiln_constants.KILN_COLL_ID_BYTES) throw new ArgumentException("a unique id is 128 bytes", nameof(uniqueId));
            for (var i = 0; i < uniqueId.Length; i++) native.unique_id[i] = uniqueId[i];
        }
        // Every handle held for the call: the native side reads the devices until it returns.
        var held = new bool[devices.Count];
        var pointers = new nint[devices.Count];
        try
        {
            for (var i = 0; i < devices.Count; i++)
            {
                devices[i].Handle.DangerousAddRef(ref held[i]);
                pointers[i] = devices[i].Handle.DangerousGetHandle();
            }
            var parameters = (nint)(&native);
            fixed (nint* list = pointers)
            {
                var devicesPtr = (nint)list;
                return SinkCall.Run(sink, cancel, nameof(KilnNative.kiln_coll_run), (nativeSink, flag) =>
                    KilnNative.kiln_coll_run((nint*)devicesPtr, pointers.Length, (kiln_coll_params*)parameters, (kiln_sink*)nativeSink, (int*)flag));
            }
        }
        finally
        {
            for (var i = 0; i < devices.Count; i++)
                if (held[i]) devices[i].Handle.DangerousRelease();
        }
    }

    /// <summary>The process of index 0: waits on address:port for the other processes, tells each its ranks and the id.</summary>
    /// <exception cref="KilnException">KILN_PEER_ERROR naming the processes that did not come; a bad address; cancelled.</exception>
    public static unsafe CollRanks Serve(string? address, int port, int processes, int localRanks, byte[] uniqueId, TimeSpan timeout,
        CancellationToken cancel)
    {
        ArgumentNullException.ThrowIfNull(uniqueId);
        kiln_coll_rendezvous_result r;
        var result = (nint)(&r);
        var status = CancelCall.Run(cancel, flag =>
        {
            fixed (byte* id = uniqueId)
                return KilnNative.kiln_coll_rendezvous_serve(address, port, processes, localRanks, id, (nuint)uniqueId.Length,
                    (ulong)timeout.TotalMilliseconds, (kiln_coll_rendezvous_result*)result, (int*)flag);
        });
        KilnException.Check(status);
        return new CollRanks(r.nranks, r.first_rank, r.processes);
    }

    /// <summary>Any other process: joins the rendezvous at host:port and learns its ranks and the id.</summary>
    /// <exception cref="KilnException">KILN_PEER_ERROR: nobody served it within the timeout, or it refused this process; cancelled.</exception>
    public static unsafe (CollRanks Ranks, byte[] UniqueId) Join(string host, int port, int index, int localRanks, TimeSpan timeout,
        CancellationToken cancel)
    {
        var uniqueId = new byte[(int)kiln_constants.KILN_COLL_ID_BYTES];
        kiln_coll_rendezvous_result r;
        var result = (nint)(&r);
        var status = CancelCall.Run(cancel, flag =>
        {
            fixed (byte* id = uniqueId)
                return KilnNative.kiln_coll_rendezvous_join(host, port, index, localRanks, (ulong)timeout.TotalMilliseconds, id,
                    (nuint)uniqueId.Length, (kiln_coll_rendezvous_result*)result, (int*)flag);
        });
        KilnException.Check(status);
        return (new CollRanks(r.nranks, r.first_rank, r.processes), uniqueId);
    }
}
