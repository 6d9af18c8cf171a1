// The verdict rules: memtest errors fail, stream below its floor fails, just above it warns,
// anything made under injection says so, and a cancelled run is INCOMPLETE, never PASS. Judged
// against the built-in cpu-only profile (a quarter of the peak, else a 1 GB/s sanity floor).
using Kiln.Core.Evaluation;
using Kiln.Core.Profiles;
using Kiln.Core.Results;
using Kiln.Native;
using Kiln.Native.Interop;

namespace Kiln.Tests.Core;

public class EvaluationTests
{
    private static readonly DeviceInfo UnknownPeak = Device(peakGbps: 0);
    internal static readonly Profile CpuOnly = ProfileCatalog.BuiltIn("cpu-only");

    [Test]
    public void Memtest_with_data_errors_fails_naming_the_count_and_first_offset()
    {
        var o = Memtest(errors: 3);
        o.Add(new DataError("memtest", "walking_ones", 0x1f40, 1UL << 5, (1UL << 5) | (1UL << 17), 8, false));
        var v = Evaluator.Judge(o, "node1", CpuOnly);
        Assert.That(v.Status, Is.EqualTo(VerdictStatus.FAIL));
        Assert.That((v.Metric, v.Value, v.Threshold), Is.EqualTo(("errors_total", (double?)3, (double?)0)));
        Assert.That(v.Reason, Is.EqualTo("3 data errors, first at offset 0x1f40 (walking_ones, bits 17)"));
    }

    [Test]
    public void Memtest_errors_counted_past_the_report_cap_still_fail()
    {
        var v = Evaluator.Judge(Memtest(errors: 5000), "node1", CpuOnly);
        Assert.That(v.Status, Is.EqualTo(VerdictStatus.FAIL));
        Assert.That(v.Value, Is.EqualTo(5000));
    }

    [Test]
    public void Memtest_without_errors_passes()
    {
        var v = Evaluator.Judge(Memtest(errors: 0), "node1", CpuOnly);
        Assert.That(v.Status, Is.EqualTo(VerdictStatus.PASS));
        Assert.That(v.Reason, Does.StartWith("no data errors"));
    }

    [Test]
    public void Memtest_that_reported_nothing_fails_rather_than_passes()
    {
        var o = new TestOutcome(TestKind.Memtest, UnknownPeak, new TestParams()) { End = TestEnd.Completed };
        Assert.That(Evaluator.Judge(o, "node1", CpuOnly).Status, Is.EqualTo(VerdictStatus.FAIL));
    }

    [Test]
    public void Injected_results_say_so()
    {
        var o = Memtest(errors: 3, new TestParams { InjectFlips = 3, InjectSeed = 7 });
        Assert.That(Evaluator.Judge(o, "node1", CpuOnly).Reason, Does.EndWith("(injected)"));
    }

    [Test]
    public void Stream_floor_is_a_quarter_of_the_peak_when_known_else_a_sanity_floor()
    {
        var copy = CpuOnly.For("stream", DeviceClass.Cpu).Single(t => t.Metric == "copy_gbps_best");
        Assert.That(copy.Resolve(Device(peakGbps: 200)), Is.EqualTo((50.0, "25% of peak 200 GB/s")));
        var (floor, basis) = copy.Resolve(UnknownPeak)!.Value;
        Assert.That(floor, Is.EqualTo(1.0));
        Assert.That(basis, Does.Contain("peak unknown"));
    }

    [Test]
    public void Stream_below_the_floor_fails_naming_the_slowest_op()
    {
        var v = Evaluator.Judge(Stream(Device(peakGbps: 200), copy: 80, scale: 80, add: 49, triad: 90), "node1", CpuOnly);
        Assert.That(v.Status, Is.EqualTo(VerdictStatus.FAIL));
        Assert.That((v.Metric, v.Value, v.Threshold, v.Unit), Is.EqualTo(("add_gbps_best", (double?)49, (double?)50, "GB/s")));
        Assert.That(v.Reason, Does.StartWith("add_gbps_best 49 GB/s is below the floor 50 GB/s (25% of peak 200 GB/s)"));
    }

    [Test]
    public void Stream_just_above_the_floor_warns()
    {
        var v = Evaluator.Judge(Stream(Device(peakGbps: 200), copy: 80, scale: 51, add: 80, triad: 80), "node1", CpuOnly);
        Assert.That(v.Status, Is.EqualTo(VerdictStatus.WARN));
        Assert.That(v.Metric, Is.EqualTo("scale_gbps_best"));
    }

    [Test]
    public void Stream_well_above_the_floor_passes_judged_on_the_best_iteration()
    {
        var o = Stream(Device(peakGbps: 200), copy: 80, scale: 80, add: 80, triad: 80);
        o.Add(new Metric("stream", "copy_gbps", 10, "GB/s", false));  // a slow first iteration
        Assert.That(Evaluator.Judge(o, "node1", CpuOnly).Status, Is.EqualTo(VerdictStatus.PASS));
        Assert.That(Evaluator.StreamBest(o, "copy"), Is.EqualTo(80));
    }

    [Test]
    public void Stream_with_a_wrong_value_fails_whatever_its_speed()
    {
        var o = Stream(UnknownPeak, copy: 80, scale: 80, add: 80, triad: 80);
        o.Add(new DataError("stream", "triad", 0x40, 0x3ff0000000000000, 0x3ff0000000000001, 8, false));
        var v = Evaluator.Judge(o, "node1", CpuOnly);
        Assert.That(v.Status, Is.EqualTo(VerdictStatus.FAIL));
        Assert.That(v.Reason, Does.Contain("offset 0x40 (triad"));
    }

    [Test]
    public void Stream_missing_an_op_fails()
    {
        var o = new TestOutcome(TestKind.Stream, UnknownPeak, new TestParams()) { End = TestEnd.Completed };
        o.Add(new Metric("stream", "copy_gbps_best", 20, "GB/s", false));
        var v = Evaluator.Judge(o, "node1", CpuOnly);
        Assert.That(v.Status, Is.EqualTo(VerdictStatus.FAIL));
        Assert.That(v.Reason, Is.EqualTo("stream reported no scale_gbps_best"));
    }

    [Test]
    public void Stream_under_slowdown_is_marked_injected()
    {
        var o = Stream(UnknownPeak, copy: 5, scale: 5, add: 5, triad: 5, new TestParams { InjectSlowdown = 0.5 });
        Assert.That(Evaluator.Judge(o, "node1", CpuOnly).Reason, Does.EndWith("(injected)"));
    }

    [Test]
    public void Cancelled_and_never_started_tests_are_skipped()
    {
        foreach (var end in new[] { TestEnd.Cancelled, TestEnd.NotRun })
        {
            var o = new TestOutcome(TestKind.Stream, UnknownPeak, new TestParams()) { End = end };
            var v = Evaluator.Judge(o, "node1", CpuOnly);
            Assert.That((v.Status, v.Reason), Is.EqualTo((VerdictStatus.SKIP, "cancelled")));
        }
    }

    [Test]
    public void Errors_found_before_a_cancel_still_fail()
    {
        var o = Memtest(errors: 2);
        o.End = TestEnd.Cancelled;
        Assert.That(Evaluator.Judge(o, "node1", CpuOnly).Status, Is.EqualTo(VerdictStatus.FAIL));
    }

    [Test]
    public void Node_verdict()
    {
        VerdictRow Row(VerdictStatus s) => new("n", "t", "cpu", 0, s, "", null, null, "", "");
        Assert.That(Evaluator.Overall([Row(VerdictStatus.PASS), Row(VerdictStatus.WARN)], cancelled: false), Is.EqualTo(NodeVerdict.PASS));
        Assert.That(Evaluator.Overall([Row(VerdictStatus.PASS), Row(VerdictStatus.FAIL)], cancelled: false), Is.EqualTo(NodeVerdict.FAIL));
        Assert.That(Evaluator.Overall([Row(VerdictStatus.PASS), Row(VerdictStatus.SKIP)], cancelled: true), Is.EqualTo(NodeVerdict.INCOMPLETE));
        Assert.That(Evaluator.Overall([Row(VerdictStatus.SKIP)], cancelled: false), Is.EqualTo(NodeVerdict.INCOMPLETE), "nothing verified is not a pass");
        Assert.That(Evaluator.ExitCode(NodeVerdict.PASS), Is.Zero);
        Assert.That(Evaluator.ExitCode(NodeVerdict.INCOMPLETE), Is.EqualTo(1));
    }

    [Test]
    public void One_FAIL_fails_the_node_whatever_the_other_rows_are()
    {
        VerdictRow Row(VerdictStatus s, string test = "stream", int device = 0) => new("n", test, "cpu", device, s, "", null, null, "", "");
        Assert.That(Evaluator.Overall([Row(VerdictStatus.WARN), Row(VerdictStatus.FAIL)], cancelled: false), Is.EqualTo(NodeVerdict.FAIL));
        Assert.That(Evaluator.Overall([Row(VerdictStatus.FAIL), Row(VerdictStatus.WARN)], cancelled: false), Is.EqualTo(NodeVerdict.FAIL));
        // A node-level health FAIL (device -1) among device WARNs and PASSes.
        Assert.That(Evaluator.Overall([Row(VerdictStatus.WARN), Row(VerdictStatus.FAIL, "health_before", -1), Row(VerdictStatus.PASS), Row(VerdictStatus.WARN, "memtest")],
            cancelled: false), Is.EqualTo(NodeVerdict.FAIL));
        Assert.That(Evaluator.Overall([Row(VerdictStatus.WARN), Row(VerdictStatus.FAIL, "health_after", -1)], cancelled: true), Is.EqualTo(NodeVerdict.FAIL),
            "a FAIL found before a cancel is still a FAIL");
        Assert.That(Evaluator.ExitCode(NodeVerdict.FAIL), Is.EqualTo(1));
    }

    [Test]
    public void A_value_exactly_on_the_floor_warns_and_just_below_it_fails()
    {
        // peak 200 GB/s: the floor is 25% = 50 GB/s, the WARN band [50, 52.5).
        var on = Evaluator.Judge(Stream(Device(peakGbps: 200), copy: 80, scale: 50, add: 80, triad: 80), "node1", CpuOnly);
        Assert.That((on.Status, on.Metric, on.Value, on.Threshold), Is.EqualTo((VerdictStatus.WARN, "scale_gbps_best", (double?)50, (double?)50)));
        var below = Evaluator.Judge(Stream(Device(peakGbps: 200), copy: 80, scale: 49.999, add: 80, triad: 80), "node1", CpuOnly);
        Assert.That(below.Status, Is.EqualTo(VerdictStatus.FAIL));
        var bandEnd = Evaluator.Judge(Stream(Device(peakGbps: 200), copy: 80, scale: 52.5, add: 80, triad: 80), "node1", CpuOnly);
        Assert.That(bandEnd.Status, Is.EqualTo(VerdictStatus.PASS), "1.05 x the floor is out of the band");
        Assert.That(Evaluator.StatusOf(1.0, 0.05), Is.EqualTo(VerdictStatus.WARN));
    }

    internal static DeviceInfo Device(double peakGbps) =>
        new("cpu", "Test CPU", "", "", 0, 8, 1, 2, 32UL << 30, 16UL << 30, 32UL << 20, 3000, peakGbps, 0, 0);

    internal static TestOutcome Memtest(long errors, TestParams? p = null)
    {
        var o = new TestOutcome(TestKind.Memtest, UnknownPeak, p ?? new TestParams()) { End = TestEnd.Completed };
        o.Add(new Metric("memtest", "errors_walking_ones", errors, "count", false));
        o.Add(new Metric("memtest", "errors_total", errors, "count", false));
        return o;
    }

    internal static TestOutcome Stream(DeviceInfo device, double copy, double scale, double add, double triad, TestParams? p = null)
    {
        var o = new TestOutcome(TestKind.Stream, device, p ?? new TestParams()) { End = TestEnd.Completed };
        foreach (var (op, gbps) in new[] { ("copy", copy), ("scale", scale), ("add", add), ("triad", triad) })
            o.Add(new Metric("stream", $"{op}_gbps_best", gbps, "GB/s", false));
        o.Add(new Metric("stream", "errors_total", 0, "count", false));
        return o;
    }
}
