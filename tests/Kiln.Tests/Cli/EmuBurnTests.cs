// The GPU path on every CI run: kiln burn --plan quick on two emulated devices (libkiln-emu.so, the
// one GPU source compiled for the host) passes a healthy node, and each fault class planted below
// the kernels (KILN_EMU_FAULTS, which the burn is not told about) fails it, naming the device and
// the test. docs/METRICS.md's fault x test table points here.
using Kiln.Tests.Core;

namespace Kiln.Tests.Cli;

[NonParallelizable]  // each burn takes both cores of a CI machine
public class EmuBurnTests
{
    private static readonly string[] Tests = ["stream", "memtest", "gemm", "power", "copy", "launch"];
    private string _out = "";

    [SetUp]
    public void SetUp() => _out = Path.Combine(TestEnvironment.NewTempFolder("kiln-emu"), "out");

    [TearDown]
    public void TearDown() => Directory.Delete(Path.GetDirectoryName(_out)!, recursive: true);

    private CliResult Burn(string? faults, string plan = "quick") =>
        KilnCli.RunWith(new Dictionary<string, string?> { ["KILN_EMU_DEVICES"] = "2", ["KILN_EMU_FAULTS"] = faults },
            TimeSpan.FromMinutes(4), "burn", "--plan", plan, "--backend", "emu", "--profile", "emu", "--out", _out);

    private const string GemmOnly = "name: gemm-only\ntests:\n  - test: gemm\n    duration: 2s\n";
    private const string CopyOnly = "name: copy-only\ntests:\n  - test: copy\n    iterations: 3\n";

    // A plan file beside the results, for a test that runs one or two tests of quick.
    private string Plan(string yaml)
    {
        var path = Path.Combine(Path.GetDirectoryName(_out)!, "plan.yaml");
        File.WriteAllText(path, yaml);
        return path;
    }

    private List<Dictionary<string, string>> Verdicts() => CsvFile.Read(Path.Combine(_out, "verdicts.csv")).Rows;

    [Test]
    public void A_healthy_emulated_node_passes_every_test_on_both_devices()
    {
        var run = Burn(null);
        Assert.That(run.ExitCode, Is.EqualTo(0), run.ToString());
        var rows = Verdicts().Where(v => v["backend"] == "emu" && Tests.Contains(v["test"])).ToList();
        foreach (var device in new[] { "0", "1" })
            foreach (var test in Tests)
                Assert.That(rows.Single(v => v["test"] == test && v["device"] == device)["status"], Is.EqualTo("PASS"), $"{test} emu{device}\n{run}");
        var metrics = CsvFile.Read(Path.Combine(_out, "metrics.csv")).Rows;
        // Both directions of the peer matrix were measured and judged; the board's power came from telemetry.
        Assert.That(metrics.Any(m => m["metric"] == "p2p_ce_gbps_0_1" && m["device"] == "0"), Is.True);
        Assert.That(metrics.Any(m => m["metric"] == "p2p_ce_gbps_1_0" && m["device"] == "1"), Is.True);
        Assert.That(rows.Single(v => v["test"] == "copy" && v["device"] == "0")["reason"], Does.Contain("p2p_ce_gbps_0_1"));
        Assert.That(rows.Single(v => v["test"] == "power" && v["device"] == "1")["metric"], Is.EqualTo("power_w_mean"));
        Assert.That(File.Exists(Path.Combine(_out, "plots", "p2p_ce_gbps_emu_matrix.png")), Is.True, "the P2P matrix is drawn from the measured pairs");
    }

    // fault, the device it is on, the test that must FAIL there, what its reason starts with
    private static IEnumerable<TestCaseData> Faults()
    {
        yield return new TestCaseData("stuck:dev=1,addr=0x3000000,bit=3,value=1", "1", "memtest", "data errors, first at offset").SetName("A stuck bit fails memtest on its device");
        yield return new TestCaseData("drop:dev=0,block=5,addr=0x100000,bytes=65536", "0", "memtest", "data errors").SetName("Dropped stores fail memtest on their device");
        yield return new TestCaseData("slow:dev=0,sm=2,factor=10", "0", "stream", "").SetName("A slow SM fails stream on its device");
        yield return new TestCaseData("fma:dev=1,sm=1", "1", "gemm", "data errors").SetName("A wrong FMA unit fails gemm on its device");
        yield return new TestCaseData("mma:dev=0,sm=0", "0", "gemm", "data errors").SetName("A wrong matrix unit fails gemm on its device");
        // SM 3 is outside gemm's grid at n = 256; the burner fills every SM, and its closing step sees it.
        yield return new TestCaseData("mma:dev=1,sm=3", "1", "power", "data errors").SetName("A wrong matrix unit fails the power burner's closing check on its device");
        yield return new TestCaseData("sticky:dev=1,launch=40", "1", "memtest", "could not run:").SetName("A sticky launch failure fails the device");
        yield return new TestCaseData("powerbrake:dev=0", "0", "power", "power_w_mean").SetName("A power brake fails the power test on its device");
        yield return new TestCaseData("ecc:dev=1,uncorrected=3", "1", "telemetry", "3 new uncorrectable ECC errors").SetName("Uncorrectable ECC errors during the burn fail telemetry");
        yield return new TestCaseData("ecc:dev=0,corrected_per_s=20", "0", "telemetry", "new correctable ECC errors during the run, more than the policy's 100")
            .SetName("Correctable ECC growth during the burn fails telemetry (a stuck bit that HBM corrects)");
    }

    [TestCaseSource(nameof(Faults))]
    public void A_planted_fault_fails_the_node_naming_the_device_and_the_test(string fault, string device, string test, string reason)
    {
        var run = Burn(fault);
        Assert.That(run.ExitCode, Is.EqualTo(1), run.ToString());
        var rows = Verdicts();
        var row = rows.Single(v => v["test"] == test && v["backend"] == "emu" && v["device"] == device);
        Assert.That(row["status"], Is.EqualTo("FAIL"), run.ToString());
        Assert.That(row["reason"], Does.Contain(reason));
        // The other device is untouched by a fault planted on this one.
        var other = device == "0" ? "1" : "0";
        Assert.That(rows.Where(v => v["backend"] == "emu" && v["device"] == other && Tests.Contains(v["test"])).Select(v => v["status"]),
            Is.All.EqualTo("PASS"), run.ToString());
    }

    [Test]
    public void A_transient_flip_between_a_write_and_its_verify_fails_memtest_at_its_address()
    {
        // A plan of memtest alone with walking_ones (one phase), so the device's launches are known:
        // launch 1 writes the pattern, launch 2 verifies it; the bit flips between the two.
        var plan = Plan("name: memtest-only\ntests:\n  - test: memtest\n    size: 64MiB\n    patterns: [walking_ones]\n");
        var run = Burn("flip:dev=1,addr=0x1000000,bit=5,launch=1", plan);
        Assert.That(run.ExitCode, Is.EqualTo(1), run.ToString());
        var row = Verdicts().Single(v => v["test"] == "memtest" && v["device"] == "1");
        Assert.That(row["reason"], Does.StartWith("1 data error, first at offset 0x").And.Contain("bits 5"), run.ToString());
        Assert.That(Verdicts().Single(v => v["test"] == "memtest" && v["device"] == "0")["status"], Is.EqualTo("PASS"));
        var error = CsvFile.Read(Path.Combine(_out, "errors.csv")).Rows.Single();
        // The region starts where the allocator put it, after the device's error log: the same place every run.
        Assert.That(Convert.ToUInt64(error["offset"], 16) % 8, Is.EqualTo(0));
        Assert.That(error["device"], Is.EqualTo("1"));
    }

    [Test]
    public void Dropped_stores_in_a_later_product_fail_gemm_because_its_output_is_poisoned_first()
    {
        // fp64 at n = 256 on emu: launches 1-4 fill A, random A, B and random B; 5 is the first
        // (exact) product, 6 its verify, 7 the random product, 8 its digest, 9 the second exact
        // product. Block 0 of launch 9 stores nothing into C: without the poison, C kept the first
        // product's correct values and this passed.
        var plan = Plan(GemmOnly);
        var run = Burn("drop:dev=1,block=0,addr=0x100000,bytes=0x100000,from=9,to=9", plan);
        Assert.That(run.ExitCode, Is.EqualTo(1), run.ToString());
        var row = Verdicts().Single(v => v["test"] == "gemm" && v["device"] == "1");
        Assert.That(row["reason"], Does.StartWith("8192 data errors, first at offset 0x0 (fp64"), "one 128 x 64 block tile");
        Assert.That(Verdicts().Single(v => v["test"] == "gemm" && v["device"] == "0")["status"], Is.EqualTo("PASS"));
    }

    // Faults that passed before the detector changes: a plan of one test, the fault on emu1, the
    // pattern its first error must carry. Launch and copy numbers are the device's own (1-based):
    // stream's launch 1 fills, then each iteration k runs copy, scale, add, triad, write, read as
    // launches 2 + 6k ... 7 + 6k; copy's counted copies are h2d reps 1-3, d2h 4-6, then bidir's
    // h2d and d2h of each rep (7 and 8 for the first).
    private static IEnumerable<TestCaseData> LostStores()
    {
        const string stream = "name: stream-only\ntests:\n  - test: stream\n    size: 16MiB\n    iterations: 60\n";
        const string copy = CopyOnly;
        // Array b is [16, 32) MiB. Before: the scale store lost at iteration 40 left b one ulp off,
        // and the next add rounded it away (46 of 80 such iterations were invisible).
        yield return new TestCaseData(stream, "drop:dev=1,block=0,addr=0x1000000,bytes=65536,from=243,to=243", "stream_")
            .SetName("A scale store lost mid-run fails stream (the scalar alternates, nothing rounds it away)");
        // Array c is [32, 48) MiB. Before: the write op stored the value c already held.
        yield return new TestCaseData(stream, "drop:dev=1,block=0,addr=0x2000000,bytes=65536,from=246,to=246", "stream_read")
            .SetName("A write-op store lost mid-run fails stream at the read op that follows it");
        // Before: rep 3 rewrote the whole destination, and only rep 3 was verified.
        yield return new TestCaseData(copy, "copyloss:dev=1,from=2,to=2", "h2d")
            .SetName("A host-to-device copy that leaves its end unwritten in one repetition fails copy");
        // Before: bidir's device-to-host copy went into a buffer already holding the expected bytes.
        yield return new TestCaseData(copy, "copyloss:dev=1,from=8,to=8", "bidir_d2h")
            .SetName("A device-to-host copy under load that leaves its end unwritten fails copy");
    }

    [TestCaseSource(nameof(LostStores))]
    public void A_lost_store_that_stale_data_used_to_hide_fails_its_test(string planText, string fault, string pattern)
    {
        var plan = Plan(planText);
        var run = Burn(fault, plan);
        Assert.That(run.ExitCode, Is.EqualTo(1), run.ToString());
        var test = planText.Contains("test: stream") ? "stream" : "copy";
        Assert.That(Verdicts().Single(v => v["test"] == test && v["device"] == "1")["status"], Is.EqualTo("FAIL"), run.ToString());
        Assert.That(Verdicts().Single(v => v["test"] == test && v["device"] == "0")["status"], Is.EqualTo("PASS"), run.ToString());
        var errors = CsvFile.Read(Path.Combine(_out, "errors.csv")).Rows;
        Assert.That(errors.Select(e => e["device"]), Is.All.EqualTo("1"));
        Assert.That(errors[0]["pattern"], Does.StartWith(pattern), run.ToString());
    }

    [Test]
    public void Copy_verifies_every_repetition_and_counts_the_bytes()
    {
        var plan = Plan(CopyOnly);
        var run = Burn(null, plan);
        Assert.That(run.ExitCode, Is.EqualTo(0), run.ToString());
        var metrics = CsvFile.Read(Path.Combine(_out, "metrics.csv")).Rows.Where(m => m["device"] == "0").ToList();
        double Last(string name) => double.Parse(metrics.Last(m => m["metric"] == name)["value"], System.Globalization.CultureInfo.InvariantCulture);
        // 3 reps of h2d, d2h, bidir (both ends), d2d, p2p_ce and p2p_sm to emu1.
        Assert.That(Last("bytes_verified"), Is.EqualTo(Last("buffer_bytes") * 3 * 7));
    }

    [Test]
    public void A_wrong_FMA_unit_is_named_by_its_SM_in_errors_csv_lowest_address_first()
    {
        var plan = Plan(GemmOnly);
        var run = Burn("fma:dev=1,sm=1", plan);
        Assert.That(run.ExitCode, Is.EqualTo(1), run.ToString());
        // emu1's own products were wrong: it does not vote, so healthy emu0 is not made suspect by it.
        Assert.That(Verdicts().Where(v => v["test"] == "gemm_consensus"), Is.Empty, run.ToString());
        var errors = CsvFile.Read(Path.Combine(_out, "errors.csv")).Rows;
        Assert.That(errors, Is.Not.Empty);
        Assert.That(errors.Select(e => e["device"]), Is.All.EqualTo("1"));
        // The SM that computed each wrong element, not the one whose verify found it.
        Assert.That(errors.Select(e => e["sm"]), Is.All.EqualTo("1"), run.ToString());
        Assert.That(errors.Select(e => e["sm_clock_mhz"]), Is.All.Not.Empty, "each error cites the device's sampled SM clock");
        // Within one verify pass, lowest offset first: the verdict's "first error" is the same on every backend.
        var fp64 = errors.Where(e => e["pattern"] == "fp64").Select(e => Convert.ToUInt64(e["offset"], 16)).ToList();
        Assert.That(fp64, Is.Not.Empty);
        Assert.That(fp64[0], Is.EqualTo(fp64.Min()));
    }

    [Test]
    public void A_core_wrong_only_for_full_mantissa_inputs_is_named_by_the_other_devices()
    {
        // The FMA unit of SM 0 on emu2 misreads b when one of a's lowest 8 fraction bits is set:
        // the integer inputs never set them, so every exact product passes (and did, before the
        // random product). The random product is wrong the same way every time, so emu2 repeats
        // itself faithfully; only its neighbours, computing the same seed, can tell.
        var plan = Plan(GemmOnly);
        var run = KilnCli.RunWith(new Dictionary<string, string?> { ["KILN_EMU_DEVICES"] = "3", ["KILN_EMU_FAULTS"] = "fma:dev=2,sm=0,lowbits=8" },
            TimeSpan.FromMinutes(4), "burn", "--plan", plan, "--backend", "emu", "--profile", "emu", "--out", _out);
        Assert.That(run.ExitCode, Is.EqualTo(1), run.ToString());
        var rows = Verdicts();
        Assert.That(rows.Where(v => v["test"] == "gemm").Select(v => v["status"]), Is.All.EqualTo("PASS"), "every exact product and repeat is right");
        var consensus = rows.Where(v => v["test"] == "gemm_consensus").ToDictionary(v => v["device"]);
        Assert.That(consensus.Keys, Is.EquivalentTo(new[] { "0", "1", "2" }));
        Assert.That(consensus["2"]["status"], Is.EqualTo("FAIL"), run.ToString());
        Assert.That(consensus["2"]["reason"], Does.Contain("digest_fp64").And.Contain("(emu0, emu1)"));
        Assert.That(consensus["0"]["status"], Is.EqualTo("PASS"));
        Assert.That(consensus["1"]["status"], Is.EqualTo("PASS"));
    }

    [Test, Explicit("about 5 minutes on 2 cores: run by hand (docs/PERFORMANCE.md has its result)")]
    public void The_standard_plan_passes_a_healthy_emulated_node()
    {
        var run = KilnCli.RunWith(new Dictionary<string, string?> { ["KILN_EMU_DEVICES"] = "2" }, TimeSpan.FromMinutes(15),
            "burn", "--plan", "standard", "--backend", "emu", "--profile", "emu", "--out", _out);
        Assert.That(run.ExitCode, Is.EqualTo(0), run.ToString());
    }

    [TestCase("KILN_EMU_DEVICES", "two", "KILN_EMU_DEVICES: 'two'")]
    [TestCase("KILN_EMU_DEVICES", "2:sms=0", "KILN_EMU_DEVICES: 'sms=0': outside 1..1024")]
    [TestCase("KILN_EMU_FAULTS", "stuck:dev=7,addr=0", "KILN_EMU_FAULTS: 'dev=7': outside 0..1")]
    [TestCase("KILN_EMU_FAULTS", "melt:dev=0", "KILN_EMU_FAULTS: 'melt:dev=0': unknown fault 'melt'")]
    public void A_malformed_emulator_variable_is_exit_2_naming_it_and_the_bad_part(string variable, string value, string message)
    {
        var env = new Dictionary<string, string?> { ["KILN_EMU_DEVICES"] = "2", [variable] = value };
        var run = KilnCli.RunWith(env, TimeSpan.FromMinutes(1), "burn", "--plan", "quick", "--backend", "emu", "--out", _out);
        Assert.That(run.ExitCode, Is.EqualTo(2), run.ToString());
        Assert.That(run.Stderr, Does.Contain(message));
        Assert.That(run.Stderr.Trim().Split('\n'), Has.Length.EqualTo(1), "one line");
    }

    [Test]
    public void Kiln_check_reads_the_emulated_devices_and_finds_their_planted_state()
    {
        var env = new Dictionary<string, string?> { ["KILN_EMU_DEVICES"] = "2" };
        var healthy = KilnCli.RunWith(env, TimeSpan.FromMinutes(1), "check", "--profile", "emu", "--out", _out);
        Assert.That(healthy.Stdout, Does.Contain("2 GPUs (2x Kiln Emulated GPU"), healthy.ToString());
        Assert.That(healthy.Stdout, Does.Not.Contain("FAIL GPU_"), healthy.ToString());

        env["KILN_EMU_FAULTS"] = "remap:dev=1,pending=1;thermal:dev=0,temp=97";
        var run = KilnCli.RunWith(env, TimeSpan.FromMinutes(1), "check", "--profile", "emu", "--out", _out + "-faults");
        Assert.That(run.ExitCode, Is.EqualTo(1), run.ToString());
        Assert.That(run.Stdout, Does.Match(@"FAIL GPU_ROW_REMAP_PENDING\s+emu1 GPU-4b494c4e-454d-5500-0000-000000000001 00ee:02:00.0"));
        Assert.That(run.Stdout, Does.Match(@"FAIL GPU_TEMPERATURE_HIGH\s+emu0 "));
    }

    [Test]
    public void Without_the_variable_no_emulated_device_is_shown()
    {
        var run = KilnCli.Run("inventory");
        Assert.That(run.ExitCode, Is.EqualTo(0), run.ToString());
        Assert.That(run.Stdout, Does.Contain("KILN_EMU_DEVICES is not set"));
        Assert.That(run.Stdout, Does.Not.Contain("Kiln Emulated GPU"));
    }
}
