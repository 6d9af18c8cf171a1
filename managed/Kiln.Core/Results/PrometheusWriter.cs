// kiln.prom: the Prometheus text exposition format (HELP and TYPE per family, one sample per line),
// written through a temporary file and a rename so node_exporter's textfile collector never reads
// half a file. Commands add their families; values that are unknown are simply not written.
using System.Globalization;
using System.Text;

namespace Kiln.Core.Results;

public sealed class PrometheusWriter
{
    private sealed record Family(string Name, string Help, string Type, List<string> Samples);

    private readonly List<Family> _families = [];

    /// <summary>Declares a family (once; later calls with the same name add to it) and returns its name.</summary>
    public string Gauge(string name, string help) => Declare(name, help, "gauge");

    /// <summary>One sample of a declared family; NaN and infinities are skipped (they mean "unknown" here).</summary>
    public void Add(string family, double value, params (string Label, string Value)[] labels)
    {
        if (!double.IsFinite(value)) return;
        var f = _families.FirstOrDefault(x => x.Name == family) ?? throw new InvalidOperationException($"{family} was not declared");
        var text = new StringBuilder(family);
        if (labels.Length > 0)
            text.Append('{').AppendJoin(',', labels.Select(l => $"{l.Label}=\"{Escape(l.Value)}\"")).Append('}');
        text.Append(' ').Append(value.ToString("R", CultureInfo.InvariantCulture));
        f.Samples.Add(text.ToString());
    }

    public string ToText()
    {
        var text = new StringBuilder();
        foreach (var f in _families.Where(f => f.Samples.Count > 0))
        {
            text.Append("# HELP ").Append(f.Name).Append(' ').Append(f.Help.Replace("\\", "\\\\").Replace("\n", "\\n")).Append('\n');
            text.Append("# TYPE ").Append(f.Name).Append(' ').Append(f.Type).Append('\n');
            foreach (var s in f.Samples) text.Append(s).Append('\n');
        }
        return text.ToString();
    }

    public void Write(string path)
    {
        AtomicFile.WriteAllText(path, ToText());
    }

    private string Declare(string name, string help, string type)
    {
        if (_families.All(f => f.Name != name)) _families.Add(new Family(name, help, type, []));
        return name;
    }

    // Label values escape backslash, double quote and newline (the exposition format's rule).
    private static string Escape(string value) => value.Replace("\\", "\\\\").Replace("\"", "\\\"").Replace("\n", "\\n");
}
