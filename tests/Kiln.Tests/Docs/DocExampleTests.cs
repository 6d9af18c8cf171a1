// The documentation is read by people who copy from it: every YAML example in README.md and docs/
// must load through the loader kiln itself uses (a plan through PlanLoader, a profile through
// ProfileLoader), and no page may send a reader to a file a clone of the repository does not have.
using System.Text.RegularExpressions;
using Kiln.Core.Plans;
using Kiln.Core.Profiles;
using Kiln.Tests.Core;

namespace Kiln.Tests.Docs;

public partial class DocExampleTests
{
    private static IEnumerable<string> Pages() =>
        Directory.EnumerateFiles(Path.Combine(TestEnvironment.RepoRoot, "docs"), "*.md")
            .Append(Path.Combine(TestEnvironment.RepoRoot, "README.md")).Order(StringComparer.Ordinal);

    /// <summary>(page:line, the example's text) of every ```yaml block.</summary>
    public static IEnumerable<TestCaseData> YamlExamples()
    {
        foreach (var page in Pages())
        {
            var text = File.ReadAllText(page);
            foreach (Match m in YamlBlock().Matches(text))
            {
                var line = text[..m.Index].Count(c => c == '\n') + 2;
                var name = $"{Path.GetFileName(page)}:{line}";
                yield return new TestCaseData(name, m.Groups[1].Value).SetName($"YAML example {name} loads");
            }
        }
    }

    [TestCaseSource(nameof(YamlExamples))]
    public void Yaml_example_loads_through_the_real_loader(string where, string yaml)
    {
        TestEnvironment.RequireNative();  // a plan's params: are checked against libkiln's knob catalog
        var config = YamlConfig.Parse(where, yaml);
        // A plan has tests; anything else on these pages is a profile.
        if (Regex.IsMatch(yaml, @"^tests:", RegexOptions.Multiline))
            Assert.That(PlanLoader.Parse(config, "example").Tests, Is.Not.Empty);
        else
            Assert.That(ProfileLoader.Parse(config, "example").Name, Is.Not.Empty);
    }

    [Test]
    public void There_are_yaml_examples_to_check()
    {
        var names = YamlExamples().Select(c => (string)c.Arguments[0]!).ToList();
        Assert.That(names, Has.Some.StartsWith("PLANS.md:").And.Some.StartsWith("PROFILES.md:"));
    }

    [Test]
    public void No_page_points_outside_the_repository()
    {
        foreach (var page in Pages())
        {
            var text = File.ReadAllText(page);
            Assert.That(text, Does.Not.Contain("../shared").And.Not.Contain("/work/shared"), page);
            foreach (Match link in DocPath().Matches(text))
            {
                var target = link.Groups[1].Value;
                Assert.That(File.Exists(Path.Combine(TestEnvironment.RepoRoot, target)) || File.Exists(Path.Combine(Path.GetDirectoryName(page)!, target)),
                    $"{Path.GetFileName(page)} names {target}, which does not exist");
            }
        }
    }

    [Test]
    public void The_architecture_page_is_in_docs_and_the_readme_points_at_it()
    {
        Assert.That(File.Exists(Path.Combine(TestEnvironment.RepoRoot, "docs", "ARCHITECTURE.md")));
        Assert.That(File.ReadAllText(Path.Combine(TestEnvironment.RepoRoot, "README.md")), Does.Contain("docs/ARCHITECTURE.md"));
    }

    [GeneratedRegex("```yaml\n(.*?)```", RegexOptions.Singleline)]
    private static partial Regex YamlBlock();

    /// <summary>`docs/NAME.md` or `NAME.md` in backquotes or a markdown link.</summary>
    [GeneratedRegex(@"[`(]((?:docs/)?[A-Z][A-Z-]+\.md)[`)]")]
    private static partial Regex DocPath();
}
