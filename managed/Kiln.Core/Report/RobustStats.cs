// Robust statistics for fleets: median, MAD, percentiles and the modified z-score of Iglewicz and
// Hoaglin (z = 0.6745 (x - median) / MAD), which one bad node cannot drag the way a mean and
// standard deviation are dragged.
namespace Kiln.Core.Report;

public readonly record struct Spread(int Count, double Median, double Mad, double P5, double P95, double Min, double Max)
{
    /// <summary>
    /// The robust sigma: MAD / 0.6745 (= 1.4826 MAD). Where more than half the values are equal the
    /// MAD is 0; then 1.2533 x the mean absolute deviation stands in, and 0 means every value is equal.
    /// </summary>
    public double Sigma { get; init; }

    /// <summary>The modified z-score of x; 0 when the fleet has no spread at all.</summary>
    public double Z(double x) => Sigma > 0 ? (x - Median) / Sigma : 0;
}

public static class RobustStats
{
    public const double MadToSigma = 1 / 0.6745;
    public const double MeanAdToSigma = 1.253314;

    /// <summary>Sorts <paramref name="values"/> in place and describes them.</summary>
    public static Spread Describe(double[] values)
    {
        if (values.Length == 0) return default;
        Array.Sort(values);
        var median = Percentile(values, 0.5);
        var deviations = new double[values.Length];
        for (var i = 0; i < values.Length; i++) deviations[i] = Math.Abs(values[i] - median);
        var meanAd = deviations.Average();
        Array.Sort(deviations);
        var mad = Percentile(deviations, 0.5);
        return new Spread(values.Length, median, mad, Percentile(values, 0.05), Percentile(values, 0.95), values[0], values[^1])
        {
            Sigma = mad > 0 ? mad * MadToSigma : meanAd * MeanAdToSigma,
        };
    }

    /// <summary>Linear interpolation between closest ranks (the R-7 / Excel PERCENTILE.INC rule) of sorted values.</summary>
    public static double Percentile(double[] sorted, double p)
    {
        if (sorted.Length == 1) return sorted[0];
        var rank = p * (sorted.Length - 1);
        var low = (int)Math.Floor(rank);
        var high = Math.Min(low + 1, sorted.Length - 1);
        return sorted[low] + (rank - low) * (sorted[high] - sorted[low]);
    }

    public static double Median(IEnumerable<double> values)
    {
        var sorted = values.ToArray();
        Array.Sort(sorted);
        return sorted.Length == 0 ? double.NaN : Percentile(sorted, 0.5);
    }
}
