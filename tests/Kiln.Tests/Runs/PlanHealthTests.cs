// A plan's health phase: a source the node lacks is skipped, but a phase where every listed source
// was skipped checked nothing and must not read as PASS.
using Kiln.Core.Profiles;
using Kiln.Core.Results;
using Kiln.Core.Runs;
using Kiln.Tests.Core;

namespace Kiln.Tests.Runs;

[TestFixture]
public class PlanHealthTests
{
    private string _dir = "";

    [SetUp]
    public void SetUp() => _dir = TestEnvironment.NewTempFolder("kiln-planhealth");

    [TearDown]
    public void TearDown() => Directory.Delete(_dir, recursive: true);

    [Test]
    public void A_phase_whose_every_source_was_skipped_is_a_warning_not_a_pass()
    {
        // No ROCm on this machine (nor on CI): the only listed source is skipped.
        Assume.That(File.Exists("/opt/rocm/lib/librocm_smi64.so"), Is.False);
        using var health = new PlanHealth(ResultFolder.Create(_dir), ProfileCatalog.BuiltIn("cpu-only"), "testhost", DateTimeOffset.UtcNow);

        var row = health.Run("before", ["rocm_smi"]);

        Assert.That(row.Status, Is.EqualTo(VerdictStatus.WARN), row.Reason);
        Assert.That(row.Reason, Does.StartWith("nothing checked"));
    }

    [Test]
    public void A_phase_with_a_source_that_ran_is_judged_on_its_findings_and_names_the_skipped_ones()
    {
        using var health = new PlanHealth(ResultFolder.Create(_dir), ProfileCatalog.BuiltIn("cpu-only"), "testhost", DateTimeOffset.UtcNow);

        var row = health.Run("before", ["inventory", "rocm_smi"]);

        Assert.That(row.Reason, Does.Not.StartWith("nothing checked"));
        Assert.That(row.Reason, Does.Contain("skipped: rocm_smi"));
    }

    [Test]
    public void The_phase_summary_lists_only_the_plan_sources()
    {
        using var health = new PlanHealth(ResultFolder.Create(_dir), ProfileCatalog.BuiltIn("cpu-only"), "testhost", DateTimeOffset.UtcNow);

        health.Run("before", ["inventory", "rocm_smi"]);

        using var json = System.Text.Json.JsonDocument.Parse(File.ReadAllText(Path.Combine(_dir, "health_before.json")));
        var root = json.RootElement;
        Assert.That(root.GetProperty("findings").EnumerateArray().Select(f => f.GetProperty("check").GetString()).Distinct(),
            Is.SubsetOf(new[] { "inventory", "rocm_smi" }));
        Assert.That(root.GetProperty("skipped").EnumerateArray().Select(f => f.GetProperty("check").GetString()), Is.EqualTo(new[] { "rocm_smi" }),
            "nvml, sysfs_* and kmsg were not asked for");
        Assert.That(root.GetProperty("source_seconds").EnumerateObject().Select(p => p.Name), Is.SubsetOf(new[] { "inventory", "rocm_smi" }));
        Assert.That(root.GetProperty("arguments").EnumerateArray().Select(a => a.GetString()), Is.EqualTo(new[] { "burn health.before", "inventory", "rocm_smi" }));
    }
}
