// The RDMA probe across the ABI: libkiln-rdma.so opened (or the reason it cannot be: no plugin, no
// rdma-core, no RDMA devices) and the verbs ports it found.
using Kiln.Native.Interop;

namespace Kiln.Native;

/// <summary>One port of one verbs device (kiln_rdma_port_info).</summary>
public sealed record RdmaPort(string Device, int Port, string State, string LinkLayer, double RateGbits, string Firmware,
    string NodeGuid, string Gid, int NumaNode, int Lid, int ActiveMtuBytes);

/// <summary>Knobs of one RDMA test: the managed mirror of kiln_rdma_params, from the library's defaults.</summary>
public sealed class RdmaParams
{
    public int PortIndex;
    /// <summary>kiln_rdma_op bits; 0 = all.</summary>
    public uint OpMask;
    public ulong MinMessageBytes;
    public ulong MaxMessageBytes;
    public int Iterations;
    public int QueueDepth;
    /// <summary>Write and read also both ways at once (write_bidir_gbits, read_bidir_gbits).</summary>
    public bool BothWays;
    public int LatencySamples;
    public ulong TimeoutMs;
    public int GidIndex;

    public static unsafe RdmaParams Defaults()
    {
        KilnLibrary.EnsureLoaded();
        kiln_rdma_params n;
        KilnException.Check(KilnNative.kiln_rdma_params_init(&n));
        return new RdmaParams
        {
            PortIndex = n.port_index, OpMask = n.op_mask, MinMessageBytes = n.min_message_bytes, MaxMessageBytes = n.max_message_bytes,
            Iterations = n.iterations, QueueDepth = n.queue_depth, BothWays = n.bidirectional != 0, LatencySamples = n.latency_samples,
            TimeoutMs = n.timeout_ms, GidIndex = n.gid_index,
        };
    }

    internal kiln_rdma_params ToNative() => new()
    {
        port_index = PortIndex, op_mask = OpMask, min_message_bytes = MinMessageBytes, max_message_bytes = MaxMessageBytes,
        iterations = Iterations, queue_depth = QueueDepth, bidirectional = BothWays ? 1 : 0, latency_samples = LatencySamples,
        timeout_ms = TimeoutMs, gid_index = GidIndex,
    };
}

public sealed class RdmaProbe : IDisposable
{
    private readonly KilnRdmaHandle _handle;

    private RdmaProbe(KilnRdmaHandle handle, IReadOnlyList<RdmaPort> ports)
    {
        _handle = handle;
        Ports = ports;
    }

    public IReadOnlyList<RdmaPort> Ports { get; }

    /// <summary>
    /// Opens the RDMA probe; null and the reason when this node cannot run it ("no RDMA devices",
    /// "no RDMA probe: libibverbs.so.1: cannot open shared object file ...").
    /// </summary>
    /// <param name="pluginDir">Where libkiln-rdma.so is; null: beside libkiln.so or $KILN_PLUGIN_DIR.</param>
    public static unsafe RdmaProbe? Open(string? pluginDir, out string reason)
    {
        KilnLibrary.EnsureLoaded();
        reason = "";
        KilnRdmaHandle? handle = null;
        var status = KilnNative.kiln_rdma_open(pluginDir, out handle);
        if (status == kiln_status.KILN_UNSUPPORTED)
        {
            reason = KilnException.LastErrorText();
            handle?.Dispose();
            return null;
        }
        try
        {
            KilnException.Check(status);
            var ports = new List<RdmaPort>();
            var count = KilnNative.kiln_rdma_port_count(handle);
            for (var i = 0; i < count; i++)
            {
                kiln_rdma_port_info p;
                KilnException.Check(KilnNative.kiln_rdma_port_at(handle, i, &p));
                const int Short = (int)kiln_constants.KILN_SHORT_BYTES, Name = (int)kiln_constants.KILN_NAME_BYTES;
                ports.Add(new RdmaPort(NativeText.FromBuffer(p.device, Short), p.port, NativeText.FromBuffer(p.state, Short),
                    NativeText.FromBuffer(p.link_layer, Short), p.rate_gbits, NativeText.FromBuffer(p.firmware, Short),
                    NativeText.FromBuffer(p.node_guid, Short), NativeText.FromBuffer(p.gid, Name), p.numa_node, p.lid, p.active_mtu_bytes));
            }
            return new RdmaProbe(handle, ports);
        }
        catch
        {
            handle.Dispose();
            throw;
        }
    }

    /// <summary>
    /// GPUDirect RDMA: later tests use <paramref name="gpu"/>'s memory as their buffers (its dma-buf, else peer
    /// memory); null: host memory again. The device must outlive this probe's tests.
    /// </summary>
    /// <exception cref="KilnException">KILN_UNSUPPORTED: its backend has no memory an HCA can reach (cpu, emu).</exception>
    public void UseGpu(Device? gpu)
    {
        if (gpu is null)
        {
            using var none = new KilnDeviceHandle();
            KilnException.Check(KilnNative.kiln_rdma_use_gpu(_handle, none));
            _gpu = null;
            return;
        }
        KilnException.Check(KilnNative.kiln_rdma_use_gpu(_handle, gpu.Handle));
        _gpu = gpu;
    }

    // Held so the device outlives the tests that read its memory.
    private Device? _gpu;

    /// <summary>The GPU whose memory the tests use, or null for host memory.</summary>
    public Device? Gpu => _gpu;

    /// <summary>Host to host against <see cref="Serve"/> at host:port; "rdma" metrics reach sink as each operation ends.</summary>
    /// <exception cref="KilnException">KILN_PEER_ERROR (unreachable, a protocol fault, a failed completion), a bad parameter.</exception>
    public unsafe KilnStatus Probe(string host, int port, RdmaParams p, ITestSink sink, CancellationToken cancel)
    {
        ArgumentNullException.ThrowIfNull(p);
        var native = p.ToNative();
        var parameters = (nint)(&native);
        return SinkCall.Run(sink, cancel, nameof(KilnNative.kiln_rdma_probe), (nativeSink, flag) =>
            KilnNative.kiln_rdma_probe(_handle, host, port, (kiln_rdma_params*)parameters, (kiln_sink*)nativeSink, (int*)flag));
    }

    /// <summary>Between two local ports, through the fabric.</summary>
    public unsafe KilnStatus Loopback(int peerPortIndex, RdmaParams p, ITestSink sink, CancellationToken cancel)
    {
        ArgumentNullException.ThrowIfNull(p);
        var native = p.ToNative();
        var parameters = (nint)(&native);
        return SinkCall.Run(sink, cancel, nameof(KilnNative.kiln_rdma_loopback), (nativeSink, flag) =>
            KilnNative.kiln_rdma_loopback(_handle, peerPortIndex, (kiln_rdma_params*)parameters, (kiln_sink*)nativeSink, (int*)flag));
    }

    /// <summary>Serves one host-to-host test on address:port (null: 127.0.0.1); returns after it.</summary>
    public unsafe KilnStatus Serve(string? address, int port, RdmaParams p, CancellationToken cancel)
    {
        ArgumentNullException.ThrowIfNull(p);
        var native = p.ToNative();
        var parameters = (nint)(&native);
        var status = CancelCall.Run(cancel, flag => KilnNative.kiln_rdma_serve(_handle, address, port, (kiln_rdma_params*)parameters, (int*)flag));
        if (status is not (kiln_status.KILN_OK or kiln_status.KILN_CANCELLED)) throw KilnException.FromLastError(status, nameof(KilnNative.kiln_rdma_serve));
        return (KilnStatus)status;
    }

    public void Dispose() => _handle.Dispose();
}
