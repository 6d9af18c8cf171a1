// The kernel-log timestamp formats, one by one, and the lines that must be reported rather than
// guessed at: cut timestamps, binary garbage, relative times without a boot time.
using Kiln.Core.Health.KernelLog;

namespace Kiln.Tests.Health;

public class KernelLogParserTests
{
    private static readonly DateTimeOffset Boot = DateTimeOffset.FromUnixTimeSeconds(1_732_000_000);
    private static readonly DateTimeOffset Now = new(2025, 3, 1, 12, 0, 0, TimeSpan.Zero);

    private static KernelLogLine? Parse(string line, out string? error, DateTimeOffset? boot = null) =>
        new KernelLogParser(boot ?? Boot, Now, TimeZoneInfo.Utc).Parse(7, line, out error);

    [TestCase("6,1234,5000000,-;NVRM: hello", "2024-11-19T07:06:45Z", "NVRM: hello")]
    [TestCase("[    5.000000] NVRM: hello", "2024-11-19T07:06:45Z", "NVRM: hello")]
    [TestCase("[Sun Feb 23 16:24:18 2025] NVRM: hello", "2025-02-23T16:24:18Z", "NVRM: hello")]
    [TestCase("2024-11-15T12:02:03,470068+00:00 NVRM: hello", "2024-11-15T12:02:03.470068Z", "NVRM: hello")]
    [TestCase("kern  :warn  : 2025-01-21T02:21:33,498559+00:00 NVRM: hello", "2025-01-21T02:21:33.498559Z", "NVRM: hello")]
    [TestCase("2025-01-21T04:21:33.5+0200 gpu-node kernel: NVRM: hello", "2025-01-21T02:21:33.5Z", "gpu-node kernel: NVRM: hello")]
    [TestCase("Aug 17 06:18:01 vm-0 systemd-networkd[5398]: ib6: lost carrier", "2024-08-17T06:18:01Z", "vm-0 systemd-networkd[5398]: ib6: lost carrier")]
    [TestCase("Feb 27 11:00:00 vm-0 kernel: x", "2025-02-27T11:00:00Z", "vm-0 kernel: x")]
    public void Formats_are_placed_in_wall_clock_time(string line, string utc, string message)
    {
        var parsed = Parse(line, out var error);
        Assert.That(error, Is.Null);
        Assert.That(parsed!.Time!.Value.UtcDateTime, Is.EqualTo(DateTimeOffset.Parse(utc, System.Globalization.CultureInfo.InvariantCulture).UtcDateTime));
        Assert.That(parsed.Message, Is.EqualTo(message));
        Assert.That(parsed.Number, Is.EqualTo(7));
    }

    [TestCase("[  131.0000", "truncated or malformed timestamp")]
    [TestCase("[Sun Feb 23 16:2", "truncated or malformed timestamp")]
    [TestCase("2024-11-15T12:0", "truncated or malformed timestamp")]
    [TestCase("6,1234,50", "truncated /dev/kmsg record")]
    [TestCase("[  1.0] \u0001\u0002", "binary garbage (control characters)")]
    [TestCase("[  1.0] bad \uFFFD byte", "binary garbage (control characters)")]
    public void Malformed_lines_are_errors_not_guesses(string line, string why)
    {
        Assert.That(Parse(line, out var error), Is.Null);
        Assert.That(error, Is.EqualTo(why));
    }

    [Test]
    public void Relative_times_without_a_boot_time_are_unplaced_and_noted()
    {
        var parser = new KernelLogParser(null, Now, TimeZoneInfo.Utc);
        var line = parser.Parse(1, "[   12.5] NVRM: hello", out var error);
        Assert.That((line!.Time, line.Message, error), Is.EqualTo(((DateTimeOffset?)null, "NVRM: hello", (string?)null)));
        Assert.That(parser.SawUnplacedRelativeTimes, Is.True);
    }

    [Test]
    public void Blank_lines_and_kmsg_continuations_carry_nothing()
    {
        Assert.That(Parse("", out var e1), Is.Null);
        Assert.That(Parse(" SUBSYSTEM=pci", out var e2), Is.Null);
        Assert.That((e1, e2), Is.EqualTo(((string?)null, (string?)null)));
        Assert.That(Parse("no timestamp at all", out _)!.Time, Is.Null);
    }

    [TestCase("NVRM: Xid (PCI:0000:3B:00): 79, pid=1234, name=x, GPU has fallen off the bus.", KernelEventKind.Xid, "0000:3b:00", 79)]
    [TestCase("NVRM: Xid (PCI:00000000:3b:00): 48, pid='<unknown>', name=<unknown>, An uncorrectable double bit error", KernelEventKind.Xid, "0000:3b:00", 48)]
    [TestCase("NVRM: Xid (0000:3b:00): 13, Graphics Exception", KernelEventKind.Xid, "0000:3b:00", 13)]
    [TestCase("mlx5_core 0000:9d:00.1 enp157s0f1np1: Link down", KernelEventKind.LinkDown, "enp157s0f1np1", 0)]
    [TestCase("igb 0000:01:00.0 eno1: igb: eno1 NIC Link is Down", KernelEventKind.LinkDown, "eno1", 0)]
    [TestCase("e1000e 0000:00:1f.6 eno1: NIC Link is Up 1000 Mbps Full Duplex", KernelEventKind.LinkUp, "eno1", 0)]
    [TestCase("vm-0 systemd-networkd[5398]: ib6: Gained carrier", KernelEventKind.LinkUp, "ib6", 0)]
    [TestCase("pcieport 0000:5c:01.0: AER: Uncorrected (Non-Fatal) error received: 0000:5d:00.0", KernelEventKind.AerNonFatal, "0000:5d:00.0", 0)]
    [TestCase("{1}[Hardware Error]: event severity: fatal", KernelEventKind.McUncorrectedError, "cpu", 0)]
    [TestCase("EDAC skx MC3: 1 UE memory read error on CPU_SrcID#1_MC#1_Chan#0_DIMM#0", KernelEventKind.McUncorrectedError, "mc3", 0)]
    public void Messages_are_classified(string message, KernelEventKind kind, string key, int xid)
    {
        var e = KernelEvents.Classify(message, out var error);
        Assert.That(error, Is.Null);
        Assert.That((e!.Value.Kind, e.Value.Key, e.Value.Xid), Is.EqualTo((kind, key, xid)));
    }

    [TestCase("ata6: SATA link down (SStatus 4 SControl 300)")]
    [TestCase("acpi PNP0A08:29: _OSC: platform does not support [SHPCHotplug AER DPC]")]
    [TestCase("EDAC MC0: Giving out device to module i10nm_edac controller Intel_10nm Socket#0 IMC#0")]
    [TestCase("mce: [Hardware Error]: TSC 0 ADDR 4d7c3a000 MISC 8c")]
    [TestCase("nvidia-peermem nv_get_p2p_free_callback:127 ERROR detected invalid context, skipping further processing")]
    public void Noise_is_not_an_event(string message) => Assert.That(KernelEvents.Classify(message, out _), Is.Null);
}
