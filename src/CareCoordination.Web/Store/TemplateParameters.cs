using System.Collections.Concurrent;
using System.Data;
using Dapper;

namespace CareCoordination.Store;

/// <summary>
/// A command's parameters taken from objects' properties (and a few named values), as Dapper's DynamicParameters takes them,
/// but each command given only the ones its text names, and nothing read back. For a write whose statements share one set of
/// ~80 values (a submission's person, referral, message and task).
/// </summary>
/// <remarks>
/// PERF (issue 14): DynamicParameters adds every property of a template to every command and then reads each parameter's
/// DbType back; Npgsql works that out from the value each time, and for a null date (DBNull through the app's type handlers)
/// it walks its whole type resolver chain without caching the miss: 3.9% of the product's CPU under PostgreSQL load. On
/// SQLite each command bound all ~80 to each statement. Properties are set by Dapper's own generated code, as for any
/// parameter object (type handlers included); named values are set as given.
/// </remarks>
public sealed class TemplateParameters(object template) : SqlMapper.IDynamicParameters
{
    // Dapper's appender for a template type and command text, made once as DynamicParameters makes and keeps its own.
    private static readonly ConcurrentDictionary<SqlMapper.Identity, Action<IDbCommand, object>> Appenders = new();

    private readonly List<object> _templates = [template];
    private readonly List<(string Name, object? Value, DbType? Type)> _values = [];

    /// <summary>Another object's properties; a name two objects share is set by the later one.</summary>
    public void AddDynamicParams(object more) => _templates.Add(more);

    /// <summary>A named value, given to every command whatever its text (as DynamicParameters.Add does).</summary>
    public void Add(string name, object? value, DbType? dbType = null) => _values.Add((name, value, dbType));

    void SqlMapper.IDynamicParameters.AddParameters(IDbCommand command, SqlMapper.Identity identity)
    {
        foreach (var one in _templates)
        {
            var appender = Appenders.GetOrAdd(identity.ForDynamicParameters(one.GetType()),
                key => SqlMapper.CreateParamInfoGenerator(key, checkForDuplicates: true, removeUnused: true));
            appender(command, one);
        }
        foreach (var (name, value, type) in _values)
        {
            var parameter = command.CreateParameter();
            parameter.ParameterName = name;
            parameter.Value = value ?? DBNull.Value;
            if (type is { } known)
            {
                parameter.DbType = known;
            }
            command.Parameters.Add(parameter);
        }
    }
}
