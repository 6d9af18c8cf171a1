// The run's output folder OUT/ and the result files in it. It is created and proven writable before
// any test runs, so a bad --out is a usage error, not a lost burn.
using System.Globalization;

namespace Kiln.Core.Results;

public sealed class ResultFolder
{

    private ResultFolder(string path) => Path = path;

    public string Path { get; }
    public string PlotsPath => System.IO.Path.Combine(Path, "plots");

    public string File(string name) => System.IO.Path.Combine(Path, name);

    /// <summary>./kiln-results/&lt;host&gt;/&lt;utc yyyyMMddTHHmmssZ&gt;/ (with -2, -3 ... when that run folder exists).</summary>
    public static string DefaultPath(string host, DateTimeOffset startUtc)
    {
        var path = System.IO.Path.Combine("kiln-results", host,
            startUtc.UtcDateTime.ToString("yyyyMMdd'T'HHmmss'Z'", CultureInfo.InvariantCulture));
        var unique = path;
        for (var n = 2; Directory.Exists(unique); n++) unique = $"{path}-{n}";
        return unique;
    }

    /// <summary>Creates the folder (and plots/) and writes a probe file; any failure names --out.</summary>
    public static ResultFolder Create(string path)
    {
        var full = System.IO.Path.GetFullPath(path);
        try
        {
            Directory.CreateDirectory(full);
            var probe = System.IO.Path.Combine(full, ".kiln-write-probe");
            System.IO.File.WriteAllText(probe, "");
            System.IO.File.Delete(probe);
            return new ResultFolder(full);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException or NotSupportedException)
        {
            throw new UsageException(OptionNames.Out, $"cannot write to {path}: {e.Message}");
        }
    }
}

/// <summary>The CSV files a run streams into; verdicts only for commands that judge.</summary>
public sealed class ResultFiles : IDisposable
{
    public ResultFiles(ResultFolder folder, bool withVerdicts)
    {
        Folder = folder;
        Metrics = new CsvTable<MetricRow, MetricRowMap>(folder.File("metrics.csv"));
        Errors = new CsvTable<ErrorRow, ErrorRowMap>(folder.File("errors.csv"));
        Verdicts = withVerdicts ? new CsvTable<VerdictRow, VerdictRowMap>(folder.File("verdicts.csv")) : null;
    }

    public ResultFolder Folder { get; }
    public CsvTable<MetricRow, MetricRowMap> Metrics { get; }
    public CsvTable<ErrorRow, ErrorRowMap> Errors { get; }
    public CsvTable<VerdictRow, VerdictRowMap>? Verdicts { get; }

    public void Dispose()
    {
        Metrics.Dispose();
        Errors.Dispose();
        Verdicts?.Dispose();
    }
}
