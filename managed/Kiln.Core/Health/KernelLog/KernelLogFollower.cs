// New kernel-log lines from a point on (kiln burn: from the run's start): /dev/kmsg opened at its end,
// or a --kmsg file read from its size at the start (lines appended later are new). Polled, never
// blocking; a file that shrinks (rotated) is read again from its start.
using System.Text;

namespace Kiln.Core.Health.KernelLog;

public sealed class KernelLogFollower : IDisposable
{
    private readonly DevKmsg? _kmsg;
    private readonly string? _file;
    private long _offset;
    private string _partial = "";

    private KernelLogFollower(DevKmsg? kmsg, string? file, long offset, string source)
    {
        (_kmsg, _file, _offset, Source) = (kmsg, file, offset, source);
    }

    /// <summary>Where the lines come from, for messages.</summary>
    public string Source { get; }

    /// <summary>Follows <paramref name="file"/>, or /dev/kmsg when null; null (and why) when neither can be read.</summary>
    public static KernelLogFollower? Start(string? file, out string why)
    {
        why = "";
        if (file is not null)
        {
            try
            {
                return new KernelLogFollower(null, file, new FileInfo(file).Length, file);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                why = $"cannot read {file}: {e.Message}";
                return null;
            }
        }
        var kmsg = DevKmsg.TryOpen(DevKmsg.DefaultPath, atEnd: true, out why);
        return kmsg is null ? null : new KernelLogFollower(kmsg, null, 0, DevKmsg.DefaultPath);
    }

    /// <summary>The complete lines that arrived since the last call.</summary>
    public IReadOnlyList<string> ReadNew()
    {
        if (_kmsg is not null) return _kmsg.ReadAvailable();
        try
        {
            using var stream = new FileStream(_file!, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
            if (stream.Length < _offset) (_offset, _partial) = (0, "");
            if (stream.Length == _offset) return [];
            stream.Seek(_offset, SeekOrigin.Begin);
            var bytes = new byte[stream.Length - _offset];
            stream.ReadExactly(bytes);
            _offset += bytes.Length;
            var text = _partial + Encoding.UTF8.GetString(bytes);
            var end = text.LastIndexOf('\n');
            // A line still being written waits for its newline.
            _partial = end < 0 ? text : text[(end + 1)..];
            return end < 0 ? [] : text[..end].Split('\n');
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return [];
        }
    }

    public void Dispose() => _kmsg?.Dispose();
}
