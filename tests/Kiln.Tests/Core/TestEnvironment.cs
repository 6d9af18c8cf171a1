// Where the repository and the built native library are, for tests that need libkiln.so: they
// are ignored on a developer machine without it, and fail under CI (CI=true), where it must exist.
using System.Runtime.CompilerServices;
using Kiln.Native;

namespace Kiln.Tests.Core;

public static class TestEnvironment
{
    public static string RepoRoot { get; } = FindRepoRoot();

    public static string LibDir => Path.Combine(RepoRoot, "build", "lib");

    /// <summary>Points the loader at build/lib and loads libkiln.so, or ignores (fails under CI) the test.</summary>
    public static void RequireNative()
    {
        if (string.IsNullOrEmpty(Environment.GetEnvironmentVariable("KILN_LIB_DIR")))
            Environment.SetEnvironmentVariable("KILN_LIB_DIR", LibDir);
        try
        {
            KilnLibrary.EnsureLoaded();
        }
        catch (KilnLoadException e)
        {
            Missing($"libkiln.so is not built ({Path.Combine(LibDir, "libkiln.so")}): {e.Tried.FirstOrDefault()}");
        }
    }

    /// <summary>A fresh folder under the system temp folder, removed by the caller's TearDown.</summary>
    /// <summary>A loopback TCP port free at the moment of asking (bound to 0, read, released).</summary>
    public static int FreeLoopbackPort()
    {
        using var l = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        l.Start();
        return ((System.Net.IPEndPoint)l.LocalEndpoint).Port;
    }

    public static string NewTempFolder(string prefix)
    {
        var path = Path.Combine(Path.GetTempPath(), $"{prefix}-{Guid.NewGuid():N}");
        Directory.CreateDirectory(path);
        return path;
    }

    // The build may sit outside the checkout (--artifacts-path), so also start from this source file.
    private static string FindRepoRoot([CallerFilePath] string sourceFile = "")
    {
        var starts = new[]
        {
            Environment.GetEnvironmentVariable("KILN_REPO_ROOT"), Path.GetDirectoryName(sourceFile),
            AppContext.BaseDirectory, Environment.CurrentDirectory,
        };
        foreach (var start in starts.Where(s => !string.IsNullOrEmpty(s)))
        {
            for (var dir = new DirectoryInfo(start!); dir != null; dir = dir.Parent)
            {
                if (File.Exists(Path.Combine(dir.FullName, "native", "include", "kiln", "kiln.h"))) return dir.FullName;
            }
        }
        throw new InvalidOperationException("cannot find the repository root (set KILN_REPO_ROOT)");
    }

    /// <summary>Ignores the test on a developer machine; fails it under CI (CI=true), where everything must exist.</summary>
    [System.Diagnostics.CodeAnalysis.DoesNotReturn]
    public static void Missing(string why)
    {
        if (Environment.GetEnvironmentVariable("CI") == "true") Assert.Fail(why);
        Assert.Ignore(why);
    }
}
