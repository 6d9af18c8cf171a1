// The layering rules of docs/ARCHITECTURE.md, checked on the sources: the generated P/Invoke and
// the C enums stay inside Kiln.Native, which maps them once onto Kiln's own types.
using System.Text.RegularExpressions;
using Kiln.Native;
using Kiln.Native.Interop;
using Kiln.Tests.Core;

namespace Kiln.Tests.Native;

public sealed partial class LayeringTests
{
    private static IEnumerable<string> Sources(string project) =>
        Directory.EnumerateFiles(Path.Combine(TestEnvironment.RepoRoot, "managed", project), "*.cs", SearchOption.AllDirectories)
            .Where(f => !f.Contains($"{Path.DirectorySeparatorChar}obj{Path.DirectorySeparatorChar}", StringComparison.Ordinal));

    [GeneratedRegex(@"Kiln\.Native\.Interop|kiln_test_kind|kiln_status|KilnNative\.")]
    private static partial Regex GeneratedName();

    [TestCase("Kiln.Core")]
    [TestCase("Kiln.Cli")]
    public void OnlyKilnNativeTouchesTheGeneratedBindings(string project)
    {
        var hits = Sources(project).SelectMany(f => File.ReadLines(f).Select((line, i) => (f, i, line)))
            .Where(x => GeneratedName().IsMatch(x.line))
            .Select(x => $"{Path.GetRelativePath(TestEnvironment.RepoRoot, x.f)}:{x.i + 1}: {x.line.Trim()}");
        Assert.That(hits, Is.Empty);
    }

    [Test]
    public void EveryCTestKindAndStatusHasItsManagedTwin()
    {
        foreach (var c in Enum.GetValues<kiln_test_kind>().Where(v => v != kiln_test_kind.KILN_TEST_COUNT))
            Assert.That(Enum.GetName((TestKind)(int)c)?.ToUpperInvariant(), Is.EqualTo(Enum.GetName(c)!["KILN_TEST_".Length..]), c.ToString());
        Assert.That(Enum.GetValues<TestKind>(), Has.Length.EqualTo((int)kiln_test_kind.KILN_TEST_COUNT));
        foreach (var c in Enum.GetValues<kiln_status>())
            Assert.That(Enum.GetName((KilnStatus)(int)c)?.ToUpperInvariant(), Is.EqualTo(Enum.GetName(c)!["KILN_".Length..].Replace("_", "", StringComparison.Ordinal)), c.ToString());
        Assert.That(Enum.GetValues<KilnStatus>(), Has.Length.EqualTo(Enum.GetValues<kiln_status>().Length));
    }

    [Test]
    public void ABurnDoesNotReadTheFleetReport()
    {
        var hits = Sources(Path.Combine("Kiln.Core", "Runs")).Where(f => File.ReadAllText(f).Contains("Kiln.Core.Report", StringComparison.Ordinal));
        Assert.That(hits.Select(f => Path.GetFileName(f)), Is.Empty, "Runs builds its page from the outcomes in memory");
    }

    [Test]
    public void The_host_name_is_read_in_one_place()
    {
        var readers = new[] { "Kiln.Core", "Kiln.Cli" }.SelectMany(Sources)
            .Where(f => File.ReadAllText(f) is var text && (text.Contains("MachineName", StringComparison.Ordinal)
                                                           || text.Contains("kernel/hostname", StringComparison.Ordinal)
                                                           || text.Contains("GetHostName", StringComparison.Ordinal)))
            .Select(f => Path.GetRelativePath(TestEnvironment.RepoRoot, f));
        Assert.That(readers, Is.EqualTo(new[] { Path.Combine("managed", "Kiln.Core", "HostName.cs") }));

        var root = TestEnvironment.NewTempFolder("kiln-host");
        Directory.CreateDirectory(Path.Combine(root, "proc", "sys", "kernel"));
        File.WriteAllText(Path.Combine(root, "proc", "sys", "kernel", "hostname"), "gpu-node-17\n");
        Assert.That((Kiln.Core.HostName.Of(root), Kiln.Core.HostName.Of("/")), Is.EqualTo(("gpu-node-17", Environment.MachineName)));
        Directory.Delete(root, recursive: true);
    }
}
