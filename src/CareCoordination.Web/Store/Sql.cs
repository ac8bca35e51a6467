using System.Data;
using System.Data.Common;
using System.Text.RegularExpressions;

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
