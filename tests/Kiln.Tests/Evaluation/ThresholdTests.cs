// Verdicts against profile thresholds: the worst metric decides and is named, floors and ceilings
// have their WARN band, a matrix is judged on its worst pair, borderline results are re-measured, a
// test that hung FAILs, a test nobody can judge is SKIP - never PASS - and the result files say so.
using System.Xml.Linq;
using Kiln.Core.Evaluation;
using Kiln.Core.Profiles;
using Kiln.Core.Results;
using Kiln.Native;
using Kiln.Native.Interop;
using Kiln.Tests.Core;

namespace Kiln.Tests.Evaluation;

public class ThresholdTests
{
    private static readonly DeviceInfo H100 = new("cuda", "NVIDIA H100 80GB HBM3", "GPU-1", "0000:18:00.0", 0, 132, 1, 2048,
        80UL << 30, 79UL << 30, 50UL << 20, 1980, 3352, 67, 67);
    private static readonly Profile Profile = ProfileLoader.Parse(YamlConfig.Parse("test.yaml", """
        name: test
        thresholds:
          gpu:
            copy:
              h2d_gbps: { min: 48 GB/s }
              p2p_ce_gbps: { min: 335 GB/s }
            launch:
              launch_latency_us_p99: { max: 10 us }
            gemm:
              bf16_tflops: { min: 0.65 PFLOP/s }
        """), "test");

    [Test]
    public void A_matrix_is_judged_on_its_worst_pair()
    {
        var o = Outcome(TestKind.Copy, ("h2d_gbps", 55, "GB/s"), ("p2p_ce_gbps_0_1", 370, "GB/s"),
            ("p2p_ce_gbps_0_2", 330, "GB/s"), ("p2p_ce_gbps_0_3", 368, "GB/s"));
        var v = Evaluator.Judge(o, "n1", Profile);
        Assert.That((v.Status, v.Metric, v.Value, v.Threshold, v.Unit), Is.EqualTo((VerdictStatus.FAIL, "p2p_ce_gbps_0_2", (double?)330, (double?)335, "GB/s")));
        Assert.That(v.Reason, Does.StartWith("p2p_ce_gbps_0_2 330 GB/s is below the floor 335 GB/s (test.yaml:"));
    }

    [Test]
    public void A_matrix_without_pairs_is_not_judged_but_a_missing_metric_fails()
    {
        var single = Outcome(TestKind.Copy, ("h2d_gbps", 55, "GB/s"), ("p2p_ce_gbps_pairs", 0, "count"));
        Assert.That(Evaluator.Judge(single, "n1", Profile).Status, Is.EqualTo(VerdictStatus.PASS), "one GPU has no peer to copy to");
        var missing = Outcome(TestKind.Copy, ("p2p_ce_gbps_0_1", 370, "GB/s"));
        var v = Evaluator.Judge(missing, "n1", Profile);
        Assert.That((v.Status, v.Reason), Is.EqualTo((VerdictStatus.FAIL, "copy reported no h2d_gbps")));
    }

    [TestCase(9.0, VerdictStatus.PASS)]
    [TestCase(9.8, VerdictStatus.WARN)]     // within 5% under the ceiling
    [TestCase(10.5, VerdictStatus.FAIL)]
    public void A_ceiling_fails_above_and_warns_just_under(double p99, VerdictStatus expected)
    {
        var v = Evaluator.Judge(Outcome(TestKind.Launch, ("launch_latency_us_p99", p99, "us")), "n1", Profile);
        Assert.That(v.Status, Is.EqualTo(expected), v.Reason);
    }

    [Test]
    public void Values_are_compared_in_canonical_units()
    {
        // 0.65 PFLOP/s in the profile, TFLOP/s from the kernel; 9500 ns is 9.5 us.
        Assert.That(Evaluator.Judge(Outcome(TestKind.Gemm, ("bf16_tflops", 700, "TFLOP/s")), "n1", Profile).Status, Is.EqualTo(VerdictStatus.PASS));
        Assert.That(Evaluator.Judge(Outcome(TestKind.Launch, ("launch_latency_us_p99", 9500, "ns")), "n1", Profile).Value, Is.EqualTo(9.5));
        var wrong = Evaluator.Judge(Outcome(TestKind.Gemm, ("bf16_tflops", 700, "GB/s")), "n1", Profile);
        Assert.That((wrong.Status, wrong.Reason), Is.EqualTo((VerdictStatus.PASS, "no data errors; performance not judged: bf16_tflops is in 'GB/s', not a compute rate unit: not judged")));
    }

    [Test]
    public void A_test_nobody_can_judge_is_skipped_never_passed()
    {
        var power = Outcome(TestKind.Power, ("power_w_mean", 650, "W"));
        var v = Evaluator.Judge(power, "n1", Profile);
        Assert.That((v.Status, v.Reason), Is.EqualTo((VerdictStatus.SKIP, "measured, not judged: no threshold for gpu power in profile test")));
        var gemm = new TestOutcome(TestKind.Gemm, H100, new TestParams()) { End = TestEnd.Unsupported, Detail = "no cuda backend" };
        Assert.That(Evaluator.Judge(gemm, "n1", Profile).Status, Is.EqualTo(VerdictStatus.SKIP));
    }

    [Test]
    public void A_test_stopped_by_its_timeout_fails_as_a_hang()
    {
        var o = new TestOutcome(TestKind.Gemm, H100, new TestParams()) { End = TestEnd.TimedOut, Detail = "timed out: still running after 30s (plan timeout), stopped" };
        var v = Evaluator.Judge(o, "n1", Profile);
        Assert.That((v.Status, v.Reason), Is.EqualTo((VerdictStatus.FAIL, "timed out: still running after 30s (plan timeout), stopped")));
    }

    // Borderline: margin (value / floor) in [0.95, 1.05). 48 GB/s floor.
    [TestCase(45.0, false)]   // 0.9375: a clear FAIL, no point measuring again
    [TestCase(46.0, true)]    // 0.958: just below the floor
    [TestCase(48.0, true)]    // on the floor: WARN
    [TestCase(50.3, true)]    // 1.048: inside the WARN band
    [TestCase(50.5, false)]   // 1.052: a clear PASS
    public void Borderline_is_the_warn_band_and_as_far_below_the_floor(double h2d, bool borderline)
    {
        var o = Outcome(TestKind.Copy, ("h2d_gbps", h2d, "GB/s"), ("p2p_ce_gbps_pairs", 0, "count"));
        Assert.That(Evaluator.IsBorderline(o, Profile), Is.EqualTo(borderline));
    }

    [Test]
    public void A_re_measured_result_is_judged_on_every_attempt_and_a_fail_that_went_away_is_intermittent()
    {
        var first = Outcome(TestKind.Copy, ("h2d_gbps", 47, "GB/s"), ("p2p_ce_gbps_pairs", 0, "count"));
        Assert.That(Evaluator.Judge(first, "n1", Profile).Status, Is.EqualTo(VerdictStatus.FAIL));
        first.Absorb(Outcome(TestKind.Copy, ("h2d_gbps", 49, "GB/s"), ("p2p_ce_gbps_pairs", 0, "count")));
        first.Absorb(Outcome(TestKind.Copy, ("h2d_gbps", 52, "GB/s"), ("p2p_ce_gbps_pairs", 0, "count")));
        var v = Evaluator.Judge(first, "n1", Profile);
        // Not the best attempt's PASS: the 47 GB/s FAIL happened, and both values are in the reason.
        Assert.That((v.Status, v.Value), Is.EqualTo((VerdictStatus.WARN, (double?)47)));
        Assert.That(v.Reason, Does.StartWith("intermittent: attempt 1 FAIL (h2d_gbps 47 GB/s), attempt 2 WARN (h2d_gbps 49 GB/s), attempt 3 PASS (h2d_gbps 52 GB/s)"));

        var steady = Outcome(TestKind.Copy, ("h2d_gbps", 47, "GB/s"), ("p2p_ce_gbps_pairs", 0, "count"));
        steady.Absorb(Outcome(TestKind.Copy, ("h2d_gbps", 46, "GB/s"), ("p2p_ce_gbps_pairs", 0, "count")));
        var twice = Evaluator.Judge(steady, "n1", Profile);
        Assert.That((twice.Status, twice.Value), Is.EqualTo((VerdictStatus.FAIL, (double?)46)), "the worst attempt decides a FAIL that stayed");
        Assert.That(twice.Reason, Does.Contain("judged on every attempt: attempt 1 FAIL (h2d_gbps 47 GB/s), attempt 2 FAIL (h2d_gbps 46 GB/s)"));
    }

    [Test]
    public void Junit_has_one_testcase_per_verdict_failures_and_skips()
    {
        var dir = TestEnvironment.NewTempFolder("kiln-junit");
        try
        {
            var path = Path.Combine(dir, "junit.xml");
            JUnitWriter.Write(path, Summary(), [
                new VerdictRow("n1", "stream", "cuda", 0, VerdictStatus.PASS, "copy_gbps_best", 3000, 2400, "GB/s", "clears"),
                new VerdictRow("n1", "copy", "cuda", 1, VerdictStatus.FAIL, "h2d_gbps", 30, 48, "GB/s", "h2d_gbps 30 GB/s is below the floor 48 GB/s"),
                new VerdictRow("n1", "gemm", "cpu", 0, VerdictStatus.SKIP, "", null, null, "", "unsupported: no gemm on cpu"),
                new VerdictRow("n1", "launch", "cuda", 0, VerdictStatus.WARN, "launch_latency_us_p99", 9.8, 10, "us", "within 5%"),
            ]);
            Assert.That(File.ReadAllBytes(path)[0], Is.EqualTo((byte)'<'), "no byte order mark");
            var suite = XDocument.Load(path).Root!.Element("testsuite")!;
            Assert.That(((int)suite.Attribute("tests")!, (int)suite.Attribute("failures")!, (int)suite.Attribute("skipped")!), Is.EqualTo((4, 1, 1)));
            var cases = suite.Elements("testcase").ToList();
            Assert.That(cases.Select(c => $"{c.Attribute("classname")!.Value}/{c.Attribute("name")!.Value}"),
                Is.EqualTo(new[] { "kiln.n1.stream/cuda0", "kiln.n1.copy/cuda1", "kiln.n1.gemm/cpu0", "kiln.n1.launch/cuda0" }));
            Assert.That(cases[1].Element("failure")!.Attribute("message")!.Value, Is.EqualTo("h2d_gbps 30 GB/s is below the floor 48 GB/s"));
            Assert.That(cases[2].Element("skipped")!.Attribute("message")!.Value, Is.EqualTo("unsupported: no gemm on cpu"));
            Assert.That(cases[3].Element("failure"), Is.Null, "WARN passes");
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Test]
    public void Kiln_prom_carries_the_node_and_device_verdicts()
    {
        var prom = new PrometheusWriter();
        VerdictExposition.AddTo(prom, Summary() with { Verdict = "FAIL" },
            [new VerdictRow("n1", "copy", "cuda", 1, VerdictStatus.FAIL, "h2d_gbps", 30, 48, "GB/s", "slow")]);
        var text = prom.ToText();
        Assert.That(text, Does.Contain("kiln_burn_node_verdict{host=\"n1\",status=\"FAIL\",plan=\"quick\",profile=\"h100-sxm\"} 1\n"));
        Assert.That(text, Does.Contain("kiln_burn_verdict{host=\"n1\",test=\"copy\",backend=\"cuda\",device=\"1\",status=\"FAIL\"} 1\n"));
        Assert.That(text, Does.Contain("kiln_burn_value{host=\"n1\",test=\"copy\",backend=\"cuda\",device=\"1\",metric=\"h2d_gbps\",unit=\"GB/s\"} 30\n"));
        Assert.That(text, Does.Contain("kiln_burn_threshold{host=\"n1\",test=\"copy\",backend=\"cuda\",device=\"1\",metric=\"h2d_gbps\",unit=\"GB/s\"} 48\n"));
        Assert.That(text, Does.Contain("# TYPE kiln_burn_end_timestamp_seconds gauge"));
    }

    private static RunSummary Summary() => new()
    {
        Host = "n1", RunId = "r1", KilnVersion = "0.1.0", NativeVersion = "0.1.0", AbiVersion = 1, Command = "burn", Plan = "quick",
        Profile = "h100-sxm", Arguments = [], StartUtc = new DateTime(2025, 1, 31, 12, 0, 0, DateTimeKind.Utc),
        EndUtc = new DateTime(2025, 1, 31, 12, 2, 0, DateTimeKind.Utc), Injected = false, Injections = [], Verdict = "PASS",
        InventoryFingerprint = "0123456789abcdef",
        Inventory = new SummaryInventory(new Kiln.Core.HostInfo("n1", "cpu", 8, 1, 1, "6.1"), "", [], [], [H100]),
    };

    private static TestOutcome Outcome(TestKind test, params (string Name, double Value, string Unit)[] metrics)
    {
        var o = new TestOutcome(test, H100, new TestParams()) { End = TestEnd.Completed };
        foreach (var (name, value, unit) in metrics) o.Add(name, value, unit);
        return o;
    }
}
