// docs/HEALTH.md documents every finding code kiln check can report, with the severity the code
// catalog gives it: an operator looking up a code from findings.csv always finds it.
using Kiln.Core.Health;
using Kiln.Tests.Core;

namespace Kiln.Tests.Health;

public class FindingCodeDocsTests
{
    private static readonly string Doc = File.ReadAllText(Path.Combine(TestEnvironment.RepoRoot, "docs", "HEALTH.md"));

    [Test]
    public void Every_code_has_a_row_with_its_severity_meaning_and_remediation()
    {
        Assert.That(FindingCodes.All, Has.Count.GreaterThan(40));
        foreach (var code in FindingCodes.All)
            Assert.That(Doc, Does.Contain($"| `{code.Name}` | {code.Severities} | {code.Meaning} | {code.Remediation} |"), code.Name);
    }

    [Test]
    public void Every_skippable_source_is_documented()
    {
        foreach (var source in FindingCodes.Sources.Where(s => s != "inventory"))
            Assert.That(Doc, Does.Contain($"| `{FindingCodes.Skipped(source).Name}` | INFO |"), source);
    }

    [Test]
    public void Codes_are_unique_and_upper_snake_case()
    {
        Assert.That(FindingCodes.All.Select(c => c.Name), Is.Unique);
        Assert.That(FindingCodes.All.Select(c => c.Name), Has.All.Match("^[A-Z][A-Z0-9_]+$"));
    }
}
