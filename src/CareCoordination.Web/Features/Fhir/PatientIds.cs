using System.Buffers.Binary;
using System.Globalization;
using System.Security.Cryptography;
using CareCoordination.Auth;
using CareCoordination.Store;
using Dapper;
using Hl7.Fhir.Model;

namespace CareCoordination.Features.Fhir;

/// <summary>
/// Each organisation's own ids for the persons it reads over FHIR. The store numbers a person once, when anyone first
/// sends them; that number handed to a partner would tell it roughly when the person became known here, so an
/// organisation registering someone another knew years ago could read that from the id alone. Instead a Patient's id is
/// the store's number and the organisation's, encrypted together as one AES block under a key kept in the store: the same
/// person has the same id for one organisation every time, another id for every other organisation, and no id says
/// anything of when or by whom the person was first sent. An id is taken back only by the organisation it was given to:
/// another's (or a number) names nobody.
/// </summary>
public sealed class PatientIds(Database database) : IDisposable
{
    /// <summary>app_setting's key: the AES-256 key, base64. Made once; a backup carries it, and every node reads the same.</summary>
    internal const string Setting = "patient-id-key";

    private const string ReadKey = "SELECT value FROM app_setting WHERE key = @Setting";

    private Aes? _cipher;

    public async System.Threading.Tasks.Task LoadAsync(CancellationToken cancellationToken = default)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        var stored = await connection.ExecuteScalarAsync<string?>(ReadKey, new { Setting });
        if (stored is null)
        {
            await using var transaction = await database.BeginWriteAsync(connection, cancellationToken);
            // Nodes starting together on a new store: the first write wins and every node reads it back.
            await connection.ExecuteAsync("INSERT INTO app_setting (key, value) VALUES (@Setting, @Value) ON CONFLICT (key) DO NOTHING",
                new { Setting, Value = Convert.ToBase64String(RandomNumberGenerator.GetBytes(32)) }, transaction);
            stored = await connection.ExecuteScalarAsync<string>(ReadKey, new { Setting }, transaction);
            await transaction.CommitAsync(cancellationToken);
        }
        // Checked here, once, rather than found by every partner's request.
        var key = new byte[32];
        if (!Convert.TryFromBase64String(stored!, key, out var length) || length != 32)
        {
            throw new InvalidOperationException($"app_setting '{Setting}' does not hold a 32-byte key in base64: every Patient id depends on it. Restore it from a backup.");
        }
        var cipher = Aes.Create();
        cipher.Key = key;
        _cipher = cipher;
    }

    /// <summary>The ids the actor's organisation reads: staff read their own organisation's, as a partner of it does (every actor of none shares one space).</summary>
    public PatientIdSpace For(Actor actor) => For(actor.OrganisationId);

    public PatientIdSpace For(long? organisationId) => new(this, organisationId ?? 0);

    private Aes Cipher => _cipher ?? throw new InvalidOperationException("Patient id key not loaded: call LoadAsync at start-up.");

    internal string Encode(long space, long personId)
    {
        Span<byte> block = stackalloc byte[16];
        BinaryPrimitives.WriteInt64BigEndian(block, space);
        BinaryPrimitives.WriteInt64BigEndian(block[8..], personId);
        Span<byte> sealedBlock = stackalloc byte[16];
        var cipher = Cipher;
        // An Aes instance is not documented as safe to share; one block takes about a microsecond.
        lock (cipher)
        {
            cipher.EncryptEcb(block, sealedBlock, PaddingMode.None);
        }
        return Convert.ToHexStringLower(sealedBlock);
    }

    internal long? Decode(long space, string id)
    {
        if (id.Length != 32)
        {
            return null;
        }
        Span<byte> sealedBlock = stackalloc byte[16];
        if (Convert.FromHexString(id, sealedBlock, out _, out var written) != System.Buffers.OperationStatus.Done || written != 16
            || id.Any(char.IsAsciiLetterUpper))
        {
            return null;
        }
        Span<byte> block = stackalloc byte[16];
        var cipher = Cipher;
        lock (cipher)
        {
            cipher.DecryptEcb(sealedBlock, block, PaddingMode.None);
        }
        // Another organisation's id (or made up) opens to another space: 64 bits that must match, so it names nobody here.
        var personId = BinaryPrimitives.ReadInt64BigEndian(block[8..]);
        return BinaryPrimitives.ReadInt64BigEndian(block) == space && personId > 0 ? personId : null;
    }

    public void Dispose()
    {
        if (_cipher is { } cipher)
        {
            lock (cipher)
            {
                cipher.Dispose();
            }
            _cipher = null;
        }
    }
}

/// <summary>
/// One organisation's Patient ids (PatientIds), or the store's own numbers (Store): what the mapping writes for a person,
/// and what an id given back names.
/// </summary>
public sealed class PatientIdSpace
{
    private readonly PatientIds? _ids;
    private readonly long _space;

    internal PatientIdSpace(PatientIds? ids, long space) => (_ids, _space) = (ids, space);

    /// <summary>
    /// The store's numbers, never shown to anyone: what a version kept in fhir_version names, so that a kept version is no
    /// one organisation's; Present turns it into the reader's ids when it is served.
    /// </summary>
    public static PatientIdSpace Store { get; } = new(null, 0);

    /// <summary>What a search by a Patient id this organisation was not given looks for: no person has it, so nothing is found.</summary>
    public const long Nobody = -1;

    public string Id(long personId) => _ids is null ? personId.ToString(CultureInfo.InvariantCulture) : _ids.Encode(_space, personId);

    public string Reference(long personId) => "Patient/" + Id(personId);

    /// <summary>The person an id names for this organisation, or null: an id of another organisation's, or none of ours.</summary>
    public long? PersonId(string id) => _ids is null
        ? long.TryParse(id, NumberStyles.None, CultureInfo.InvariantCulture, out var number) ? number : null
        : _ids.Decode(_space, id);

    /// <summary>The person an id names, or Nobody: what a search or a reference by it looks for, which then finds nothing.</summary>
    public long PersonIdOrNobody(string id) => PersonId(id) ?? Nobody;

    /// <summary>
    /// A version kept in the store (written in Store's numbers) as this organisation reads it: the Patient's own id, and the
    /// Patient a ServiceRequest or Task names. Those are the only places the mapping names a person.
    /// </summary>
    public Resource Present(Resource kept)
    {
        switch (kept)
        {
            case Patient patient when patient.Id is { } id && Store.PersonId(id) is { } personId:
                patient.Id = Id(personId);
                break;
            case ServiceRequest request:
                Present(request.Subject);
                break;
            case Hl7.Fhir.Model.Task task:
                Present(task.For);
                break;
        }
        return kept;
    }

    private void Present(ResourceReference? reference)
    {
        if (reference?.Reference is { } text && text.StartsWith("Patient/", StringComparison.Ordinal)
            && Store.PersonId(text["Patient/".Length..]) is { } personId)
        {
            reference.Reference = Reference(personId);
        }
    }
}
