// The pipe between a burn and its device workers (`kiln worker`): one JSON object per line. The
// parent writes requests on the worker's stdin (run a test, cancel it); the worker writes events on
// its protocol stream (the stdout it was started with; its own fd 1 goes to stderr, so a library
// that prints cannot corrupt the stream): ready once its device is open, then for each test its
// metrics, data errors and progress as they are measured, and one end. Anything else on the stream
// is a protocol failure of that device, never of the parent.
using System.Text.Json;
using System.Text.Json.Serialization;
using Kiln.Native;

namespace Kiln.Core.Runs;

public static class WorkerOps
{
    public const string Run = "run", Cancel = "cancel";
}

public static class WorkerEvents
{
    public const string Ready = "ready", Fatal = "fatal", Metric = "metric", Error = "error", Progress = "progress", End = "end";
}

/// <summary>What the parent asks: Op "run" with the test's parameters, or "cancel" the running test.</summary>
public sealed record WorkerRequest(string Op, TestParams? Params = null);

/// <summary>
/// One event from a worker. E names it; the other fields are those of its kind: a metric (Test,
/// Name, Value, Unit, Injected), a data error (Test, Name = pattern, Offset, Expected, Actual,
/// WordBytes, Injected, Sm), progress (Value), end (End: a TestEnd name, Detail), ready (Detail =
/// the device's name), fatal (Detail).
/// </summary>
public sealed record WorkerEvent(string E)
{
    public string? Test { get; init; }
    public string? Name { get; init; }
    public double Value { get; init; }
    public string? Unit { get; init; }
    public bool Injected { get; init; }
    public ulong Offset { get; init; }
    public ulong Expected { get; init; }
    public ulong Actual { get; init; }
    public uint WordBytes { get; init; }
    public int Sm { get; init; } = -1;
    public string? End { get; init; }
    public string? Detail { get; init; }

    public static WorkerEvent Of(in Metric m) =>
        new(WorkerEvents.Metric) { Test = m.Test, Name = m.Name, Value = m.Value, Unit = m.Unit, Injected = m.Injected };

    public static WorkerEvent Of(in DataError e) => new(WorkerEvents.Error)
    {
        Test = e.Test, Name = e.Pattern, Offset = e.OffsetBytes, Expected = e.Expected, Actual = e.Actual,
        WordBytes = e.WordBytes, Injected = e.Injected, Sm = e.Sm,
    };

    public Metric ToMetric() => new(Test ?? "", Name ?? "", Value, Unit ?? "", Injected);

    public DataError ToDataError() => new(Test ?? "", Name ?? "", Offset, Expected, Actual, WordBytes, Injected, Sm);
}

[JsonSourceGenerationOptions(IncludeFields = true, DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(WorkerRequest))]
[JsonSerializable(typeof(WorkerEvent))]
internal sealed partial class WorkerJson : JsonSerializerContext;

public static class WorkerCodec
{
    public static string Encode(WorkerRequest request) => JsonSerializer.Serialize(request, WorkerJson.Default.WorkerRequest);

    public static string Encode(WorkerEvent e) => JsonSerializer.Serialize(e, WorkerJson.Default.WorkerEvent);

    /// <summary>The request on one line, or null with why when the line is not one.</summary>
    public static WorkerRequest? DecodeRequest(string line, out string why) => Decode(line, WorkerJson.Default.WorkerRequest, r => r.Op is WorkerOps.Run or WorkerOps.Cancel, out why);

    /// <summary>The event on one line, or null with why when the line is not one.</summary>
    public static WorkerEvent? DecodeEvent(string line, out string why) => Decode(line, WorkerJson.Default.WorkerEvent,
        e => e.E is WorkerEvents.Ready or WorkerEvents.Fatal or WorkerEvents.Metric or WorkerEvents.Error or WorkerEvents.Progress or WorkerEvents.End,
        out why);

    private static T? Decode<T>(string line, System.Text.Json.Serialization.Metadata.JsonTypeInfo<T> type, Func<T, bool> known, out string why)
        where T : class
    {
        why = "";
        try
        {
            if (JsonSerializer.Deserialize(line, type) is { } value && known(value)) return value;
            why = "not a kiln worker message";
        }
        catch (JsonException e)
        {
            why = $"not JSON ({e.Message.Split('.')[0]})";
        }
        return null;
    }
}
