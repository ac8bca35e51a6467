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
/// The versions behind vread and _history. The current version of a referral, triage task, person or bed is always
/// served from its live row, exactly as the read serves it, and is not stored (issue 14: a submission keeps no copy of
/// what its rows already say). A version is stored only once it is superseded: every command that moves a version calls
/// KeepSupersededAsync just before its update, in its own transaction, so the version kept is the one last served, and
/// a refused or failed command keeps nothing. Versions superseded before history was kept (the demo seed's earlier
/// versions) are not found.
/// </summary>
public static class FhirVersions
{
    /// <summary>How a kind's rows are read: with the read's own select, narrowed to an IN list (Sql.IdList) of the ids in Parameters.</summary>
    private sealed record Kind(string ResourceType, Func<DbConnection, DbTransaction, string, DynamicParameters, System.Threading.Tasks.Task<IEnumerable<Resource>>> LoadAsync);

    /// <summary>The change entity types whose rows are FHIR resources with versions, and how each is read: with the read's own select.</summary>
    private static readonly Dictionary<string, Kind> ByEntityType = new()
    {
        ["referral"] = new("ServiceRequest", async (connection, transaction, ids, parameters) =>
            (await connection.QueryAsync<FhirReferral>(FhirReferral.Select + $" AND r.id IN ({ids})", parameters, transaction)).Select(referral => FhirMapping.ToServiceRequest(referral, PatientIdSpace.Store))),
        ["triage_task"] = new("Task", async (connection, transaction, ids, parameters) =>
            (await connection.QueryAsync<FhirTriageTask>(FhirTriageTask.Select + $" AND t.id IN ({ids})", parameters, transaction)).Select(task => FhirMapping.ToTask(task, PatientIdSpace.Store))),
        ["person"] = new("Patient", async (connection, transaction, ids, parameters) =>
            (await connection.QueryAsync<FhirPerson>(FhirPerson.Select + $" AND p.id IN ({ids})", parameters, transaction)).Select(person => FhirMapping.ToPatient(person, PatientIdSpace.Store))),
        ["bed"] = new("Location", async (connection, transaction, ids, parameters) =>
            (await connection.QueryAsync<BedRow>($"SELECT {Beds.Columns} {Beds.From} WHERE b.id IN ({ids})", parameters, transaction))
                .Select(bed => FhirMapping.ToLocation(new FhirPlace(Bed: bed)))),
    };

    /// <summary>The resource types served with vread and _history.</summary>
    public static IReadOnlyList<string> ResourceTypes { get; } = [.. ByEntityType.Values.Select(k => k.ResourceType)];

    /// <summary>
    /// Called by a command just before it moves the version of these rows (a referral, triage task, person or bed): in its
    /// transaction, each is read as the FHIR read reads it, and that version, about to be superseded, is kept. The current
    /// version is never stored: it is served from the live row. A row this command already created or changed (it recorded
    /// a change for it) is skipped: its state now is this command's own and was never served; the version it made is the
    /// one left when the command commits. A command that is refused or fails keeps nothing: the insert is in its transaction.
    /// </summary>
    public static async Task KeepSupersededAsync(Work work, string entityType, params IReadOnlyCollection<long> ids)
    {
        var kind = ByEntityType[entityType];
        var changed = work.Scope.Changes;
        var superseded = ids.Where(id => !changed.Any(c => c.EntityType == entityType && c.EntityId == id)).ToList();
        if (superseded.Count == 0)
        {
            return;
        }
        var read = new DynamicParameters();
        var resources = (await kind.LoadAsync(work.Connection, work.Transaction, Sql.IdList(superseded, read), read))
            // A Patient read from a referral sent before versions were kept has none to keep.
            .Where(resource => resource.Meta?.VersionId is not null)
            .ToList();
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
            parameters.Add($"Json{i}", Packing.Pack(Encoding.UTF8.GetBytes(FhirMapping.Serialize(resource))));
        }
        // Stores made before 0023 kept the current version too: it is found there already.
        insert.Append(" ON CONFLICT (resource_type, resource_id, version) DO NOTHING");
        await work.Connection.ExecuteAsync(insert.ToString(), parameters, work.Transaction);
    }

    /// <summary>
    /// Versions of one resource, newest first: <paramref name="current"/> (as the read mapped it, from the live row),
    /// then the stored versions before it, which name persons by the store's numbers (kept in no one organisation's ids),
    /// given the reader's own (<paramref name="patients"/>). With <paramref name="version"/>, that one version or not found.
    /// </summary>
    public static async System.Threading.Tasks.Task<Page<Resource>> ReadAsync(Database database, Resource current, PatientIdSpace patients, int? version,
        int count, int offset, CancellationToken cancellationToken, long? personId = null)
    {
        var type = current.TypeName;
        if (current.Meta?.VersionId is null)
        {
            throw new NotFound($"A version history of {type}/{current.Id} (only resources with a meta.versionId have one)");
        }
        var currentVersion = VersionOf(current);
        // A Patient's versions are kept under the store's number for the person (personId), not the reader's id for them.
        var storeId = personId is { } number ? PatientIdSpace.Store.Id(number) : current.Id;
        var key = new { Type = type, Id = storeId, Current = currentVersion, Version = version, Take = 0, Skip = 0 };
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
            return stored is null ? throw new NotFound($"{type}/{current.Id}/_history/{wanted}") : new Page<Resource>(1, [patients.Present(stored.Parse())]);
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
            items.AddRange(rows.Select(row => patients.Present(row.Parse())));
        }
        return new Page<Resource>(1 + earlier, items);
    }

    public static int VersionOf(Resource resource) => int.Parse(
        resource.Meta?.VersionId ?? throw new InvalidOperationException($"{resource.TypeName}/{resource.Id} has no meta.versionId."),
        NumberStyles.None, CultureInfo.InvariantCulture);

    /// <summary>A stored version: its JSON text (versions kept before migration 0016) or that JSON packed (Brotli before 0023, Zstandard since).</summary>
    private sealed class Stored
    {
        // Properties, not a constructor: Dapper matches a constructor by the reader's column types, which SQLite reports from each row.
        public string? Json { get; init; }
        public byte[]? Packed { get; init; }

        public Resource Parse()
        {
            var resource = Json is not null
                ? JsonSerializer.Deserialize<Resource>(Json, FhirMapping.Json)
                : Packed is not null ? JsonSerializer.Deserialize<Resource>(Packing.Unpack(Packed), FhirMapping.Json) : null;
            return resource ?? throw new InvalidOperationException("A stored FHIR version is empty.");
        }
    }
}
