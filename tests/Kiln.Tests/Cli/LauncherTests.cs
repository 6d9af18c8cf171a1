// scripts/kiln on a built tree: it must run the host straight away, build nothing and print nothing
// of its own (a newcomer's first `scripts/kiln --version` used to rerun cmake and dotnet publish).
using System.Diagnostics;
using Kiln.Tests.Core;

namespace Kiln.Tests.Cli;

[NonParallelizable]  // timed
public class LauncherTests
{
    [Test]
    public void Scripts_kiln_version_on_a_built_tree_prints_only_the_version_quickly()
    {
        var root = TestEnvironment.RepoRoot;
        var stamp = Path.Combine(root, "build", ".built");
        if (!File.Exists(stamp) || !File.Exists(Path.Combine(root, "build", "bin", "kiln")))
            TestEnvironment.Missing("the tree is not built by scripts/build.sh (no build/.built): run scripts/build.sh");
        var built = File.GetLastWriteTimeUtc(stamp);
        var newer = new[] { "native", "managed", "cmake" }
            .SelectMany(d => Directory.EnumerateFiles(Path.Combine(root, d), "*", SearchOption.AllDirectories))
            .Where(f => !f.Contains("/bin/", StringComparison.Ordinal) && !f.Contains("/obj/", StringComparison.Ordinal))
            .FirstOrDefault(f => File.GetLastWriteTimeUtc(f) > built);
        if (newer != null)
            Assert.Ignore($"{newer} changed after the last scripts/build.sh: scripts/kiln would rightly rebuild");

        var best = TimeSpan.MaxValue;
        for (var i = 0; i < 3; i++)
        {
            var clock = Stopwatch.StartNew();
            using var p = Process.Start(new ProcessStartInfo(Path.Combine(root, "scripts", "kiln"), ["--version"])
            {
                RedirectStandardOutput = true,
                RedirectStandardError = true,
                UseShellExecute = false,
            })!;
            var stdout = p.StandardOutput.ReadToEndAsync();
            var stderr = p.StandardError.ReadToEndAsync();
            Assert.That(p.WaitForExit(TimeSpan.FromSeconds(60)), "scripts/kiln --version did not finish within 60 s");
            p.WaitForExit();
            best = clock.Elapsed < best ? clock.Elapsed : best;
            Assert.That(p.ExitCode, Is.Zero, stderr.Result);
            Assert.That(stdout.Result, Does.Match(@"^kiln \d+\.\d+\.\d+ \(native [^)]*\)\n$"), "only the version");
            Assert.That(stderr.Result, Is.Empty, "no build output");
        }
        Assert.That(best, Is.LessThan(TimeSpan.FromSeconds(0.3)), "the best of 3 runs");
    }
}
