// The plans built into kiln. "quick" is the first end-to-end acceptance: memory bandwidth, then
// memory patterns, on every device, sized to finish in about a minute.
using Kiln.Native.Interop;

namespace Kiln.Core.Plans;

public static class BuiltInPlans
{
    private const ulong MiB = 1UL << 20;

    public static Plan Quick { get; } = new("quick",
        "stream (256 MiB per array, 5 iterations) then memtest (512 MiB, all patterns, 1 round)",
        [
            // Three arrays, so an eighth of available memory each keeps stream under 3/8 of it.
            new TestSpec(kiln_test_kind.KILN_TEST_STREAM) { Size = SizeSpec.AtMost(256 * MiB, 1.0 / 8), Iterations = 5 },
            new TestSpec(kiln_test_kind.KILN_TEST_MEMTEST) { Size = SizeSpec.AtMost(512 * MiB, 1.0 / 4), Iterations = 1 },
        ]);

    public static IReadOnlyList<Plan> All { get; } = [Quick];

    public static Plan Get(string name) =>
        All.FirstOrDefault(p => p.Name.Equals(name.Trim(), StringComparison.OrdinalIgnoreCase))
        ?? throw new UsageException(OptionNames.Plan, $"unknown plan '{name}' (known: {string.Join(", ", All.Select(p => p.Name))})");
}
