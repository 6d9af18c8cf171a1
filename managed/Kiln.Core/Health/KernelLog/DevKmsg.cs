// /dev/kmsg without blocking: the kernel hands out one record per read() and blocks at the end of the
// ring unless the file is opened O_NONBLOCK, which .NET's FileStream cannot do; hence libc directly.
// Used to read the whole ring (kiln check) and to follow new records from a point (kiln burn).
using System.Runtime.InteropServices;
using System.Text;

namespace Kiln.Core.Health.KernelLog;

public sealed partial class DevKmsg : IDisposable
{
    public const string DefaultPath = "/dev/kmsg";

    private const int ORdOnly = 0, ONonBlock = 0x800;  // same value on x86_64 and aarch64
    private const int SeekEnd = 2;
    private const int EIntr = 4, EPipe = 32;
    private const int RecordBytes = 16 * 1024;  // a record is at most ~8 KiB; a smaller buffer gets EINVAL

    private readonly int _fd;

    private DevKmsg(int fd) => _fd = fd;

    /// <summary>Opens the ring at its oldest record (atEnd false) or at its end, for new records only.</summary>
    public static DevKmsg? TryOpen(string path, bool atEnd, out string why)
    {
        why = "";
        var fd = Open(path, ORdOnly | ONonBlock);
        if (fd < 0)
        {
            why = $"cannot open {path}: {Marshal.GetLastPInvokeErrorMessage()}";
            return null;
        }
        if (atEnd) LSeek(fd, 0, SeekEnd);
        return new DevKmsg(fd);
    }

    /// <summary>Every record available now (each "pri,seq,usec,flags;message" plus its continuation lines).</summary>
    public unsafe List<string> ReadAvailable()
    {
        var lines = new List<string>();
        var buffer = new byte[RecordBytes];
        fixed (byte* p = buffer)
        {
            while (true)
            {
                var n = Read(_fd, p, RecordBytes);
                if (n > 0)
                {
                    lines.AddRange(Encoding.UTF8.GetString(buffer, 0, (int)n).TrimEnd('\n').Split('\n'));
                    continue;
                }
                if (n == 0) break;
                var errno = Marshal.GetLastPInvokeError();
                if (errno is EPipe or EIntr) continue;  // EPIPE: records were overwritten under us; the next read goes on
                break;  // EAGAIN: nothing more now; anything else: stop with what we have
            }
        }
        return lines;
    }

    public void Dispose() => Close(_fd);

    [LibraryImport("libc.so.6", EntryPoint = "open", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    private static partial int Open(string path, int flags);

    [LibraryImport("libc.so.6", EntryPoint = "read", SetLastError = true)]
    private static unsafe partial nint Read(int fd, byte* buffer, nint count);

    [LibraryImport("libc.so.6", EntryPoint = "lseek", SetLastError = true)]
    private static partial long LSeek(int fd, long offset, int whence);

    [LibraryImport("libc.so.6", EntryPoint = "close")]
    private static partial int Close(int fd);
}
