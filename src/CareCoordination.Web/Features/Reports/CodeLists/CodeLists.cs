using System.Data.Common;
using System.Security.Cryptography;
using System.Text.Json;
using System.Text.Json.Serialization;
using CareCoordination.Store;
using Dapper;

namespace CareCoordination.Features.Reports.CodeLists;

/// <summary>One item of a national code list: a code, its family and the words for both.</summary>
public sealed record CodeListItem
{
    public string Code { get; init; } = "";
    public string Family { get; init; } = "";
    public string FamilyLabel { get; init; } = "";
    public string Label { get; init; } = "";
    public int Order { get; init; }
}

/// <summary>The version of a list that applies on a day, with its items in their order.</summary>
public sealed record CodeListVersion(string Name, string Version, string Title, DateOnly ValidFrom, IReadOnlyList<CodeListItem> Items);

/// <summary>
/// National code lists (discharge delay reasons ...) are dated, versioned data in files beside this one (*.json, copied to the
/// output), loaded into code_list / code_list_item at start-up, so that next year's list is a new file and not a code change.
/// A list version applies from its valid_from up to, not including, its valid_to; when two versions of a list both cover a
/// day, the one with the later valid_from applies, so a new version takes over from its valid_from without its predecessor's
/// file being edited. A version once loaded is never reloaded: a file whose content changed for a version already loaded is
/// reported (logged as an error, and in the result) and the stored version is kept, because delays already recorded under it
/// must keep the meaning they were recorded with. To correct a list, publish a new version.
/// </summary>
public sealed class CodeListLoader(Database database, TimeProvider clock, IConfiguration configuration, ILogger<CodeListLoader> logger)
{
    /// <summary>Relative to the application's folder, unless CodeLists:Folder gives another.</summary>
    public const string DefaultFolder = "Features/Reports/CodeLists";

    public sealed record Result(IReadOnlyList<string> Loaded, IReadOnlyList<string> Unchanged, IReadOnlyList<string> Changed);

    public Task<Result> LoadAsync(CancellationToken cancellationToken = default) =>
        LoadAsync(configuration["CodeLists:Folder"] is { Length: > 0 } folder ? folder : DefaultFolder, cancellationToken);

    public async Task<Result> LoadAsync(string folder, CancellationToken cancellationToken)
    {
        var path = Path.IsPathRooted(folder) ? folder : Path.Combine(AppContext.BaseDirectory, folder);
        var files = Directory.Exists(path) ? Directory.GetFiles(path, "*.json").Order(StringComparer.Ordinal).ToList() : [];
        if (files.Count == 0)
        {
            logger.LogWarning("No code list files in {Folder}: delay reasons cannot be recorded until a list is loaded.", path);
        }
        var read = new List<(string Path, string File, byte[] Bytes, string Hash)>();
        foreach (var file in files)
        {
            var bytes = await File.ReadAllBytesAsync(file, cancellationToken);
            read.Add((file, Path.Combine(folder, Path.GetFileName(file)).Replace('\\', '/'), bytes, Convert.ToHexStringLower(SHA256.HashData(bytes))));
        }
        // PERF: a restart (the usual case) finds every file's content loaded already: one read, nothing parsed, nothing written
        // (restart time is a target, issue 14; parsing the files cost more than the rest of this step).
        await using (var connection = await database.OpenAsync(cancellationToken))
        {
            var byHash = await StoredHashesAsync(connection, cancellationToken);
            if (read.All(r => byHash.ContainsKey(r.Hash)))
            {
                return new Result([], [.. read.Select(r => byHash[r.Hash])], []);
            }
        }
        var lists = read.Select(r => (List: Parse(r.Bytes, r.Path), r.File, r.Hash)).ToList();
        var duplicate = lists.GroupBy(l => (l.List.Name, l.List.Version)).FirstOrDefault(g => g.Count() > 1);
        if (duplicate is not null)
        {
            throw new InvalidOperationException(
                $"Code list {duplicate.Key.Name} version {duplicate.Key.Version} is in more than one file: {string.Join(", ", duplicate.Select(d => d.File))}.");
        }

        // Only changed files: reported, not reloaded.
        await using (var connection = await database.OpenAsync(cancellationToken))
        {
            var stored = await StoredAsync(connection, null);
            if (lists.All(l => stored.ContainsKey((l.List.Name, l.List.Version))))
            {
                return Report(lists, stored, []);
            }
        }
        return await database.WriteAsync(async (connection, transaction) =>
        {
            // Two nodes starting together: the second waits here and then finds the lists loaded.
            await database.LockAsync(connection, transaction, "code-lists");
            var stored = await StoredAsync(connection, transaction);
            var loaded = new List<string>();
            foreach (var (list, file, hash) in lists.Where(l => !stored.ContainsKey((l.List.Name, l.List.Version))))
            {
                await connection.ExecuteAsync(
                    """
                    INSERT INTO code_list (name, version, title, valid_from, valid_to, source_file, content_hash, loaded_at)
                    VALUES (@Name, @Version, @Title, @ValidFrom, @ValidTo, @file, @hash, @now)
                    """, new { list.Name, list.Version, list.Title, list.ValidFrom, list.ValidTo, file, hash, now = clock.GetUtcNow() }, transaction);
                await connection.ExecuteAsync(
                    """
                    INSERT INTO code_list_item (list_name, list_version, code, family, family_label, label, sort_order)
                    VALUES (@Name, @Version, @Code, @Family, @FamilyLabel, @Label, @Order)
                    """, list.Items.Select(i => new { list.Name, list.Version, i.Code, i.Family, i.FamilyLabel, i.Label, i.Order }), transaction);
                loaded.Add($"{list.Name} {list.Version}");
                logger.LogInformation("Loaded code list {Name} version {Version} ({Items} items, valid from {ValidFrom}) from {File}.",
                    list.Name, list.Version, list.Items.Count, list.ValidFrom, file);
            }
            return Report(lists, stored, loaded);
        }, cancellationToken);
    }

    private Result Report(List<(ListFile List, string File, string Hash)> lists, Dictionary<(string, string), (string Hash, DateTimeOffset LoadedAt)> stored,
        List<string> loaded)
    {
        var unchanged = new List<string>();
        var changed = new List<string>();
        foreach (var (list, file, hash) in lists)
        {
            if (!stored.TryGetValue((list.Name, list.Version), out var before))
            {
                continue;
            }
            if (before.Hash == hash)
            {
                unchanged.Add($"{list.Name} {list.Version}");
                continue;
            }
            changed.Add($"{list.Name} {list.Version}");
            logger.LogError(
                "Code list {Name} version {Version} in {File} is not the file that was loaded on {LoadedAt:O}: it has changed since. It was NOT reloaded: "
                + "what was recorded under this version keeps the meaning it was recorded with. To correct a list, add a new version in a new file "
                + "(a later valid_from), and put this file back as it was.", list.Name, list.Version, file, before.LoadedAt);
        }
        return new Result(loaded, unchanged, changed);
    }

    private sealed record StoredList
    {
        public string Name { get; init; } = "";
        public string Version { get; init; } = "";
        public string Hash { get; init; } = "";
        public DateTimeOffset LoadedAt { get; init; }
    }

    private static async Task<Dictionary<(string, string), (string Hash, DateTimeOffset LoadedAt)>> StoredAsync(DbConnection connection, DbTransaction? transaction) =>
        (await connection.QueryAsync<StoredList>(
            "SELECT name AS Name, version AS Version, content_hash AS Hash, loaded_at AS LoadedAt FROM code_list", transaction: transaction))
        .ToDictionary(r => (r.Name, r.Version), r => (r.Hash, r.LoadedAt));

    /// <summary>"name version" by content hash. A plain reader: on a restart this is the step's only query, and Dapper's first use of a type costs more.</summary>
    private static async Task<Dictionary<string, string>> StoredHashesAsync(DbConnection connection, CancellationToken cancellationToken)
    {
        await using var command = connection.CreateCommand();
        command.CommandText = "SELECT content_hash, name, version FROM code_list";
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        var byHash = new Dictionary<string, string>(StringComparer.Ordinal);
        while (await reader.ReadAsync(cancellationToken))
        {
            byHash[reader.GetString(0)] = $"{reader.GetString(1)} {reader.GetString(2)}";
        }
        return byHash;
    }

    private static readonly JsonSerializerOptions FileOptions = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        ReadCommentHandling = JsonCommentHandling.Skip,
        AllowTrailingCommas = true,
    };

    /// <summary>A list file that cannot be read stops start-up, naming the file and what is wrong: it is a mistake in the repository.</summary>
    internal static ListFile Parse(byte[] bytes, string file)
    {
        ListFile? list;
        try
        {
            list = JsonSerializer.Deserialize<ListFile>(bytes, FileOptions);
        }
        catch (JsonException e)
        {
            throw new InvalidOperationException($"Code list file {file} is not valid JSON: {e.Message}", e);
        }
        var problems = new List<string>();
        if (list is null)
        {
            throw new InvalidOperationException($"Code list file {file} is empty.");
        }
        if (string.IsNullOrWhiteSpace(list.Name) || string.IsNullOrWhiteSpace(list.Version) || string.IsNullOrWhiteSpace(list.Title))
        {
            problems.Add("name, version and title are required");
        }
        if (list.ValidFrom == default)
        {
            problems.Add("valid_from is required (yyyy-mm-dd)");
        }
        if (list.ValidTo is { } to && to <= list.ValidFrom)
        {
            problems.Add("valid_to must be after valid_from");
        }
        if (list.Items.Count == 0)
        {
            problems.Add("the list has no items");
        }
        if (list.Items.Any(i => string.IsNullOrWhiteSpace(i.Code) || string.IsNullOrWhiteSpace(i.Family) || string.IsNullOrWhiteSpace(i.FamilyLabel)
            || string.IsNullOrWhiteSpace(i.Label)))
        {
            problems.Add("every item needs code, family, family_label and label");
        }
        if (list.Items.GroupBy(i => i.Code).FirstOrDefault(g => g.Count() > 1) is { } twice)
        {
            problems.Add($"code {twice.Key} appears twice");
        }
        return problems.Count == 0 ? list : throw new InvalidOperationException($"Code list file {file}: {string.Join("; ", problems)}.");
    }

    internal sealed record ListFile
    {
        public string Name { get; init; } = "";
        public string Version { get; init; } = "";
        public string Title { get; init; } = "";
        public DateOnly ValidFrom { get; init; }
        public DateOnly? ValidTo { get; init; }
        public string? Source { get; init; }
        public List<CodeListItem> Items { get; init; } = [];
    }
}

/// <summary>Reads of the loaded lists: which version applies on a day, and its items.</summary>
public static class CodeListVersions
{
    public const string DelayReasons = "discharge-delay-reason";

    /// <summary>The version that applies on a London day: of those covering it, the one with the latest valid_from.</summary>
    public static async Task<CodeListVersion?> OnAsync(DbConnection connection, DbTransaction? transaction, string name, DateOnly day)
    {
        var found = await connection.QuerySingleOrDefaultAsync<StoredVersion>(
            """
            SELECT version AS Version, title AS Title, valid_from AS ValidFrom FROM code_list
            WHERE name = @name AND valid_from <= @day AND (valid_to IS NULL OR valid_to > @day)
            ORDER BY valid_from DESC LIMIT 1
            """, new { name, day }, transaction);
        if (found is null)
        {
            return null;
        }
        var items = await connection.QueryAsync<CodeListItem>(
            """
            SELECT code AS Code, family AS Family, family_label AS FamilyLabel, label AS Label, sort_order AS "Order"
            FROM code_list_item WHERE list_name = @name AND list_version = @Version ORDER BY sort_order, code
            """, new { name, found.Version }, transaction);
        return new CodeListVersion(name, found.Version, found.Title, found.ValidFrom, items.ToList());
    }

    private sealed record StoredVersion
    {
        public string Version { get; init; } = "";
        public string Title { get; init; } = "";
        public DateOnly ValidFrom { get; init; }
    }
}
