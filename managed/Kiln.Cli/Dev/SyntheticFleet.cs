// A synthetic fleet of burn result folders (the same summary.json, metrics.csv and verdicts.csv a real
// burn writes) for kiln report's tests and benchmark: N nodes x 8 H100-like GPUs x 30 metrics with
// ~1% per-device noise, and planted faults - a node whose GPUs are all 8% slow, one slow GPU, a
// memtest FAIL and a driver drift. `kiln dev synth --nodes N --out DIR` writes one (docs/REPORT.md).
using System.Globalization;
using System.Text;
using Kiln.Core;
using Kiln.Core.Results;
using Kiln.Native;

namespace Kiln.Cli.Dev;

public sealed record SyntheticFleetSpec
{
    public required int Nodes { get; init; }
    public int DevicesPerNode { get; init; } = 8;
    /// <summary>Relative standard deviation of every device value around its nominal.</summary>
    public double Noise { get; init; } = 0.01;
    public int Seed { get; init; } = 1;
    /// <summary>Nodes whose every device runs this much slower on every metric (SlowFraction).</summary>
    public IReadOnlyList<int> SlowNodes { get; init; } = [];
    public double SlowFraction { get; init; } = 0.08;
    /// <summary>(node, device) pairs running 15% slow.</summary>
    public IReadOnlyList<(int Node, int Device)> SlowDevices { get; init; } = [];
    /// <summary>Nodes whose memtest on device 0 found data errors (a FAIL verdict).</summary>
    public IReadOnlyList<int> FailNodes { get; init; } = [];
    /// <summary>Nodes with another CUDA runtime version (configuration drift).</summary>
    public IReadOnlyList<int> DriftNodes { get; init; } = [];

    /// <summary>The planted faults of `kiln dev synth` (without --healthy): each kind once, on nodes 3, 5, 7, 11.</summary>
    public SyntheticFleetSpec WithDefaultFaults() => this with
    {
        SlowNodes = Nodes > 3 ? [3] : [],
        SlowDevices = Nodes > 5 ? [(5, Math.Min(2, DevicesPerNode - 1))] : [],
        FailNodes = Nodes > 7 ? [7] : [],
        DriftNodes = Nodes > 11 ? [11] : [],
    };

    public static string HostName(int node) => $"node{node:D4}";
}

public static class SyntheticFleet
{
    public const string Model = "NVIDIA H100 80GB HBM3";
    private const string Runtime = "12.4", DriftRuntime = "12.2";

    /// <summary>30 metrics per device (the 7 p2p pairs for 8 devices): test, name, unit, nominal.</summary>
    public static IReadOnlyList<(string Test, string Name, string Unit, double Nominal)> Metrics(int devices, int device) =>
    [
        ("stream", "copy_gbps_best", "GB/s", 3000), ("stream", "scale_gbps_best", "GB/s", 2990),
        ("stream", "add_gbps_best", "GB/s", 3050), ("stream", "triad_gbps_best", "GB/s", 3040),
        ("gemm", "bf16_tflops", "TFLOP/s", 780), ("gemm", "fp16_tflops", "TFLOP/s", 775),
        ("gemm", "tf32_tflops", "TFLOP/s", 372), ("gemm", "fp64_tflops", "TFLOP/s", 60),
        ("copy", "h2d_gbps", "GB/s", 55), ("copy", "d2h_gbps", "GB/s", 55.5), ("copy", "d2d_gbps", "GB/s", 2900),
        .. Enumerable.Range(0, devices).Where(d => d != device).Select(d => ("copy", $"p2p_ce_gbps_{device}_{d}", "GB/s", 370.0 + 3 * ((device + d) % 3))),
        ("launch", "launch_latency_us_p99", "us", 8), ("launch", "launch_latency_us_median", "us", 5),
        ("power", "power_w_mean", "W", 660), ("power", "temperature_c_max", "C", 71),
        ("memtest", "verified_gbps", "GB/s", 1400), ("memtest", "traffic_gbps", "GB/s", 2800),
        ("memtest", "walking_ones_gbps", "GB/s", 2700), ("memtest", "walking_zeros_gbps", "GB/s", 2700),
        ("memtest", "own_address_gbps", "GB/s", 2750), ("memtest", "moving_inv_fixed_gbps", "GB/s", 2760),
        ("memtest", "moving_inv_random_gbps", "GB/s", 2740), ("memtest", "modulo_20_gbps", "GB/s", 2600),
    ];

    /// <summary>Writes DIR/nodeNNNN/ for every node; returns the folders.</summary>
    public static IReadOnlyList<string> Write(SyntheticFleetSpec spec, string dir)
    {
        Directory.CreateDirectory(dir);
        var folders = new string[spec.Nodes];
        Parallel.For(0, spec.Nodes, new ParallelOptions { MaxDegreeOfParallelism = Environment.ProcessorCount },
            node => folders[node] = WriteNode(spec, dir, node));
        return folders;
    }

    private static string WriteNode(SyntheticFleetSpec spec, string dir, int node)
    {
        var random = new Random(unchecked(spec.Seed * 1_000_003 + node));   // the same fleet from the same seed, run after run
        var host = SyntheticFleetSpec.HostName(node);
        var folder = Path.Combine(dir, host);
        Directory.CreateDirectory(folder);
        var start = new DateTime(2025, 6, 1, 8, 0, 0, DateTimeKind.Utc).AddMinutes(node % 60);
        var runId = $"{start:yyyyMMdd'T'HHmmss'Z'}-{node:x6}";
        var devices = Enumerable.Range(0, spec.DevicesPerNode).Select(d => new DeviceInfo("cuda", Model,
            $"GPU-{Uuid(random)}", $"0000:{0x18 + d * 0x10 + node % 8:x2}:00.0", d, 132, 1, 2048, 85_520_809_984UL,
            84_000_000_000UL, 52_428_800UL, 1980, 3352, 67, 67)).ToList();

        var metrics = new StringBuilder("timestamp,host,run_id,test,backend,device,metric,value,unit,injected\n");
        var at = start.AddSeconds(5);
        foreach (var d in devices)
        {
            var slow = (spec.SlowNodes.Contains(node) ? spec.SlowFraction : 0)
                       + (spec.SlowDevices.Contains((node, d.Index)) ? 0.15 : 0);
            foreach (var (test, name, unit, nominal) in Metrics(spec.DevicesPerNode, d.Index))
            {
                var noise = 1 + spec.Noise * Gaussian(random);
                // Slow hardware: rates drop, times and temperatures rise.
                var value = unit is "us" or "C" ? nominal * noise * (1 + slow) : nominal * noise * (1 - slow);
                metrics.Append(CultureInfo.InvariantCulture, $"{at:yyyy-MM-dd'T'HH:mm:ss.fff'Z'},{host},{runId},{test},cuda,{d.Index},{name},{value:R},{unit},false\n");
            }
            at = at.AddSeconds(1);
        }
        File.WriteAllText(Path.Combine(folder, "metrics.csv"), metrics.ToString());

        var verdicts = new List<VerdictRow>();
        foreach (var test in new[] { "stream", "memtest", "gemm", "copy", "launch", "power" })
        {
            foreach (var d in devices)
            {
                verdicts.Add(test == "memtest" && d.Index == 0 && spec.FailNodes.Contains(node)
                    ? new VerdictRow(host, test, "cuda", d.Index, VerdictStatus.FAIL, "errors_total", 3, 0, "count", "3 data errors, first at offset 0x1f40 (walking_ones, bits 17)")
                    : new VerdictRow(host, test, "cuda", d.Index, VerdictStatus.PASS, "", null, null, "", "synthetic"));
            }
        }
        VerdictFile.Write(Path.Combine(folder, "verdicts.csv"), verdicts);

        var failed = spec.FailNodes.Contains(node);
        var hostInfo = new HostInfo(host, "Intel(R) Xeon(R) Platinum 8480+", 224, 2UL << 40, 1UL << 40, "6.1.0-18-amd64");
        var backends = new[] { new BackendInfo("cuda", "libkiln-cuda.so", spec.DriftNodes.Contains(node) ? DriftRuntime : Runtime, devices.Count, 1) };
        var inventory = new Inventory(hostInfo, "0.1.0", "/opt/kiln/lib/libkiln.so", backends, [], devices);
        SummaryJson.Write(Path.Combine(folder, "summary.json"), new RunSummary
        {
            Host = host,
            RunId = runId,
            KilnVersion = KilnVersion.Text,
            NativeVersion = "0.1.0",
            AbiVersion = 1,
            Command = "burn",
            Plan = "standard",
            Profile = "h100-sxm",
            ProfileSource = "built-in",
            Arguments = ["burn", "--plan", "standard"],
            StartUtc = start,
            EndUtc = start.AddMinutes(18),
            Injected = false,
            Injections = [],
            Verdict = failed ? "FAIL" : "PASS",
            ExitCode = failed ? 1 : 0,
            Counts = new SummaryCounts(verdicts.Count(v => v.Status == VerdictStatus.PASS), 0, failed ? 1 : 0, 0,
                devices.Count * 30, failed ? 3 : 0),
            InventoryFingerprint = inventory.Fingerprint,
            Components = SummaryInventory.Components(inventory, KilnVersion.Text),
            Inventory = SummaryInventory.From(inventory),
        });
        return folder;
    }

    private static Guid Uuid(Random random)
    {
        var bytes = new byte[16];
        random.NextBytes(bytes);
        return new Guid(bytes);
    }

    // Box-Muller: a standard normal draw from two uniform ones.
    private static double Gaussian(Random random) =>
        Math.Sqrt(-2 * Math.Log(1 - random.NextDouble())) * Math.Cos(2 * Math.PI * random.NextDouble());
}
