// Edges of the verdict rules that a mutation run (scripts/mutate.sh Evaluation) showed no test held:
// the exact ends of the borderline band, the worst threshold deciding it, data errors and unfinished
// tests never re-measured, a node with one passing device, deselected stream ops, and how a
// re-measured or injected outcome accumulates. Each asserts what a user reads: status and reason.
using Kiln.Core;
using Kiln.Core.Evaluation;
using Kiln.Core.Profiles;
using Kiln.Core.Results;
using Kiln.Native;
using Kiln.Native.Interop;

namespace Kiln.Tests.Evaluation;

public class EvaluatorEdgeTests
{
    private static readonly DeviceInfo Gpu = new("cuda", "NVIDIA H100 80GB HBM3", "GPU-1", "0000:18:00.0", 0, 132, 1, 2048,
        80UL << 30, 79UL << 30, 50UL << 20, 1980, 3352, 67, 67);
    private static readonly Profile Profile = ProfileLoader.Parse(YamlConfig.Parse("edge.yaml", """
        name: edge
        thresholds:
          gpu:
            copy:
              h2d_gbps: { min: 100 GB/s }
              d2h_gbps: { min: 100 GB/s }
            stream:
              copy_gbps_best: { min: 1000 GB/s }
              triad_gbps_best: { min: 1000 GB/s }
        """), "edge");

    private static TestOutcome Copy(double h2d, double? d2h = null, TestEnd end = TestEnd.Completed)
    {
        var o = new TestOutcome(TestKind.Copy, Gpu, new TestParams()) { End = end };
        o.Add("h2d_gbps", h2d, "GB/s");
        o.Add("d2h_gbps", d2h ?? 200, "GB/s");
        return o;
    }

    private static DataError Error(ulong offset, bool injected = false) => new("copy", "h2d", offset, 0x1, 0x3, 8, injected);

    [TestCase(95.0, true, TestName = "Margin exactly 1 - band (0.95) is borderline")]
    [TestCase(94.9, false, TestName = "Margin just under 1 - band is a clear FAIL")]
    [TestCase(105.0, false, TestName = "Margin exactly 1 + band (1.05) is a clear PASS")]
    [TestCase(104.9, true, TestName = "Margin just under 1 + band is borderline")]
    public void The_borderline_band_is_half_open(double h2d, bool borderline) =>
        Assert.That(Evaluator.IsBorderline(Copy(h2d), Profile), Is.EqualTo(borderline));

    [Test]
    public void The_worst_threshold_decides_whether_a_result_is_borderline()
    {
        Assert.That(Evaluator.IsBorderline(Copy(h2d: 100, d2h: 300), Profile), Is.True, "h2d on its floor, d2h far above");
        Assert.That(Evaluator.IsBorderline(Copy(h2d: 300, d2h: 100), Profile), Is.True);
        Assert.That(Evaluator.IsBorderline(Copy(h2d: 300, d2h: 300), Profile), Is.False);
    }

    [Test]
    public void Data_errors_or_an_unfinished_test_are_never_re_measured()
    {
        var errors = Copy(h2d: 100);
        errors.Add(Error(0x40));
        Assert.That(Evaluator.IsBorderline(errors, Profile), Is.False, "corruption is a FAIL however fast");
        Assert.That(Evaluator.IsBorderline(Copy(h2d: 100, end: TestEnd.TimedOut), Profile), Is.False);
        Assert.That(Evaluator.IsBorderline(Copy(h2d: 100, end: TestEnd.Cancelled), Profile), Is.False);
    }

    [Test]
    public void One_passing_device_makes_a_node_verdict_even_beside_skips()
    {
        VerdictRow Row(VerdictStatus s, int device = 0) => new("n", "t", "cpu", device, s, "", null, null, "", "");
        Assert.That(Evaluator.Overall([Row(VerdictStatus.PASS), Row(VerdictStatus.SKIP, 1)], cancelled: false), Is.EqualTo(NodeVerdict.PASS));
        Assert.That(Evaluator.Overall([Row(VerdictStatus.SKIP), Row(VerdictStatus.WARN, 1)], cancelled: false), Is.EqualTo(NodeVerdict.PASS));
        Assert.That(Evaluator.Overall([Row(VerdictStatus.PASS, device: -1), Row(VerdictStatus.SKIP)], cancelled: false), Is.EqualTo(NodeVerdict.INCOMPLETE),
            "a passing node-level health row alone tested no device");
    }

    [Test]
    public void Data_errors_found_before_a_stop_fail_and_say_how_the_test_ended()
    {
        var timedOut = Copy(h2d: 300, end: TestEnd.TimedOut);
        timedOut.Detail = "timed out: still running after 30s";
        timedOut.Add(Error(0x40));
        var v = Evaluator.Judge(timedOut, "n", Profile);
        Assert.That((v.Status, v.Reason), Is.EqualTo((VerdictStatus.FAIL, "1 data error, first at offset 0x40 (h2d, bits 1); timed out: still running after 30s")));

        var cancelled = Copy(h2d: 300, end: TestEnd.Cancelled);
        cancelled.Add(Error(0x40));
        cancelled.Add(Error(0x80));
        Assert.That(Evaluator.Judge(cancelled, "n", Profile).Reason, Does.StartWith("2 data errors, first at offset 0x40").And.EndWith("; cancelled before the end"));
    }

    [Test]
    public void Unsupported_and_failed_tests_say_why()
    {
        var unsupported = Copy(h2d: 300, end: TestEnd.Unsupported);
        unsupported.Detail = "test 'copy' is not implemented by the cpu backend";
        Assert.That(Evaluator.Judge(unsupported, "n", Profile), Has.Property("Status").EqualTo(VerdictStatus.SKIP)
            .And.Property("Reason").EqualTo("unsupported: test 'copy' is not implemented by the cpu backend"));
        var failed = Copy(h2d: 300, end: TestEnd.Failed);
        failed.Detail = "out of memory";
        Assert.That(Evaluator.Judge(failed, "n", Profile), Has.Property("Status").EqualTo(VerdictStatus.FAIL)
            .And.Property("Reason").EqualTo("could not run: out of memory"));
    }

    [Test]
    public void Stream_thresholds_on_ops_the_plan_did_not_run_do_not_apply()
    {
        var p = new TestParams { OpMask = Catalog.ParseOpMask("triad", "ops") };
        var o = new TestOutcome(TestKind.Stream, Gpu, p) { End = TestEnd.Completed };
        o.Add("triad_gbps_best", 2000, "GB/s");
        o.Add("errors_total", 0, "count");
        var v = Evaluator.Judge(o, "n", Profile);
        Assert.That((v.Status, v.Metric), Is.EqualTo((VerdictStatus.PASS, "triad_gbps_best")), v.Reason);

        var all = new TestOutcome(TestKind.Stream, Gpu, new TestParams()) { End = TestEnd.Completed };
        all.Add("triad_gbps_best", 2000, "GB/s");
        all.Add("errors_total", 0, "count");
        Assert.That(Evaluator.Judge(all, "n", Profile), Has.Property("Status").EqualTo(VerdictStatus.FAIL)
            .And.Property("Reason").Contains("reported no copy_gbps_best"), "every op ran: copy must be there");
    }

    [Test]
    public void Stream_best_is_the_highest_of_the_per_iteration_and_best_values_and_null_when_absent()
    {
        var o = new TestOutcome(TestKind.Stream, Gpu, new TestParams()) { End = TestEnd.Completed };
        o.Add("copy_gbps", 900, "GB/s");
        o.Add("copy_gbps", 1200, "GB/s");
        o.Add("copy_gbps_best", 1100, "GB/s");
        Assert.That(Evaluator.StreamBest(o, "copy"), Is.EqualTo(1200));
        Assert.That(Evaluator.StreamBest(o, "triad"), Is.Null);
    }

    [Test]
    public void A_reason_names_every_judged_metric_and_the_verification()
    {
        var v = Evaluator.Judge(Copy(h2d: 300, d2h: 250), "n", Profile);
        Assert.That(v.Status, Is.EqualTo(VerdictStatus.PASS));
        Assert.That(v.Reason, Is.EqualTo("d2h_gbps 250 GB/s clears the floor 100 GB/s (edge.yaml:6); all: h2d_gbps 300 GB/s, d2h_gbps 250 GB/s; no data errors"));
        var warn = Evaluator.Judge(Copy(h2d: 102), "n", Profile);
        Assert.That(warn.Reason, Does.StartWith("h2d_gbps 102 GB/s is within 5% above the floor 100 GB/s"));
    }

    [Test]
    public void Outcomes_accumulate_injection_errors_and_re_measurements()
    {
        var o = Copy(h2d: 90);
        o.Add("h2d_gbps", 91, "GB/s", injected: true);
        o.Add("h2d_gbps", 92, "GB/s", injected: false);
        Assert.That(o.Injected, Is.True, "one injected value marks the outcome");
        Assert.That(o.Sum("h2d_gbps"), Is.EqualTo(273));
        Assert.That(o.Last("h2d_gbps"), Is.EqualTo(92));
        Assert.That(o.Last("nothing"), Is.Null);
        Assert.That(o.Sum("nothing"), Is.Null);
        Assert.That(o.UnitOf("h2d_gbps"), Is.EqualTo("GB/s"));
        Assert.That(o.UnitOf("nothing"), Is.EqualTo(""));

        var clean = Copy(h2d: 90);
        clean.Add(Error(0x10));
        clean.Add(Error(0x20, injected: true));
        Assert.That((clean.DataErrorsReported, clean.FirstError!.Value.OffsetBytes, clean.Injected), Is.EqualTo((2L, 0x10UL, true)));

        var first = Copy(h2d: 90);
        first.Add(Error(0x10));
        var repeat = Copy(h2d: 95);
        repeat.Add(Error(0x30, injected: true));
        repeat.Add(Error(0x40));
        first.Absorb(repeat);
        Assert.That((first.DataErrorsReported, first.FirstError!.Value.OffsetBytes, first.Attempts, first.Injected), Is.EqualTo((3L, 0x10UL, 2, true)));
        var plain = Copy(h2d: 90);
        plain.Absorb(Copy(h2d: 95));
        Assert.That(plain.Injected, Is.False);
        Assert.That(new TestOutcome(TestKind.Copy, Gpu, new TestParams()).Detail, Is.EqualTo(""));
    }
}
