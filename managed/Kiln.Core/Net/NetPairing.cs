// Which pairs of N nodes probe each other, and which node the bad pairs have in common. The
// schedule is a ring plus seeded random perfect matchings, grouped into rounds of disjoint pairs
// (a round runs at once, each node in at most one pair), until every node has met at least
// minPeers others. A bad host then shows up in all of its pairs, a bad cable in one.
namespace Kiln.Core.Net;

/// <summary>One probe: Client runs kiln net probe against Server's kiln net serve.</summary>
public sealed record NetPair(string Client, string Server)
{
    public bool Has(string node) => Client == node || Server == node;
}

/// <summary>How one pair went: Bad when its verdict failed or it is far slower than the other pairs.</summary>
public sealed record PairOutcome(string Client, string Server, bool Failed, double? Gbits, string Reason)
{
    public bool Has(string node) => Client == node || Server == node;
}

/// <summary>
/// A node the bad pairs have in common (Peer null), or one bad link between two otherwise healthy
/// nodes (Host -> Peer); Bad lists the pairs that name it.
/// </summary>
public sealed record NetSuspect(string Host, string? Peer, int BadPairs, int Pairs, string Why, IReadOnlyList<NetPair> Bad)
{
    public bool IsHost => Peer is null;
}

public static class NetPairing
{
    /// <summary>A pair slower than this fraction of the median pair is bad even when it cleared the profile's floor.</summary>
    public const double DefaultRelativeFloor = 0.5;

    public static IReadOnlyList<IReadOnlyList<NetPair>> Schedule(IReadOnlyList<string> nodes, int minPeers, int seed)
    {
        if (nodes.Count < 2) throw new UsageException("--nodes", $"a pairing needs at least 2 nodes, got {nodes.Count}");
        if (nodes.Distinct(StringComparer.Ordinal).Count() != nodes.Count)
            throw new UsageException("--nodes", $"a node is named twice: {string.Join(", ", nodes.GroupBy(n => n).Where(g => g.Count() > 1).Select(g => g.Key))}");
        var want = Math.Min(minPeers, nodes.Count - 1);
        var met = nodes.ToDictionary(n => n, _ => new HashSet<string>(StringComparer.Ordinal), StringComparer.Ordinal);
        var rounds = new List<IReadOnlyList<NetPair>>();

        void Add(List<NetPair> round, string a, string b)
        {
            round.Add(new NetPair(a, b));
            met[a].Add(b);
            met[b].Add(a);
        }

        // The ring: edge i joins node i and i+1. Even edges, then odd ones, form disjoint rounds
        // (an odd ring's closing edge gets a round of its own).
        var n = nodes.Count;
        var ringEdges = n == 2 ? 1 : n;
        foreach (var parity in new[] { 0, 1 })
        {
            var round = new List<NetPair>();
            for (var i = parity; i < ringEdges; i += 2)
            {
                if (n % 2 == 1 && i == n - 1) continue;
                Add(round, nodes[i], nodes[(i + 1) % n]);
            }
            if (round.Count > 0) rounds.Add(round);
        }
        if (n % 2 == 1 && n > 2)
        {
            var closing = new List<NetPair>();
            Add(closing, nodes[n - 1], nodes[0]);
            rounds.Add(closing);
        }

        // Seeded random perfect matchings, each pair new, until everyone has met enough others.
        var random = new Random(seed);
        for (var attempt = 0; attempt < 64 * n && met.Values.Any(m => m.Count < want); attempt++)
        {
            var order = nodes.OrderBy(_ => random.Next()).ToList();
            var round = new List<NetPair>();
            var used = new HashSet<string>(StringComparer.Ordinal);
            for (var i = 0; i < order.Count; i++)
            {
                if (used.Contains(order[i])) continue;
                // The first unused node this one has not met yet.
                var partner = order.Skip(i + 1).FirstOrDefault(o => !used.Contains(o) && !met[order[i]].Contains(o));
                if (partner is null) continue;
                used.Add(order[i]);
                used.Add(partner);
                Add(round, order[i], partner);
            }
            if (round.Count > 0) rounds.Add(round);
        }
        return rounds;
    }

    /// <summary>
    /// Bad pairs: failed verdicts, and pairs slower than relativeFloor x the median pair. Then,
    /// greedily, the node in the most unexplained bad pairs is named while it is in at least two of
    /// them; a failed pair left over names the link between its two nodes.
    /// </summary>
    public static IReadOnlyList<NetSuspect> Suspects(IReadOnlyList<PairOutcome> pairs, double relativeFloor = DefaultRelativeFloor)
    {
        var rates = pairs.Where(p => !p.Failed && p.Gbits is > 0).Select(p => p.Gbits!.Value).Order().ToList();
        var median = rates.Count > 0 ? rates[rates.Count / 2] : 0;
        string? WhyBad(PairOutcome p) =>
            p.Failed ? p.Reason
            : median > 0 && p.Gbits is { } g && g < relativeFloor * median ? $"{g:0.###} Gb/s is below {relativeFloor:0.##} x the median pair ({median:0.###} Gb/s)"
            : null;
        var bad = pairs.Select(p => (Pair: p, Why: WhyBad(p))).Where(x => x.Why != null).ToList();
        var suspects = new List<NetSuspect>();
        var nodes = pairs.SelectMany(p => new[] { p.Client, p.Server }).Distinct(StringComparer.Ordinal).ToList();
        while (bad.Count > 0)
        {
            var (node, count) = nodes.Select(n => (Node: n, Count: bad.Count(b => b.Pair.Has(n))))
                .OrderByDescending(x => x.Count).ThenBy(x => x.Node, StringComparer.Ordinal).First();
            if (count < 2) break;
            var mine = bad.Where(b => b.Pair.Has(node)).ToList();
            suspects.Add(new NetSuspect(node, null, count, pairs.Count(p => p.Has(node)),
                $"in {count} bad pair(s) of {pairs.Count(p => p.Has(node))}: " +
                string.Join("; ", mine.Select(b => $"{b.Pair.Client} -> {b.Pair.Server}: {b.Why}")),
                mine.Select(b => new NetPair(b.Pair.Client, b.Pair.Server)).ToList()));
            bad.RemoveAll(b => b.Pair.Has(node));
        }
        // A lone pair is one measurement: named as a bad link only when its verdict failed (a
        // relatively slow pair alone may be a busy moment; repeated across a host's pairs it is not).
        foreach (var (pair, why) in bad.Where(b => b.Pair.Failed))
            suspects.Add(new NetSuspect(pair.Client, pair.Server, 1, 1, $"the link {pair.Client} -> {pair.Server} alone: {why}",
                [new NetPair(pair.Client, pair.Server)]));
        return suspects;
    }
}
