// The node package (scripts/package.sh): unpacked into an empty folder and installed there, kiln runs
// with no .NET on PATH and DOTNET_ROOT unset: --version, inventory and a quick CPU burn.
using System.Diagnostics;
using Kiln.Tests.Core;

namespace Kiln.Tests.Cli;

[NonParallelizable]  // a self-contained publish and a burn take both cores
public class PackageTests
{
    private string _dir = "";

    [SetUp]
    public void SetUp() => _dir = TestEnvironment.NewTempFolder("kiln-package");

    [TearDown]
    public void TearDown() => Directory.Delete(_dir, recursive: true);

    [Test]
    public void The_unpacked_package_runs_without_dotnet()
    {
        if (!File.Exists(Path.Combine(TestEnvironment.LibDir, "libkiln.so"))) TestEnvironment.Missing("build/lib/libkiln.so is not built (scripts/build.sh)");
        var package = Run(Path.Combine(TestEnvironment.RepoRoot, "scripts", "package.sh"), ["--no-build", "--out", Path.Combine(_dir, "out")], null, TimeSpan.FromMinutes(8));
        Assert.That(package.ExitCode, Is.Zero, package.ToString());
        var tarball = package.Stdout.Trim().Split('\n')[^1];
        Assert.That(Path.GetFileName(tarball), Does.Match(@"^kiln-\d+\.\d+\.\d+-linux-x64\.tar\.gz$"));

        var unpacked = Path.Combine(_dir, "unpacked");
        Directory.CreateDirectory(unpacked);
        Assert.That(Run("tar", ["-C", unpacked, "-xzf", tarball], null, TimeSpan.FromMinutes(2)).ExitCode, Is.Zero);
        var top = Directory.GetDirectories(unpacked).Single();
        foreach (var file in new[] { "install.sh", "bin/kiln", "lib/libkiln.so", "lib/libkiln-emu.so", "systemd/kiln.service", "etc/kiln.yaml",
                     "slurm/kiln-burn.sbatch", "slurm/kiln-pairs.sbatch", "slurm/healthcheck.sh", "slurm/prolog.sh", "slurm/epilog.sh", "docs/SLURM.md" })
            Assert.That(File.Exists(Path.Combine(top, file)), Is.True, file);
        // Self-contained: the runtime is in bin/, named in the runtime config as included, not as a framework to find.
        Assert.That(File.ReadAllText(Path.Combine(top, "bin", "kiln.runtimeconfig.json")), Does.Contain("includedFrameworks"));

        var prefix = Path.Combine(_dir, "opt", "kiln");
        var etc = Path.Combine(_dir, "etc", "kiln");
        var install = Run(Path.Combine(top, "install.sh"), ["--prefix", prefix, "--etc", etc, "--no-systemd"], null, TimeSpan.FromMinutes(2));
        Assert.That(install.ExitCode, Is.Zero, install.ToString());
        Assert.That(File.Exists(Path.Combine(etc, "kiln.yaml")), Is.True);

        var kiln = Path.Combine(prefix, "bin", "kiln");
        // PATH holds only an empty folder: no dotnet, and no /usr/bin where Debian's dotnet lives.
        var empty = Path.Combine(_dir, "empty-path");
        Directory.CreateDirectory(empty);
        var env = new Dictionary<string, string> { ["PATH"] = empty, ["HOME"] = _dir, ["KILN_STATE_DIR"] = Path.Combine(_dir, "state") };
        var version = Run(kiln, ["--version"], env, TimeSpan.FromMinutes(1));
        Assert.That(version.ExitCode, Is.Zero, version.ToString());
        Assert.That(version.Stdout, Does.Match(@"^kiln \d+\.\d+\.\d+ \(native"));
        var inventory = Run(kiln, ["inventory"], env, TimeSpan.FromMinutes(1));
        Assert.That(inventory.ExitCode, Is.Zero, inventory.ToString());
        Assert.That(inventory.Stdout, Does.Contain($"libkiln ").And.Contain(Path.Combine(prefix, "lib", "libkiln.so")));
        var kmsg = Path.Combine(_dir, "kmsg.txt");
        File.WriteAllText(kmsg, "");
        var burn = Run(kiln, ["burn", "--plan", "quick", "--backend", "cpu", "--profile", "cpu-only", "--kmsg", kmsg, "--out", Path.Combine(_dir, "burn")],
            env, TimeSpan.FromMinutes(4));
        Assert.That(burn.ExitCode, Is.Zero, burn.ToString());
        Assert.That(burn.Stdout + burn.Stderr, Does.Contain("node verdict: PASS"));
        Assert.That(File.Exists(Path.Combine(_dir, "burn", "metrics.csv")), Is.True);
    }

    /// <param name="environment">The whole environment (nothing inherited) when given; else this process's.</param>
    private static CliResult Run(string program, string[] args, Dictionary<string, string>? environment, TimeSpan timeout)
    {
        var clock = Stopwatch.StartNew();
        var info = new ProcessStartInfo(program) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in args) info.ArgumentList.Add(a);
        if (environment != null)
        {
            info.Environment.Clear();
            foreach (var (k, v) in environment) info.Environment[k] = v;
        }
        using var p = Process.Start(info)!;
        return KilnCli.Collect(p, $"{program} {string.Join(' ', args)}", timeout, clock);
    }
}
