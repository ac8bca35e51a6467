using CareCoordination.Features.Reports;

namespace CareCoordination.Tests.Features.Reports;

/// <summary>
/// The equity report's medians are found by selection rather than a sort (issue 13): they must be the middle value, or the
/// mean of the middle two, that sorting the same waits gives, whatever their order and however many are equal.
/// </summary>
public sealed class EquityMedianTests
{
    private static double SortedMedian(double[] values)
    {
        var sorted = values.Order().ToArray();
        var middle = sorted.Length / 2;
        return sorted.Length % 2 == 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
    }

    [Fact]
    public void IsTheMiddleOfTheSortedWaits_ForOddAndEvenCounts_RepeatsAndEveryOrder()
    {
        var random = new Random(13);
        for (var round = 0; round < 3000; round++)
        {
            var count = random.Next(EquityReport.SmallestShown, round < 2000 ? 40 : 5000);
            // Few distinct values in some rounds (many equal waits, as whole days give), all different in others.
            var distinct = round % 3 == 0 ? 3 : round % 3 == 1 ? 50 : int.MaxValue;
            var values = Enumerable.Range(0, count)
                .Select(_ => distinct == int.MaxValue ? random.NextDouble() * 60 : random.Next(distinct) / 4.0).ToArray();
            switch (round % 4)
            {
                case 1: Array.Sort(values); break;
                case 2: Array.Sort(values); Array.Reverse(values); break;
            }
            var given = values.ToArray();
            Assert.Equal(SortedMedian(values), EquityReport.Median(values));
            Assert.Equal(given, values); // the caller's waits are left as they were
        }
    }

    [Fact]
    public void SelectsEveryRank_AsASortPlacesIt()
    {
        var random = new Random(7);
        var values = Enumerable.Range(0, 257).Select(_ => (double)random.Next(20)).ToArray();
        var sorted = values.Order().ToArray();
        for (var k = 0; k < values.Length; k++)
        {
            var copy = values.ToArray();
            Assert.Equal(sorted[k], EquityReport.Select(copy, k));
            Assert.All(copy[..k], v => Assert.True(v <= sorted[k]));
            Assert.All(copy[(k + 1)..], v => Assert.True(v >= sorted[k]));
        }
    }

    [Fact]
    public void IsNone_ForFewerThanFive()
    {
        Assert.Null(EquityReport.Median([3, 1, 2, 4]));
        Assert.Equal(3, EquityReport.Median([5, 3, 1, 2, 4]));
        Assert.Equal(2.5, EquityReport.Median([6, 3, 1, 2, 4, 0]));
    }
}
