// verdicts.csv written whole, through a temporary file and a rename: a soak rewrites it after every
// pass (each (test, device) keeps its worst pass), so a reader never sees half a file.
namespace Kiln.Core.Results;

public static class VerdictFile
{
    public static void Write(string path, IEnumerable<VerdictRow> rows)
    {
        var list = rows.ToList();
        AtomicFile.Write(path, temp =>
        {
            using var table = new CsvTable<VerdictRow, VerdictRowMap>(temp);
            table.WriteAll(list);  // one flush: the rename publishes it
        });
    }
}
