// junit.xml for acceptance pipelines: one testsuite per run, one testcase per verdict row
// (classname kiln.<host>.<test>, name <backend><device>); FAIL is a <failure>, SKIP a <skipped>,
// WARN passes with the reason in <system-out> so a CI dashboard shows it without failing the build.
using System.Globalization;
using System.Xml.Linq;

namespace Kiln.Core.Results;

public static class JUnitWriter
{
    public static void Write(string path, RunSummary summary, IReadOnlyList<VerdictRow> verdicts)
    {
        var seconds = summary.EndUtc is { } end ? (end - summary.StartUtc).TotalSeconds : 0;
        var suite = new XElement("testsuite",
            new XAttribute("name", $"kiln {summary.Command} {summary.Host}"),
            new XAttribute("tests", verdicts.Count),
            new XAttribute("failures", verdicts.Count(v => v.Status == VerdictStatus.FAIL)),
            new XAttribute("errors", 0),
            new XAttribute("skipped", verdicts.Count(v => v.Status == VerdictStatus.SKIP)),
            new XAttribute("timestamp", summary.StartUtc.ToString("yyyy-MM-dd'T'HH:mm:ss", CultureInfo.InvariantCulture)),
            new XAttribute("time", seconds.ToString("0.###", CultureInfo.InvariantCulture)),
            new XAttribute("hostname", summary.Host),
            new XElement("properties",
                Property("run_id", summary.RunId), Property("plan", summary.Plan ?? ""), Property("profile", summary.Profile ?? ""),
                Property("verdict", summary.Verdict), Property("kiln_version", summary.KilnVersion),
                Property("inventory_fingerprint", summary.InventoryFingerprint), Property("injected", summary.Injected ? "true" : "false")),
            verdicts.Select(Case));
        var doc = new XDocument(new XDeclaration("1.0", "utf-8", null), new XElement("testsuites", new XAttribute("name", "kiln"), suite));
        AtomicFile.Write(path, temp =>
        {
            using var writer = System.Xml.XmlWriter.Create(temp, new System.Xml.XmlWriterSettings
                { Encoding = new System.Text.UTF8Encoding(false), Indent = true });
            doc.Save(writer);
        });
    }

    private static XElement Case(VerdictRow v)
    {
        var element = new XElement("testcase",
            new XAttribute("classname", $"kiln.{v.Host}.{v.Test}"),
            new XAttribute("name", v.Device < 0 ? v.Backend : $"{v.Backend}{v.Device}"));
        var detail = v.Value is { } value
            ? $"{v.Metric} = {Number(value)} {v.Unit}; threshold {(v.Threshold is { } t ? Number(t) : "none")} {v.Unit}\n{v.Reason}"
            : v.Reason;
        switch (v.Status)
        {
            case VerdictStatus.FAIL:
                element.Add(new XElement("failure", new XAttribute("message", v.Reason), new XAttribute("type", "FAIL"), detail));
                break;
            case VerdictStatus.SKIP:
                element.Add(new XElement("skipped", new XAttribute("message", v.Reason)));
                break;
            default:
                element.Add(new XElement("system-out", $"{v.Status}: {detail}"));
                break;
        }
        return element;
    }

    private static XElement Property(string name, string value) =>
        new("property", new XAttribute("name", name), new XAttribute("value", value));

    private static string Number(double value) => value.ToString("R", CultureInfo.InvariantCulture);
}
