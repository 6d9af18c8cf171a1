// `kiln service` as a child process, as systemd would run it: its output collected, its history read
// (kiln.db, the way `kiln status` reads it) while it runs, stopped with SIGTERM or killed.
using System.Diagnostics;
using System.Text;
using Kiln.Core.Service;
using Kiln.Tests.Cli;
using Kiln.Tests.Core;
using Kiln.Tests.Health;

namespace Kiln.Tests.Service;

public sealed class ServiceRun : IDisposable
{
    private readonly StringBuilder _output = new();
    private readonly Lock _gate = new();

    private ServiceRun(Process process, string stateDir)
    {
        Process = process;
        StateDir = stateDir;
        process.OutputDataReceived += (_, e) => { if (e.Data is not null) lock (_gate) _output.AppendLine(e.Data); };
        process.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (_gate) _output.AppendLine(e.Data); };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
    }

    public Process Process { get; }
    public string StateDir { get; }
    public string Database => Path.Combine(StateDir, History.FileName);

    public string Output
    {
        get { lock (_gate) return _output.ToString(); }
    }

    /// <summary>
    /// kiln service --config CONFIG --state-dir STATE, NVML the fake (fakeNvml "" = its healthy
    /// defaults, null = absent) and ROCm SMI absent, with <paramref name="environment"/> added.
    /// </summary>
    public static ServiceRun Start(string config, string stateDir, string? fakeNvml, IReadOnlyDictionary<string, string?>? environment = null)
    {
        if (fakeNvml is not null) CheckRunner.RequireFakeNvml();
        var env = new Dictionary<string, string?>
        {
            ["KILN_NVML_LIBRARY"] = fakeNvml is null ? CheckRunner.Absent : CheckRunner.FakeNvmlPath,
            ["KILN_FAKE_NVML"] = fakeNvml,
            ["KILN_ROCM_SMI_LIBRARY"] = CheckRunner.Absent,
            // The machine's own Slurm (CI starts a loopback cluster) is not this fixture node's: no scontrol.
            ["KILN_SCONTROL"] = "/nonexistent/kiln-tests/scontrol",
            ["KILN_STATE_DIR"] = stateDir,
        };
        foreach (var (k, v) in environment ?? new Dictionary<string, string?>()) env[k] = v;
        var process = KilnCli.Start(env, "service", "--config", config, "--state-dir", stateDir);
        return new ServiceRun(process, stateDir);
    }

    /// <summary>Polls the history until <paramref name="probe"/> gives a value (or the service exits, or time runs out).</summary>
    public T WaitFor<T>(Func<History, T?> probe, TimeSpan timeout, string what) where T : class
    {
        var clock = Stopwatch.StartNew();
        while (clock.Elapsed < timeout)
        {
            if (File.Exists(Database))
            {
                try
                {
                    using var history = History.Open(Database, _ => { }, readOnly: true);
                    if (probe(history) is { } found) return found;
                }
                catch (Microsoft.Data.Sqlite.SqliteException)
                {
                    // The service is creating it: try again.
                }
            }
            if (Process.HasExited) Assert.Fail($"the service exited ({Process.ExitCode}) before {what}\n{Output}");
            Thread.Sleep(100);
        }
        Assert.Fail($"no {what} within {timeout.TotalSeconds} s\n{Output}");
        return null!;
    }

    /// <summary>The history as it is now (the service may still run).</summary>
    public T Read<T>(Func<History, T> read)
    {
        using var history = History.Open(Database, _ => { }, readOnly: true);
        return read(history);
    }

    /// <summary>SIGTERM, as systemctl stop sends it; the exit code.</summary>
    public int Stop(TimeSpan? within = null)
    {
        if (!Process.HasExited) KilnCli.Signal(Process, "TERM");
        if (!Process.WaitForExit(within ?? TimeSpan.FromSeconds(30)))
        {
            Process.Kill(entireProcessTree: true);
            Assert.Fail($"the service did not stop within {(within ?? TimeSpan.FromSeconds(30)).TotalSeconds} s of SIGTERM\n{Output}");
        }
        Process.WaitForExit();
        return Process.ExitCode;
    }

    public void Dispose()
    {
        if (!Process.HasExited) Process.Kill(entireProcessTree: true);
        Process.Dispose();
    }

    /// <summary>A configuration file with these lines.</summary>
    public static string Config(string folder, string yaml)
    {
        var path = Path.Combine(folder, "kiln.yaml");
        File.WriteAllText(path, yaml);
        return path;
    }

    public static string NewFolder(string prefix) => TestEnvironment.NewTempFolder(prefix);
}
