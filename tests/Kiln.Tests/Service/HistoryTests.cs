// The history's bounds and its reading of a kernel log: inside its MiB bound after 10,000 findings,
// old rows gone after the retention, open conditions kept; the cursor hands over each record once.
using Kiln.Core.Health;
using Kiln.Core.Service;

namespace Kiln.Tests.Service;

[TestFixture]
public sealed class HistoryTests
{
    private string _dir = "";

    [SetUp]
    public void SetUp() => _dir = ServiceRun.NewFolder("history");

    [Test]
    public void Ten_thousand_findings_stay_inside_the_size_bound_and_open_conditions_are_kept()
    {
        using var history = History.Open(Path.Combine(_dir, History.FileName), _ => { });
        var now = DateTime.UtcNow;
        history.PutCondition(new Condition("GPU-1", "XID_FATAL:79", HealthState.Unhealthy, SuggestedAction.Reboot, "Xid 79", "kmsg", ClearedBy.Burn, now.AddDays(-400), now.AddDays(-400)));
        var options = new HistoryOptions(RetentionDays: 3650, MaxMib: 1);
        for (var run = 0; run < 100; run++)
        {
            history.InTransaction(() =>
            {
                var id = history.BeginRun(NodeService.CheckKind, now.AddMinutes(run), "boot");
                for (var i = 0; i < 100; i++)
                    history.AddFinding(new FindingRecord(id, now.AddMinutes(run), "sysfs_ib", $"mlx5_{i % 8} port 1", "WARN", "IB_ERRORS",
                        $"symbol_error 1{i:D4} above the WARN level 10 (finding {run * 100 + i} of a synthetic history, padded to a realistic length)"));
                history.EndRun(id, now.AddMinutes(run), "WARN", "synthetic");
            });
            history.Prune(now, options);
        }
        Assert.That(history.SizeBytes(), Is.LessThanOrEqualTo(1024 * 1024), "over its 1 MiB bound");
        Assert.That(history.CountFindings(), Is.GreaterThan(1000).And.LessThan(10_000), "the bound kept the newest, not nothing");
        Assert.That(history.Findings(1)[0].Message, Does.Contain("finding 9999 "), "the newest finding is kept");
        Assert.That(history.Conditions().Single().Code, Is.EqualTo("XID_FATAL:79"), "an open condition was pruned");
    }

    [Test]
    public void Rows_older_than_the_retention_go_and_a_running_run_stays()
    {
        using var history = History.Open(Path.Combine(_dir, History.FileName), _ => { });
        var now = DateTime.UtcNow;
        var old = history.RecordRun(NodeService.CheckKind, now.AddDays(-40), "PASS", "old", "b");
        history.AddFinding(new FindingRecord(old, now.AddDays(-40), "nvml", "gpu0", "WARN", "GPU_POWER_HIGH", "old"));
        var running = history.BeginRun(NodeService.BurnKind, now.AddDays(-40), "b");
        var recent = history.RecordRun(NodeService.CheckKind, now.AddDays(-1), "PASS", "recent", "b");
        history.Prune(now, new HistoryOptions(RetentionDays: 30, MaxMib: 64));
        Assert.That(history.Runs(10).Select(r => r.Id), Is.EquivalentTo(new[] { running, recent }));
        Assert.That(history.CountFindings(), Is.Zero);
    }

    [Test]
    public void The_cursor_hands_each_kmsg_record_over_once_and_a_new_boot_reads_its_log_from_the_start()
    {
        var root = Path.Combine(_dir, "root");
        Directory.CreateDirectory(Path.Combine(root, "proc/sys/kernel/random"));
        File.WriteAllText(Path.Combine(root, "proc/sys/kernel/random/boot_id"), "boot-a\n");
        var log = Path.Combine(_dir, "kmsg");
        File.WriteAllText(log, "6,10,1000,-;one\n SUBSYSTEM=pci\n6,11,2000,-;two\n6,12,3000,-;partial line without its newline");
        var ctx = new CheckContext(root, HealthPolicy.Default, DateTimeOffset.UtcNow);
        var first = new KernelLogCursor(root, log, null);
        Assert.That(first.Read(ctx)!.Lines, Is.EqualTo(new[] { "6,10,1000,-;one", " SUBSYSTEM=pci", "6,11,2000,-;two" }));
        Assert.That(first.Next, Is.EqualTo(new KernelLogCursor.Position("boot-a", log, 11, first.Next!.Offset)));

        File.AppendAllText(log, "\n6,13,4000,-;three\n");
        var second = new KernelLogCursor(root, log, KernelLogCursor.Position.FromJson(first.Next.ToJson()));
        Assert.That(second.Read(ctx)!.Lines, Is.EqualTo(new[] { "6,12,3000,-;partial line without its newline", "6,13,4000,-;three" }));

        // The log was rewritten from the ring (the same records again, as /dev/kmsg gives them): nothing new.
        File.WriteAllText(log, "6,11,2000,-;two\n6,12,3000,-;partial line without its newline\n6,13,4000,-;three\n");
        var third = new KernelLogCursor(root, log, second.Next);
        Assert.That(third.Read(ctx)!.Lines, Is.Empty);

        // A reboot: its log starts again at low sequence numbers, and all of it is new.
        File.WriteAllText(Path.Combine(root, "proc/sys/kernel/random/boot_id"), "boot-b\n");
        File.WriteAllText(log, "6,1,100,-;after the reboot\n");
        var fourth = new KernelLogCursor(root, log, third.Next);
        Assert.That(fourth.Read(ctx)!.Lines, Is.EqualTo(new[] { "6,1,100,-;after the reboot" }));
        Assert.That(fourth.Next!.BootId, Is.EqualTo("boot-b"));
    }
}
