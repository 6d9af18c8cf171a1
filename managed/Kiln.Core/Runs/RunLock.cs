// One burn per node at a time: an exclusive flock on <state folder>/burn.lock, held for the whole
// run. The kernel drops it when its holder dies, however it dies, so a killed run never leaves a
// stale lock. Who holds it (pid, since when, results folder) is in burn.lock.owner beside it.
using System.Globalization;

namespace Kiln.Core.Runs;

/// <summary>Another run holds the node: exit code 3, naming it.</summary>
public sealed class NodeBusyException(string message) : Exception(message);

public sealed class RunLock : IDisposable
{
    public const string FileName = "burn.lock";
    private readonly FileStream _lock;
    private readonly string _owner;

    private RunLock(FileStream held, string owner)
    {
        _lock = held;
        _owner = owner;
    }

    /// <summary>$KILN_STATE_DIR, else /var/lib/kiln for root, else $XDG_STATE_HOME/kiln (~/.local/state/kiln).</summary>
    public static string DefaultFolder()
    {
        if (Environment.GetEnvironmentVariable("KILN_STATE_DIR") is { Length: > 0 } set) return set;
        if (Environment.UserName == "root") return "/var/lib/kiln";
        var state = Environment.GetEnvironmentVariable("XDG_STATE_HOME") is { Length: > 0 } xdg
            ? xdg
            : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".local", "state");
        return Path.Combine(state, "kiln");
    }

    /// <summary>
    /// Takes the node's lock. Held elsewhere: waits when wait is set (telling waiting once),
    /// else throws NodeBusyException naming the holder.
    /// </summary>
    public static RunLock Acquire(string folder, string what, bool wait, Action<string> waiting, CancellationToken cancel)
    {
        Directory.CreateDirectory(folder);
        var path = Path.Combine(folder, FileName);
        var told = false;
        while (true)
        {
            try
            {
                // FileShare.None is an exclusive, non-blocking flock on Linux.
                var held = new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
                var owner = path + ".owner";
                File.WriteAllText(owner, FormattableString.Invariant($"pid {Environment.ProcessId}, since {DateTimeOffset.UtcNow:yyyy-MM-dd'T'HH:mm:ss'Z'}, {what}\n"));
                return new RunLock(held, owner);
            }
            catch (IOException) when (File.Exists(path))
            {
                var holder = Holder(path);
                if (!wait)
                    throw new NodeBusyException($"another kiln run holds this node ({holder}; lock {path}): try again when it ends, or give --wait");
                if (!told) waiting($"waiting for the node: another kiln run holds it ({holder})");
                told = true;
                cancel.WaitHandle.WaitOne(TimeSpan.FromSeconds(1));
                cancel.ThrowIfCancellationRequested();
            }
        }
    }

    private static string Holder(string path)
    {
        try
        {
            return File.ReadAllText(path + ".owner").Trim() is { Length: > 0 } text ? text : "holder unknown";
        }
        catch (IOException)
        {
            return "holder unknown";
        }
    }

    public void Dispose()
    {
        try { File.Delete(_owner); }
        catch (IOException) { }
        _lock.Dispose();
    }
}
