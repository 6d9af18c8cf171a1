// `kiln inventory [--format text|json]`: the host, the backends loaded and the plugins skipped
// (with why), and every device with its peaks.
using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using Kiln.Cli.Output;
using Kiln.Core;
using Kiln.Core.Results;
using Kiln.Native;

namespace Kiln.Cli.Commands;

public static class InventoryCommand
{
    public static Command Create(CliServices services)
    {
        var format = CommandTree.Text(OptionNames.Format, "text|json", "Output format (default text)");
        var command = new Command("inventory", "Show the host, the backends loaded and skipped, and the devices") { format };
        command.SetAction(parse =>
        {
            var style = parse.GetValue(format)?.Trim().ToLowerInvariant() ?? "text";
            if (style is not ("text" or "json"))
                throw new UsageException(OptionNames.Format, $"unknown format '{style}' (known: text, json)");
            var inventory = Inventory.Collect(services.Native.Registry);
            var output = services.Console.Out;
            if (style == "json")
                output.WriteLine(JsonSerializer.Serialize(
                    new { inventory_fingerprint = inventory.Fingerprint, inventory = SummaryInventory.From(inventory) },
                    SummaryJson.Options));
            else
                WriteText(output, inventory);
            return ExitCodes.Passed;
        });
        return command;
    }

    public static void WriteText(TextWriter o, Inventory inv)
    {
        var h = inv.Host;
        o.WriteLine($"host      {h.Name}: {Or(h.CpuModel, "unknown CPU")}, {h.LogicalCpus} logical CPUs, " +
                    $"{ByteSize.Format(h.MemoryTotalBytes)} memory ({ByteSize.Format(h.MemoryAvailableBytes)} available), kernel {h.Kernel}");
        o.WriteLine($"native    libkiln {inv.NativeVersion} ({inv.NativeLibraryPath})");
        o.WriteLine("backends");
        foreach (var b in inv.Backends)
            o.WriteLine($"  {b.Name,-8} {Plural(b.DeviceCount, "device")}, runtime {Or(b.RuntimeVersion, "unknown")}, " +
                        $"{(b.LibraryPath.Length == 0 ? "built in" : b.LibraryPath)}");
        o.WriteLine("skipped");
        if (inv.Skipped.Count == 0) o.WriteLine("  (none)");
        foreach (var s in inv.Skipped)
            o.WriteLine($"  {s.Path}: {s.Reason}");
        o.WriteLine("devices");
        if (inv.Devices.Count == 0) o.WriteLine("  (none)");
        foreach (var d in inv.Devices)
        {
            o.WriteLine($"  {d.Backend}{d.Index,-4} {d.Name}{(d.PciBusId.Length > 0 ? $" [{d.PciBusId}]" : "")}");
            o.WriteLine($"          {d.ComputeUnits} compute units x {d.ThreadsPerUnit} threads, {Plural(d.NumaNodes, "NUMA node")}, " +
                        $"memory {ByteSize.Format(d.TotalMemoryBytes)} ({ByteSize.Format(d.AvailableMemoryBytes)} available), " +
                        $"last-level cache {ByteSize.Format(d.LastLevelCacheBytes)}");
            o.WriteLine($"          peaks: memory {Peak(d.PeakMemoryBandwidthGbps, "GB/s")}, fp64 {Peak(d.PeakFp64Tflops, "TFLOP/s")}, " +
                        $"fp32 {Peak(d.PeakFp32Tflops, "TFLOP/s")}, clock {Peak(d.ClockMhz, "MHz")}");
        }
        o.WriteLine($"fingerprint {inv.Fingerprint}");
    }

    private static string Or(string value, string fallback) => value.Length > 0 ? value : fallback;

    private static string Plural(int n, string noun) => $"{n} {noun}{(n == 1 ? "" : "s")}";

    private static string Peak(double value, string unit) =>
        value > 0 ? value.ToString("0.##", CultureInfo.InvariantCulture) + " " + unit : "unknown";
}
