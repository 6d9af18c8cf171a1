// The two ways a native call fails: the call itself (KilnException, text from kiln_last_error) and
// finding libkiln.so at all (KilnLoadException, every candidate path and why it was rejected).
using System.Runtime.CompilerServices;
using Kiln.Native.Interop;

namespace Kiln.Native;

public class KilnException : Exception
{
    public KilnException(KilnStatus status, string message) : base(message) => Status = status;

    public KilnStatus Status { get; }

    /// <summary>
    /// Throws for any status but KILN_OK. Wrap the native call itself (<c>Check(KilnNative.f(...))</c>):
    /// the error text is thread-local and the next call into the library on this thread replaces it.
    /// </summary>
    internal static void Check(kiln_status status, [CallerArgumentExpression(nameof(status))] string call = "")
    {
        if (status != kiln_status.KILN_OK) throw FromLastError(status, call);
    }

    /// <summary>The exception for a failed call, with the text the library kept for this thread.</summary>
    internal static KilnException FromLastError(kiln_status status, string call)
    {
        string text = LastErrorText();
        return new KilnException((KilnStatus)status, text.Length > 0 ? text : $"{FunctionName(call)} returned {status}");
    }

    internal static unsafe string LastErrorText()
    {
        const int StackBytes = 512;
        byte* buffer = stackalloc byte[StackBytes];
        nuint needed = KilnNative.kiln_last_error(buffer, StackBytes);
        if (needed <= StackBytes) return NativeText.FromBuffer(buffer, StackBytes);
        var whole = new byte[checked((int)needed)];
        fixed (byte* p = whole)
        {
            KilnNative.kiln_last_error(p, needed);
            return NativeText.FromBuffer(p, whole.Length);
        }
    }

    // "KilnNative.kiln_run(_handle, ...)" -> "kiln_run", for the rare failure without error text.
    private static string FunctionName(string call)
    {
        int open = call.IndexOf('(');
        string callee = open < 0 ? call : call[..open];
        return callee[(callee.LastIndexOf('.') + 1)..];
    }
}

public sealed class KilnLoadException : Exception
{
    public KilnLoadException(IReadOnlyList<string> tried)
        : base("libkiln.so could not be loaded; set KILN_LIB_DIR to the folder that holds it. Tried:\n  "
               + string.Join("\n  ", tried))
        => Tried = tried;

    /// <summary>One "path: reason" line per candidate, in the order they were tried.</summary>
    public IReadOnlyList<string> Tried { get; }
}
