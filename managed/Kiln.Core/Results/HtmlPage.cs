// One self-contained HTML page: inline CSS, tables, and PNGs embedded as data: URIs, so report.html
// can be mailed or attached to a ticket and still shows everything. No scripts, no external files.
using System.Net;
using System.Text;

namespace Kiln.Core.Results;

public sealed class HtmlPage
{
    private const string Css = """
        body { font-family: "DejaVu Sans", Arial, sans-serif; margin: 24px; color: #212121; }
        h1 { font-size: 22px; } h2 { font-size: 18px; margin-top: 28px; border-bottom: 1px solid #ccc; }
        table { border-collapse: collapse; margin: 8px 0; font-size: 13px; }
        th, td { border: 1px solid #ddd; padding: 3px 8px; text-align: left; vertical-align: top; }
        th { background: #f3f3f3; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
        .PASS { background: #e8f5e9; } .WARN { background: #fff8e1; } .FAIL { background: #ffebee; } .SKIP { color: #757575; }
        .INCOMPLETE { background: #fff8e1; }
        .verdict { font-size: 20px; font-weight: bold; padding: 6px 12px; display: inline-block; }
        figure { display: inline-block; margin: 6px; } img { max-width: 900px; border: 1px solid #eee; }
        .note { color: #616161; font-size: 13px; }
        """;

    private readonly StringBuilder _body = new();

    public HtmlPage(string title)
    {
        Title = title;
    }

    public string Title { get; }

    public HtmlPage Heading(string text, int level = 2)
    {
        _body.Append($"<h{level}>").Append(Encode(text)).Append($"</h{level}>\n");
        return this;
    }

    public HtmlPage Paragraph(string text, string? cssClass = null)
    {
        _body.Append(cssClass is null ? "<p>" : $"<p class=\"{cssClass}\">").Append(Encode(text)).Append("</p>\n");
        return this;
    }

    /// <summary>The big PASS/FAIL box.</summary>
    public HtmlPage Verdict(string verdict, string detail)
    {
        _body.Append($"<p><span class=\"verdict {Encode(verdict)}\" id=\"node-verdict\">{Encode(verdict)}</span> {Encode(detail)}</p>\n");
        return this;
    }

    /// <summary>A table; a cell whose text is a verdict status gets that status's colour, numbers align right.</summary>
    public HtmlPage Table(string id, IReadOnlyList<string> header, IEnumerable<IReadOnlyList<string>> rows, int? limit = null)
    {
        _body.Append($"<table id=\"{Encode(id)}\"><thead><tr>");
        foreach (var h in header) _body.Append("<th>").Append(Encode(h)).Append("</th>");
        _body.Append("</tr></thead><tbody>\n");
        var shown = 0;
        var total = 0;
        foreach (var row in rows)
        {
            total++;
            if (limit is { } max && shown >= max) continue;
            shown++;
            var status = row.FirstOrDefault(c => Enum.TryParse<VerdictStatus>(c, out _) || c is "INCOMPLETE");
            _body.Append(status != null ? $"<tr class=\"{status}\">" : "<tr>");
            foreach (var cell in row)
                _body.Append(IsNumber(cell) ? "<td class=\"num\">" : "<td>").Append(Encode(cell)).Append("</td>");
            _body.Append("</tr>\n");
        }
        _body.Append("</tbody></table>\n");
        if (total > shown) Paragraph($"{total - shown} more rows in the CSV files beside this page.", "note");
        if (total == 0) Paragraph("(none)", "note");
        return this;
    }

    /// <summary>Embeds a PNG file as a data: URI with its name as the caption.</summary>
    public HtmlPage Image(string pngPath, string caption)
    {
        var data = Convert.ToBase64String(File.ReadAllBytes(pngPath));
        _body.Append("<figure><img alt=\"").Append(Encode(caption)).Append("\" src=\"data:image/png;base64,").Append(data)
            .Append("\"><figcaption class=\"note\">").Append(Encode(caption)).Append("</figcaption></figure>\n");
        return this;
    }

    public string ToHtml() =>
        $"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{Encode(Title)}</title>\n<style>{Css}</style></head>\n" +
        $"<body>\n<h1>{Encode(Title)}</h1>\n{_body}</body></html>\n";

    /// <summary>Writes through a temporary file and a rename.</summary>
    public void Write(string path)
    {
        Results.AtomicFile.WriteAllText(path, ToHtml());
    }

    private static string Encode(string s) => WebUtility.HtmlEncode(s);

    private static bool IsNumber(string s) =>
        s.Length > 0 && double.TryParse(s, System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out _);
}
