// A file replaced whole: written to PATH.tmp, then renamed over PATH, so a reader never sees half a
// file. On any failure (a full disk) the temporary file is removed and PATH keeps what it had.
namespace Kiln.Core.Results;

public static class AtomicFile
{
    /// <summary>write fills the temporary file at the path it is given.</summary>
    public static void Write(string path, Action<string> write)
    {
        var temp = path + ".tmp";
        try
        {
            write(temp);
            File.Move(temp, path, overwrite: true);
        }
        catch
        {
            try { File.Delete(temp); }
            catch (IOException) { }
            throw;
        }
    }

    public static void WriteAllText(string path, string text) =>
        Write(path, temp => File.WriteAllText(temp, text, new System.Text.UTF8Encoding(false)));
}
