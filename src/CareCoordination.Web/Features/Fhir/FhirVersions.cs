using System.Data.Common;
using System.Globalization;
using System.Text;
using System.Text.Json;
using CareCoordination.Features.BedBureau;
using CareCoordination.Pipeline;
using CareCoordination.Store;
using Dapper;
using Hl7.Fhir.Model;
using Task = System.Threading.Tasks.Task;

namespace CareCoordination.Features.Fhir;

/// <summary>
/// The versions behind vread and _history. Just before a command commits, TransactionBehaviour hands over the
/// changes the command recorded; each referral, triage task, person and bed among them is read as the FHIR read
/// reads it and stored under its current version, unless that version is stored already. So a version is kept in
/// the transaction that made it (a refused or failed command keeps nothing), whichever command made it: a page's,
/// a FHIR write's or a timer's, because every write that moves a version records its change.
/// The current version is always served from the live row, exactly as the read serves it; a stored version is
/// served once it is no longer current. Rows written before this (the demo seed) have no stored versions, so their
/// earlier versions are not found.
/// </summary>
public static class FhirVersions
{
    private sealed record Kind(string ResourceType, Func<DbConnection, DbTransaction, Ids, System.Threading.Tasks.Task<IEnumerable<Resource>>> LoadAsync);

    /// <summary>The change entity types whose rows are FHIR resources with versions, and how each is read: with the read's own select.</summary>
    private static readonly Dictionary<string, Kind> ByEntityType = new()
    {
        ["referral"] = new("ServiceRequest", async (connection, transaction, ids) =>
            (await connection.QueryAsync<FhirReferral>(FhirReferral.Select + $" AND r.id IN ({ids.List})", ids.Parameters, transaction)).Select(FhirMapping.ToServiceRequest)),
        ["triage_task"] = new("Task", async (connection, transaction, ids) =>
            (await connection.QueryAsync<FhirTriageTask>(FhirTriageTask.Select + $" AND t.id IN ({ids.List})", ids.Parameters, transaction)).Select(FhirMapping.ToTask)),
        ["person"] = new("Patient", async (connection, transaction, ids) =>
            (await connection.QueryAsync<FhirPerson>(FhirPerson.Select + $" AND p.id IN ({ids.List})", ids.Parameters, transaction)).Select(FhirMapping.ToPatient)),
        ["bed"] = new("Location", async (connection, transaction, ids) =>
            (await connection.QueryAsync<BedRow>($"SELECT {Beds.Columns} {Beds.From} WHERE b.id IN ({ids.List})", ids.Parameters, transaction))
                .Select(bed => FhirMapping.ToLocation(new FhirPlace(Bed: bed)))),
    };

    /// <summary>
    /// An IN list as one parameter per id (@Id0, @Id1, …): portable, where a list parameter is not (Dapper expands it on
    /// SQLite but sends an array to PostgreSQL), and the same statement text for the same number of ids, so it can be prepared.
    /// </summary>
    private sealed record Ids(string List, DynamicParameters Parameters)
    {
        public static Ids Of(IEnumerable<long> ids)
        {
            var parameters = new DynamicParameters();
            var names = new List<string>();
            foreach (var id in ids.Distinct())
            {
                names.Add(string.Create(CultureInfo.InvariantCulture, $"@Id{names.Count}"));
                parameters.Add(names[^1][1..], id);
            }
            return new Ids(string.Join(", ", names), parameters);
        }
    }

    /// <summary>The resource types served with vread and _history.</summary>
    public static IReadOnlyList<string> ResourceTypes { get; } = [.. ByEntityType.Values.Select(k => k.ResourceType)];

    /// <summary>
    /// In the command's transaction: one read per resource type the command touched, and one insert. A command that
    /// touched none of them costs nothing here.
    /// </summary>
    internal static async Task RecordAsync(DbConnection connection, DbTransaction transaction, IEnumerable<PendingChange> changes)
    {
        var resources = new List<Resource>();
        foreach (var touched in changes.Where(c => ByEntityType.ContainsKey(c.EntityType)).GroupBy(c => c.EntityType))
        {
            resources.AddRange(await ByEntityType[touched.Key].LoadAsync(connection, transaction, Ids.Of(touched.Select(c => c.EntityId))));
        }
        if (resources.Count == 0)
        {
            return;
        }
        var insert = new StringBuilder("INSERT INTO fhir_version (resource_type, resource_id, version, last_updated, packed) VALUES ");
        var parameters = new DynamicParameters();
        for (var i = 0; i < resources.Count; i++)
        {
            var resource = resources[i];
            insert.Append(i == 0 ? "" : ", ").Append(CultureInfo.InvariantCulture, $"(@Type{i}, @Id{i}, @Version{i}, @At{i}, @Json{i})");
            parameters.Add($"Type{i}", resource.TypeName);
            parameters.Add($"Id{i}", resource.Id);
            parameters.Add($"Version{i}", VersionOf(resource));
            parameters.Add($"At{i}", resource.Meta?.LastUpdated ?? throw new InvalidOperationException($"{resource.TypeName}/{resource.Id} has no meta.lastUpdated."));
            // Packed: a version is served from here only once superseded, and then unpacks to the same JSON.
            parameters.Add($"Json{i}", Packing.Pack(Encoding.UTF8.GetBytes(FhirMapping.Serialize(resource))));
        }
        // A change that did not move the version (a re-contact raised, a bed's count confirmed) finds it stored already.
        insert.Append(" ON CONFLICT (resource_type, resource_id, version) DO NOTHING");
        await connection.ExecuteAsync(insert.ToString(), parameters, transaction);
    }

    /// <summary>
    /// Versions of one resource, newest first: <paramref name="current"/> (as the read mapped it, from the live row),
    /// then the stored versions before it. With <paramref name="version"/>, that one version or not found.
    /// </summary>
    public static async System.Threading.Tasks.Task<Page<Resource>> ReadAsync(Database database, Resource current, int? version, int count, int offset,
        CancellationToken cancellationToken)
    {
        var type = current.TypeName;
        if (current.Meta?.VersionId is null)
        {
            throw new NotFound($"A version history of {type}/{current.Id} (only resources with a meta.versionId have one)");
        }
        var currentVersion = VersionOf(current);
        var key = new { Type = type, current.Id, Current = currentVersion, Version = version, Take = 0, Skip = 0 };
        await using var connection = await database.OpenAsync(cancellationToken);
        if (version is { } wanted)
        {
            if (wanted == currentVersion)
            {
                return new Page<Resource>(1, [current]);
            }
            var stored = wanted < currentVersion
                ? await connection.QuerySingleOrDefaultAsync<Stored>(
                    "SELECT resource AS Json, packed AS Packed FROM fhir_version WHERE resource_type = @Type AND resource_id = @Id AND version = @Version", key)
                : null;
            return stored is null ? throw new NotFound($"{type}/{current.Id}/_history/{wanted}") : new Page<Resource>(1, [stored.Parse()]);
        }

        var earlier = await connection.ExecuteScalarAsync<long>(
            "SELECT COUNT(*) FROM fhir_version WHERE resource_type = @Type AND resource_id = @Id AND version < @Current", key);
        var items = new List<Resource>();
        if (offset == 0 && count > 0)
        {
            items.Add(current);
        }
        var take = count - items.Count;
        if (take > 0)
        {
            var rows = await connection.QueryAsync<Stored>(
                """
                SELECT resource AS Json, packed AS Packed FROM fhir_version WHERE resource_type = @Type AND resource_id = @Id AND version < @Current
                ORDER BY version DESC LIMIT @Take OFFSET @Skip
                """, key with { Take = take, Skip = Math.Max(0, offset - 1) });
            items.AddRange(rows.Select(row => row.Parse()));
        }
        return new Page<Resource>(1 + earlier, items);
    }

    public static int VersionOf(Resource resource) => int.Parse(
        resource.Meta?.VersionId ?? throw new InvalidOperationException($"{resource.TypeName}/{resource.Id} has no meta.versionId."),
        NumberStyles.None, CultureInfo.InvariantCulture);

    /// <summary>A stored version: its JSON text (versions kept before migration 0016) or that JSON packed.</summary>
    private sealed class Stored
    {
        // Properties, not a constructor: Dapper matches a constructor by the reader's column types, which SQLite reports from each row.
        public string? Json { get; init; }
        public byte[]? Packed { get; init; }

        public Resource Parse()
        {
            var resource = Json is not null
                ? JsonSerializer.Deserialize<Resource>(Json, FhirMapping.Json)
                : Packed is not null ? JsonSerializer.Deserialize<Resource>(Packing.Unpack(Packed, Packing.Brotli), FhirMapping.Json) : null;
            return resource ?? throw new InvalidOperationException("A stored FHIR version is empty.");
        }
    }
}
