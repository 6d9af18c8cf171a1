// The seam the profiles build on: HealthPolicy's seeded values and its sanity check, durations as
// users write them, and the Prometheus writer kiln.prom comes from.
using Kiln.Core;
using Kiln.Core.Health;
using Kiln.Core.Results;

namespace Kiln.Tests.Health;

public class HealthPolicyTests
{
    [Test]
    public void Default_policy_is_seeded_from_the_reference_and_valid()
    {
        var p = HealthPolicy.Default;
        Assert.That(p.Validate(), Is.Empty);
        Assert.That(new[] { 48, 63, 74, 79, 94, 119, 125 }.Select(x => p.Xids[x]), Is.All.EqualTo(XidAction.Fatal));
        Assert.That(new[] { 13, 31, 43, 45 }.Select(x => p.Xids[x]), Is.All.EqualTo(XidAction.Warn));
        Assert.That(p.Xids.ContainsKey(999), Is.False);
        Assert.That((p.EccAggregateCorrected.WarnAbove, p.EccAggregateCorrected.FailAbove), Is.EqualTo(((long?)10_000, (long?)20_000_000)));
        Assert.That((p.LinkFlapCount, p.LinkFlapWindow), Is.EqualTo((5, TimeSpan.FromHours(24))));
        Assert.That(HealthPolicy.DefaultXids(), Is.Not.SameAs(p.Xids), "a profile edits its own copy");
    }

    [Test]
    public void Insane_values_are_named()
    {
        var bad = new HealthPolicy
        {
            ExpectedGpuCount = -1, ExpectedIbRateGbps = 40_000, SustainedThrottleWindow = TimeSpan.Zero,
            Xids = new Dictionary<int, XidAction> { [0] = XidAction.Fatal },
        };
        Assert.That(bad.Validate(), Is.EqualTo(new[]
        {
            "expected_gpu_count: -1 is not in 0..64",
            "expected_ib_rate_gbps: 40000 Gb/s is not in (0, 3200]",
            "sustained_throttle_window: 00:00:00 is not in 1 s..1 day",
            "xid: 0 is not an Xid number (1..1000)",
        }));
    }

    [TestCase("90s", 90)]
    [TestCase("30m", 1800)]
    [TestCase("24h", 86400)]
    [TestCase("7d", 604800)]
    [TestCase("1h30m", 5400)]
    [TestCase("2w", 1209600)]
    [TestCase("500ms", 0.5)]
    public void Durations_read_as_written(string text, double seconds) =>
        Assert.That(Duration.Parse(text, "--since").TotalSeconds, Is.EqualTo(seconds));

    [TestCase("yesterday")]
    [TestCase("24")]
    [TestCase("0h")]
    [TestCase("5x")]
    public void Bad_durations_name_the_option(string text) =>
        Assert.That(() => Duration.Parse(text, "--since"), Throws.TypeOf<UsageException>().With.Property("Option").EqualTo("--since"));

    [Test]
    public void Prometheus_text_has_help_type_escaped_labels_and_skips_unknown_values()
    {
        var p = new PrometheusWriter();
        var a = p.Gauge("kiln_a", "First family.");
        p.Add(a, 1, ("host", "n\"1"), ("path", "C:\\x\ny"));
        p.Add(p.Gauge("kiln_b", "Second."), double.NaN);
        p.Add(a, 2.5);
        Assert.That(p.ToText(), Is.EqualTo(
            "# HELP kiln_a First family.\n# TYPE kiln_a gauge\nkiln_a{host=\"n\\\"1\",path=\"C:\\\\x\\ny\"} 1\nkiln_a 2.5\n"));
    }
}
