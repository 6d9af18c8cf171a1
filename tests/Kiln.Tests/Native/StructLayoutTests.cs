// Every struct in Kiln.Native.Interop has the size and field offsets libkiln.so was compiled with,
// as the library itself reports them (kiln_struct_size / kiln_struct_field_offset).
using System.Reflection;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Kiln.Native.Interop;
using Kiln.Tests.Core;

namespace Kiln.Tests.Native;

public sealed class StructLayoutTests
{
    // Found by reflection, so a struct added to kiln.h is covered without touching this test.
    private static IEnumerable<Type> InteropStructs() =>
        typeof(KilnNative).Assembly.GetTypes()
            .Where(t => t.Namespace == typeof(KilnNative).Namespace && t.IsValueType && !t.IsEnum && !t.IsNested)
            .OrderBy(t => t.Name, StringComparer.Ordinal);

    [SetUp]
    public void RequireNative() => TestEnvironment.RequireNative();

    [TestCaseSource(nameof(InteropStructs))]
    public void ManagedLayoutMatchesTheNativeLibrary(Type type)
    {
        nuint nativeSize = KilnNative.kiln_struct_size(type.Name);
        Assert.That(nativeSize, Is.Not.EqualTo((nuint)0), $"libkiln.so does not know struct {type.Name}; add it to layout.cpp");

        var fields = type.GetFields(BindingFlags.Instance | BindingFlags.Public | BindingFlags.NonPublic);
        Assert.That(fields, Is.Not.Empty);
        Assert.Multiple(() =>
        {
            Assert.That((nuint)ManagedSize(type), Is.EqualTo(nativeSize), $"sizeof({type.Name})");
            foreach (var field in fields)
            {
                nuint nativeOffset = KilnNative.kiln_struct_field_offset(type.Name, field.Name);
                if (nativeOffset == nuint.MaxValue)
                {
                    Assert.Fail($"libkiln.so does not know {type.Name}.{field.Name}; add it to layout.cpp");
                    continue;
                }
                Assert.That((nuint)Marshal.OffsetOf(type, field.Name), Is.EqualTo(nativeOffset),
                    $"offsetof({type.Name}, {field.Name})");
            }
        });
    }

    [Test]
    public void TheReflectionFindsTheHeadersStructs()
    {
        Assert.That(InteropStructs().Select(t => t.Name),
            Is.SupersetOf(new[] { "kiln_device_info", "kiln_test_params", "kiln_metric", "kiln_data_error", "kiln_sink" }));
    }

    [Test]
    public void TheNativeSideReportsWhatItDoesNotKnow()
    {
        Assert.That(KilnNative.kiln_struct_size("kiln_no_such_struct"), Is.EqualTo((nuint)0));
        Assert.That(KilnNative.kiln_struct_field_offset("kiln_metric", "no_such_field"), Is.EqualTo(nuint.MaxValue));
        Assert.That(KilnNative.kiln_struct_field_offset("kiln_no_such_struct", "value"), Is.EqualTo(nuint.MaxValue));
    }

    private static int ManagedSize(Type type) =>
        (int)typeof(Unsafe).GetMethod(nameof(Unsafe.SizeOf))!.MakeGenericMethod(type).Invoke(null, null)!;
}
