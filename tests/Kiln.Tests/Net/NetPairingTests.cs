// The pairing schedule (ring + random perfect matchings) and the analysis that names the node the
// bad pairs share, or the one bad link between healthy nodes.
using Kiln.Core;
using Kiln.Core.Net;

namespace Kiln.Tests.Net;

public sealed class NetPairingTests
{
    private static List<string> Nodes(int n) => Enumerable.Range(0, n).Select(i => $"n{i}").ToList();

    [TestCase(2, 3)]
    [TestCase(3, 3)]
    [TestCase(4, 3)]
    [TestCase(5, 3)]
    [TestCase(8, 3)]
    [TestCase(9, 4)]
    [TestCase(64, 3)]
    public void EveryNodeMeetsEnoughOthersInDisjointRounds(int n, int minPeers)
    {
        var nodes = Nodes(n);
        var rounds = NetPairing.Schedule(nodes, minPeers, seed: 3);
        foreach (var round in rounds)
            Assert.That(round.SelectMany(p => new[] { p.Client, p.Server }), Is.Unique);
        var all = rounds.SelectMany(r => r).ToList();
        Assert.That(all.Select(p => string.Join('|', new[] { p.Client, p.Server }.Order())), Is.Unique, "no pair twice");
        foreach (var node in nodes)
            Assert.That(all.Where(p => p.Has(node)).Select(p => p.Client == node ? p.Server : p.Client).Distinct().Count(),
                Is.GreaterThanOrEqualTo(Math.Min(minPeers, n - 1)), node);
        // The ring is in it: every node meets its neighbour.
        for (var i = 0; i < n; i++)
            Assert.That(all.Any(p => p.Has(nodes[i]) && p.Has(nodes[(i + 1) % n])), Is.True, $"ring edge {i}");
    }

    [Test]
    public void TheSameSeedGivesTheSameSchedule()
    {
        var a = NetPairing.Schedule(Nodes(10), 3, 5).SelectMany(r => r).ToList();
        var b = NetPairing.Schedule(Nodes(10), 3, 5).SelectMany(r => r).ToList();
        Assert.That(a, Is.EqualTo(b));
    }

    [Test]
    public void ANodeNamedTwiceIsAUsageError() =>
        Assert.That(() => NetPairing.Schedule(["a", "b", "a"], 3, 1), Throws.TypeOf<UsageException>().With.Message.Contains("named twice"));

    private static PairOutcome Pair(string a, string b, double gbits, bool failed = false) => new(a, b, failed, gbits, failed ? "below the floor" : "");

    [Test]
    public void TheHostInEveryBadPairIsNamed()
    {
        var pairs = new[]
        {
            Pair("n0", "n1", 20), Pair("n2", "n3", 0.2, failed: true), Pair("n1", "n2", 0.19, failed: true),
            Pair("n3", "n0", 21), Pair("n0", "n2", 0.2, failed: true), Pair("n1", "n3", 19),
        };
        var suspects = NetPairing.Suspects(pairs);
        Assert.That(suspects, Has.Count.EqualTo(1));
        Assert.That((suspects[0].Host, suspects[0].Peer, suspects[0].BadPairs, suspects[0].Pairs), Is.EqualTo(("n2", (string?)null, 3, 3)));
    }

    [Test]
    public void APairFarSlowerThanTheOthersIsBadEvenAboveTheFloor()
    {
        var pairs = new[]
        {
            Pair("n0", "n1", 20), Pair("n2", "n3", 4), Pair("n1", "n2", 4.1), Pair("n3", "n0", 21), Pair("n0", "n2", 3.9), Pair("n1", "n3", 19),
        };
        var s = NetPairing.Suspects(pairs);
        Assert.That(s.Select(x => x.Host), Is.EqualTo(new[] { "n2" }));
        Assert.That(s[0].Why, Does.Contain("median pair"));
    }

    [Test]
    public void OneBadLinkBetweenHealthyHostsNamesTheLink()
    {
        var pairs = new[] { Pair("n0", "n1", 20), Pair("n2", "n3", 20), Pair("n1", "n2", 0.2, failed: true), Pair("n3", "n0", 20) };
        var s = NetPairing.Suspects(pairs);
        Assert.That(s, Has.Count.EqualTo(1));
        Assert.That((s[0].Host, s[0].Peer), Is.EqualTo(("n1", (string?)"n2")));
    }

    [Test]
    public void ALoneRelativelySlowPairIsNotALink()
    {
        // One slow measurement between healthy hosts (a busy moment) names no one; it failing its floor would.
        var pairs = new[] { Pair("n0", "n1", 20), Pair("n2", "n3", 20), Pair("n1", "n2", 4), Pair("n3", "n0", 20) };
        Assert.That(NetPairing.Suspects(pairs), Is.Empty);
    }

    [Test]
    public void HealthyPairsNameNoOne() =>
        Assert.That(NetPairing.Suspects([Pair("n0", "n1", 20), Pair("n1", "n2", 19), Pair("n2", "n0", 21)]), Is.Empty);
}
