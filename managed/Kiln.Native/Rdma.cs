// The RDMA probe across the ABI: libkiln-rdma.so opened (or the reason it cannot be: no plugin, no
// rdma-core, no RDMA devices) and the verbs ports it found.
using Kiln.Native.Interop;

namespace Kiln.Native;

/// <summary>One port of one verbs device (kiln_rdma_port_info).</summary>
public sealed record RdmaPort(string Device, int Port, string State, string LinkLayer, double RateGbits, string Firmware,
    string NodeGuid, string Gid, int NumaNode, int Lid, int ActiveMtuBytes);

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

    public void Dispose() => _handle.Dispose();
}
