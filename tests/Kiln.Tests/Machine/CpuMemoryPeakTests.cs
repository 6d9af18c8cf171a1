// The CPU's memory peak from the machine: SMBIOS tables built here (KILN_SYSFS_ROOT moves the table
// libkiln reads), read through the real cpu backend; and a burn on such a machine judges stream
// against a fraction of that peak, or says "peak unknown" where the machine gives none.
using Kiln.Native;
using Kiln.Tests.Cli;
using Kiln.Tests.Core;
using Kiln.Tests.Health;

namespace Kiln.Tests.Machine;

[NonParallelizable]  // sets KILN_SYSFS_ROOT in this process and for its children
public sealed class CpuMemoryPeakTests
{
    private const string Spr = "Intel(R) Xeon(R) Platinum 8480+";
    private const string Genoa = "AMD EPYC 9654 96-Core Processor";

    private static string NewRoot() => Path.Combine(HealthTemp.NewFolder("smbios"), "root");

    private static DeviceInfo CpuOn(string root)
    {
        TestEnvironment.RequireNative();
        CheckRunner.SetNative("KILN_SYSFS_ROOT", root);
        try
        {
            using var registry = Registry.Open();
            using var cpu = registry.OpenDevice("cpu", 0);
            return cpu.Info;
        }
        finally
        {
            CheckRunner.SetNative("KILN_SYSFS_ROOT", null);
        }
    }

    private static SmbiosTable TwoSockets(string model, int dimms, int mts, byte type = SmbiosTable.Ddr5)
    {
        var t = new SmbiosTable().Processor(model).Processor(model);
        for (var i = 0; i < dimms; i++) t.Dimm($"CPU{i % 2}_DIMM_{(char)('A' + i / 2)}1", 65536, mts, type: type);
        return t;
    }

    [Test]
    public void Two_sapphire_rapids_sockets_with_16_ddr5_4800_dimms_peak_at_16_channels()
    {
        var info = CpuOn(TwoSockets(Spr, 16, 4800).WriteUnder(NewRoot()));
        Assert.That(info.PeakMemoryBandwidthGbps, Is.EqualTo(16 * 4800 * 8 / 1000.0).Within(1e-9));
        Assert.That(info.PeakMemoryBasis, Is.EqualTo($"SMBIOS: 16 x DDR5-4800 on 16 channels (8 per socket x 2 sockets of {Spr})"));
    }

    [Test]
    public void Two_dimms_per_channel_do_not_double_the_channels_and_the_slowest_dimm_sets_the_speed()
    {
        var table = TwoSockets(Spr, 32, 4800);
        table.Dimm("CPU1_DIMM_Z2", 65536, speedMts: 4800, configuredMts: 4400);  // one DIMM clocked down
        table.Dimm("CPU1_DIMM_EMPTY", 0, 0);                                      // an empty slot is not a DIMM
        var info = CpuOn(table.WriteUnder(NewRoot()));
        Assert.That(info.PeakMemoryBandwidthGbps, Is.EqualTo(16 * 4400 * 8 / 1000.0).Within(1e-9));
        Assert.That(info.PeakMemoryBasis, Does.StartWith("SMBIOS: 33 x DDR5-4400 on 16 channels"));
    }

    [Test]
    public void Genoa_has_twelve_channels_per_socket()
    {
        var info = CpuOn(TwoSockets(Genoa, 24, 4800).WriteUnder(NewRoot()));
        Assert.That(info.PeakMemoryBandwidthGbps, Is.EqualTo(24 * 4800 * 8 / 1000.0).Within(1e-9));
    }

    [Test]
    public void An_unknown_cpu_model_counts_one_channel_per_dimm_and_says_so()
    {
        var table = new SmbiosTable().Processor("Some Future CPU").Dimm("DIMM 0", 16384, 3200, type: SmbiosTable.Ddr4)
            .Dimm("DIMM 1", 16384, 3200, type: SmbiosTable.Ddr4);
        var info = CpuOn(table.WriteUnder(NewRoot()));
        Assert.That(info.PeakMemoryBandwidthGbps, Is.EqualTo(2 * 3200 * 8 / 1000.0).Within(1e-9));
        Assert.That(info.PeakMemoryBasis, Does.Contain("one DIMM per channel assumed: the channels of 'Some Future CPU' are not known"));
    }

    [Test]
    public void A_virtual_machine_without_dimm_speeds_or_without_a_table_has_peak_unknown_with_the_reason()
    {
        // QEMU's SMBIOS lists its memory as type 17 devices of unknown speed.
        var vm = CpuOn(new SmbiosTable().Processor("QEMU Virtual CPU").Dimm("DIMM 0", 8192, 0).WriteUnder(NewRoot()));
        Assert.That(vm.PeakMemoryBandwidthGbps, Is.Zero);
        Assert.That(vm.PeakMemoryBasis, Is.EqualTo("peak unknown: SMBIOS lists 1 memory devices without a speed (a virtual machine?)"));

        var root = NewRoot();
        Directory.CreateDirectory(root);
        var none = CpuOn(root);
        Assert.That(none.PeakMemoryBandwidthGbps, Is.Zero);
        Assert.That(none.PeakMemoryBasis, Does.StartWith($"peak unknown: no SMBIOS table ({root}/sys/firmware/dmi/tables/DMI: "));
    }

    [Test]
    public void A_truncated_table_keeps_the_dimms_read_before_the_cut()
    {
        var bytes = TwoSockets(Spr, 4, 5600).Bytes();
        var root = NewRoot();
        var path = Path.Combine(root, "sys", "firmware", "dmi", "tables", "DMI");
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.WriteAllBytes(path, bytes[..^60]);  // the end marker and the last DIMM cut inside its formatted area
        var info = CpuOn(root);
        Assert.That(info.PeakMemoryBandwidthGbps, Is.EqualTo(3 * 5600 * 8 / 1000.0).Within(1e-9));
    }

    // A plan of stream alone, small: the judgement is what is tested, not the kernel.
    private static string StreamPlan()
    {
        var path = Path.Combine(HealthTemp.NewFolder("plan"), "stream.yaml");
        File.WriteAllText(path, "name: stream-only\ndescription: stream alone\ntests:\n  - test: stream\n    size: 32MiB\n    iterations: 3\n");
        return path;
    }

    private static (CliResult Run, Dictionary<string, string> Stream) Burn(string root, string plan)
    {
        var output = Path.Combine(HealthTemp.NewFolder("burn"), "out");
        var run = KilnCli.RunWith(new Dictionary<string, string?> { ["KILN_SYSFS_ROOT"] = root }, TimeSpan.FromMinutes(4),
            "burn", "--plan", plan, "--backend", "cpu", "--profile", "cpu-only", "--out", output);
        var verdicts = Path.Combine(output, "verdicts.csv");
        Assert.That(File.Exists(verdicts), Is.True, run.ToString());
        return (run, CsvFile.Read(verdicts).Rows.Single(r => r["test"] == "stream"));
    }

    private static string Machine(int dimms, int mts, byte type)
    {
        var table = new SmbiosTable().Processor(Genoa).Processor(Genoa);
        for (var i = 0; i < dimms; i++) table.Dimm($"DIMM {i}", 32768, mts, type: type);
        return table.WriteUnder(NewRoot());
    }

    // The cpu on a machine whose SMBIOS says what its memory is: stream is judged against a quarter of
    // that peak (the cpu-only profile), so a machine claiming far more bandwidth than this one moves
    // FAILs, and one claiming little PASSes, the basis in the reason.
    [TestCase(1, 3200, SmbiosTable.Ddr4, "PASS")]
    [TestCase(48, 6400, SmbiosTable.Ddr5, "FAIL")]
    public void Stream_is_judged_against_a_quarter_of_the_smbios_peak(int dimms, int mts, byte type, string status)
    {
        var peak = Math.Min(dimms, 24) * mts * 8 / 1000.0;
        var (run, stream) = Burn(Machine(dimms, mts, type), StreamPlan());

        Assert.That(stream["status"], Is.EqualTo(status), run.ToString());
        Assert.That(run.ExitCode, Is.EqualTo(status == "PASS" ? 0 : 1), run.ToString());
        Assert.That(double.Parse(stream["threshold"], System.Globalization.CultureInfo.InvariantCulture), Is.EqualTo(0.25 * peak).Within(0.001 * peak));
        Assert.That(stream["reason"], Does.Contain($"25% of peak {Kiln.Core.Profiles.Units.Number(peak)} GB/s (SMBIOS: {dimms} x "));
    }

    [Test]
    public void A_quick_burn_on_a_machine_with_smbios_judges_stream_against_a_fraction_of_its_real_peak()
    {
        var (run, stream) = Burn(Machine(24, 4800, SmbiosTable.Ddr5), "quick");
        Assert.That(stream["status"], Is.EqualTo("FAIL"), run.ToString());  // 921.6 GB/s claimed: this host moves far less
        Assert.That(run.ExitCode, Is.EqualTo(1), run.ToString());
        Assert.That(stream["reason"], Does.Contain("25% of peak 921.6 GB/s (SMBIOS: 24 x DDR5-4800 on 24 channels (12 per socket x 2 sockets of AMD EPYC 9654"));
    }

    [Test]
    public void Where_the_machine_gives_no_peak_the_verdict_says_peak_unknown_and_judges_against_the_profiles_min()
    {
        var root = NewRoot();
        Directory.CreateDirectory(root);
        var (run, stream) = Burn(root, StreamPlan());
        Assert.That(stream["reason"], Does.Contain("peak unknown: no SMBIOS table"), run.ToString());
        Assert.That(stream["reason"], Does.Contain("judged against the min 1 GB/s of"), run.ToString());
    }
}
