// The checked-in bindings are exactly what Kiln.Bindgen makes of kiln.h, and the generator notices
// a change of the header (so the drift test can fail).
using System.Text.RegularExpressions;
using Kiln.Bindgen;
using Kiln.Tests.Core;

namespace Kiln.Tests.Native;

public sealed class BindingDriftTests
{
    private static string HeaderPath => Path.Combine(TestEnvironment.RepoRoot, "native", "include", "kiln", "kiln.h");
    private static string BindingsPath =>
        Path.Combine(TestEnvironment.RepoRoot, "managed", "Kiln.Native", "Generated", "KilnNative.g.cs");

    private string _tempFolder = "";

    [SetUp]
    public void CreateTempFolder() => _tempFolder = TestEnvironment.NewTempFolder("kiln-bindgen");

    [TearDown]
    public void RemoveTempFolder() => Directory.Delete(_tempFolder, recursive: true);

    [Test]
    public void CheckedInBindingsAreWhatTheGeneratorMakesOfTheHeader()
    {
        string checkedIn = File.ReadAllText(BindingsPath);
        string generated = Generator.Generate(HeaderPath);
        Assert.That(generated == checkedIn, Is.True, () =>
            "KilnNative.g.cs is stale; run dotnet run --project managed/Kiln.Bindgen -- --header native/include/kiln/kiln.h "
            + "--out managed/Kiln.Native/Generated/KilnNative.g.cs\n"
            + string.Join("\n", LineDiff.Summarize(checkedIn, generated, maxLines: 40)));
    }

    [Test]
    public void AChangedFieldTypeInTheHeaderChangesTheBindings()
    {
        string header = File.ReadAllText(HeaderPath);
        const string Field = "int32_t threads;";
        Assert.That(header, Does.Contain(Field), "the probe field moved; pick another");
        string changed = WriteHeader(header.Replace(Field, "int64_t threads;"));

        string original = Generator.Generate(HeaderPath);
        string regenerated = Generator.Generate(changed);

        Assert.That(original, Does.Contain("    public int threads;"));
        Assert.That(regenerated, Does.Contain("    public long threads;").And.Not.Contain("    public int threads;"));
    }

    [Test]
    public void OnlyTheHeadersOwnDeclarationsAreBound()
    {
        string generated = Generator.Generate(HeaderPath);
        // stddef.h and stdint.h declare max_align_t, __int32_t ...; every bound type must be kiln.h's own.
        var declared = Regex.Matches(generated, @"^public (?:enum|unsafe struct|sealed class) (\w+)", RegexOptions.Multiline)
            .Select(m => m.Groups[1].Value).ToList();
        Assert.That(declared, Is.Not.Empty);
        Assert.That(declared, Is.All.Match("^(kiln_|Kiln[A-Z])"));
        // header order is output order
        Assert.That(generated.IndexOf("enum kiln_constants", StringComparison.Ordinal),
            Is.LessThan(generated.IndexOf("enum kiln_status", StringComparison.Ordinal)));
        Assert.That(generated.IndexOf(" kiln_abi_version(", StringComparison.Ordinal),
            Is.LessThan(generated.IndexOf(" kiln_struct_field_offset(", StringComparison.Ordinal)));
    }

    [Test]
    public void HandlesOutParametersStringsAndCallbacksFollowTheConventions()
    {
        string generated = Generator.Generate(HeaderPath);
        Assert.Multiple(() =>
        {
            Assert.That(generated, Does.Contain(
                "public static partial kiln_status kiln_registry_create(string? plugin_dir, out KilnRegistryHandle out_registry);"));
            Assert.That(generated, Does.Contain("public static partial void kiln_device_destroy(nint device);"));
            Assert.That(generated, Does.Contain("// size_t kiln_last_error(char* buf, size_t buf_bytes);"));
            Assert.That(generated, Does.Contain("public static partial nuint kiln_last_error(byte* buf, nuint buf_bytes);"));
            Assert.That(generated, Does.Contain(
                "public static partial kiln_status kiln_run(KilnDeviceHandle device, kiln_test_params* @params, kiln_sink* sink, int* cancel);"));
            Assert.That(generated, Does.Contain("public delegate* unmanaged<void*, kiln_metric*, void> on_metric;"));
            Assert.That(generated, Does.Contain("public fixed byte name[32];"));
        });
    }

    [Test]
    public void AConstructTheBindingsCannotExpressStopsWithItsLine()
    {
        string header = WriteHeader("#include <stdint.h>\n\nunion kiln_u { int32_t a; float b; };\n");
        var e = Assert.Throws<BindgenException>(() => Generator.Generate(header));
        Assert.That(e!.Message, Does.Contain("line 3").And.Contain("union"));
    }

    [Test]
    public void AHeaderWithErrorsIsRefusedRatherThanHalfBound()
    {
        string header = WriteHeader("size_t kiln_f(void);\n");  // size_t unknown without stddef.h
        var e = Assert.Throws<BindgenException>(() => Generator.Generate(header));
        Assert.That(e!.Message, Does.Contain("does not parse").And.Contain("size_t"));
    }

    private string WriteHeader(string text)
    {
        string path = Path.Combine(_tempFolder, "kiln.h");
        File.WriteAllText(path, text);
        return path;
    }
}
