using CareCoordination.Domain;
using CareCoordination.Features.Referrals;

namespace CareCoordination.Tests.Features.Referrals;

/// <summary>Every decision the commands store, and every pathway, reads in words: the one place codes become words.</summary>
public sealed class ReferralTextTests
{
    [Theory]
    [InlineData("accepted: reablement", "Accepted: Reablement")]
    [InlineData("accepted: voluntary-sector", "Accepted: Voluntary sector")]
    [InlineData("accepted: step-down-nursing bed, Ashbury Community Hospital", "Accepted: Step-down nursing bed at Ashbury Community Hospital")]
    [InlineData("declined: out-of-area", "Declined: Out of area")]
    [InlineData("redirected to bed bureau", "Passed to the bed bureau")]
    [InlineData("returned to coordination: home first is possible", "Handed back to the coordination centre: home first is possible")]
    public void Decision_AsStored_ReadsInWords(string stored, string words) =>
        Assert.Equal(words, ReferralText.Decision(stored));

    [Fact]
    public void Decision_OfEveryServiceKindAndDeclineReason_ShowsNoCode()
    {
        var decisions = ReferralCodes.ServiceKinds.Select(k => (k.Value, Words: ReferralText.Decision($"accepted: {k.Value}")!))
            .Concat(ReferralCodes.DeclineReasons.Select(r => (r.Value, Words: ReferralText.Decision($"declined: {r.Value}")!)));
        foreach (var (code, words) in decisions)
        {
            Assert.DoesNotContain(code, words, StringComparison.Ordinal);
        }
    }

    [Fact]
    public void Pathway_ReadsAsItsLabel() =>
        Assert.Equal(["Pathway 0", "Pathway 1", "Pathway 2", "Pathway 3", "Step-up", "Pathway not stated"],
            new[] { "0", "1", "2", "3", "step-up", null }.Select(ReferralText.Pathway));

    /// <summary>
    /// Every change a referral's timeline can show reads in words, never as its code: each kind the product's source records
    /// for a referral, its tasks, placements, approvals and carer messages (an expired reservation's two showed as codes).
    /// </summary>
    [Fact]
    public void EveryChangeKindOfAReferral_ReadsInWords()
    {
        var source = Path.Combine(CareCoordination.Tests.Support.FhirPayloads.RepositoryRoot(), "src");
        var kinds = Directory.EnumerateFiles(source, "*.cs", SearchOption.AllDirectories)
            .Where(f => !f.Contains($"{Path.DirectorySeparatorChar}obj{Path.DirectorySeparatorChar}", StringComparison.Ordinal))
            .SelectMany(f => System.Text.RegularExpressions.Regex.Matches(File.ReadAllText(f), "\"((?:referral|task|placement|approval|carer-message)\\.[a-z-]+)\"")
                .Select(m => m.Groups[1].Value))
            .ToHashSet(StringComparer.Ordinal);

        Assert.Contains("placement.expired", kinds);
        Assert.Empty(kinds.Where(kind => ReferralText.Change(kind) == kind).Order(StringComparer.Ordinal));
    }
}
