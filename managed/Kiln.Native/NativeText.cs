// Decoding of the C side's strings: fixed char buffers inside structs and static const char*.
using System.Runtime.InteropServices;
using System.Text;

namespace Kiln.Native;

internal static unsafe class NativeText
{
    /// <summary>The NUL-terminated UTF-8 text in a buffer of <paramref name="capacity"/> bytes; never reads past it.</summary>
    public static string FromBuffer(byte* buffer, int capacity)
    {
        var bytes = new ReadOnlySpan<byte>(buffer, capacity);
        int length = bytes.IndexOf((byte)0);
        return Encoding.UTF8.GetString(length < 0 ? bytes : bytes[..length]);
    }

    /// <summary>A C string owned by the library (static storage); NULL reads as "".</summary>
    public static string FromStatic(byte* text) => Marshal.PtrToStringUTF8((nint)text) ?? "";
}
