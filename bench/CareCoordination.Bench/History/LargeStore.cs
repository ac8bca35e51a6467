using System.Diagnostics;
using System.Globalization;
using Dapper;
using Microsoft.Data.Sqlite;

namespace CareCoordination.Bench.History;

/// <summary>
/// Writes years of history into a store the product has migrated and seeded (demo organisations, sites, wards, staff):
/// referrals with their person, what the referral said of them, their triage tasks and change rows, almost all closed
/// long ago and a few thousand still open, as a county's store looks after some years; beds up to the number asked, each
/// with its status changes. So that the reports (issue 13) have their real work to do, the history also holds what they
/// count (<see cref="People"/>, <see cref="Discharges"/>): varied people (sex, age, ethnic category, a postcode from the
/// deprivation lookup), discharge ready dates, decisions, placements into services and beds, discharges with pathway and
/// destination, and delay reasons. Straight SQL through the product's schema, prepared INSERTs in big transactions: the
/// product's own write path would take hours for a million referrals.
/// </summary>
public sealed class LargeStore(string path, int referrals, int beds, int open)
{
    private static readonly string[] BedTypes = ["rehabilitation", "step-down-nursing", "residential", "nursing", "dementia"];
    private static readonly string[] BedStatuses = ["occupied", "occupied", "occupied", "available", "reserved", "cleaning"];
    private static readonly string[] Closed = ["completed", "completed", "completed", "completed", "placed", "declined", "cancelled"];
    // Most referrals come from the hospitals (the discharge flow), the rest from the community.
    private static readonly string[] Sources = ["acute-hospital", "acute-hospital", "acute-hospital", "acute-hospital", "community-hospital", "gp", "community-step-up"];
    private static readonly string[] DeclineReasons = ["not-eligible", "needs-met", "needs-met", "person-declined", "out-of-area", "no-longer-needed"];
    private const string CodeListVersionsName = CareCoordination.Features.Reports.CodeLists.CodeListVersions.DelayReasons;
    private static readonly string[] Pathways = ["0", "1", "1", "2", "3", "step-up"];
    private static readonly string[] Localities = ["Penmarrow", "Westmoor", "Saltmouth", "Carn Brea", "Trelow"];

    /// <summary>What the measurements need to pick realistic targets: partner referrals and persons, the partner's organisation.</summary>
    public sealed record Written(long PartnerOrganisationId, IReadOnlyList<long> PartnerReferralIds, IReadOnlyList<string> PartnerNhsNumbers, TimeSpan Took);

    public async Task<Written> WriteAsync(long partnerOrganisationId)
    {
        var clock = Stopwatch.StartNew();
        var random = new Random(14);
        await using var connection = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = path, Pooling = false }.ToString());
        await connection.OpenAsync();
        // Generation only: a crash here loses a bench store, not a record.
        await connection.ExecuteAsync("PRAGMA journal_mode = WAL; PRAGMA synchronous = OFF; PRAGMA cache_size = -200000; PRAGMA foreign_keys = OFF;");
        var organisations = (await connection.QueryAsync<long>("SELECT id FROM organisation ORDER BY id")).ToList();
        var wards = (await connection.QueryAsync<long>("SELECT id FROM ward ORDER BY id")).ToList();
        var staff = (await connection.QueryAsync<long>("SELECT id FROM staff_user ORDER BY id")).ToList();
        // Task.owner as the product keeps it (TriageTasks.KeepOwnerAsync): the holder's organisation, else the bed bureau for
        // its queue or the coordination centre of the person's locality.
        var staffOrganisation = (await connection.QueryAsync<(long Id, long Organisation)>("SELECT id, organisation_id FROM staff_user")).ToDictionary(s => s.Id, s => s.Organisation);
        var bureau = await connection.ExecuteScalarAsync<long?>("SELECT MIN(id) FROM organisation WHERE kind = 'bed-bureau'");
        var centres = (await connection.QueryAsync<(string Locality, long Id)>(
            "SELECT locality, MIN(id) FROM organisation WHERE kind = 'coordination-centre' AND locality IS NOT NULL GROUP BY locality")).ToDictionary(c => c.Locality, c => c.Id);
        var now = DateTimeOffset.UtcNow;

        await WriteBedsAsync(connection, wards, random, now);

        var firstPerson = await connection.ExecuteScalarAsync<long>("SELECT COALESCE(MAX(id), 0) + 1 FROM person");
        var firstReferral = await connection.ExecuteScalarAsync<long>("SELECT COALESCE(MAX(id), 0) + 1 FROM referral");
        var firstTask = await connection.ExecuteScalarAsync<long>("SELECT COALESCE(MAX(id), 0) + 1 FROM triage_task");
        using var person = Insert(connection, "person", "id, nhs_number, given_name, family_name, date_of_birth, sex, address_line, postcode, locality, ethnicity, lives_alone, version, created_at, updated_at");
        using var referral = Insert(connection, "referral",
            "id, person_id, organisation_id, status, urgency, ward, medically_optimised_on, needs, strengths, goals, falls_risk, consent_to_share, summary, version, created_at, submitted_at, updated_at, sender_system, sender_value, pathway, source, "
            + "pathway_intended, discharged_at, discharge_recorded_from, pathway_at_discharge, destination_at_discharge, destination_care_level, triaged_at");
        using var placement = Insert(connection, "placement", "referral_id, service_id, bed_id, status, start_on, started_at, ended_at, created_at, hours_per_day, referral_submitted_at");
        using var delayRow = Insert(connection, "discharge_delay", "referral_id, list_name, list_version, code, from_at, to_at, recorded_by_name, recorded_at");
        // What the reports count (issue 13): who the people are, their discharges, delays and placements, in realistic shares.
        var districts = (await connection.QueryAsync<(string District, string Locality)>("SELECT district, locality FROM postcode_district")).ToDictionary(d => d.District, d => d.Locality);
        var people = new People((await connection.QueryAsync<string>("SELECT postcode FROM deprivation_postcode ORDER BY postcode")).ToList(),
            districts, districts.Count > 0 ? [.. districts.Values.Distinct().Order(StringComparer.Ordinal)] : Localities);
        var discharges = new Discharges(
            (await connection.QueryAsync<Discharges.Service>("SELECT id AS Id, kind AS Kind, capacity_unit AS Unit FROM service WHERE active ORDER BY id")).ToList(),
            (await connection.QueryAsync<Discharges.Bed>(
                "SELECT b.id AS Id, b.bed_type AS Type, s.name AS Site, s.kind AS SiteKind FROM bed b JOIN ward w ON w.id = b.ward_id JOIN site s ON s.id = w.site_id ORDER BY b.id")).ToList(),
            (await connection.QueryAsync<Discharges.ListItem>(
                "SELECT l.version AS Version, l.valid_from AS ValidFrom, l.valid_to AS ValidTo, i.code AS Code FROM code_list l JOIN code_list_item i ON i.list_name = l.name AND i.list_version = l.version WHERE l.name = @name ORDER BY l.valid_from, i.sort_order",
                new { name = CodeListVersionsName })).ToList(),
            await connection.QueryAsync<long>("SELECT bed_id FROM placement WHERE bed_id IS NOT NULL AND status IN ('reserved', 'active')"));
        using var said = Insert(connection, "referral_person", "referral_id, person_id, person_version, nhs_number, given_name, family_name, date_of_birth, sex, address_line, postcode, locality, ethnicity, lives_alone, recorded_at");
        using var task = Insert(connection, "triage_task", "id, referral_id, referring_organisation_id, queue, status, owner_user_id, owner_organisation_id, taken_at, decision, version, created_at, updated_at, completed_at");
        using var change = Insert(connection, "change", "at, kind, entity_type, entity_id, organisation_id, actor, data");

        var partnerReferrals = new List<long>();
        var partnerNhsNumbers = new List<string>();
        var nhsSeed = 400_000_000L;
        var nextTask = firstTask;
        var transaction = _transaction = connection.BeginTransaction();
        var firstOpen = referrals - open;
        for (var i = 0; i < referrals; i++)
        {
            if (i % 50_000 == 0 && i > 0)
            {
                transaction.Commit();
                transaction.Dispose();
                transaction = _transaction = connection.BeginTransaction();
                Console.Write($"\r   {i:N0} referrals written ({clock.Elapsed.TotalSeconds:F0} s)");
            }
            var isOpen = i >= firstOpen;
            // Closed history spread over three years; the open ones sent in the last few days.
            var sent = isOpen ? now.AddMinutes(-random.Next(1, 5 * 24 * 60)) : now.AddDays(-3 * 365).AddMinutes((double)i / firstOpen * 3 * 365 * 24 * 60);
            var closedAt = sent.AddDays(random.Next(1, 30));
            var organisation = random.Next(3) == 0 ? partnerOrganisationId : organisations[random.Next(organisations.Count)];
            var nhs = NextNhsNumber(ref nhsSeed);
            var personId = firstPerson + i;
            var referralId = firstReferral + i;
            var given = i % 2 == 0 ? "Morwenna" : "Jago";
            var family = "Penhallow" + (i % 997).ToString(CultureInfo.InvariantCulture);
            var who = people.Next(random, sent);
            var locality = who.Locality;
            var status = isOpen ? (i % 3 == 0 ? "in-triage" : "submitted") : Closed[random.Next(Closed.Length)];
            var source = Sources[random.Next(Sources.Length)];
            var asked = Pathways[random.Next(Pathways.Length)];
            var flow = discharges.Next(random, now, sent, isOpen, status, source, asked);
            var updated = isOpen ? sent : closedAt;
            string? senderSystem = organisation == partnerOrganisationId ? "https://fhir.westmoor-general.nhs.uk/Id/referral" : null;
            string? senderValue = senderSystem is null ? null : "H-" + referralId.ToString(CultureInfo.InvariantCulture);
            if (senderSystem is not null && partnerReferrals.Count < 100_000)
            {
                partnerReferrals.Add(referralId);
                partnerNhsNumbers.Add(nhs);
            }

            Run(person, personId, nhs, given, family, Day(who.Born), who.Sex, "2 Harbour Terrace", who.Postcode, locality, who.Ethnicity, i % 4 == 0, 1, Time(sent), Time(sent));
            Run(referral, referralId, personId, organisation, status, random.Next(4) == 0 ? "urgent" : "routine", "Ward " + (1 + random.Next(12)).ToString(CultureInfo.InvariantCulture),
                flow.Ready is { } ready ? Day(ready) : null,
                """["dressing","mobility"]""", "Walks with a frame; close family nearby.",
                "To go home and manage the stairs again.", random.Next(5) == 0, true, "Fall at home, hip repaired; medically optimised, needs support to go home.",
                isOpen ? 1 : 4, Time(sent), Time(sent), Time(updated), senderSystem, senderValue, asked, source,
                flow.PathwayIntended, flow.DischargedAt is { } left ? Time(left) : null, flow.RecordedFrom, flow.PathwayAtDischarge, flow.Destination, flow.CareLevel,
                // Triage's end as the product keeps it (TriageTasks.KeepTriagedAsync): the coordination centre's first decision.
                isOpen || status == "cancelled" ? null : Time(flow.DecidedAt));
            Run(said, referralId, personId, 1, nhs, given, family, Day(who.Born), who.Sex, "2 Harbour Terrace", who.Postcode, locality, who.Ethnicity, i % 4 == 0, Time(sent));

            // The triage: open ones wait in a queue; closed ones were decided as the product decides (TriageTasks.CloseAsync): accepted into a
            // service, or passed to the bed bureau and accepted there, or declined, or the task cancelled with the referral.
            var queue = flow.Bed ? "bed-bureau" : random.Next(5) == 0 && isOpen ? "bed-bureau" : "coordination";
            if (isOpen)
            {
                var taskStatus = status == "in-triage" ? "in-progress" : "requested";
                long? owner = taskStatus == "in-progress" ? staff[random.Next(staff.Count)] : null;
                long? ownerOrganisation = owner is { } holder ? staffOrganisation[holder] : queue == "bed-bureau" ? bureau : centres.TryGetValue(locality, out var centre) ? centre : null;
                Run(task, nextTask, referralId, organisation, queue, taskStatus, owner, ownerOrganisation, owner is null ? null : Time(sent.AddMinutes(20)), null, 1, Time(sent), Time(sent), null);
                Run(change, Time(sent), "task.created", "triage_task", nextTask++, organisation, "bench", $$"""{"referralId":{{referralId}},"status":"requested"}""");
            }
            else
            {
                var decided = flow.DecidedAt;
                var coordinator = staff[random.Next(staff.Count)];
                var (coordinationStatus, coordinationDecision) = status switch
                {
                    "declined" => ("rejected", "declined: " + DeclineReasons[random.Next(DeclineReasons.Length)]),
                    "cancelled" => ("cancelled", (string?)null),
                    _ when flow.Bed => ("completed", "redirected to bed bureau"),
                    _ => ("completed", "accepted: " + flow.ServiceKind),
                };
                Run(task, nextTask, referralId, organisation, "coordination", coordinationStatus, coordinator, staffOrganisation[coordinator], Time(sent.AddMinutes(20)),
                    coordinationDecision, 3, Time(sent), Time(decided), Time(decided));
                Run(change, Time(sent), "task.created", "triage_task", nextTask, organisation, "bench", $$"""{"referralId":{{referralId}},"status":"requested"}""");
                Run(change, Time(sent.AddMinutes(20)), "task.taken", "triage_task", nextTask++, organisation, "bench", null);
                if (flow.Bed)
                {
                    var bureauStaff = staff[random.Next(staff.Count)];
                    var reserved = decided.AddHours(2 + random.Next(48));
                    Run(task, nextTask, referralId, organisation, "bed-bureau", "completed", bureauStaff, staffOrganisation[bureauStaff], Time(decided.AddMinutes(30)),
                        $"accepted: {flow.BedType} bed, {flow.SiteName}", 3, Time(decided), Time(reserved), Time(reserved));
                    Run(change, Time(decided), "task.created", "triage_task", nextTask++, organisation, "bench", $$"""{"referralId":{{referralId}},"status":"requested"}""");
                }
                if (flow.PlacementStatus is { } placed)
                {
                    Run(placement, referralId, flow.ServiceId, flow.BedId, placed, Day(DateOnly.FromDateTime(flow.StartedAt!.Value.UtcDateTime)),
                        Time(flow.StartedAt.Value), flow.EndedAt is { } ended ? Time(ended) : null, Time(decided.AddHours(1)), flow.HoursPerDay, Time(sent));
                }
                Run(change, Time(closedAt), "referral." + status, "referral", referralId, organisation, "bench", $$"""{"status":"{{status}}"}""");
            }
            foreach (var delay in flow.Delays.Where(d => d.Code != ""))
            {
                Run(delayRow, referralId, CodeListVersionsName, delay.Version, delay.Code, Time(delay.From), delay.To is { } to ? Time(to) : null,
                    "Coordination centre", Time(delay.From.AddHours(1) > now ? now : delay.From.AddHours(1)));
            }
            Run(change, Time(sent), "person.created", "person", personId, null, "bench", null);
            Run(change, Time(sent), "referral.submitted", "referral", referralId, organisation, "bench", $$"""{"status":"submitted"}""");
        }
        transaction.Commit();
        transaction.Dispose();
        // Each referral's first decision and start as the product keeps them (ReferralFirsts), from the tasks and placements just written.
        await CareCoordination.Features.Referrals.ReferralFirsts.KeepFromAsync(connection, null, firstReferral, timeoutSeconds: 3600);
        Console.WriteLine($"\r   {referrals:N0} referrals written ({clock.Elapsed.TotalSeconds:F0} s); ANALYZE, checkpoint");
        // As an operator's store would have it after PRAGMA optimize; the product's queries must not depend on it, but SQLite's
        // planner does use it, so measure with it.
        await connection.ExecuteAsync("PRAGMA optimize; PRAGMA wal_checkpoint(TRUNCATE);");
        return new Written(partnerOrganisationId, partnerReferrals, partnerNhsNumbers, clock.Elapsed);
    }

    private async Task WriteBedsAsync(SqliteConnection connection, IReadOnlyList<long> wards, Random random, DateTimeOffset now)
    {
        var existing = await connection.ExecuteScalarAsync<int>("SELECT COUNT(*) FROM bed");
        using var transaction = _transaction = connection.BeginTransaction();
        using var bed = Insert(connection, "bed", "ward_id, label, bed_type, allowed_sex, status, confirmed_at, version");
        for (var i = existing; i < beds; i++)
        {
            Run(bed, wards[i % wards.Count], "G" + i.ToString(CultureInfo.InvariantCulture), BedTypes[random.Next(BedTypes.Length)], "any",
                BedStatuses[random.Next(BedStatuses.Length)], Time(now.AddHours(-random.Next(1, 12))), 1);
        }
        // Each bed's history of status changes: some 40 a bed over three years, in the change feed and in bed_state (the
        // Capacity Tracker's past days), after the state the product's migration recorded for the demo's beds.
        using var change = Insert(connection, "change", "at, kind, entity_type, entity_id, organisation_id, actor, data");
        using var state = Insert(connection, "bed_state", "bed_id, from_at, version, status, bed_type");
        foreach (var (id, type) in (await connection.QueryAsync<(long, string)>("SELECT id, bed_type FROM bed", transaction: transaction)).ToList())
        {
            for (var c = 0; c < 40; c++)
            {
                var at = Time(now.AddDays(-3 * 365 + c * 27));
                Run(change, at, "bed.status", "bed", id, null, "bench", $$"""{"status":"{{BedStatuses[c % BedStatuses.Length]}}"}""");
                Run(state, id, at, 100 + c, BedStatuses[c % BedStatuses.Length], type);
            }
        }
        transaction.Commit();
    }

    /// <summary>
    /// A prepared INSERT, to be disposed by its caller before the connection moves on: SQLite runs multi-threaded here
    /// (SqliteThreading), and a command left to the garbage collector finalizes its statement on the finalizer thread while
    /// this thread is still writing on the connection, which crashed the generator inside SQLite.
    /// </summary>
    private static SqliteCommand Insert(SqliteConnection connection, string table, string columns)
    {
        var names = columns.Split(',', StringSplitOptions.TrimEntries);
        var command = connection.CreateCommand();
        command.CommandText = $"INSERT INTO {table} ({columns}) VALUES ({string.Join(", ", names.Select((_, i) => "$p" + i.ToString(CultureInfo.InvariantCulture)))})";
        for (var i = 0; i < names.Length; i++)
        {
            command.Parameters.Add(new SqliteParameter("$p" + i.ToString(CultureInfo.InvariantCulture), null));
        }
        return command;
    }

    private SqliteTransaction? _transaction;

    private void Run(SqliteCommand command, params object?[] values)
    {
        command.Transaction = _transaction;
        for (var i = 0; i < values.Length; i++)
        {
            command.Parameters[i].Value = values[i] switch { null => DBNull.Value, bool b => b ? 1 : 0, var v => v };
        }
        command.ExecuteNonQuery();
    }

    // As the product's type handlers write them (Store/TypeHandlers.cs): ISO 8601 UTC text, dates as yyyy-MM-dd.
    private static string Time(DateTimeOffset at) => at.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fffffff'Z'", CultureInfo.InvariantCulture);

    private static string Day(DateOnly day) => day.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture);

    /// <summary>The next valid NHS number (modulus 11 check digit) after <paramref name="seed"/>'s nine digits.</summary>
    private static string NextNhsNumber(ref long seed)
    {
        while (true)
        {
            var digits = (seed++).ToString("D9", CultureInfo.InvariantCulture);
            var check = CareCoordination.Domain.NhsNumber.CheckDigit(digits);
            if (check >= 0)
            {
                return digits + check.ToString(CultureInfo.InvariantCulture);
            }
        }
    }
}
