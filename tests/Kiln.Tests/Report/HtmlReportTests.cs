// report.html opened the way a person opens it: in Debian's chromium, headless. The page must show
// its verdict table and every plot must have loaded (naturalWidth > 0); a page with one broken image
// must fail the same check, or the check proves nothing.
using System.Diagnostics;
using System.Text.RegularExpressions;
using Kiln.Core.Report;
using Kiln.Tests.Core;

namespace Kiln.Tests.Report;

[NonParallelizable]  // a browser takes both cores for a moment
public partial class HtmlReportTests
{
    private const string Chromium = "/usr/bin/chromium";
    private string _dir = "";

    [SetUp]
    public void SetUp() => _dir = TestEnvironment.NewTempFolder("kiln-html");

    [TearDown]
    public void TearDown() => Directory.Delete(_dir, recursive: true);

    [Test]
    public void The_run_page_shows_its_verdicts_and_every_plot_loads()
    {
        var fleet = Path.Combine(_dir, "fleet");
        SyntheticFleet.Write(new SyntheticFleetSpec { Nodes = 8, FailNodes = [0] }, fleet);
        var node = Path.Combine(fleet, "node0000");
        var page = RunReport.Write(node);

        var result = Open(page);
        Assert.That(result.VerdictRows, Is.EqualTo(48), "6 tests x 8 GPUs");
        Assert.That(result.Text, Does.Contain("3 data errors, first at offset 0x1f40"));
        Assert.That(result.Images, Is.GreaterThanOrEqualTo(1), "the copy matrix at least");
        Assert.That(result.Broken, Is.Zero);
    }

    [Test]
    public void The_fleet_page_shows_its_tables_and_every_plot_loads()
    {
        var fleet = Path.Combine(_dir, "fleet");
        SyntheticFleet.Write(new SyntheticFleetSpec { Nodes = 12 }.WithDefaultFaults(), fleet);
        var outDir = Path.Combine(_dir, "report");
        FleetOutput.Write(FleetReport.Build([fleet], new FleetOptions()), outDir);

        var result = Open(Path.Combine(outDir, "report.html"));
        Assert.That(result.Text, Does.Contain("node0007"));
        Assert.That(result.VerdictRows, Is.EqualTo(1), "the one FAIL verdict of the fleet");
        Assert.That(result.Images, Is.EqualTo(25), "24 histograms and the copy matrix");
        Assert.That(result.Broken, Is.Zero);
    }

    [Test]
    public void A_broken_image_fails_the_check()
    {
        var fleet = Path.Combine(_dir, "fleet");
        SyntheticFleet.Write(new SyntheticFleetSpec { Nodes = 2 }, fleet);
        var page = RunReport.Write(Path.Combine(fleet, "node0000"));
        var html = File.ReadAllText(page);
        var at = html.IndexOf("base64,", StringComparison.Ordinal) + "base64,".Length;
        File.WriteAllText(page, html[..at] + "AAAAAAAAAAAAAAAA" + html[(at + 16)..]);

        var result = Open(page);
        Assert.That(result.Broken, Is.EqualTo(1), "the corrupted PNG must count as broken");
    }

    private sealed record PageCheck(int VerdictRows, int Images, int Broken, string Text);

    /// <summary>
    /// Loads a copy of the page in headless chromium with a probe script that, after load, counts the
    /// verdict table's rows and the images that did not decode, and dumps the DOM.
    /// </summary>
    private PageCheck Open(string page)
    {
        if (!File.Exists(Chromium))
            TestEnvironment.Missing($"{Chromium} is not installed (scripts/bootstrap.sh installs it)");
        const string probe = """
            <script>
            window.addEventListener('load', () => {
              const images = [...document.images];
              const broken = images.filter(i => !(i.complete && i.naturalWidth > 0)).length;
              const rows = document.querySelectorAll('table#verdicts tbody tr').length;
              document.body.setAttribute('data-probe', `rows=${rows} images=${images.length} broken=${broken}`);
            });
            </script>
            """;
        var probed = Path.Combine(_dir, $"probed-{Guid.NewGuid():N}.html");
        File.WriteAllText(probed, File.ReadAllText(page).Replace("</body>", probe + "</body>"));
        var profile = Path.Combine(_dir, $"chromium-{Guid.NewGuid():N}");
        var info = new ProcessStartInfo(Chromium)
        {
            RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false,
            ArgumentList =
            {
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", $"--user-data-dir={profile}", "--virtual-time-budget=5000",
                "--dump-dom", new Uri(probed).AbsoluteUri,
            },
        };
        using var chromium = Process.Start(info)!;
        var stderr = chromium.StandardError.ReadToEndAsync();
        var dom = chromium.StandardOutput.ReadToEnd();
        if (!chromium.WaitForExit(TimeSpan.FromSeconds(60)))
        {
            chromium.Kill(entireProcessTree: true);
            Assert.Fail("chromium did not finish within 60 s");
        }
        var m = Probe().Match(dom);
        Assert.That(m.Success, Is.True, $"the probe did not run; chromium said: {stderr.Result}");
        return new PageCheck(int.Parse(m.Groups[1].Value), int.Parse(m.Groups[2].Value), int.Parse(m.Groups[3].Value), dom);
    }

    [GeneratedRegex("data-probe=\"rows=(\\d+) images=(\\d+) broken=(\\d+)\"")]
    private static partial Regex Probe();
}
