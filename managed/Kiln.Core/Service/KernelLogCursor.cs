// Where the service has read the kernel log up to, so a restart neither replays old Xids nor misses
// new ones: the boot (boot_id), the last /dev/kmsg sequence number, and for a log file the byte
// offset. A new boot_id starts over from the beginning of that boot's log; a file that shrank was
// rotated and is read from its start. The position moves only when the check that read the lines has
// been stored (the caller saves Next with the check's findings, in one transaction).
using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using Kiln.Core.Health;
using Kiln.Core.Health.KernelLog;
using Kiln.Core.Health.Sources;

namespace Kiln.Core.Service;

public sealed partial class KernelLogCursor(string root, string? file, KernelLogCursor.Position? saved) : IKernelLogReader
{
    /// <param name="Seq">The last /dev/kmsg sequence number read (-1: none yet).</param>
    /// <param name="Offset">For a file: the byte offset read up to.</param>
    public sealed record Position(string BootId, string Source, long Seq, long Offset)
    {
        public string ToJson() => JsonSerializer.Serialize(this);

        public static Position? FromJson(string? json)
        {
            if (string.IsNullOrEmpty(json)) return null;
            try
            {
                return JsonSerializer.Deserialize<Position>(json);
            }
            catch (JsonException)
            {
                return null;
            }
        }
    }

    /// <summary>The position after the last Read; null until then (or when nothing could be read).</summary>
    public Position? Next { get; private set; }

    /// <summary>The records the last Read handed over.</summary>
    public int NewRecords { get; private set; }

    /// <summary>ROOT/proc/sys/kernel/random/boot_id, or "unknown".</summary>
    public static string BootId(string root) =>
        SysfsFile.TextOrEmpty(Path.Combine(root, "proc", "sys", "kernel", "random", "boot_id")).Trim() is { Length: > 0 } id ? id : "unknown";

    public KernelLogCheck.Input? Read(CheckContext ctx)
    {
        var boot = BootId(root);
        var source = file ?? DevKmsg.DefaultPath;
        var same = saved is not null && saved.BootId == boot && saved.Source == source;
        var afterSeq = same ? saved!.Seq : -1;
        IReadOnlyList<string> lines;
        long offset = 0;
        if (file is not null)
        {
            byte[] bytes;
            try
            {
                bytes = File.ReadAllBytes(file);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                ctx.ReadError(KernelLogCheck.Name, "node", file, e.Message);
                return null;
            }
            var start = same && saved!.Offset <= bytes.Length ? saved.Offset : 0;
            // A line still being written waits for its newline.
            var end = Array.LastIndexOf(bytes, (byte)'\n');
            offset = end < start ? start : end + 1;
            lines = offset > start ? Encoding.UTF8.GetString(bytes, (int)start, (int)(offset - start)).TrimEnd('\n').Split('\n') : [];
        }
        else
        {
            if (Path.GetFullPath(root) != "/")
            {
                ctx.Skip(KernelLogCheck.Name, $"no kernel_log file configured, and sysfs_root {root} is not this node's root");
                return null;
            }
            using var kmsg = DevKmsg.TryOpen(DevKmsg.DefaultPath, atEnd: false, out var why);
            if (kmsg is null)
            {
                ctx.Skip(KernelLogCheck.Name, why);
                return null;
            }
            lines = kmsg.ReadAvailable();
        }

        // /dev/kmsg records (also in a file written from it) carry their sequence number: the ones
        // already read in this boot are dropped, with their continuation lines.
        var kept = new List<string>(lines.Count);
        var maxSeq = afterSeq;
        var dropping = false;
        foreach (var line in lines)
        {
            if (line.Length > 0 && line[0] == ' ')
            {
                if (!dropping) kept.Add(line);
                continue;
            }
            if (Record().Match(line) is { Success: true } m && long.TryParse(m.Groups["seq"].ValueSpan, NumberStyles.None, CultureInfo.InvariantCulture, out var seq))
            {
                dropping = seq <= afterSeq;
                if (dropping) continue;
                maxSeq = Math.Max(maxSeq, seq);
            }
            else
            {
                dropping = false;
            }
            kept.Add(line);
        }
        NewRecords = kept.Count(l => l.Length > 0 && l[0] != ' ');
        Next = new Position(boot, source, maxSeq, offset);
        return new KernelLogCheck.Input(source, kept);
    }

    [GeneratedRegex(@"^\d+,(?<seq>\d+),\d+,[^;]*;")]
    private static partial Regex Record();
}
