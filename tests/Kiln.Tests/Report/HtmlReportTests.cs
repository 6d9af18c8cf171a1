// report.html opened the way a person opens it: in Debian's chromium, headless. The page must show
// its verdict table and every plot must have loaded (naturalWidth > 0); a page with one broken image
// must fail the same check, or the check proves nothing.
using System.Diagnostics;
using System.Text.RegularExpressions;
using Kiln.Core;
using Kiln.Core.Evaluation;
using Kiln.Core.Health;
using Kiln.Core.Profiles;
using Kiln.Cli.Dev;
using Kiln.Core.Report;
using Kiln.Core.Results;
using Kiln.Native;
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
    public void The_run_page_is_built_from_the_burn_in_memory_and_every_plot_loads()
    {
        var page = InMemoryRunPage(Path.Combine(_dir, "run"));
        Assert.That(Directory.EnumerateFiles(Path.Combine(_dir, "run"), "*.csv"), Is.Empty, "nothing was read back: there is nothing to read");

        var result = Open(page);
        Assert.That(result.VerdictRows, Is.EqualTo(3));
        Assert.That(result.Text, Does.Contain("3 data errors, first at offset 0x1f40").And.Contain("0x0000000000020020"));
        Assert.That(result.Text, Does.Contain("KLOG_XID"), "the health finding");
        Assert.That(result.Images, Is.EqualTo(2), "memtest's figure and the copy matrix");
        Assert.That(result.Broken, Is.Zero);
        FleetReportTests.AssertPng(Path.Combine(_dir, "run", "plots", "p2p_ce_gbps_cuda_matrix.png"));
    }

    /// <summary>A two-GPU burn's results as the burn holds them: a memtest that found errors, the copies between the GPUs, a health finding.</summary>
    internal static string InMemoryRunPage(string dir)
    {
        var folder = ResultFolder.Create(dir);
        var devices = Enumerable.Range(0, 2).Select(d => new DeviceInfo("cuda", "NVIDIA H100 80GB HBM3", $"GPU-{d}", $"0000:{0x18 + d:x2}:00.0", d,
            132, 1, 2048, 85_520_809_984UL, 84_000_000_000UL, 52_428_800UL, 1980, 3352, 67, 67)).ToList();
        var memtest = new TestOutcome(TestKind.Memtest, devices[0], new TestParams()) { End = TestEnd.Completed };
        memtest.Add("walking_ones_gbps", 2700, "GB/s");
        memtest.Add("errors_walking_ones", 3, "count");
        memtest.Add(new DataError("memtest", "walking_ones", 0x1f40, 0x20, 0x20020, 8, false));
        var copies = devices.Select(d =>
        {
            var o = new TestOutcome(TestKind.Copy, d, new TestParams()) { End = TestEnd.Completed };
            o.Add($"p2p_ce_gbps_{d.Index}_{1 - d.Index}", 370 + d.Index, "GB/s");
            return o;
        }).ToList();
        List<VerdictRow> verdicts =
        [
            new("n1", "memtest", "cuda", 0, VerdictStatus.FAIL, "errors_total", 3, 0, "count", "3 data errors, first at offset 0x1f40 (walking_ones, bits 17)"),
            new("n1", "copy", "cuda", 0, VerdictStatus.PASS, "p2p_ce_gbps_0_1", 370, 300, "GB/s", "ok"),
            new("n1", "copy", "cuda", 1, VerdictStatus.PASS, "p2p_ce_gbps_1_0", 371, 300, "GB/s", "ok"),
        ];
        var findings = new[] { new FindingRow("n1", new Finding("kernel_log", "gpu0", Severity.Fail, "KLOG_XID", "Xid 48", "reseat")) };
        var host = new HostInfo("n1", "Intel(R) Xeon(R) Platinum 8480+", 224, 2UL << 40, 1UL << 40, "6.1.0-18-amd64");
        var summary = new RunSummary
        {
            Host = "n1", RunId = "20250601T080000Z-1", KilnVersion = "0.1.0", NativeVersion = "0.1.0", AbiVersion = 1, Command = "burn",
            Arguments = [], StartUtc = new DateTime(2025, 6, 1, 8, 0, 0, DateTimeKind.Utc), Injected = false, Injections = [], Verdict = "FAIL",
            InventoryFingerprint = "abc", Inventory = new SummaryInventory(host, "/opt/kiln/lib/libkiln.so", [], [], devices),
        };
        List<TestOutcome> outcomes = [memtest, .. copies];
        var plots = Plots.Write(folder, outcomes, ProfileCatalog.BuiltIn("cpu-only"), "n1");
        return RunPage.Write(folder, summary, verdicts, outcomes, findings, plots);
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
        var page = InMemoryRunPage(Path.Combine(_dir, "run"));
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
