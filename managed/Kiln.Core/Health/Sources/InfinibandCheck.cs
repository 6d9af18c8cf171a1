// sysfs_ib: every HCA under ROOT/sys/class/infiniband and each of its ports: state, rate against
// the profile (or against its peers), the error counters the profile names, the port count, and the
// IPoIB / Ethernet netdev of the HCA when it is down while its port is up.
using System.Globalization;

namespace Kiln.Core.Health.Sources;

public static class InfinibandCheck
{
    public const string Name = "sysfs_ib";
    private const string Active = "ACTIVE";

    public static void Run(CheckContext ctx)
    {
        var root = ctx.Path("sys/class/infiniband");
        var hcaDirs = SysfsFile.Folders(root);
        if (hcaDirs.Count == 0)
        {
            ctx.Skip(Name, $"no RDMA devices under {root} (no HCA, or its driver is not loaded)");
            // As for GPUs without their library: adapters on the bus that the RDMA stack does not show
            // mean a driver that did not load, not a node without InfiniBand.
            var onBus = ctx.PciFunctions.Where(f => f.IsHca && !f.IsVirtualFunction).ToList();
            if (onBus.Count > 0)
                ctx.Add(FindingCodes.IbDriverUnavailable.At(Name, "node", Severity.Warn,
                    $"{CheckContext.Count(onBus.Count, "RDMA adapter")} on the PCI bus ({string.Join(", ", onBus.Take(3).Select(f => f.Address))}" +
                    $"{(onBus.Count > 3 ? ", ..." : "")}) but no RDMA devices under {root}"));
            JudgePortCount(ctx);
            return;
        }
        foreach (var dir in hcaDirs)
        {
            var hca = System.IO.Path.GetFileName(dir);
            var ports = new List<IbPort>();
            foreach (var portDir in SysfsFile.Folders(System.IO.Path.Combine(dir, "ports")))
            {
                if (!int.TryParse(System.IO.Path.GetFileName(portDir), NumberStyles.None, CultureInfo.InvariantCulture, out var number)) continue;
                if (ReadPort(ctx, hca, number, portDir) is { } port) ports.Add(port);
            }
            ctx.Hcas.Add(new HcaInfo(hca, SysfsFile.TextOrEmpty(System.IO.Path.Combine(dir, "hca_type")),
                SysfsFile.TextOrEmpty(System.IO.Path.Combine(dir, "fw_ver")), SysfsFile.TextOrEmpty(System.IO.Path.Combine(dir, "board_id")), ports));
            JudgeNetdevs(ctx, hca, dir, ports);
        }
        JudgeRates(ctx);
        JudgePortCount(ctx);
    }

    // With no RDMA devices at all this still runs: "0 of 8 expected ports" is the worst mismatch.
    private static void JudgePortCount(CheckContext ctx)
    {
        var ibPorts = ctx.Hcas.Sum(h => h.Ports.Count(IsInfiniband));
        if (ctx.Policy.ExpectedIbPorts is { } expected && ibPorts != expected)
            ctx.Add(FindingCodes.IbPortCountMismatch.At(Name, "node", Severity.Fail,
                $"{CheckContext.Count(ibPorts, "InfiniBand port")} found, the profile expects {expected}"));
    }

    private static IbPort? ReadPort(CheckContext ctx, string hca, int number, string dir)
    {
        var component = $"{hca} port {number}";
        var statePath = System.IO.Path.Combine(dir, "state");
        var state = SysfsFile.Text(statePath, out var why);
        if (state is null)
        {
            ctx.ReadError(Name, component, ctx.Display(statePath), why);
            return null;
        }
        var physState = SysfsFile.TextOrEmpty(System.IO.Path.Combine(dir, "phys_state"));
        var rateText = SysfsFile.TextOrEmpty(System.IO.Path.Combine(dir, "rate"));
        // link_layer is absent on kernels older than 2.6.37, where every port was InfiniBand; some
        // drivers write it twice ("InfiniBand\nInfiniBand"): the first line counts.
        var linkLayer = SysfsFile.Text(System.IO.Path.Combine(dir, "link_layer"), out _)?.Split('\n')[0].Trim() is { Length: > 0 } l ? l : "InfiniBand";
        var counters = ReadCounters(ctx, component, System.IO.Path.Combine(dir, "counters"));
        var port = new IbPort(number, state, physState, RateGbps(rateText), linkLayer, counters);

        if (StateName(state) != Active)
        {
            var ib = IsInfiniband(port);
            var polling = physState.Contains("Polling", StringComparison.OrdinalIgnoreCase) ? " (a cable is present but the link does not train)" : "";
            ctx.Add(FindingCodes.IbPortDown.At(Name, component, ib ? Severity.Fail : Severity.Warn,
                $"{linkLayer} port state '{state}', physical state '{physState}'{polling}"));
        }
        var over = ctx.Policy.IbErrorCounters
            .Where(c => counters.ContainsKey(c.Key))
            .Select(c => (c.Key, Value: counters[c.Key], Limit: c.Value, Severity: c.Value.Judge(counters[c.Key])))
            .Where(x => x.Severity is not null).ToList();
        if (over.Count > 0)
            ctx.Add(FindingCodes.IbErrors.At(Name, component, over.Max(x => x.Severity!.Value),
                string.Join("; ", over.Select(x => $"{x.Key} {x.Value} ({x.Limit})"))));
        return port;
    }

    // The profile's counters must be readable: a missing or non-numeric one is a READ_ERROR (one per
    // port, naming every such counter), because a port whose errors cannot be read has not passed.
    private static Dictionary<string, long> ReadCounters(CheckContext ctx, string component, string dir)
    {
        var values = new Dictionary<string, long>(StringComparer.Ordinal);
        var problems = new List<string>();
        foreach (var name in ctx.Policy.IbErrorCounters.Keys.Order(StringComparer.Ordinal))
        {
            if (SysfsFile.Number(System.IO.Path.Combine(dir, name), out var why) is { } value) values[name] = value;
            else problems.Add($"{name} ({why})");
        }
        if (problems.Count > 0)
            ctx.ReadError(Name, component, ctx.Display(dir), string.Join(", ", problems));
        return values;
    }

    // Without a profile rate, a port slower than the fastest active port of the same HCA type is
    // suspicious (WARN); with one, anything below it FAILs.
    private static void JudgeRates(CheckContext ctx)
    {
        var expected = ctx.Policy.ExpectedIbRateGbps;
        var active = ctx.Hcas.SelectMany(h => h.Ports.Where(p => IsInfiniband(p) && StateName(p.State) == Active).Select(p => (Hca: h, Port: p))).ToList();
        foreach (var (hca, port) in active)
        {
            var component = $"{hca.Name} port {port.Number}";
            if (port.RateGbps is not { } rate)
            {
                ctx.ReadError(Name, component, $"/sys/class/infiniband/{hca.Name}/ports/{port.Number}/rate", "no rate in Gb/s");
                continue;
            }
            if (expected is { } want)
            {
                if (rate < want)
                    ctx.Add(FindingCodes.IbRateLow.At(Name, component, Severity.Fail, $"{Gbps(rate)} Gb/s, the profile expects {Gbps(want)} Gb/s"));
                continue;
            }
            var peers = active.Where(x => x.Hca.HcaType == hca.HcaType && x.Port.RateGbps is not null).ToList();
            var best = peers.Max(x => x.Port.RateGbps!.Value);
            if (rate < best)
                ctx.Add(FindingCodes.IbRateLow.At(Name, component, Severity.Warn,
                    $"{Gbps(rate)} Gb/s while other {Or(hca.HcaType, "HCA")} ports run at {Gbps(best)} Gb/s"));
        }
    }

    // ROOT/sys/class/infiniband/HCA/device/net/IF/operstate: an IPoIB or RoCE netdev that is down while
    // its port is ACTIVE (the port finding covers a down port already).
    private static void JudgeNetdevs(CheckContext ctx, string hca, string dir, IReadOnlyList<IbPort> ports)
    {
        if (!ports.Any(p => StateName(p.State) == Active)) return;
        foreach (var netdev in SysfsFile.Folders(System.IO.Path.Combine(dir, "device", "net")))
        {
            var operstate = SysfsFile.TextOrEmpty(System.IO.Path.Combine(netdev, "operstate"));
            if (operstate == "down")
                ctx.Add(FindingCodes.NicLinkDown.At(Name, $"{System.IO.Path.GetFileName(netdev)} ({hca})", Severity.Warn,
                    $"network interface {System.IO.Path.GetFileName(netdev)} is down (operstate) while {hca}'s port is ACTIVE"));
        }
    }

    public static bool IsInfiniband(IbPort port) => port.LinkLayer.Equals("InfiniBand", StringComparison.OrdinalIgnoreCase);

    /// <summary>"4: ACTIVE" -> "ACTIVE".</summary>
    public static string StateName(string state) => state[(state.IndexOf(':') + 1)..].Trim();

    /// <summary>"400 Gb/sec (4X NDR)" -> 400.</summary>
    internal static double? RateGbps(string text)
    {
        var first = text.Split(' ', StringSplitOptions.RemoveEmptyEntries).FirstOrDefault();
        return first is not null && double.TryParse(first, NumberStyles.Float, CultureInfo.InvariantCulture, out var rate) && rate > 0 ? rate : null;
    }

    private static string Gbps(double rate) => rate.ToString("0.##", CultureInfo.InvariantCulture);

    private static string Or(string text, string fallback) => text.Length > 0 ? text : fallback;
}
