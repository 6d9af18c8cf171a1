// `kiln net serve | probe | schedule | pairs | analyze`: the TCP probe between hosts (docs/NETWORK.md).
// serve answers one client's test at a time; probe measures one pair into metrics.csv and
// verdicts.csv (exit 0 PASS, 1 FAIL); schedule prints the pairing rounds for N nodes; pairs runs
// them through a launcher prefix (srun, ip netns exec) and names the host the bad pairs share;
// analyze does that for probe folders gathered from many nodes.
using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using Kiln.Cli.Output;
using Kiln.Core;
using Kiln.Core.Evaluation;
using Kiln.Core.Health;
using Kiln.Core.Net;
using Kiln.Core.Profiles;
using Kiln.Core.Results;
using Kiln.Core.Runs;
using Kiln.Native;

namespace Kiln.Cli.Commands;

public static class NetCommand
{
    private const string Bind = "--bind";
    private const string Streams = "--streams";
    private const string LatencyDuration = "--latency-duration";
    private const string Timeout = "--timeout";
    private const string Nodes = "--nodes";
    private const string MinPeers = "--min-peers";

    public static Command Create(CliServices services) =>
        new("net", "Network probes between hosts: TCP bandwidth each way and round-trip latency, pairing runs that name the bad host")
        {
            Serve(services), Probe(services), Schedule(services), Pairs(services), Analyze(services), Rdma(services), Allreduce(services),
        };

    private static Command Rdma(CliServices services)
    {
        var command = new Command("rdma", "List the RDMA ports libkiln-rdma.so finds (state, rate, link layer, GUIDs, firmware, NUMA node), or why there are none")
        {
            RdmaServe(services), RdmaProbeCommand(services),
        };
        command.SetAction(_ =>
        {
            KilnLibrary.EnsureLoaded();  // the native library, loaded as for every command
            var o = services.Console.Out;
            using var probe = RdmaProbe.Open(null, out var reason);
            if (probe is null)
            {
                o.WriteLine($"kiln net rdma: {reason}");
                return ExitCodes.Passed;  // a node without RDMA is not a failure of this listing
            }
            foreach (var p in probe.Ports)
                o.WriteLine($"{p.Device} port {p.Port}: {p.State}, {p.RateGbits:0.#} Gb/s {p.LinkLayer}, lid {p.Lid}, mtu {p.ActiveMtuBytes}, " +
                            $"fw {p.Firmware}, node guid {p.NodeGuid}, gid {p.Gid}, numa {p.NumaNode}");
            return ExitCodes.Passed;
        });
        return command;
    }

    /// <summary>The RDMA test's knobs, shared by rdma serve and rdma probe (both ends must agree on the sizes).</summary>
    private sealed class RdmaKnobs
    {
        public Option<string> PortIndex { get; } = CommandTree.Text("--port-index", "N", "The local port, by its place in kiln net rdma's list (default 0)");
        public Option<string> MaxSize { get; } = CommandTree.Text("--max-size", "SIZE", "The largest message of the sweep from 2 B (default 8MiB)");
        public Option<bool> BothWays { get; } = new("--both-ways") { Description = "Also write and read both ways at once (write_bidir_gbits, read_bidir_gbits)" };
        public Option<string> Timeout { get; } = CommandTree.Text(NetCommand.Timeout, "DURATION", "Longest wait on the side channel or a completion (default 5s)");
        public Option<string> Gpu { get; } = CommandTree.Text("--gpu", "[BACKEND:]N", "GPUDirect RDMA: the buffers in GPU N's memory (dma-buf, else peer memory); default host memory");

        public IEnumerable<Option> All => [PortIndex, MaxSize, BothWays, Timeout, Gpu];

        /// <summary>The GPU --gpu names, opened (the caller disposes it), or null for host memory.</summary>
        public Device? OpenGpu(ParseResult parse, Registry registry)
        {
            if (parse.GetValue(Gpu) is not { } text) return null;
            var colon = text.LastIndexOf(':');
            var backend = colon > 0 ? text[..colon] : FirstGpuBackend(registry) ?? throw new UsageException("--gpu", "no GPU backend on this node");
            if (!int.TryParse(text[(colon + 1)..], CultureInfo.InvariantCulture, out var index) || index < 0)
                throw new UsageException("--gpu", $"'{text}' is not [BACKEND:]N");
            return Targets.Open(registry, backend, index).Single();
        }

        public RdmaParams Read(ParseResult parse)
        {
            var p = RdmaParams.Defaults();
            if (Values.Count(parse, PortIndex, min: 0) is { } i) p.PortIndex = i;
            if (Values.Size(parse, MaxSize) is { } size)
                p.MaxMessageBytes = size.Bytes ?? throw new UsageException("--max-size", "give a size in bytes (8MiB)");
            p.BothWays = parse.GetValue(BothWays);
            if (parse.GetValue(Timeout) is { } t) p.TimeoutMs = (ulong)Kiln.Core.Health.Duration.Parse(t, NetCommand.Timeout).TotalMilliseconds;
            return p;
        }
    }

    // The node's RDMA probe, or exit 0 with why there is none (a node without RDMA is not a failure).
    private static RdmaProbe? OpenRdma(CliServices services, string command)
    {
        KilnLibrary.EnsureLoaded();
        var rdma = RdmaProbe.Open(null, out var reason);
        if (rdma is null) services.Console.Out.WriteLine($"kiln net rdma {command}: SKIP: {reason}");
        return rdma;
    }

    // --gpu: the RDMA buffers in that GPU's memory; a backend whose memory no HCA reaches is a SKIP with why.
    private static int? UseGpu(CliServices services, RdmaProbe rdma, Device? gpu, string command)
    {
        if (gpu is null) return null;
        try
        {
            rdma.UseGpu(gpu);
            return null;
        }
        catch (KilnException e) when (e.Status == KilnStatus.Unsupported)
        {
            services.Console.Out.WriteLine($"kiln net rdma {command}: SKIP: {e.Message}");
            return ExitCodes.Passed;
        }
    }

    private static Command RdmaServe(CliServices services)
    {
        var bind = CommandTree.Text(Bind, "ADDR[:PORT]", "Where the side channel listens (default 127.0.0.1:7301; never every address unless told)");
        var knobs = new RdmaKnobs();
        var command = new Command("serve", "The far end of one kiln net rdma probe: queue pairs exchanged over a TCP side channel, then the client drives") { bind };
        foreach (var o in knobs.All) command.Options.Add(o);
        command.SetAction(async (parse, cancel) =>
        {
            var where = parse.GetValue(bind) is { } b ? NetEndpoint.ParseBind(b, Bind) : new NetEndpoint("127.0.0.1", 7301);
            var p = knobs.Read(parse);
            using var rdma = OpenRdma(services, "serve");
            if (rdma is null) return ExitCodes.Passed;
            using var gpu = knobs.OpenGpu(parse, services.Native.Registry);
            if (UseGpu(services, rdma, gpu, "serve") is { } skipped) return skipped;
            services.Console.Out.WriteLine($"kiln net rdma serve: listening on {where}, port index {p.PortIndex}, {(gpu is null ? "host memory" : $"{gpu.Info.Backend}{gpu.Info.Index} memory")}");
            try
            {
                var status = await Task.Factory.StartNew(() => rdma.Serve(where.Host, where.Port, p, cancel),
                    CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);
                services.Console.Out.WriteLine($"kiln net rdma serve: {(status == KilnStatus.Ok ? "done" : "cancelled")}");
                return ExitCodes.Passed;
            }
            catch (KilnException e) when (e.Status is KilnStatus.PeerError or KilnStatus.BackendError)
            {
                services.Console.Out.WriteLine($"kiln net rdma serve: FAIL: {e.Message}");
                return ExitCodes.Failed;
            }
        });
        return command;
    }

    private static Command RdmaProbeCommand(CliServices services)
    {
        var peer = new Argument<string>("HOST:PORT") { Description = "The peer running kiln net rdma serve" };
        var knobs = new RdmaKnobs();
        var profile = CommandTree.Text(OptionNames.Profile, "NAME|FILE|auto", "Thresholds (net: rdma:) to judge the pair by (default auto)");
        var output = CommandTree.Text(OptionNames.Out, "DIR", "Result folder (default ./kiln-results/<host>/<utc time>)");
        var name = CommandTree.Text("--name", "NAME", "This node's name in the results (default: the machine name)");
        var command = new Command("probe", "RDMA write, read and send over RC queue pairs to one peer: bandwidth over a size sweep, latency, port error counters; exit 0 PASS / 1 FAIL")
        {
            peer, profile, output, name,
        };
        foreach (var o in knobs.All) command.Options.Add(o);
        command.SetAction(async (parse, cancel) =>
        {
            var target = NetEndpoint.Parse(parse.GetValue(peer)!, "HOST:PORT");
            var p = knobs.Read(parse);
            using var rdma = OpenRdma(services, "probe");
            if (rdma is null) return ExitCodes.Passed;
            using var gpu = knobs.OpenGpu(parse, services.Native.Registry);
            if (UseGpu(services, rdma, gpu, "probe") is { } skipped) return skipped;
            return await MeasureOnce(services, parse, "net rdma probe", parse.GetValue(profile), parse.GetValue(output), parse.GetValue(name),
                host => $"{host} -> {target}, port index {p.PortIndex}",
                (context, judge) => ProbeRun.RunRdma(rdma, target, p, context, judge, cancel), cancel);
        });
        return command;
    }

    private static Command Serve(CliServices services)
    {
        var bind = CommandTree.Text(Bind, "ADDR[:PORT]", $"Listen here (default 127.0.0.1:{NetEndpoint.DefaultPort}; 0.0.0.0 listens on every address, only when asked)");
        var sessions = CommandTree.Text("--sessions", "N", "Exit after serving N tests (default: serve until stopped)");
        var command = new Command("serve", "Answer kiln net probe clients, one test at a time; a client that comes while a test runs is told busy") { bind, sessions };
        command.SetAction(async (parse, cancel) =>
        {
            var at = parse.GetValue(bind) is { } text ? NetEndpoint.ParseBind(text, Bind) : new NetEndpoint("127.0.0.1", NetEndpoint.DefaultPort);
            var max = Values.Count(parse, sessions, min: 1) ?? 0;
            var console = services.Console;
            NetServer server;
            try
            {
                server = NetServer.Listen(at.Host, at.Port);
            }
            catch (KilnException e) when (e.Status == KilnStatus.InvalidArgument)
            {
                throw new UsageException(Bind, e.Message);
            }
            using (server)
            {
                console.Out.WriteLine($"kiln net serve: listening on {new NetEndpoint(at.Host, server.Port)}");
                console.Out.Flush();
                await Task.Factory.StartNew(() => server.Serve(max, line =>
                {
                    console.Out.WriteLine($"kiln net serve: {line}");
                    console.Out.Flush();
                }, cancel), CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);
            }
            return ExitCodes.Passed;
        });
        return command;
    }

    /// <summary>The probe's knobs, shared by probe and pairs.</summary>
    private sealed class Knobs
    {
        public Option<string> Streams { get; } = CommandTree.Text(NetCommand.Streams, "N", "Parallel TCP connections of the bandwidth phases (default 4, at most 128)");
        public Option<string> Duration { get; } = CommandTree.Text(OptionNames.Duration, "DURATION", "Length of each bandwidth phase, one per direction (default 5s)");
        public Option<string> LatencyDuration { get; } = CommandTree.Text(NetCommand.LatencyDuration, "DURATION", "Time for the request/response round trips (default 2s)");
        public Option<string> Timeout { get; } = CommandTree.Text(NetCommand.Timeout, "DURATION", "Longest wait on the peer: connect, a reply, a stalled stream (default 5s)");
        public Option<string> Profile { get; } = CommandTree.Text(OptionNames.Profile, "NAME|FILE|auto", "Thresholds (net: tcp:) to judge the pair by (default auto)");

        public IEnumerable<Option> All => [Streams, Duration, LatencyDuration, Timeout, Profile];

        public NetParams Read(ParseResult parse)
        {
            var p = NetParams.Defaults();
            if (Values.Count(parse, Streams, min: 1) is { } n)
                p.Streams = n <= 128 ? n : throw new UsageException(NetCommand.Streams, $"{n} is more than 128");
            p.DurationMs = Millis(parse, Duration, p.DurationMs);
            p.LatencyDurationMs = Millis(parse, LatencyDuration, p.LatencyDurationMs);
            p.TimeoutMs = Millis(parse, Timeout, p.TimeoutMs);
            return p;
        }

        /// <summary>The arguments that pass the same knobs on to a kiln net probe child.</summary>
        public IEnumerable<string> Forward(ParseResult parse) =>
            All.SelectMany(o => parse.GetValue((Option<string>)o) is { } v ? new[] { o.Name, v } : []);

        private static ulong Millis(ParseResult parse, Option<string> option, ulong fallback)
        {
            if (parse.GetValue(option) is not { } text) return fallback;
            var d = Kiln.Core.Health.Duration.Parse(text, option.Name);
            if (d < TimeSpan.FromMilliseconds(100)) throw new UsageException(option.Name, $"'{text}' is shorter than 100 ms");
            if (d > TimeSpan.FromHours(1)) throw new UsageException(option.Name, $"'{text}' is longer than 1 h");
            return (ulong)d.TotalMilliseconds;
        }
    }

    private static Command Probe(CliServices services)
    {
        var peer = new Argument<string>("HOST:PORT") { Description = "The peer running kiln net serve" };
        var knobs = new Knobs();
        var output = CommandTree.Text(OptionNames.Out, "DIR", "Result folder (default ./kiln-results/<host>/<utc time>)");
        var name = CommandTree.Text("--name", "NAME", "This node's name in the results (default: the machine name)");
        var peerName = CommandTree.Text("--peer-name", "NAME", "The peer's name in the results (default: HOST)");
        var command = new Command("probe", "Measure one pair: bandwidth each way over N streams, round-trip latency; writes metrics.csv and verdicts.csv, exit 0 PASS / 1 FAIL")
        {
            peer, output, name, peerName,
        };
        foreach (var o in knobs.All) command.Options.Add(o);
        command.SetAction(async (parse, cancel) =>
        {
            var target = NetEndpoint.Parse(parse.GetValue(peer)!, "HOST:PORT");
            var p = knobs.Read(parse);
            return await MeasureOnce(services, parse, NetAnalysis.ProbeCommand, parse.GetValue(knobs.Profile), parse.GetValue(output), parse.GetValue(name),
                host => $"{host} -> {target}, {p.Streams} stream(s), {p.DurationMs / 1000.0:0.###} s each way",
                (context, judge) => ProbeRun.Run(target, p, context, judge, cancel), cancel,
                (host, o, v) => new NetPairSummary(host, parse.GetValue(peerName) ?? target.Host, target.ToString(), v.Status.ToString(),
                    o.Last("send_gbits"), o.Last("recv_gbits"), o.Last("rtt_us_p99"), v.Reason));
        });
        return command;
    }

    /// <summary>
    /// A one-shot network command's run (probe, rdma probe, allreduce): its result folder, summary.json
    /// written INCOMPLETE first and final at the end, the one measurement on a thread of its own (its
    /// rows streamed into metrics.csv, errors.csv and verdicts.csv), the verdict printed; the exit code.
    /// </summary>
    /// <param name="describe">What runs, for the first line, from the host name.</param>
    /// <param name="pair">The summary's net section (a TCP probe's pair, which kiln net analyze and kiln report read).</param>
    private static async Task<int> MeasureOnce(CliServices services, ParseResult parse, string command, string? profile, string? output,
        string? name, Func<string, string> describe, Func<RunContext, Profile, (TestOutcome Outcome, VerdictRow Verdict)> measure,
        CancellationToken cancel, Func<string, TestOutcome, VerdictRow, NetPairSummary>? pair = null)
    {
        var start = DateTimeOffset.UtcNow;
        var host = name ?? HostName.Current;
        var inventory = Inventory.Collect(services.Native.Registry);
        var judge = ProfileCatalog.Resolve(profile, inventory.Devices);
        var folder = ResultFolder.Create(output ?? ResultFolder.DefaultPath(host, start));
        var summary = new RunSummary
        {
            Host = host,
            RunId = RunContext.NewRunId(start),
            KilnVersion = KilnVersion.Text,
            NativeVersion = KilnLibrary.Version,
            AbiVersion = KilnLibrary.AbiVersion,
            Command = command,
            Profile = judge.Name,
            ProfileSource = judge.Source,
            Arguments = parse.Tokens.Select(t => t.Value).ToList(),
            StartUtc = start.UtcDateTime,
            Injected = false,
            Injections = [],
            Verdict = "INCOMPLETE",
            InventoryFingerprint = inventory.Fingerprint,
            Components = SummaryInventory.Components(inventory, KilnVersion.Text),
            Inventory = SummaryInventory.From(inventory),
        };
        SummaryJson.Write(folder.File("summary.json"), summary);
        var console = services.Console;
        console.Out.WriteLine($"kiln {command}: {describe(host)}, profile {judge.Name}, results in {folder.Path}");
        (TestOutcome Outcome, VerdictRow Verdict) result;
        using (var files = new ResultFiles(folder, withVerdicts: true))
        {
            var context = new RunContext(host, summary.RunId, files, Observers.For(console));
            result = await Task.Factory.StartNew(() => measure(context, judge), CancellationToken.None, TaskCreationOptions.LongRunning,
                TaskScheduler.Default);
        }
        VerdictRow[] verdicts = [result.Verdict];
        var node = Evaluator.Overall(verdicts, cancel.IsCancellationRequested);
        SummaryJson.Write(folder.File("summary.json"), summary with
        {
            EndUtc = DateTime.UtcNow,
            Verdict = node.ToString(),
            ExitCode = Evaluator.ExitCode(node),
            Counts = new SummaryCounts(verdicts.Count(v => v.Status == VerdictStatus.PASS), verdicts.Count(v => v.Status == VerdictStatus.WARN),
                verdicts.Count(v => v.Status == VerdictStatus.FAIL), verdicts.Count(v => v.Status == VerdictStatus.SKIP),
                result.Outcome.Metrics.Sum(m => m.Value.Count), Evaluator.DataErrors(result.Outcome)),
            Net = pair?.Invoke(host, result.Outcome, result.Verdict),
        });
        console.Out.WriteLine($"{result.Verdict.Status}: {result.Verdict.Reason}");
        return Evaluator.ExitCode(node);
    }

    private static Command Allreduce(CliServices services)
    {
        var backend = CommandTree.Text(OptionNames.Backend, "NAME", "The GPU backend whose devices are the ranks (default: the first GPU backend with devices)");
        var size = CommandTree.Text(OptionNames.Size, "SIZE", "nccl-tests' size: all-reduce's buffer per rank (default 16GiB, less to fit)");
        var iterations = CommandTree.Text(OptionNames.Iterations, "N", "Timed iterations of each op (default 20, after 5 warm-up ones)");
        var ops = CommandTree.Text(OptionNames.Ops, "LIST", "allreduce,allgather,reducescatter (default all three)");
        var processes = CommandTree.Text("--processes", "N", "Processes of this run, one per node (default $SLURM_NTASKS, else 1)");
        var index = CommandTree.Text("--process-index", "I", "This process's index, 0 serves the rendezvous (default $SLURM_PROCID, else 0)");
        var root = CommandTree.Text("--root", "HOST:PORT", "Where process 0 serves the rendezvous that hands out the unique id and ranks");
        var bind = CommandTree.Text(Bind, "ADDR", "Process 0: the address to listen on (default: --root's host, resolved)");
        var timeout = CommandTree.Text(Timeout, "DURATION", "Longest wait for the other processes and for one op (default 5m)");
        var profile = CommandTree.Text(OptionNames.Profile, "NAME|FILE|auto", "Thresholds (net: allreduce:) to judge by (default auto)");
        var output = CommandTree.Text(OptionNames.Out, "DIR", "Result folder (default ./kiln-results/<host>/<utc time>)");
        var name = CommandTree.Text("--name", "NAME", "This node's name in the results (default: the machine name)");
        var command = new Command("allreduce",
            "All-reduce, all-gather and reduce-scatter busbw through NCCL/RCCL over this node's GPUs, or over many nodes' (one process each); exit 0 PASS / 1 FAIL")
        {
            backend, size, iterations, ops, processes, index, root, bind, timeout, profile, output, name,
        };
        command.SetAction(async (parse, cancel) =>
        {
            var p = CollParams.Defaults();
            if (Values.Size(parse, size) is { } spec)
                p.SizeBytes = spec.Bytes ?? throw new UsageException(OptionNames.Size, "give a size in bytes (16GiB), not a share of memory");
            if (Values.Count(parse, iterations, min: 1) is { } n) p.Iterations = n;
            if (parse.GetValue(ops) is { } list) p.OpMask = OpMask(list);
            if (parse.GetValue(timeout) is { } t) p.TimeoutMs = (ulong)Kiln.Core.Health.Duration.Parse(t, Timeout).TotalMilliseconds;
            var count = Values.Count(parse, processes, min: 1) ?? EnvCount("SLURM_NTASKS", 1);
            var me = parse.GetValue(index) is { } i
                ? (int.TryParse(i, CultureInfo.InvariantCulture, out var v) && v >= 0 ? v : throw new UsageException("--process-index", $"'{i}' is not a whole number >= 0"))
                : EnvCount("SLURM_PROCID", 0);
            if (me >= count) throw new UsageException("--process-index", $"{me} is not below --processes {count}");
            NetEndpoint? rendezvous = parse.GetValue(root) is { } r ? NetEndpoint.Parse(r, "--root") : null;
            if (count > 1 && rendezvous is null) throw new UsageException("--root", $"{count} processes meet at HOST:PORT: give --root");

            var registry = services.Native.Registry;
            var chosen = parse.GetValue(backend) ?? FirstGpuBackend(registry);
            var devices = chosen is null ? [] : Targets.Open(registry, chosen, null).ToList();
            try
            {
                var wait = TimeSpan.FromMilliseconds(p.TimeoutMs);
                Func<CollectiveRanks>? meet = count > 1 ? () => Meet(devices, rendezvous!, parse.GetValue(bind), count, me, wait, cancel) : null;
                return await MeasureOnce(services, parse, "net allreduce", parse.GetValue(profile), parse.GetValue(output), parse.GetValue(name),
                    host => $"{host}, {devices.Count} {chosen ?? "GPU"} device(s), process {me} of {count}",
                    (context, judge) => CollectiveRun.Run(devices, p, meet, context, judge, cancel), cancel);
            }
            finally
            {
                foreach (var d in devices) d.Dispose();
            }
        });
        return command;
    }

    // The rendezvous: process 0 makes the id and serves it on --bind (or --root's host), the others join.
    // A process that cannot meet the others is that run's FAIL, with why, like any peer fault.
    private static CollectiveRanks Meet(IReadOnlyList<Device> devices, NetEndpoint root, string? bind, int processes, int index,
        TimeSpan wait, CancellationToken cancel)
    {
        if (index == 0)
        {
            var id = Collectives.UniqueId(devices[0]);
            var address = bind ?? ListenAddress(root.Host);
            var met = Collectives.Serve(address, root.Port, processes, devices.Count, id, wait, cancel);
            return new CollectiveRanks(met.NRanks, met.FirstRank, id);
        }
        var (ranks, uniqueId) = Collectives.Join(root.Host, root.Port, index, devices.Count, wait, cancel);
        return new CollectiveRanks(ranks.NRanks, ranks.FirstRank, uniqueId);
    }

    // --root's host as an address to listen on: an address as given, a name resolved (IPv4 first).
    private static string ListenAddress(string host)
    {
        if (System.Net.IPAddress.TryParse(host, out _)) return host;
        try
        {
            var all = System.Net.Dns.GetHostAddresses(host);
            var pick = all.FirstOrDefault(a => a.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork) ?? all.FirstOrDefault();
            return pick?.ToString() ?? throw new UsageException("--root", $"'{host}' has no address; give --bind");
        }
        catch (System.Net.Sockets.SocketException e)
        {
            throw new UsageException("--root", $"cannot resolve '{host}' ({e.Message}); give --bind");
        }
    }

    // The backend --gpu and allreduce default to: the first loaded one with devices that is not the host's CPU.
    private static string? FirstGpuBackend(Registry registry) => registry.Backends.FirstOrDefault(b => b.Name != "cpu" && b.DeviceCount > 0)?.Name;

    private static uint OpMask(string list)
    {
        uint mask = 0;
        foreach (var item in list.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
            mask |= item switch
            {
                "allreduce" => 1u,
                "allgather" => 2u,
                "reducescatter" => 4u,
                _ => throw new UsageException(OptionNames.Ops, $"unknown op '{item}' (known: allreduce, allgather, reducescatter)"),
            };
        return mask != 0 ? mask : throw new UsageException(OptionNames.Ops, "names no op");
    }

    private static int EnvCount(string variable, int fallback) =>
        Environment.GetEnvironmentVariable(variable) is { Length: > 0 } text && int.TryParse(text, CultureInfo.InvariantCulture, out var v) && v >= 0 ? v : fallback;

    private static Option<string> NodesOption(string help) => CommandTree.Text(Nodes, "NAME[=HOST:PORT],...", help);

    private static Command Schedule(CliServices services)
    {
        var nodes = NodesOption("The nodes to pair, comma-separated");
        var minPeers = CommandTree.Text(MinPeers, "N", "Each node meets at least N others (default 3)");
        var seed = CommandTree.Text(OptionNames.Seed, "N", "Seed of the random matchings (default 1)");
        var command = new Command("schedule", "Print the pairing rounds for N nodes: a ring plus random perfect matchings (round client server)") { nodes, minPeers, seed };
        command.SetAction(parse =>
        {
            var list = ParseNodes(parse.GetValue(nodes)).Select(n => n.Name).ToList();
            var rounds = NetPairing.Schedule(list, Values.Count(parse, minPeers, min: 1) ?? 3, (int)(Values.Seed(parse, seed) ?? 1));
            var o = services.Console.Out;
            for (var r = 0; r < rounds.Count; r++)
                foreach (var pair in rounds[r]) o.WriteLine($"{r + 1} {pair.Client} {pair.Server}");
            return ExitCodes.Passed;
        });
        return command;
    }

    private static Command Pairs(CliServices services)
    {
        var nodes = NodesOption("The nodes and where each one's kiln net serve listens, e.g. n1=10.0.0.1:7300,n2=10.0.0.2:7300");
        var minPeers = CommandTree.Text(MinPeers, "N", "Each node meets at least N others (default 3)");
        var seed = CommandTree.Text(OptionNames.Seed, "N", "Seed of the random matchings (default 1)");
        var exec = CommandTree.Text("--exec", "PREFIX", "How to run a command on a node, {client} its name: 'srun -N1 -w {client}', 'ip netns exec {client}' (default: here)");
        var output = CommandTree.Text(OptionNames.Out, "DIR", "Result folder: one probe folder per pair, pairs.csv, suspects.csv");
        var knobs = new Knobs();
        var command = new Command("pairs", "Run the pairing schedule (each round's pairs at once) and name the host the bad pairs share; exit 1 on a bad pair")
        {
            nodes, minPeers, seed, exec, output,
        };
        foreach (var o in knobs.All) command.Options.Add(o);
        command.SetAction(async (parse, cancel) =>
        {
            var list = ParseNodes(parse.GetValue(nodes));
            if (list.Any(n => n.Endpoint is null))
                throw new UsageException(Nodes, $"every node needs NAME=HOST:PORT here ({string.Join(", ", list.Where(n => n.Endpoint is null).Select(n => n.Name))} has none)");
            // Every knob checked here, before any child runs; a child past the probe's own deadline
            // (plus a minute for its launcher and start-up) is killed: a hung launcher fails its pair, not the run.
            var childDeadline = knobs.Read(parse).Deadline + TimeSpan.FromMinutes(1);
            var rounds = NetPairing.Schedule(list.Select(n => n.Name).ToList(), Values.Count(parse, minPeers, min: 1) ?? 3, (int)(Values.Seed(parse, seed) ?? 1));
            var prefix = (parse.GetValue(exec) ?? "").Split(' ', StringSplitOptions.RemoveEmptyEntries);
            if (prefix.Length > 0 && !IsProgram(prefix[0]))
                throw new UsageException("--exec", $"'{prefix[0]}' is not a program on PATH (the launcher, e.g. srun or ip)");
            var folder = ResultFolder.Create(parse.GetValue(output) ?? ResultFolder.DefaultPath("pairs", DateTimeOffset.UtcNow));
            var console = services.Console;
            var kiln = SelfCommand();
            var where = list.ToDictionary(n => n.Name, n => n.Endpoint!);
            var measured = new List<PairRow>();
            for (var r = 0; r < rounds.Count && !cancel.IsCancellationRequested; r++)
            {
                console.Out.WriteLine($"kiln net pairs: round {r + 1} of {rounds.Count}: {string.Join(", ", rounds[r].Select(p => $"{p.Client} -> {p.Server}"))}");
                var start = DateTime.UtcNow;
                var runs = rounds[r].Select(pair =>
                {
                    // A summary left by an earlier run into the same --out must not stand in for this probe's.
                    var stale = Path.Combine(PairFolder(folder, pair), "summary.json");
                    if (File.Exists(stale)) File.Delete(stale);
                    var args = prefix.Select(a => a.Replace("{client}", pair.Client, StringComparison.Ordinal))
                        .Concat(kiln).Concat(["net", "probe", where[pair.Server].ToString(), "--name", pair.Client, "--peer-name", pair.Server,
                            OptionNames.Out, PairFolder(folder, pair)])
                        .Concat(knobs.Forward(parse)).ToList();
                    return RunChild(args, childDeadline, cancel);
                }).ToList();
                foreach (var (run, pair) in (await Task.WhenAll(runs)).Zip(rounds[r]))
                {
                    if (run.ExitCode is not (0 or 1))
                        console.Error.WriteLine($"kiln net pairs: {pair.Client} -> {pair.Server}: exit {run.ExitCode}: {run.Output.Trim()}");
                    // A probe that left no result (killed, its launcher failed, past its deadline) is a FAIL
                    // with why, written into its folder; the other pairs go on.
                    var dir = PairFolder(folder, pair);
                    var row = run.Why is null ? NetAnalysis.TryReadPair(dir, out _) : null;
                    measured.Add(row ?? NetAnalysis.RecordFailure(dir, pair, where[pair.Server].ToString(),
                        run.Why ?? $"the probe ended without a result: {run.Ending}", start));
                }
            }
            var result = NetAnalysis.Analyze(measured);
            NetAnalysis.Write(folder, result);
            Print(console.Out, result, folder.Path);
            return result.ExitCode;
        });
        return command;
    }

    private static Command Analyze(CliServices services)
    {
        var dirs = new Argument<string[]>("DIR") { Description = "kiln net probe result folders (or folders holding them)", Arity = ArgumentArity.OneOrMore };
        var output = CommandTree.Text(OptionNames.Out, "DIR", "Where pairs.csv and suspects.csv go (default: the current folder)");
        var command = new Command("analyze", "Read probe folders from many nodes, write pairs.csv and suspects.csv, name the host the bad pairs share") { dirs, output };
        command.SetAction(parse =>
        {
            var folders = parse.GetValue(dirs)!.SelectMany(d => File.Exists(Path.Combine(d, "summary.json")) ? [d]
                : Directory.Exists(d) ? Directory.GetDirectories(d).Where(s => File.Exists(Path.Combine(s, "summary.json"))).Order(StringComparer.Ordinal).ToArray()
                : throw new UsageException("DIR", $"{d}: no such folder")).ToList();
            if (folders.Count == 0) throw new UsageException("DIR", "no kiln net probe result folder found");
            var result = NetAnalysis.Analyze(folders.Select(NetAnalysis.ReadPair).ToList());
            var folder = ResultFolder.Create(parse.GetValue(output) ?? ".");
            NetAnalysis.Write(folder, result);
            Print(services.Console.Out, result, folder.Path);
            return result.ExitCode;
        });
        return command;
    }

    private static void Print(TextWriter o, NetAnalysisResult result, string folder)
    {
        static string Rate(double? g) => g is { } v ? v.ToString("0.###", CultureInfo.InvariantCulture) + " Gb/s" : "-";
        foreach (var p in result.Pairs)
            o.WriteLine($"{p.Status,-4} {p.Client} -> {p.Server}: send {Rate(p.SendGbits)}, recv {Rate(p.RecvGbits)}" +
                        (p.Status == nameof(VerdictStatus.PASS) ? "" : $": {p.Reason}"));
        foreach (var s in result.Suspects)
            o.WriteLine(s.Peer is null ? $"SUSPECT host {s.Host}: {s.Why}" : $"SUSPECT link {s.Host} -> {s.Peer}: {s.Why}");
        o.WriteLine($"kiln net: {result.Pairs.Count} pair(s), {result.Suspects.Count} suspect(s); {NetAnalysis.PairsFile} and {NetAnalysis.SuspectsFile} in {folder}");
    }

    // This kiln as a command line: the apphost (build/bin/kiln), or dotnet and kiln.dll when run that way.
    private static string[] SelfCommand()
    {
        var self = Environment.ProcessPath ?? "kiln";
        return Path.GetFileNameWithoutExtension(self) == "dotnet" ? [self, typeof(NetCommand).Assembly.Location] : [self];
    }

    private sealed record NodeSpec(string Name, NetEndpoint? Endpoint);

    private static List<NodeSpec> ParseNodes(string? text)
    {
        if (string.IsNullOrWhiteSpace(text)) throw new UsageException(Nodes, "no nodes given (e.g. --nodes n1=10.0.0.1:7300,n2=10.0.0.2:7300)");
        return text.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries).Select(item =>
        {
            var eq = item.IndexOf('=');
            var nodeName = eq < 0 ? item : item[..eq];
            if (nodeName.Length == 0 || nodeName.Any(c => char.IsWhiteSpace(c) || c == '/'))
                throw new UsageException(Nodes, $"'{item}': a node name must be non-empty, without spaces or /");
            return new NodeSpec(nodeName, eq < 0 ? null : NetEndpoint.Parse(item[(eq + 1)..], Nodes));
        }).ToList();
    }

    private static string PairFolder(ResultFolder folder, NetPair pair) => folder.File($"{pair.Client}-{pair.Server}");

    // A name with a / is a path; otherwise it is looked for on PATH, as the child's start will.
    private static bool IsProgram(string name) =>
        name.Contains('/') ? File.Exists(name)
        : (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries).Any(d => File.Exists(Path.Combine(d, name)));

    /// <param name="Why">Set when the parent ended the child (past its deadline, the run cancelled) or could not start it.</param>
    private sealed record ChildRun(int ExitCode, string Output, string? Why = null)
    {
        /// <summary>"exit 137 (killed by signal 9)", "exit 7: srun: error: ...": how a child that left no result ended.</summary>
        public string Ending
        {
            get
            {
                if (ExitCode is > 128 and < 128 + 65) return $"exit {ExitCode} (killed by signal {ExitCode - 128})";
                // kiln's own error line says more than the launcher's "task 0: Exited with exit code 2" after it.
                var lines = Output.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
                var last = lines.LastOrDefault(l => l.StartsWith("kiln: error:", StringComparison.Ordinal)) ?? lines.LastOrDefault();
                return last is null ? $"exit {ExitCode}" : $"exit {ExitCode}: {last}";
            }
        }
    }

    // One probe child: its output is kept for the error line when it did not run as a probe (exit 2, 3),
    // stderr last, so the launcher's own complaint is the last line.
    private static async Task<ChildRun> RunChild(IReadOnlyList<string> args, TimeSpan deadline, CancellationToken cancel)
    {
        var start = new ProcessStartInfo(args[0]) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in args.Skip(1)) start.ArgumentList.Add(a);
        Process process;
        try
        {
            process = Process.Start(start) ?? throw new System.ComponentModel.Win32Exception("no process");
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            return new ChildRun(-1, "", $"cannot start {args[0]}: {e.Message}");
        }
        using (process)
        {
            var stdout = process.StandardOutput.ReadToEndAsync(CancellationToken.None);
            var stderr = process.StandardError.ReadToEndAsync(CancellationToken.None);
            using var limit = CancellationTokenSource.CreateLinkedTokenSource(cancel);
            limit.CancelAfter(deadline);
            try
            {
                await process.WaitForExitAsync(limit.Token);
            }
            catch (OperationCanceledException)
            {
                process.Kill(entireProcessTree: true);
                await process.WaitForExitAsync(CancellationToken.None);
                return new ChildRun(process.ExitCode, await Collected(stdout, stderr), cancel.IsCancellationRequested
                    ? "the run was cancelled before the probe ended"
                    : $"the probe did not end within {deadline.TotalSeconds:0} s and was killed");
            }
            return new ChildRun(process.ExitCode, await Collected(stdout, stderr));
        }
    }

    // A launcher that died may leave a process behind that holds its output open: wait briefly, not forever.
    private static async Task<string> Collected(Task<string> stdout, Task<string> stderr)
    {
        var both = Task.WhenAll(stdout, stderr);
        return await Task.WhenAny(both, Task.Delay(TimeSpan.FromSeconds(5))) == both
            ? stdout.Result + stderr.Result
            : "(its output is held open by a process it left behind)";
    }
}
