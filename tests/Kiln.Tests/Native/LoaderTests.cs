// How libkiln.so is found: the candidate order, the repo fallback when KILN_LIB_DIR is useless,
// and an error that names every path tried and why it was rejected.
using System.Runtime.InteropServices;
using Kiln.Native;
using Kiln.Native.Interop;
using Kiln.Tests.Core;

namespace Kiln.Tests.Native;

public sealed class LoaderTests
{
    private string _tempFolder = "";

    [SetUp]
    public void CreateTempFolder() => _tempFolder = TestEnvironment.NewTempFolder("kiln-loader");

    [TearDown]
    public void RemoveTempFolder() => Directory.Delete(_tempFolder, recursive: true);

    [Test]
    public void CandidatesComeInTheDocumentedOrder()
    {
        var candidates = KilnLibrary.Candidates("/x/lib", "/opt/kiln/bin/");
        Assert.That(candidates, Is.EqualTo(new[]
        {
            "/x/lib/libkiln.so",
            "/opt/kiln/lib/libkiln.so",
            "/opt/kiln/bin/libkiln.so",
            "/opt/kiln/bin/build/lib/libkiln.so",
            "/opt/kiln/build/lib/libkiln.so",
            "/opt/build/lib/libkiln.so",
            "/build/lib/libkiln.so",
        }));
    }

    [Test]
    [NonParallelizable]  // changes the process environment for a moment
    public void KilnLibDirComesFirstAndAnEmptyOneIsIgnored()
    {
        string? saved = Environment.GetEnvironmentVariable(KilnLibrary.DirectoryVariable);
        try
        {
            Environment.SetEnvironmentVariable(KilnLibrary.DirectoryVariable, _tempFolder);
            Assert.That(KilnLibrary.DefaultCandidates()[0], Is.EqualTo(Path.Combine(_tempFolder, "libkiln.so")));
            Environment.SetEnvironmentVariable(KilnLibrary.DirectoryVariable, "");
            Assert.That(KilnLibrary.DefaultCandidates()[0],
                Is.EqualTo(Path.GetFullPath(Path.Combine(AppContext.BaseDirectory, "..", "lib", "libkiln.so"))));
        }
        finally
        {
            Environment.SetEnvironmentVariable(KilnLibrary.DirectoryVariable, saved);
        }
    }

    [Test]
    public void AnEmptyKilnLibDirFallsThroughToTheRepoBuild()
    {
        TestEnvironment.RequireNative();
        // Where a plain `dotnet test` puts this assembly; the walk up from there reaches build/lib.
        string testOutput = Path.Combine(TestEnvironment.RepoRoot, "tests", "Kiln.Tests", "bin", "Debug", "net10.0");

        var loaded = KilnLibrary.Probe(KilnLibrary.Candidates(_tempFolder, testOutput));
        NativeLibrary.Free(loaded.Handle);  // drops only this probe's reference; the process keeps its own

        Assert.That(loaded.Path, Is.EqualTo(Path.Combine(TestEnvironment.LibDir, "libkiln.so")));
        Assert.That(loaded.Tried[0], Is.EqualTo($"{Path.Combine(_tempFolder, "libkiln.so")}: not found"));
        Assert.That(loaded.Tried[^1], Is.EqualTo($"{loaded.Path}: loaded"));
    }

    [Test]
    public void TheLoadErrorNamesEveryPathTriedAndWhy()
    {
        string missing = Path.Combine(_tempFolder, "missing", "libkiln.so");
        string notElf = Path.Combine(_tempFolder, "libkiln.so");
        File.WriteAllText(notElf, new string('x', 4096));  // long enough for the loader to read a header
        string notKiln = new[] { "/lib/x86_64-linux-gnu/libm.so.6", "/usr/lib/x86_64-linux-gnu/libm.so.6" }.First(File.Exists);

        var e = Assert.Throws<KilnLoadException>(() => KilnLibrary.Probe([missing, notElf, notKiln]));

        Assert.That(e!.Tried, Has.Count.EqualTo(3));
        Assert.That(e.Tried[0], Is.EqualTo($"{missing}: not found"));
        // The loader's own reason, without .NET's generic advice around it or the path twice.
        Assert.That(e.Tried[1], Does.StartWith($"{notElf}: ").And.Contain("ELF").And.Not.Contain("strace"));
        Assert.That(e.Tried[1][(notElf.Length + 2)..], Does.Not.Contain(notElf));
        Assert.That(e.Tried[2], Is.EqualTo($"{notKiln}: no kiln_abi_version export; not a Kiln library"));
        Assert.That(e.Message, Does.Contain("KILN_LIB_DIR").And.Contain(missing).And.Contain(notElf).And.Contain(notKiln));
    }

    [Test]
    public void TheLoadedLibraryHasTheBindingsAbiVersion()
    {
        TestEnvironment.RequireNative();
        Assert.That(KilnNative.kiln_abi_version(), Is.EqualTo((uint)kiln_constants.KILN_ABI_VERSION));
        Assert.That(KilnLibrary.LibraryPath, Does.EndWith("libkiln.so"));
        Assert.That(KilnLibrary.Version, Does.Match(@"^\d+\.\d+\.\d+"));
    }
}
