// Is the node idle, so a burn may start (or go on)? No process on any GPU (NVML, ROCm SMI, and the
// emulated devices when they are on), and, where Slurm runs, the node not allocated to a job. A burn's
// own workers hold the GPUs they burn: each burned GPU may show that many processes.
using Kiln.Native;

namespace Kiln.Core.Service;

public interface INodeActivity
{
    /// <summary>Why the node is busy, or null when it is idle. <paramref name="ownProcesses"/>: GPU UUID -> processes that are ours.</summary>
    string? Busy(IReadOnlyDictionary<string, int> ownProcesses);
}

public sealed class NodeActivity(string? slurmNode = null) : INodeActivity
{
    public string? Busy(IReadOnlyDictionary<string, int> ownProcesses)
    {
        var sources = new List<TelemetrySource> { TelemetrySource.Nvml, TelemetrySource.RocmSmi };
        if (Health.Sources.GpuCheck.EmuRequested) sources.Add(TelemetrySource.Emu);
        foreach (var source in sources)
        {
            using var gpus = GpuTelemetry.TryOpen(source, null, out _);
            if (gpus is null) continue;
            for (var i = 0; i < gpus.DeviceCount; i++)
            {
                GpuHealth h;
                try
                {
                    h = gpus.Health(i);
                }
                catch (KilnException)
                {
                    continue;   // an unreadable GPU is the check's finding, not a user's job
                }
                var ours = ownProcesses.GetValueOrDefault(h.Uuid);
                if (h.ComputeProcesses > ours)
                    return $"GPU {i} ({h.Uuid}) has {h.ComputeProcesses} compute process{(h.ComputeProcesses == 1 ? "" : "es")}{(ours > 0 ? $", {ours} of them kiln's" : "")} ({source.ToString().ToLowerInvariant()})";
            }
        }
        return SlurmBusy();
    }

    // The node's Slurm state, through the one Slurm client: allocated, mixed or completing means a job
    // has (part of) it. No scontrol, or no such node: not a Slurm node, nothing to wait for. Slurm there
    // but not answering: busy, since a burn must not land on a job it could not see.
    private string? SlurmBusy()
    {
        var slurm = new Slurm.SlurmClient();
        if (slurm.FindScontrol() is null) return null;
        try
        {
            var name = slurmNode ?? slurm.ThisNodeNameAsync().GetAwaiter().GetResult();
            if (name is null) return null;
            return slurm.NodeAsync(name).GetAwaiter().GetResult() is { Allocated: true } node
                ? $"Slurm node {name} is {node.Describe()}: a job holds it"
                : null;
        }
        catch (Exception e) when (e is not OutOfMemoryException && e.Message.Contains("configuration source", StringComparison.Ordinal))
        {
            return null;   // scontrol is installed but no Slurm is configured here: not a Slurm node
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            return $"Slurm could not be asked about this node ({e.Message.Split('\n')[0]})";
        }
    }
}
