// The result files as other tools read them: exact headers, hex formatting, rows on disk as soon
// as they are written (a killed run keeps them), safe from many threads; an unwritable --out.
using Kiln.Core;
using Kiln.Core.Results;

namespace Kiln.Tests.Core;

public class WriterTests
{
    private static readonly DateTimeOffset At = new(2025, 1, 31, 12, 0, 0, 123, TimeSpan.Zero);
    private string _dir = "";

    [SetUp]
    public void SetUp() => _dir = TestEnvironment.NewTempFolder("kiln-writers");

    [TearDown]
    public void TearDown() => Directory.Delete(_dir, recursive: true);

    [Test]
    public void Metrics_csv_has_the_contract_header_then_injected()
    {
        using var table = new CsvTable<MetricRow, MetricRowMap>(Path.Combine(_dir, "metrics.csv"));
        table.Write(new MetricRow(At, "node1", "run-1", "stream", "cpu", 0, "triad_gbps", 12.5, "GB/s", Injected: false));
        table.Write(new MetricRow(At, "node1", "run-1", "memtest", "cpu", 0, "errors_total", 3, "count", Injected: true));
        Assert.That(ReadWhileOpen("metrics.csv"), Is.EqualTo(new[]
        {
            "timestamp,host,run_id,test,backend,device,metric,value,unit,injected",
            "2025-01-31T12:00:00.123Z,node1,run-1,stream,cpu,0,triad_gbps,12.5,GB/s,false",
            "2025-01-31T12:00:00.123Z,node1,run-1,memtest,cpu,0,errors_total,3,count,true",
        }));
    }

    [Test]
    public void Errors_csv_writes_offsets_and_words_in_hex_and_the_flipped_bits()
    {
        using var table = new CsvTable<ErrorRow, ErrorRowMap>(Path.Combine(_dir, "errors.csv"));
        table.Write(new ErrorRow(At, "node1", "memtest", "cpu", 0, "walking_ones", 0x1f40, 0xff, 0x200ff ^ 0x8, [3, 17]));
        table.Write(new ErrorRow(At, "node1", "gemm", "cuda", 2, "fp32", 0x40, 0x3f800000, 0x3f800001, [0], Sm: 37, SmClockMhz: 1980));
        Assert.That(ReadWhileOpen("errors.csv"), Is.EqualTo(new[]
        {
            "timestamp,host,test,backend,device,pattern,offset,expected,actual,bits,sm,sm_clock_mhz",
            "2025-01-31T12:00:00.123Z,node1,memtest,cpu,0,walking_ones,0x1f40,0x00000000000000ff,0x00000000000200f7,3;17,,",
            "2025-01-31T12:00:00.123Z,node1,gemm,cuda,2,fp32,0x40,0x000000003f800000,0x000000003f800001,0,37,1980",
        }));
    }

    [Test]
    public void Verdicts_csv_leaves_absent_values_empty()
    {
        using var table = new CsvTable<VerdictRow, VerdictRowMap>(Path.Combine(_dir, "verdicts.csv"));
        table.Write(new VerdictRow("node1", "memtest", "cpu", 0, VerdictStatus.FAIL, "errors_total", 3, 0, "count", "3 data errors, first at offset 0x8"));
        table.Write(new VerdictRow("node1", "stream", "cpu", 0, VerdictStatus.SKIP, "", null, null, "", "cancelled"));
        Assert.That(ReadWhileOpen("verdicts.csv"), Is.EqualTo(new[]
        {
            "host,test,backend,device,status,metric,value,threshold,unit,reason",
            "node1,memtest,cpu,0,FAIL,errors_total,3,0,count,\"3 data errors, first at offset 0x8\"",
            "node1,stream,cpu,0,SKIP,,,,,cancelled",
        }));
    }

    [Test]
    public void Rows_written_from_many_threads_all_arrive_whole()
    {
        using var table = new CsvTable<MetricRow, MetricRowMap>(Path.Combine(_dir, "metrics.csv"));
        Parallel.For(0, 2000, new ParallelOptions { MaxDegreeOfParallelism = 8 }, i =>
            table.Write(new MetricRow(At, "node1", "run-1", "stream", "cpu", 0, $"m{i}", i, "GB/s", false)));
        var lines = ReadWhileOpen("metrics.csv");
        Assert.That(lines, Has.Length.EqualTo(2001));
        Assert.That(lines.Skip(1).Select(l => l.Split(',').Length), Is.All.EqualTo(10));
        Assert.That(table.RowCount, Is.EqualTo(2000));
    }

    [Test]
    public void An_unwritable_out_folder_is_a_usage_error_naming_out()
    {
        var file = Path.Combine(_dir, "a-file");
        File.WriteAllText(file, "");
        var e = Assert.Throws<UsageException>(() => ResultFolder.Create(Path.Combine(file, "results")))!;
        Assert.That(e.Option, Is.EqualTo("--out"));
        Assert.That(e.Message, Does.StartWith($"--out: cannot write to {Path.Combine(file, "results")}"));
    }

    [Test]
    public void The_default_folder_is_per_host_and_utc_start_and_never_reused()
    {
        var path = ResultFolder.DefaultPath("node1", At);
        Assert.That(path, Is.EqualTo(Path.Combine("kiln-results", "node1", "20250131T120000Z")));
        var cwd = Environment.CurrentDirectory;
        try
        {
            Environment.CurrentDirectory = _dir;
            Directory.CreateDirectory(path);
            Assert.That(ResultFolder.DefaultPath("node1", At), Is.EqualTo(path + "-2"));
        }
        finally
        {
            Environment.CurrentDirectory = cwd;
        }
    }

    // Read as another process would, while the writer still holds the file.
    private string[] ReadWhileOpen(string name)
    {
        using var stream = new FileStream(Path.Combine(_dir, name), FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
        using var reader = new StreamReader(stream);
        return reader.ReadToEnd().Split('\n', StringSplitOptions.RemoveEmptyEntries);
    }
}
