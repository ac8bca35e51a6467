using System.Data;
using System.Data.Common;
using System.Globalization;
using System.Text.RegularExpressions;
using Dapper;

namespace CareCoordination.Store;

public static partial class Sql
{
    /// <summary>
    /// A list of the code's own status constants for an IN clause. Dapper expands a list parameter on SQLite but
    /// passes an array on PostgreSQL, so a parameterised IN is not portable; these values never come from input.
    /// </summary>
    public static string Literals(IEnumerable<string> codes) => string.Join(", ", codes.Select(code =>
        CodeShape().IsMatch(code) ? $"'{code}'" : throw new ArgumentException($"'{code}' is not a status code.", nameof(codes))));

    /// <summary>
    /// An IN list of ids as one parameter each (@Id0, @Id1, …, so one list a command), added to <paramref name="parameters"/>:
    /// portable, where a list parameter is not (Dapper expands it on SQLite but sends an array to PostgreSQL), and the same
    /// statement text for the same number of ids, so the stores' caches of prepared statements stay small.
    /// </summary>
    public static string IdList(IEnumerable<long> ids, DynamicParameters parameters)
    {
        var names = new List<string>();
        foreach (var id in ids.Distinct())
        {
            var name = string.Create(CultureInfo.InvariantCulture, $"Id{names.Count}");
            parameters.Add(name, id);
            names.Add("@" + name);
        }
        return names.Count > 0 ? string.Join(", ", names) : throw new ArgumentException("An IN list needs at least one id.", nameof(ids));
    }

    /// <summary>
    /// A command compiled once on a connection that is kept, for a question asked again and again (the change feed's round,
    /// the revocation check): its parameters, in order, are set before each execution.
    /// </summary>
    public static DbCommand Prepare(DbConnection connection, string text, params (string Name, DbType Type)[] parameters)
    {
        var command = connection.CreateCommand();
        command.CommandText = text;
        foreach (var (name, type) in parameters)
        {
            var parameter = command.CreateParameter();
            parameter.ParameterName = name;
            parameter.DbType = type;
            command.Parameters.Add(parameter);
        }
        command.Prepare();
        return command;
    }

    [GeneratedRegex("^[a-z0-9-]+$")]
    private static partial Regex CodeShape();
}
