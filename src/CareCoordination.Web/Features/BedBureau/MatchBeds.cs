using System.Text.Json;
using CareCoordination.Auth;
using CareCoordination.Pipeline;
using CareCoordination.Store;
using Dapper;
using Mediator;
using Microsoft.Extensions.Options;

namespace CareCoordination.Features.BedBureau;

/// <summary>
/// The beds that suit a person, best first, each with why. Unsuitable beds are left out: the wrong bay
/// for their sex, a bay when they must be isolated, a provider under a red caution, a type that does
/// not meet the pathway. The rest are ranked on the stated rules in <see cref="Rank"/>.
/// </summary>
public static class MatchBeds
{
    [AllowRoles(Roles.BedBureau, Roles.Coordinator, Roles.Manager)]
    public sealed record Query(long ReferralId, int Take = 20) : IQuery<Result>;

    public sealed record Result(Needs Person, IReadOnlyList<Match> Matches, int Excluded);

    /// <summary>What matching looks at about the person.</summary>
    public sealed record Needs(string? Pathway, string Sex, string? Locality, bool MustBeIsolated, bool Cognition, bool Nursing);

    public sealed record Match(BedRow Bed, int Score, IReadOnlyList<string> Why);

    public const int BestType = 100;
    public const int SecondType = 60;
    public const int ThirdType = 30;
    public const int SameLocality = 50;
    public const int StalePenalty = 40;
    public const int OutbreakPenalty = 30;
    public const int AmberPenalty = 20;

    /// <summary>The bed types that meet a pathway, best first for this person's needs.</summary>
    public static IReadOnlyList<string> TypesFor(Needs person) => person.Pathway switch
    {
        "3" when person.Cognition => ["dementia", "nursing", "residential"],
        "3" when person.Nursing => ["nursing", "dementia", "residential"],
        "3" => ["residential", "nursing", "dementia"],
        _ when person.Nursing => ["step-down-nursing", "rehabilitation"],
        _ => ["rehabilitation", "step-down-nursing"],
    };

    /// <summary>Ranks available beds for a person. Pure, so each rule is tested on its own.</summary>
    public static (IReadOnlyList<Match> Matches, int Excluded) Rank(Needs person, IEnumerable<BedRow> beds, ISet<long> wardsWithOutbreak,
        DateTimeOffset now, BedBureauSettings settings)
    {
        var types = TypesFor(person);
        var matches = new List<Match>();
        var excluded = 0;
        foreach (var bed in beds.Where(b => b.Status == "available"))
        {
            var typeRank = IndexOf(types, bed.BedType);
            if (typeRank < 0 || bed.Caution == "red" || (bed.AllowedSex != "any" && bed.AllowedSex != person.Sex)
                || (person.MustBeIsolated && !bed.SingleRoom))
            {
                excluded++;
                continue;
            }
            var why = new List<string>();
            var score = typeRank switch { 0 => BestType, 1 => SecondType, _ => ThirdType };
            why.Add(typeRank == 0 ? $"{Label(bed.BedType)} bed: the best fit" : $"{Label(bed.BedType)} bed: meets the pathway");
            if (person.Locality is not null && bed.Locality == person.Locality)
            {
                score += SameLocality;
                why.Add($"in {bed.Locality}, where the person lives");
            }
            if (person.MustBeIsolated)
            {
                why.Add("single room for isolation");
            }
            if (wardsWithOutbreak.Contains(bed.WardId) && !person.MustBeIsolated)
            {
                score -= OutbreakPenalty;
                why.Add("ward has a bed closed for infection");
            }
            if (bed.IsStale(now, settings))
            {
                score -= StalePenalty;
                why.Add($"not confirmed for {(int)(now - bed.ConfirmedAt).TotalHours} h: ring the ward first");
            }
            if (bed.Caution == "amber")
            {
                score -= AmberPenalty;
                why.Add("provider under amber caution: needs a manager's approval");
            }
            matches.Add(new Match(bed, score, why));
        }
        var ranked = matches
            .OrderByDescending(m => m.Score)
            .ThenBy(m => m.Bed.SiteName, StringComparer.Ordinal)
            .ThenBy(m => m.Bed.WardName, StringComparer.Ordinal)
            .ThenBy(m => m.Bed.Label, StringComparer.Ordinal)
            .ToList();
        return (ranked, excluded);
    }

    private static int IndexOf(IReadOnlyList<string> types, string type)
    {
        for (var i = 0; i < types.Count; i++)
        {
            if (types[i] == type)
            {
                return i;
            }
        }
        return -1;
    }

    public static string Label(string bedType) => bedType switch
    {
        "rehabilitation" => "Rehabilitation",
        "step-down-nursing" => "Step-down nursing",
        "residential" => "Residential",
        "nursing" => "Nursing",
        "dementia" => "Dementia",
        _ => bedType,
    };

    private sealed record Facts
    {
        public string? Pathway { get; init; }
        public string Sex { get; init; } = "";
        public string? Locality { get; init; }
        public string? InfectionStatus { get; init; }
        public bool CognitionConcern { get; init; }
        public string NeedsJson { get; init; } = "[]";
        public long OrganisationId { get; init; }
    }

    public sealed class Handler(Database database, TimeProvider clock, IOptionsMonitor<BedBureauSettings> settings, Work work) : IQueryHandler<Query, Result>
    {
        public async ValueTask<Result> Handle(Query query, CancellationToken cancellationToken)
        {
            await using var connection = await database.OpenAsync(cancellationToken);
            var facts = await connection.QuerySingleOrDefaultAsync<Facts>(
                """
                SELECT r.pathway AS Pathway, p.sex AS Sex, p.locality AS Locality, r.infection_status AS InfectionStatus,
                       r.cognition_concern AS CognitionConcern, r.needs AS NeedsJson, r.organisation_id AS OrganisationId
                FROM referral r JOIN person p ON p.id = r.person_id WHERE r.id = @ReferralId
                """, new { query.ReferralId });
            if (facts is null || !Referrals.ReferralAccess.MaySee(work.Scope.Actor, facts.OrganisationId))
            {
                throw new Pipeline.NotFound($"Referral {query.ReferralId}");
            }
            var needs = JsonSerializer.Deserialize<List<string>>(facts.NeedsJson, JsonDefaults.Options) ?? [];
            var person = new Needs(facts.Pathway, facts.Sex, facts.Locality, !string.IsNullOrWhiteSpace(facts.InfectionStatus),
                facts.CognitionConcern || needs.Contains("cognition"),
                needs.Contains("transfers") || needs.Contains("medication") || needs.Contains("night-support"));
            var beds = await connection.QueryAsync<BedRow>($"SELECT {Beds.Columns} {Beds.From} WHERE b.status = 'available' AND s.active");
            var outbreaks = (await connection.QueryAsync<long>(
                "SELECT DISTINCT ward_id FROM bed WHERE status = 'closed' AND closed_reason = 'infection'")).ToHashSet();
            var (matches, excluded) = Rank(person, beds, outbreaks, clock.GetUtcNow(), settings.CurrentValue);
            return new Result(person, matches.Take(query.Take).ToList(), excluded);
        }
    }
}
