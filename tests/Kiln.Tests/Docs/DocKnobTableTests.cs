// docs/PLANS.md's table of kernel knobs is the knob catalog libkiln exports, row for row: a knob
// added, removed or re-ranged in native/src/core/knobs.cpp fails here until the page says so too.
using System.Text.RegularExpressions;
using Kiln.Core;
using Kiln.Native;
using Kiln.Tests.Core;

namespace Kiln.Tests.Docs;

public partial class DocKnobTableTests
{
    /// <summary>The table's rows as the catalog gives them.</summary>
    public static string Rows() => string.Join("\n", KnobCatalog.Entries.Select(k =>
        $"| {k.Test} | `{k.Name}` | {k.Range} | {(k.Default is { } d ? d.ToString(System.Globalization.CultureInfo.InvariantCulture) : "from the device")} | " +
        $"{KernelParams.Backends(k.Backends)} | {k.Description} |"));

    [Test]
    public void The_plans_page_lists_every_knob_of_the_catalog()
    {
        TestEnvironment.RequireNative();
        var page = File.ReadAllText(Path.Combine(TestEnvironment.RepoRoot, "docs", "PLANS.md"));
        var table = KnobBlock().Match(page);
        Assert.That(table.Success, "docs/PLANS.md has no <!-- knobs --> ... <!-- /knobs --> table");
        var body = string.Join("\n", table.Groups[1].Value.Split('\n').Skip(2).Where(l => l.Length > 0));
        Assert.That(body, Is.EqualTo(Rows()), "paste these rows into docs/PLANS.md:\n" + Rows());
    }

    [GeneratedRegex(@"<!-- knobs: generated from the knob catalog -->\n(.*?)<!-- /knobs -->", RegexOptions.Singleline)]
    private static partial Regex KnobBlock();
}
