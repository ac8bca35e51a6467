using System.Data.Common;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using CareCoordination.Store;
using CsvHelper;
using Dapper;
using Npgsql;

namespace CareCoordination.Features.Reports;

/// <summary>Where the English Indices of Deprivation 2019 lookup comes from: configuration section "Deprivation".</summary>
public sealed class DeprivationSettings
{
    /// <summary>
    /// The ONS postcode to 2011 LSOA lookup as published (PCD_OA_LSOA_MSOA_LAD_*_UK_LU.csv, or the NSPL or ONSPD): read by
    /// its column names, pcds (or pcd, pcd7, pcd8) and lsoa11cd (or lsoa11). Relative paths are from the app's folder.
    /// </summary>
    public string? PostcodeLookupFile { get; set; }

    /// <summary>MHCLG's IoD2019 File 7 (or File 1 saved as CSV): "LSOA code (2011)" and the IMD decile and rank columns.</summary>
    public string? IndexFile { get; set; }

    /// <summary>Local authority district (2019) codes to keep, e.g. E06000052; empty keeps every LSOA in the index file.</summary>
    public string[] LocalAuthorities { get; set; } = [];

    /// <summary>The demo county's illustrative files, used when neither file is set and the demo is seeded.</summary>
    public const string DemoPostcodeLookupFile = "Demo/Deprivation/westmoor-postcode-lsoa11.csv";

    public const string DemoIndexFile = "Demo/Deprivation/westmoor-imd2019.csv";
}

public enum DeprivationLoadOutcome { NotConfigured, Unchanged, Loaded }

/// <summary>Start-up's load of the lookup failed: reports by deprivation refuse rather than count everyone as "not known".</summary>
public sealed class DeprivationLookupFailed(Exception error)
    : Pipeline.DomainFailure("The deprivation lookup did not load at start-up (" + error.GetBaseException().Message + "); this report needs it. See the log.");

/// <summary>
/// Loads the deprivation lookup at start-up: replaced whole when the files (or the local authority filter) change,
/// left alone when they have not, so a restart costs one hash of the files. Postcodes whose LSOA the index does not
/// rank are not kept: they would report as "not known" either way, and the national file shrinks to the county.
/// </summary>
public sealed class DeprivationLookup(Database database, TimeProvider clock, ILogger<DeprivationLookup> logger)
{
    private const string Source = "imd2019";

    // Start-up's load; null when none was started (no files configured), which is as good as loaded.
    private Task<DeprivationLoadOutcome>? _startup;

    /// <summary>
    /// Starts start-up's load and returns at once: a new store's load (0.3 to 0.6 s) no longer stands between start and a
    /// healthy /health (issue 14). What reads the lookup waits for it (<see cref="WhenLoadedAsync"/>), so no report counts
    /// against half a lookup, or against the files it is being replaced from. With <paramref name="after"/>, the load begins
    /// once that ends, and counts as loading until then.
    /// </summary>
    public void StartLoading(string postcodeFile, string indexFile, IReadOnlyCollection<string> localAuthorities, CancellationToken stopping,
        Task? after = null)
    {
        _startup = Task.Run(async () =>
        {
            try
            {
                if (after is not null)
                {
                    await after.WaitAsync(stopping);
                }
                return await LoadFilesAsync(postcodeFile, indexFile, localAuthorities, stopping);
            }
            catch (Exception error) when (error is not OperationCanceledException || !stopping.IsCancellationRequested)
            {
                logger.LogError(error, "The deprivation lookup did not load from {PostcodeFile} and {IndexFile}: the equity report refuses until it does", postcodeFile, indexFile);
                throw;
            }
        }, stopping);
    }

    /// <summary>Null while loading (or never started and so not needed); the failure, if start-up's load failed.</summary>
    public (bool Loading, Exception? Failure) State => _startup switch
    {
        null => (false, null),
        { IsCompletedSuccessfully: true } => (false, null),
        { IsCompleted: true } loaded => (false, loaded.Exception?.GetBaseException() ?? new OperationCanceledException()),
        _ => (true, null),
    };

    /// <summary>Returns once the lookup in the store is the one start-up loads; throws, saying why, if that load failed.</summary>
    public async Task WhenLoadedAsync(CancellationToken cancellationToken)
    {
        if (_startup is not { } loading)
        {
            return;
        }
        try
        {
            await loading.WaitAsync(cancellationToken);
        }
        catch (Exception error) when (!cancellationToken.IsCancellationRequested)
        {
            throw new DeprivationLookupFailed(error);
        }
    }

    public static readonly string[] PostcodeColumns = ["pcds", "pcd", "pcd7", "pcd8"];
    public static readonly string[] PostcodeLsoaColumns = ["lsoa11cd", "lsoa11"];
    public const string IndexLsoaColumn = "LSOA code (2011)";
    public const string IndexNameColumn = "LSOA name (2011)";
    public const string IndexAuthorityColumn = "Local Authority District code (2019)";
    public const string IndexDecileColumn = "Index of Multiple Deprivation (IMD) Decile";
    public const string IndexRankColumn = "Index of Multiple Deprivation (IMD) Rank";

    private sealed record Area(string LsoaCode, string? LsoaName, int? ImdRank, int ImdDecile);

    /// <summary>The configured files; the demo's when none are set and the demo county is seeded.</summary>
    public static (string Postcodes, string Index)? FilesFrom(DeprivationSettings settings, bool demoSeeded)
    {
        var postcodes = settings.PostcodeLookupFile;
        var index = settings.IndexFile;
        if (string.IsNullOrWhiteSpace(postcodes) && string.IsNullOrWhiteSpace(index))
        {
            return demoSeeded ? (Resolve(DeprivationSettings.DemoPostcodeLookupFile), Resolve(DeprivationSettings.DemoIndexFile)) : null;
        }
        if (string.IsNullOrWhiteSpace(postcodes) || string.IsNullOrWhiteSpace(index))
        {
            throw new InvalidOperationException("Deprivation: set both PostcodeLookupFile and IndexFile, or neither.");
        }
        return (Resolve(postcodes), Resolve(index));
    }

    private static string Resolve(string path) => Path.IsPathRooted(path) ? path : Path.Combine(AppContext.BaseDirectory, path);

    /// <summary>
    /// Loads these files after start-up's load has ended, however that ended: two loads at once would leave whichever
    /// committed last, so a load asked for while start-up's ran could be undone by it a moment later (the equity report's
    /// test lookup was replaced by the demo county's that way in CI).
    /// </summary>
    public async Task<DeprivationLoadOutcome> LoadAsync(string postcodeFile, string indexFile, IReadOnlyCollection<string> localAuthorities,
        CancellationToken cancellationToken = default)
    {
        if (_startup is { } startup)
        {
            // Its failure is start-up's to report (State, the health check); this load may be the one that mends it.
            await ((Task)startup).WaitAsync(cancellationToken).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            cancellationToken.ThrowIfCancellationRequested();
        }
        return await LoadFilesAsync(postcodeFile, indexFile, localAuthorities, cancellationToken);
    }

    private async Task<DeprivationLoadOutcome> LoadFilesAsync(string postcodeFile, string indexFile, IReadOnlyCollection<string> localAuthorities,
        CancellationToken cancellationToken)
    {
        var authorities = localAuthorities.Select(a => a.Trim().ToUpperInvariant()).Where(a => a.Length > 0).ToHashSet(StringComparer.Ordinal);
        var hash = await HashAsync(postcodeFile, indexFile, authorities, cancellationToken);
        const string loadedHash = "SELECT content_hash FROM deprivation_source WHERE name = @Source";
        await using (var reader = await database.OpenAsync(cancellationToken))
        {
            if (await reader.ExecuteScalarAsync<string?>(new CommandDefinition(loadedHash, new { Source }, cancellationToken: cancellationToken)) == hash)
            {
                return DeprivationLoadOutcome.Unchanged;
            }
        }

        var areas = ReadIndex(indexFile, authorities);
        var postcodes = ReadPostcodes(postcodeFile, areas);
        await using var connection = await database.OpenForBulkWriteAsync(cancellationToken);
        await using var transaction = await database.BeginWriteAsync(connection, cancellationToken);
        // Two nodes starting together: the second waits here, then finds the first one's load.
        await database.LockAsync(connection, transaction, "deprivation-load");
        if (await connection.ExecuteScalarAsync<string?>(new CommandDefinition(loadedHash, new { Source }, transaction, cancellationToken: cancellationToken)) == hash)
        {
            return DeprivationLoadOutcome.Unchanged;
        }
        await connection.ExecuteAsync(new CommandDefinition("DELETE FROM deprivation_postcode", transaction: transaction, cancellationToken: cancellationToken));
        await connection.ExecuteAsync(new CommandDefinition("DELETE FROM deprivation_area", transaction: transaction, cancellationToken: cancellationToken));
        var areaList = areas.Values.ToList();
        await InsertAsync(connection, transaction, "deprivation_area",
        [
            ("lsoa_code", areaList.Select(a => a.LsoaCode).ToArray()),
            ("lsoa_name", areaList.Select(a => a.LsoaName).ToArray()),
            ("imd_rank", areaList.Select(a => a.ImdRank).ToArray()),
            ("imd_decile", areaList.Select(a => a.ImdDecile).ToArray()),
        ], cancellationToken);
        await InsertAsync(connection, transaction, "deprivation_postcode",
            [("postcode", postcodes.Keys.ToArray()), ("lsoa_code", postcodes.Values.ToArray())], cancellationToken);
        await connection.ExecuteAsync(new CommandDefinition(
            """
            DELETE FROM deprivation_source WHERE name = @Source;
            INSERT INTO deprivation_source (name, postcode_file, index_file, content_hash, postcodes, areas, loaded_at)
            VALUES (@Source, @postcodeFile, @indexFile, @hash, @postcodeCount, @areaCount, @now)
            """, new { Source, postcodeFile, indexFile, hash, postcodeCount = postcodes.Count, areaCount = areas.Count, now = clock.GetUtcNow() },
            transaction, cancellationToken: cancellationToken));
        await transaction.CommitAsync(cancellationToken);
        logger.LogInformation("Deprivation lookup loaded: {Postcodes} postcodes in {Areas} LSOAs, from {PostcodeFile} and {IndexFile}",
            postcodes.Count, areas.Count, postcodeFile, indexFile);
        return DeprivationLoadOutcome.Loaded;
    }

    private static async Task<string> HashAsync(string postcodeFile, string indexFile, IEnumerable<string> authorities, CancellationToken cancellationToken)
    {
        using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        foreach (var file in new[] { postcodeFile, indexFile })
        {
            await using var stream = File.OpenRead(file);
            var buffer = new byte[81920];
            int read;
            while ((read = await stream.ReadAsync(buffer, cancellationToken)) > 0)
            {
                sha.AppendData(buffer, 0, read);
            }
            sha.AppendData([0]);
        }
        sha.AppendData(Encoding.UTF8.GetBytes(string.Join(",", authorities.Order(StringComparer.Ordinal))));
        return Convert.ToHexString(sha.GetHashAndReset());
    }

    private static CsvReader Open(string file)
    {
        // The published files have no comment lines; the demo's carry a header saying they are illustrative.
        var csv = CsvReader.Create(File.OpenRead(file), new CsvReaderOptions { Separator = ',', CommentPrefix = '#', TrimWhitespace = true });
        if (csv.Headers.Count == 0)
        {
            csv.Dispose();
            throw new InvalidOperationException($"Deprivation: {file} is empty.");
        }
        return csv;
    }

    /// <summary>The first column whose name is, or starts with, one of <paramref name="names"/> (case and spacing aside).</summary>
    private static int Column(CsvReader csv, string file, bool required, params string[] names)
    {
        var header = csv.Headers;
        foreach (var name in names)
        {
            for (var i = 0; i < header.Count; i++)
            {
                if (header[i].Trim().StartsWith(name, StringComparison.OrdinalIgnoreCase))
                {
                    return i;
                }
            }
        }
        return required
            ? throw new InvalidOperationException($"Deprivation: {file} has no column named {string.Join(" or ", names.Select(n => $"'{n}'"))}; is it the published file?")
            : -1;
    }

    private static Dictionary<string, Area> ReadIndex(string file, HashSet<string> authorities)
    {
        using var csv = Open(file);
        var lsoa = Column(csv, file, true, IndexLsoaColumn, "lsoa11cd");
        var decile = Column(csv, file, true, IndexDecileColumn, "IMD_Decile", "imd_decile");
        var rank = Column(csv, file, false, IndexRankColumn, "IMD_Rank");
        var name = Column(csv, file, false, IndexNameColumn, "lsoa11nm");
        var authority = Column(csv, file, false, IndexAuthorityColumn, "ladcd");
        if (authorities.Count > 0 && authority < 0)
        {
            throw new InvalidOperationException($"Deprivation: LocalAuthorities is set but {file} has no '{IndexAuthorityColumn}' column.");
        }
        var areas = new Dictionary<string, Area>(StringComparer.Ordinal);
        while (csv.Read())
        {
            var code = csv.GetString(lsoa).Trim().ToUpperInvariant();
            if (code.Length == 0 || (authorities.Count > 0 && !authorities.Contains(csv.GetString(authority).Trim().ToUpperInvariant())))
            {
                continue;
            }
            if (!int.TryParse(csv.GetString(decile), NumberStyles.Integer, CultureInfo.InvariantCulture, out var d) || d is < 1 or > 10)
            {
                throw new InvalidOperationException($"Deprivation: {file} record {csv.RowNumber}: the IMD decile of {code} is not 1 to 10.");
            }
            int? r = rank >= 0 && int.TryParse(csv.GetString(rank), NumberStyles.Integer, CultureInfo.InvariantCulture, out var parsed) ? parsed : null;
            areas[code] = new Area(code, name >= 0 ? csv.GetString(name) : null, r, d);
        }
        return areas;
    }

    private static Dictionary<string, string> ReadPostcodes(string file, Dictionary<string, Area> areas)
    {
        using var csv = Open(file);
        var postcode = Column(csv, file, true, PostcodeColumns);
        var lsoa = Column(csv, file, true, PostcodeLsoaColumns);
        var postcodes = new Dictionary<string, string>(StringComparer.Ordinal);
        while (csv.Read())
        {
            var code = csv.GetString(lsoa).Trim().ToUpperInvariant();
            if (areas.ContainsKey(code) && Domain.Postcode.Normalise(csv.GetString(postcode)) is { } normalised)
            {
                postcodes[normalised] = code;
            }
        }
        return postcodes;
    }

    /// <summary>
    /// PERF: a county is tens of thousands of postcodes, and every store the tests start loads the demo's 43,200. SQLite
    /// takes them through one prepared statement in the transaction; PostgreSQL as one typed array per column, unnested in
    /// one statement (150 to 250 ms for the demo file on either engine, on a loaded two-core machine).
    /// </summary>
    private static async Task InsertAsync(DbConnection connection, DbTransaction transaction, string table,
        IReadOnlyList<(string Name, Array Values)> columns, CancellationToken cancellationToken)
    {
        await using var command = connection.CreateCommand();
        command.Transaction = transaction;
        var names = string.Join(", ", columns.Select(c => c.Name));
        var parameters = string.Join(", ", columns.Select((_, i) => $"@c{i}"));
        if (connection is NpgsqlConnection)
        {
            command.CommandText = $"INSERT INTO {table} ({names}) SELECT * FROM unnest({parameters})";
            for (var i = 0; i < columns.Count; i++)
            {
                command.Parameters.Add(new NpgsqlParameter($"c{i}", columns[i].Values));
            }
            await command.ExecuteNonQueryAsync(cancellationToken);
            return;
        }
        command.CommandText = $"INSERT INTO {table} ({names}) VALUES ({parameters})";
        var bound = columns.Select((_, i) =>
        {
            var parameter = command.CreateParameter();
            parameter.ParameterName = $"@c{i}";
            command.Parameters.Add(parameter);
            return parameter;
        }).ToArray();
        command.Prepare();
        for (var row = 0; row < columns[0].Values.Length; row++)
        {
            for (var i = 0; i < columns.Count; i++)
            {
                bound[i].Value = columns[i].Values.GetValue(row) ?? DBNull.Value;
            }
            await command.ExecuteNonQueryAsync(cancellationToken);
        }
    }
}
