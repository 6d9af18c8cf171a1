// inventory: what the node is (GPU models, driver, VBIOS, HCA types, firmware and board ids, CPU,
// kernel) and a fingerprint of its configuration: equal on identically built and configured nodes,
// so fleet reports spot drift. Serials, UUIDs and addresses are listed but not hashed. Versions that
// differ inside one node (two VBIOS on eight identical GPUs) are a WARN.
using System.Security.Cryptography;
using System.Text;

namespace Kiln.Core.Health.Sources;

public sealed record GpuInventory(string Source, int Index, string Name, string Uuid, string Serial, string PciBusId,
    string VbiosVersion, ulong MemoryTotalBytes);

public sealed record HcaInventory(string Name, string HcaType, string FirmwareVersion, string BoardId, int Ports);

public sealed record CheckInventory(string Host, string Kernel, string CpuModel, int CpusOnline, int CpusPresent,
    ulong MemoryTotalBytes, IReadOnlyDictionary<string, string> GpuDrivers, IReadOnlyList<GpuInventory> Gpus,
    IReadOnlyList<HcaInventory> Hcas, string Fingerprint);

public static class InventoryCheck
{
    public const string Name = "inventory";

    public static CheckInventory Run(CheckContext ctx, string host)
    {
        var gpus = ctx.Gpus.Select(g => new GpuInventory(g.Source, g.Health.Index, g.Health.Name, g.Health.Uuid, g.Health.Serial,
            g.Health.PciBusId, g.Health.VbiosVersion, g.Health.MemoryTotalBytes)).ToList();
        var hcas = ctx.Hcas.Select(h => new HcaInventory(h.Name, h.HcaType, h.FirmwareVersion, h.BoardId, h.Ports.Count)).ToList();
        foreach (var model in gpus.GroupBy(g => g.Name).Where(m => m.Select(g => g.VbiosVersion).Distinct().Count() > 1))
            ctx.Add(FindingCodes.InventoryMixed.At(Name, model.Key, Severity.Warn, "VBIOS versions differ: " +
                string.Join(", ", model.GroupBy(g => g.VbiosVersion).Select(v => $"{v.Key} on gpu{string.Join(",", v.Select(g => g.Index))}"))));
        foreach (var type in hcas.Where(h => h.HcaType.Length > 0).GroupBy(h => h.HcaType).Where(t => t.Select(h => h.FirmwareVersion).Distinct().Count() > 1))
            ctx.Add(FindingCodes.InventoryMixed.At(Name, type.Key, Severity.Warn, "firmware versions differ: " +
                string.Join(", ", type.GroupBy(h => h.FirmwareVersion).Select(v => $"{v.Key} on {string.Join(",", v.Select(h => h.Name))}"))));
        var h = ctx.Host;
        return new CheckInventory(host, h.Kernel, h.CpuModel, h.CpusOnline, h.CpusPresent, h.MemoryTotalBytes,
            new SortedDictionary<string, string>(ctx.DriverVersions, StringComparer.Ordinal), gpus, hcas, Fingerprint(ctx));
    }

    /// <summary>16 hex digits of SHA-256 over the sorted configuration lines (models, versions, counts).</summary>
    public static string Fingerprint(CheckContext ctx)
    {
        var lines = new List<string> { $"cpu|{ctx.Host.CpuModel}|{ctx.Host.CpusPresent}", $"kernel|{ctx.Host.Kernel}" };
        lines.AddRange(ctx.DriverVersions.Select(d => $"driver|{d.Key}|{d.Value}"));
        lines.AddRange(ctx.Gpus.Select(g => $"gpu|{g.Source}|{g.Health.Name}|{g.Health.VbiosVersion}|{g.Health.MemoryTotalBytes}"));
        lines.AddRange(ctx.Hcas.Select(h => $"hca|{h.HcaType}|{h.FirmwareVersion}|{h.BoardId}|{h.Ports.Count}"));
        lines.Sort(StringComparer.Ordinal);
        return Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(string.Join('\n', lines))))[..16];
    }
}
