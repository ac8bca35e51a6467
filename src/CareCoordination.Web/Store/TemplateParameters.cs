using System.Collections.Concurrent;
using System.Data;
using Dapper;

namespace CareCoordination.Store;

/// <summary>
/// A command's parameters taken from plain objects' properties, as Dapper's DynamicParameters takes them (each command is
/// given only the properties its text names, set by Dapper's own generated code, type handlers included), without reading
/// each parameter's type back afterwards. For a write whose statements share one set of ~80 values (a submission's
/// referral, person and message).
/// </summary>
/// <remarks>
/// PERF (issue 14): after adding a template's properties, DynamicParameters reads every parameter's DbType back to record
/// it. Npgsql works that out from the value on each read, and for a null date (DBNull, through the app's type handlers)
/// walks its whole type resolver chain without caching the miss: 3.9% of the product's CPU under PostgreSQL load. Nothing
/// here needs those records (they serve output parameters).
/// </remarks>
public sealed class TemplateParameters : SqlMapper.IDynamicParameters
{
    // Dapper's appender for a template type and command text, made once, as DynamicParameters makes and keeps its own.
    private static readonly ConcurrentDictionary<SqlMapper.Identity, Action<IDbCommand, object>> Appenders = new();

    private readonly List<object> _templates = [];
    private readonly List<(string Name, long? Value)> _ids = [];

    public TemplateParameters(object template) => AddDynamicParams(template);

    /// <summary>Another object's properties; a name two objects share is set by the later one.</summary>
    public void AddDynamicParams(object template)
    {
        // Dapper reads these by other means (a dictionary's entries, another set's own parameters): given here, they would be
        // taken as an object's properties.
        if (template is SqlMapper.IDynamicParameters or System.Collections.IEnumerable)
        {
            throw new ArgumentException("A template is a plain object whose properties are the values.", nameof(template));
        }
        _templates.Add(template);
    }

    /// <summary>A row's id (or null), named by a name no template has, given to every command whatever its text.</summary>
    public void AddId(string name, long? value) => _ids.Add((name, value));

    void SqlMapper.IDynamicParameters.AddParameters(IDbCommand command, SqlMapper.Identity identity)
    {
        foreach (var template in _templates)
        {
            var appender = Appenders.GetOrAdd(identity.ForDynamicParameters(template.GetType()),
                key => SqlMapper.CreateParamInfoGenerator(key, checkForDuplicates: true, removeUnused: true));
            appender(command, template);
        }
        foreach (var (name, value) in _ids)
        {
            var parameter = command.CreateParameter();
            parameter.ParameterName = name;
            parameter.DbType = DbType.Int64;
            parameter.Value = value is { } id ? id : DBNull.Value;
            command.Parameters.Add(parameter);
        }
    }
}
