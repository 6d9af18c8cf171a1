// Is the node idle, so a burn may start (or go on)? No process on any GPU (NVML, ROCm SMI, and the
// emulated devices when they are on), and, where Slurm runs, the node not allocated to a job. A burn's
// own workers hold the GPUs they burn: each burned GPU may show that many processes.
using System.Diagnostics;
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

    // The node's Slurm state: ALLOCATED, MIXED or COMPLETING means a job has (part of) it. No scontrol,
    // or no such node: not a Slurm node, nothing to wait for.
    private string? SlurmBusy()
    {
        var node = slurmNode ?? HostName.Current.Split('.')[0];
        try
        {
            using var p = Process.Start(new ProcessStartInfo("scontrol", ["show", "node", node, "--oneliner"])
            {
                RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false,
            });
            if (p is null) return null;
            var output = p.StandardOutput.ReadToEndAsync();
            if (!p.WaitForExit(TimeSpan.FromSeconds(10)))
            {
                p.Kill();
                return null;
            }
            if (p.ExitCode != 0) return null;
            var state = output.Result.Split(' ').FirstOrDefault(w => w.StartsWith("State=", StringComparison.Ordinal))?[6..] ?? "";
            return state.Contains("ALLOC", StringComparison.Ordinal) || state.Contains("MIXED", StringComparison.Ordinal) || state.Contains("COMPLETING", StringComparison.Ordinal)
                ? $"Slurm node {node} is {state}: a job holds it"
                : null;
        }
        catch (Exception e) when (e is System.ComponentModel.Win32Exception or InvalidOperationException)
        {
            return null;
        }
    }
}
