// Runs kiln check the two ways the health tests need: the real CLI as a child process (exit code,
// findings.csv, summary.json, kiln.prom), and HealthCheck in-process for policies no CLI option can
// set yet. Either way NVML is the fake library (configured through KILN_FAKE_NVML) or absent, and
// ROCm SMI is absent, so the machine running the tests never leaks its own GPUs into a result.
using System.Runtime.InteropServices;
using System.Text.Json;
using Kiln.Core.Health;
using Kiln.Tests.Cli;
using Kiln.Tests.Core;

namespace Kiln.Tests.Health;

public sealed record CheckRun(CliResult Cli, string Out)
{
    public CsvFile Findings => CsvFile.Read(Path.Combine(Out, "findings.csv"));

    public JsonElement Summary => JsonDocument.Parse(File.ReadAllText(Path.Combine(Out, "summary.json"))).RootElement;

    public string Prometheus => File.ReadAllText(Path.Combine(Out, "kiln.prom"));

    /// <summary>The rows with this code (one per component for most codes).</summary>
    public List<Dictionary<string, string>> WithCode(string code) => Findings.Rows.Where(r => r["code"] == code).ToList();

    public override string ToString() => Cli + "\n--- findings.csv\n" + (File.Exists(Path.Combine(Out, "findings.csv")) ? File.ReadAllText(Path.Combine(Out, "findings.csv")) : "(none)");
}

public static partial class CheckRunner
{
    /// <summary>No such library: the source is absent.</summary>
    public const string Absent = "/nonexistent/kiln-tests/absent.so";

    public static string FakeNvmlPath => Path.Combine(TestEnvironment.RepoRoot, "build", "cmake", "tests", "native", "fake-nvml", "libnvidia-ml.so.1");

    public static string Fixture(string relative) => Path.Combine(TestEnvironment.RepoRoot, "tests", "fixtures", "health", relative);

    /// <summary>The fake NVML must be built (cmake); ignored on a developer machine without it, a failure under CI.</summary>
    public static void RequireFakeNvml()
    {
        if (File.Exists(FakeNvmlPath)) return;
        TestEnvironment.Missing($"the fake NVML is not built ({FakeNvmlPath}): cmake -S . -B build/cmake && cmake --build build/cmake");
    }

    /// <summary>
    /// kiln check ARGS --out OUT as a child process. <paramref name="fakeNvml"/>: null = no NVML; "" = the
    /// fake's healthy defaults; else its "key=value;..." configuration.
    /// </summary>
    public static CheckRun Cli(string? fakeNvml, params string[] args)
    {
        var output = Path.Combine(HealthTemp.NewFolder("check"), "out");
        return new CheckRun(Kiln(fakeNvml, ["check", .. args, "--out", output]), output);
    }

    /// <summary>Any kiln command as a child process, with NVML the fake (or absent) and ROCm SMI absent.</summary>
    public static CliResult Kiln(string? fakeNvml, params string[] args)
    {
        if (fakeNvml is not null) RequireFakeNvml();
        var saved = new Dictionary<string, string?>();
        void Set(string name, string? value)
        {
            saved.TryAdd(name, Environment.GetEnvironmentVariable(name));
            Environment.SetEnvironmentVariable(name, value);
        }
        // The child inherits the managed environment: set it only around the start.
        Set("KILN_NVML_LIBRARY", fakeNvml is null ? Absent : FakeNvmlPath);
        Set("KILN_FAKE_NVML", fakeNvml);
        Set("KILN_ROCM_SMI_LIBRARY", Absent);
        try
        {
            return KilnCli.Run(args);
        }
        finally
        {
            foreach (var (name, value) in saved) Environment.SetEnvironmentVariable(name, value);
        }
    }

    /// <summary>HealthCheck in this process, with the same library choices as <see cref="Cli"/>.</summary>
    public static CheckReport InProcess(string root, string? fakeNvml, HealthPolicy? policy = null, string? kmsg = null,
        TimeSpan? since = null, DateTimeOffset? now = null)
    {
        UseLibraries(fakeNvml);
        try
        {
            var request = new CheckRequest(root, kmsg, since, policy ?? HealthPolicy.Default, "test");
            return HealthCheck.Run(request, "fixture", now ?? DateTimeOffset.UtcNow);
        }
        finally
        {
            SetNative("KILN_FAKE_NVML", null);
        }
    }

    /// <summary>
    /// For in-process use of libkiln: NVML is the fake (configured by <paramref name="fakeNvml"/>) or
    /// absent, ROCm SMI absent. libkiln and the fake read the process's C environment, which
    /// Environment.SetEnvironmentVariable does not change, hence setenv.
    /// </summary>
    public static void UseLibraries(string? fakeNvml)
    {
        TestEnvironment.RequireNative();
        if (fakeNvml is not null) RequireFakeNvml();
        SetNative("KILN_NVML_LIBRARY", fakeNvml is null ? Absent : FakeNvmlPath);
        SetNative("KILN_FAKE_NVML", fakeNvml);
        SetNative("KILN_ROCM_SMI_LIBRARY", Absent);
    }

    public static void SetNative(string name, string? value)
    {
        if (value is null) UnsetEnv(name);
        else SetEnv(name, value, 1);
    }

    [LibraryImport("libc.so.6", EntryPoint = "setenv", StringMarshalling = StringMarshalling.Utf8)]
    private static partial int SetEnv(string name, string value, int overwrite);

    [LibraryImport("libc.so.6", EntryPoint = "unsetenv", StringMarshalling = StringMarshalling.Utf8)]
    private static partial int UnsetEnv(string name);
}
