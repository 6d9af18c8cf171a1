// Slurm through scontrol: this node's Slurm name, a node's state and reason, drain and resume. Every
// call is an argument vector (CliWrap), never a shell string, and has a deadline: a controller that
// does not answer costs seconds, not the caller's whole time limit.
using System.Text;
using CliWrap;
using CliWrap.Buffered;

namespace Kiln.Core.Slurm;

/// <summary>scontrol could not be run, timed out, or refused; the message says which, with its output.</summary>
public sealed class SlurmException(string message) : Exception(message);

/// <summary>What Slurm says of one node (`scontrol -o show node NAME`).</summary>
/// <param name="State">The whole state field, e.g. "IDLE", "MIXED+DRAIN", "ALLOCATED", "DOWN+DRAIN+NOT_RESPONDING".</param>
/// <param name="Reason">The drain or down reason without Slurm's "[user@time]" suffix; "" when none.</param>
public sealed record SlurmNode(string Name, string State, string Reason)
{
    private string[] Flags => State.Split('+', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);

    /// <summary>The base state in lower case: idle, allocated, mixed, down, completing, ...</summary>
    public string BaseState => Flags.FirstOrDefault()?.ToLowerInvariant() ?? "unknown";

    /// <summary>DRAIN is set (DRAINING while jobs finish, DRAINED when empty).</summary>
    public bool Drained => Flags.Skip(1).Any(f => f is "DRAIN" or "DRAINING" or "DRAINED") || BaseState is "drained" or "draining";

    /// <summary>A job holds (part of) the node: a burn must not start on it.</summary>
    public bool Allocated => BaseState is "allocated" or "mixed" or "completing";

    /// <summary>The reason is kiln's own ("kiln: ..."): only such a drain is kiln's to resume.</summary>
    public bool DrainedByKiln => Drained && SlurmClient.IsKilnReason(Reason);

    /// <summary>"drained (kiln: GPU_ECC_UNCORRECTABLE gpu3 ...)", "idle", "mixed".</summary>
    public string Describe() => (Drained ? (Allocated ? "draining" : "drained") : BaseState) + (Reason.Length > 0 ? $" ({Reason})" : "");
}

public sealed class SlurmClient
{
    /// <summary>Every reason kiln writes starts with this; a drain without it belongs to someone else.</summary>
    public const string ReasonPrefix = "kiln:";

    /// <summary>Overrides the scontrol that is run (a path, or a name looked up on PATH): tests, odd installs.</summary>
    public const string ScontrolVariable = "KILN_SCONTROL";

    public SlurmClient(string? scontrol = null, TimeSpan? timeout = null)
    {
        Scontrol = scontrol ?? (Environment.GetEnvironmentVariable(ScontrolVariable) is { Length: > 0 } s ? s : "scontrol");
        Timeout = timeout ?? TimeSpan.FromSeconds(10);
    }

    public string Scontrol { get; }
    public TimeSpan Timeout { get; }

    /// <summary>Where scontrol is looked for after PATH.</summary>
    private static readonly string[] SearchFolders = ["/usr/bin", "/usr/local/bin", "/opt/slurm/bin"];

    public static bool IsKilnReason(string reason) => reason.TrimStart().StartsWith(ReasonPrefix, StringComparison.Ordinal);

    /// <summary>The scontrol this client runs, found (a path that exists, or a name on PATH); null when there is none.</summary>
    public string? FindScontrol()
    {
        if (Scontrol.Contains('/')) return File.Exists(Scontrol) ? Path.GetFullPath(Scontrol) : null;
        foreach (var dir in (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries).Concat(SearchFolders))
        {
            var candidate = Path.Combine(dir, Scontrol);
            if (File.Exists(candidate)) return candidate;
        }
        return null;
    }

    /// <summary>
    /// This machine's Slurm node name: SLURMD_NODENAME (slurmd sets it for HealthCheckProgram, prolog,
    /// epilog and job steps), else the short host name when Slurm knows a node by it; null when neither.
    /// </summary>
    public async Task<string?> ThisNodeNameAsync(CancellationToken cancel = default)
    {
        if (Environment.GetEnvironmentVariable("SLURMD_NODENAME") is { Length: > 0 } name) return name;
        var host = HostName.Current.Split('.')[0];
        return await NodeAsync(host, cancel).ConfigureAwait(false) is null ? null : host;
    }

    /// <summary>
    /// One node's state and reason, or null when Slurm knows no such node. The one query the service's
    /// "do not burn while the node is allocated" rule and the health check share.
    /// </summary>
    public async Task<SlurmNode?> NodeAsync(string node, CancellationToken cancel = default)
    {
        var r = await RunAsync(["-o", "show", "node", node], cancel, allowFailure: true).ConfigureAwait(false);
        if (r.ExitCode != 0)
        {
            if ((r.StandardError + r.StandardOutput).Contains("not found", StringComparison.OrdinalIgnoreCase)) return null;
            throw Failed(["-o", "show", "node", node], r);
        }
        return ParseNode(r.StandardOutput, node);
    }

    /// <summary>Drains the node with this reason (kiln's reasons start with "kiln:").</summary>
    public Task DrainAsync(string node, string reason, CancellationToken cancel = default) =>
        RunAsync(["update", $"NodeName={node}", "State=DRAIN", $"Reason={reason}"], cancel);

    /// <summary>Returns a drained node to service.</summary>
    public Task ResumeAsync(string node, CancellationToken cancel = default) =>
        RunAsync(["update", $"NodeName={node}", "State=RESUME"], cancel);

    /// <summary>
    /// Parses one `scontrol -o show node` line ("NodeName=node2 Arch=x86_64 ... State=IDLE+DRAIN ...
    /// Reason=kiln: XID_FATAL gpu3 [root@2026-12-02T10:00:00]"). Reason is the last field and may hold
    /// spaces and '='; Slurm appends who set it and when, which is cut off.
    /// </summary>
    public static SlurmNode? ParseNode(string text, string requested)
    {
        var line = text.Split('\n').Select(l => l.Trim()).FirstOrDefault(l => l.StartsWith("NodeName=", StringComparison.Ordinal));
        if (line is null) return null;
        string Field(string key)
        {
            var at = line.StartsWith(key + "=", StringComparison.Ordinal) ? 0 : line.IndexOf(" " + key + "=", StringComparison.Ordinal) + 1;
            if (at == 0 && !line.StartsWith(key + "=", StringComparison.Ordinal)) return "";
            var start = at + key.Length + 1;
            var end = line.IndexOf(' ', start);
            return end < 0 ? line[start..] : line[start..end];
        }
        var name = Field("NodeName");
        var state = Field("State");
        var reason = "";
        var r = line.IndexOf(" Reason=", StringComparison.Ordinal);
        if (r >= 0)
        {
            reason = line[(r + " Reason=".Length)..];
            var stamp = reason.LastIndexOf(" [", StringComparison.Ordinal);
            if (stamp >= 0 && reason.EndsWith(']')) reason = reason[..stamp];
            if (reason == "(null)") reason = "";
        }
        return new SlurmNode(name.Length > 0 ? name : requested, state.Length > 0 ? state : "UNKNOWN", reason.Trim());
    }

    private async Task<BufferedCommandResult> RunAsync(string[] args, CancellationToken cancel, bool allowFailure = false)
    {
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancel);
        deadline.CancelAfter(Timeout);
        // slurmd runs HealthCheckProgram, prolog and epilog with a bare PATH: look in the usual places too.
        var program = FindScontrol() ?? throw new SlurmException($"{Scontrol} not found (PATH, {string.Join(", ", SearchFolders)})");
        BufferedCommandResult result;
        try
        {
            result = await Cli.Wrap(program).WithArguments(args).WithValidation(CommandResultValidation.None)
                .ExecuteBufferedAsync(Encoding.UTF8, Encoding.UTF8, deadline.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (!cancel.IsCancellationRequested)
        {
            throw new SlurmException($"{Describe(args)} did not answer within {Timeout.TotalSeconds:0} s (killed)");
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            throw new SlurmException($"cannot run {Scontrol}: {e.Message}");
        }
        if (result.ExitCode != 0 && !allowFailure) throw Failed(args, result);
        return result;
    }

    private SlurmException Failed(string[] args, BufferedCommandResult r)
    {
        var output = (r.StandardError.Trim().Length > 0 ? r.StandardError : r.StandardOutput).Trim().ReplaceLineEndings(" ");
        return new SlurmException($"{Describe(args)} exited {r.ExitCode}: {(output.Length > 300 ? output[..300] + "…" : output)}");
    }

    private string Describe(string[] args) => $"{Scontrol} {string.Join(' ', args)}";
}
