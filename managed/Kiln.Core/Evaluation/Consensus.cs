// The node's devices judged against each other: every GPU runs gemm's random full-mantissa product
// on the same seed and size, so healthy devices of one model return identical bytes (their digest,
// digest_<dtype>). A device whose digest differs from the majority computes wrong, repeatably, for
// some inputs - the silent data corruption that fleet studies find - and is named. Devices whose
// gemm already found wrong data are left out: their FAIL stands, and they do not vote. Where no
// majority exists (two devices that disagree), every device of the group fails: the evidence
// cannot say which one is wrong, only that one is.
using System.Globalization;
using Kiln.Core.Results;
using Kiln.Native;

namespace Kiln.Core.Evaluation;

public static class Consensus
{
    /// <summary>The verdicts' test name: one row per device compared.</summary>
    public const string TestName = "gemm_consensus";

    private const string DigestPrefix = "digest_";

    /// <summary>
    /// One row per gemm device that has a digest and at least one other device of its backend,
    /// model and matrix size to compare with; none when there is nothing to compare.
    /// </summary>
    public static IReadOnlyList<VerdictRow> Verdicts(IEnumerable<TestOutcome> outcomes, string host)
    {
        var rows = new List<VerdictRow>();
        // A device whose own products were already wrong has its FAIL; it neither votes nor makes
        // a healthy neighbour look suspect.
        var gemm = outcomes.Where(o => o.Test == TestKind.Gemm && o.Metrics.Keys.Any(IsDigest) && Evaluator.DataErrors(o) == 0);
        foreach (var group in gemm.GroupBy(o => (o.Device.Backend, o.Device.Name, N: o.Last("matrix_n"), o.Parameters.Seed)))
        {
            var members = group.OrderBy(o => o.Device.Index).ToList();
            if (members.Count < 2) continue;
            var formats = members.SelectMany(o => o.Metrics.Keys.Where(IsDigest)).Distinct(StringComparer.Ordinal)
                .Order(StringComparer.Ordinal).ToList();
            var problems = members.ToDictionary(o => o.Device.Index, _ => new List<string>());
            foreach (var metric in formats)
                Judge(members, metric, problems);
            foreach (var o in members)
            {
                var found = problems[o.Device.Index];
                var label = $"{o.Device.Backend}{o.Device.Index}";
                rows.Add(found.Count == 0
                    ? new VerdictRow(host, TestName, o.Device.Backend, o.Device.Index, VerdictStatus.PASS, formats[0],
                        o.Last(formats[0]), null, "digest",
                        $"random products ({string.Join(", ", formats.Select(Format))}) identical to the {members.Count - 1} other {o.Device.Name} device(s)")
                    : new VerdictRow(host, TestName, o.Device.Backend, o.Device.Index, VerdictStatus.FAIL, found[0].Split(' ')[0],
                        null, null, "digest", $"{label}: {string.Join("; ", found)}"));
            }
        }
        return rows;
    }

    private static void Judge(List<TestOutcome> members, string metric, Dictionary<int, List<string>> problems)
    {
        // A device whose own repeats disagree (re-measurements, soak passes) already failed its own
        // test through the repeat check; here its digests are compared as they are.
        var digests = members.Where(o => o.Metrics.ContainsKey(metric))
            .ToDictionary(o => o.Device.Index, o => o.Metrics[metric].Distinct().ToList());
        foreach (var (index, values) in digests.Where(d => d.Value.Count > 1))
            problems[index].Add($"{metric} changed between runs on this device ({string.Join(", ", values.Select(Hex))})");
        var single = digests.Where(d => d.Value.Count == 1).ToDictionary(d => d.Key, d => d.Value[0]);
        if (single.Count < 2) return;
        var votes = single.GroupBy(d => d.Value).OrderByDescending(g => g.Count()).ToList();
        var majority = votes[0].Count() * 2 > single.Count ? votes[0].Key : (double?)null;
        foreach (var (index, value) in single)
        {
            if (majority is { } m && value == m) continue;
            var others = single.Where(d => d.Key != index && d.Value != value).Select(d => d.Key).ToList();
            problems[index].Add(majority is { } agreed
                ? $"{metric} {Hex(value)} differs from {Hex(agreed)} of the other {votes[0].Count()} device(s) ({Devices(members, votes[0].Select(v => v.Key))}): this device computes the random {Format(metric)} product wrong"
                : $"{metric} {Hex(value)} differs from {Devices(members, others)}, and no majority says which device is wrong");
        }
    }

    private static bool IsDigest(string metric) => metric.StartsWith(DigestPrefix, StringComparison.Ordinal);

    private static string Format(string metric) => metric[DigestPrefix.Length..];

    private static string Hex(double digest) => "0x" + ((ulong)digest).ToString("x12", CultureInfo.InvariantCulture);

    private static string Devices(List<TestOutcome> members, IEnumerable<int> indices) =>
        string.Join(", ", indices.Order().Select(i => $"{members[0].Device.Backend}{i}"));
}
