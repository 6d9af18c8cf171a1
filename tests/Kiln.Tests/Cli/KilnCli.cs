// Runs the built kiln (kiln.dll in this test's output folder: Kiln.Cli is a project reference) as
// a child process with KILN_LIB_DIR pointing at build/lib, as a user would run it.
using System.Diagnostics;
using Kiln.Tests.Core;

namespace Kiln.Tests.Cli;

public sealed record CliResult(int ExitCode, string Stdout, string Stderr, TimeSpan Elapsed)
{
    public string[] StderrLines => Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries);
    public override string ToString() => $"exit {ExitCode} after {Elapsed.TotalSeconds:0.00} s\n--- stdout\n{Stdout}\n--- stderr\n{Stderr}";
}

public static class KilnCli
{
    public static string Dll => Path.Combine(AppContext.BaseDirectory, "kiln.dll");

    public static CliResult Run(params string[] args) => Run(TimeSpan.FromMinutes(2), args);

    public static CliResult Run(TimeSpan timeout, params string[] args) => RunWith(new Dictionary<string, string?>(), timeout, args);

    /// <summary>Runs kiln with these environment variables set (null: removed), e.g. KILN_EMU_DEVICES.</summary>
    public static CliResult RunWith(IReadOnlyDictionary<string, string?> environment, TimeSpan timeout, params string[] args)
    {
        var clock = Stopwatch.StartNew();
        using var process = Start(environment, args);
        return Collect(process, $"kiln {string.Join(' ', args)}", timeout, clock);
    }

    /// <summary>
    /// Reads a started process's output to its end and waits for it; killed (and the test failed, naming
    /// <paramref name="what"/>) when it runs past <paramref name="timeout"/>. Any program, not only kiln.
    /// </summary>
    public static CliResult Collect(Process process, string what, TimeSpan timeout, Stopwatch clock)
    {
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(timeout))
        {
            process.Kill(entireProcessTree: true);
            Assert.Fail($"{what} did not finish within {timeout.TotalSeconds} s");
        }
        process.WaitForExit();
        return new CliResult(process.ExitCode, stdout.Result, stderr.Result, clock.Elapsed);
    }

    /// <summary>Starts kiln with redirected output (so it prints log lines, not a progress bar).</summary>
    public static Process Start(params string[] args) => Start(new Dictionary<string, string?>(), args);

    public static Process Start(IReadOnlyDictionary<string, string?> environment, params string[] args) => StartThrough([], environment, args);

    /// <summary>Runs kiln inside a network namespace (ip netns exec NS kiln ...), for the network probe tests.</summary>
    public static CliResult RunInNamespace(string netns, TimeSpan timeout, params string[] args)
    {
        var clock = Stopwatch.StartNew();
        using var process = StartInNamespace(netns, args);
        return Collect(process, $"kiln {string.Join(' ', args)} in {netns}", timeout, clock);
    }

    public static Process StartInNamespace(string netns, params string[] args) =>
        StartThrough(["ip", "netns", "exec", netns], new Dictionary<string, string?>(), args);

    /// <summary>The dotnet host and kiln.dll, as a command line (for kiln net pairs --exec children).</summary>
    public static IReadOnlyList<string> Command => [DotnetHost(), Dll];

    private static Process StartThrough(IReadOnlyList<string> launcher, IReadOnlyDictionary<string, string?> environment, string[] args)
    {
        TestEnvironment.RequireNative();
        var info = new ProcessStartInfo(launcher.Count > 0 ? launcher[0] : DotnetHost())
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = Path.GetTempPath(),
        };
        if (launcher.Count > 0)
        {
            foreach (var a in launcher.Skip(1)) info.ArgumentList.Add(a);
            info.ArgumentList.Add(DotnetHost());
        }
        info.ArgumentList.Add(Dll);
        foreach (var a in args) info.ArgumentList.Add(a);
        info.Environment["KILN_LIB_DIR"] = TestEnvironment.LibDir;
        // The emulated device only where a test asks for it.
        info.Environment.Remove("KILN_EMU_DEVICES");
        info.Environment.Remove("KILN_EMU_FAULTS");
        info.Environment.Remove("KILN_EMU_SESSION");
        info.Environment.Remove("KILN_NCCL_LIBRARY");
        info.Environment.Remove("KILN_EMU_NCCL_VERSION");
        info.Environment.Remove("KILN_EMU_NCCL_TIMEOUT_MS");
        info.Environment.Remove("KILN_WORKER_EXEC");
        // Each run its own node lock, so tests that run at once do not refuse each other; a test of
        // the lock gives two runs the same folder.
        info.Environment["KILN_STATE_DIR"] = TestEnvironment.NewTempFolder("kiln-state");
        foreach (var (name, value) in environment) info.Environment[name] = value;
        return Process.Start(info) ?? throw new InvalidOperationException("dotnet did not start");
    }

    /// <summary>Sends a POSIX signal the way an operator or systemd would.</summary>
    public static void Signal(Process process, string signal)
    {
        using var kill = Process.Start(new ProcessStartInfo("kill", ["-" + signal, process.Id.ToString()]) { UseShellExecute = false })!;
        kill.WaitForExit();
        Assert.That(kill.ExitCode, Is.Zero, $"kill -{signal} {process.Id}");
    }

    // The same dotnet that runs the tests (dotnet test sets DOTNET_HOST_PATH).
    private static string DotnetHost() =>
        Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } host ? host : "dotnet";
}
