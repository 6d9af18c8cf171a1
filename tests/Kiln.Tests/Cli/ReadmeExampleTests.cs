// The README's "Prove a slow node is caught" block, run line by line as printed there (scripts/kiln
// becomes the built kiln, /tmp/kiln-demo a temporary folder): each line must exit as its comment says,
// and the slowed burn must fail on stream, against the baseline, not on anything else.
using System.Text.RegularExpressions;
using Kiln.Tests.Core;
using Kiln.Tests.Health;

namespace Kiln.Tests.Cli;

[NonParallelizable]  // burns take both cores of a CI machine
public partial class ReadmeExampleTests
{
    private const string DemoRoot = "/tmp/kiln-demo";

    /// <summary>(arguments after scripts/kiln, expected exit code) of every line in the README block under <paramref name="heading"/>.</summary>
    internal static List<(string[] Args, int Exit)> Commands(string heading)
    {
        var readme = File.ReadAllText(Path.Combine(TestEnvironment.RepoRoot, "README.md"));
        var at = readme.IndexOf(heading + "\n", StringComparison.Ordinal);
        Assert.That(at, Is.GreaterThanOrEqualTo(0), $"README.md has no '{heading}'");
        var block = FencedBlock().Match(readme, at);
        Assert.That(block.Success, $"no ```sh block after '{heading}'");
        var commands = new List<(string[], int)>();
        foreach (var line in block.Groups[1].Value.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            var m = CommandLine().Match(line);
            Assert.That(m.Success, $"'{line}' is not 'scripts/kiln ARGS   # exit N'");
            commands.Add((m.Groups[1].Value.Split(' ', StringSplitOptions.RemoveEmptyEntries), int.Parse(m.Groups[2].Value)));
        }
        return commands;
    }

    [Test]
    public void The_README_slow_node_example_exits_0_0_1_and_fails_on_stream_against_the_baseline()
    {
        var commands = Commands("### Prove a slow node is caught");
        Assert.That(commands.Select(c => c.Exit), Is.EqualTo(new[] { 0, 0, 1 }), "the README says what each line exits with");
        var demo = TestEnvironment.NewTempFolder("kiln-demo");
        try
        {
            foreach (var (args, exit) in commands)
            {
                var run = CheckRunner.Kiln(null, args.Select(a => a.Replace(DemoRoot, demo, StringComparison.Ordinal)).ToArray());
                Assert.That(run.ExitCode, Is.EqualTo(exit), $"kiln {string.Join(' ', args)}\n{run}");
            }
            var baseline = File.ReadAllText(Path.Combine(demo, "node.yaml"));
            Assert.That(baseline, Does.Contain("stream:").And.Contain("copy_gbps_best: {min: "));

            var verdicts = CsvFile.Read(Path.Combine(demo, "slow", "verdicts.csv")).Rows;
            var stream = verdicts.Single(v => v["test"] == "stream");
            Assert.That(stream["status"], Is.EqualTo("FAIL"));
            Assert.That(stream["reason"], Does.Contain("is below the floor").And.Contain("node.yaml").And.EndWith("(injected)"));
            var healthy = CsvFile.Read(Path.Combine(demo, "healthy", "verdicts.csv")).Rows.Single(v => v["test"] == "stream");
            Assert.That(healthy["status"], Is.EqualTo("PASS"), "the same node at full speed passed");
        }
        finally
        {
            Directory.Delete(demo, recursive: true);
        }
    }

    [Test]
    public void The_README_other_commands_run_or_at_least_name_real_commands()
    {
        var readme = File.ReadAllText(Path.Combine(TestEnvironment.RepoRoot, "README.md"));
        var block = FencedBlock().Match(readme, readme.IndexOf("## Other commands\n", StringComparison.Ordinal));
        var lines = block.Groups[1].Value.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Where(l => l.StartsWith("scripts/kiln ", StringComparison.Ordinal))
            .Select(l => l["scripts/kiln ".Length..].Split('#')[0].Split(' ', StringSplitOptions.RemoveEmptyEntries)).ToList();
        Assert.That(lines, Has.Count.GreaterThanOrEqualTo(8));
        var temp = TestEnvironment.NewTempFolder("kiln-readme");
        try
        {
            foreach (var args in lines)
            {
                var line = string.Join(' ', args);
                // Quick and machine-independent lines run as printed (check's folder moved to a temporary one);
                // the rest (a 24 h soak, 1 GiB benches, folders this machine lacks) must at least name a real command.
                var quick = args[0] is "--version" or "inventory" or "plan" or "check";
                var run = CheckRunner.Kiln(null, quick ? args.Select(a => a.Replace("/tmp/check", Path.Combine(temp, "check"), StringComparison.Ordinal)).ToArray()
                                                       : [.. args.TakeWhile(a => !a.StartsWith('-')), "--help"]);
                if (args[0] == "check")
                {
                    Assert.That(run.ExitCode, Is.AnyOf(0, 1), $"{line}: a verdict, not a usage error\n{run}");
                    Assert.That(File.Exists(Path.Combine(temp, "check", "summary.json")), line);
                }
                else
                {
                    Assert.That(run.ExitCode, Is.Zero, $"{line}\n{run}");
                    Assert.That(run.Stdout, Is.Not.Empty, line);
                }
            }
        }
        finally
        {
            Directory.Delete(temp, recursive: true);
        }
    }

    [GeneratedRegex("```sh\n(.*?)```", RegexOptions.Singleline)]
    private static partial Regex FencedBlock();

    [GeneratedRegex(@"^scripts/kiln (.+?)\s+# exit (\d)$")]
    private static partial Regex CommandLine();
}
