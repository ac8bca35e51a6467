using System.Data;
using System.Data.Common;
using System.Diagnostics.CodeAnalysis;
using Microsoft.Data.Sqlite;

namespace CareCoordination.Store;

/// <summary>
/// The SQLite writer's own long-lived connection, which keeps each statement it has compiled. Microsoft.Data.Sqlite keeps a
/// command's compiled statements between its executions, but Dapper makes a new command for every call, so each of a
/// referral's ~40 statements was parsed and planned afresh inside the write turn (about a sixth of the server's CPU under
/// load). Here a command Dapper asks for borrows the idle SqliteCommand already compiled for the same text, and gives it back
/// when disposed. Only the writer uses this: one caller at a time holds the connection, so the cache needs no lock.
/// </summary>
internal sealed class StatementCachingConnection(string connectionString) : SqliteConnection(connectionString)
{
    /// <summary>Texts kept; beyond this (statements built for a count of rows or ids) a command is compiled and dropped as before.</summary>
    private const int MaxStatements = 256;

    private readonly Dictionary<string, SqliteCommand> _idle = new(StringComparer.Ordinal);

    /// <summary>Statements compiled on this connection (for tests: a repeated write compiles nothing new).</summary>
    internal int Compiled { get; private set; }

    protected override DbCommand CreateDbCommand() => new ReusedCommand(this);

    internal SqliteCommand Borrow(string text)
    {
        if (_idle.Remove(text, out var idle))
        {
            return idle;
        }
        Compiled++;
        var command = CreateCommand();
        command.CommandText = text;
        return command;
    }

    internal void GiveBack(SqliteCommand command)
    {
        command.Parameters.Clear();
        command.Transaction = null;
        if (State != ConnectionState.Open || _idle.Count >= MaxStatements || !_idle.TryAdd(command.CommandText, command))
        {
            command.Dispose();
        }
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            foreach (var command in _idle.Values)
            {
                command.Dispose();
            }
            _idle.Clear();
        }
        base.Dispose(disposing);
    }

    /// <summary>
    /// What Dapper holds: a command that runs on the SqliteCommand borrowed for its text. Parameters go straight into that
    /// command's collection (cleared when it is given back, so nothing bound for one write is seen by the next).
    /// </summary>
    private sealed class ReusedCommand(StatementCachingConnection connection) : DbCommand
    {
        private SqliteCommand? _borrowed;
        private string _text = "";
        private DbTransaction? _transaction;
        private DbDataReader? _reader;

        private SqliteCommand Borrowed => _borrowed ??= connection.Borrow(_text);

        [AllowNull]
        public override string CommandText
        {
            get => _text;
            set
            {
                value ??= "";
                if (value == _text)
                {
                    return;
                }
                _text = value;
                if (_borrowed is not null)
                {
                    // Text changed after parameters were added (Dapper expanding a list, into the collection it already
                    // holds): the borrowed command takes the new text, compiled afresh, and keeps them.
                    _borrowed.CommandText = value;
                }
            }
        }

        public override int CommandTimeout { get; set; } = 30;

        public override CommandType CommandType
        {
            get => CommandType.Text;
            set
            {
                if (value != CommandType.Text)
                {
                    throw new ArgumentException($"SQLite runs only text commands, not {value}.", nameof(value));
                }
            }
        }

        public override bool DesignTimeVisible { get; set; }

        public override UpdateRowSource UpdatedRowSource { get; set; }

        protected override DbConnection? DbConnection
        {
            get => connection;
            set
            {
                if (value is not null && !ReferenceEquals(value, connection))
                {
                    throw new NotSupportedException("A command of the writer's connection runs on that connection only.");
                }
            }
        }

        protected override DbParameterCollection DbParameterCollection => Borrowed.Parameters;

        protected override DbTransaction? DbTransaction
        {
            get => _transaction;
            set => _transaction = value;
        }

        public override void Cancel() => _borrowed?.Cancel();

        public override void Prepare() => Ready().Prepare();

        protected override DbParameter CreateDbParameter() => new SqliteParameter();

        public override int ExecuteNonQuery() => Ready().ExecuteNonQuery();

        public override object? ExecuteScalar() => Ready().ExecuteScalar();

        protected override DbDataReader ExecuteDbDataReader(CommandBehavior behavior) => _reader = Ready().ExecuteReader(behavior);

        public override Task<int> ExecuteNonQueryAsync(CancellationToken cancellationToken) => Ready().ExecuteNonQueryAsync(cancellationToken);

        public override Task<object?> ExecuteScalarAsync(CancellationToken cancellationToken) => Ready().ExecuteScalarAsync(cancellationToken);

        protected override async Task<DbDataReader> ExecuteDbDataReaderAsync(CommandBehavior behavior, CancellationToken cancellationToken) =>
            _reader = await Ready().ExecuteReaderAsync(behavior, cancellationToken);

        private SqliteCommand Ready()
        {
            var command = Borrowed;
            command.Transaction = (SqliteTransaction?)_transaction;
            command.CommandTimeout = CommandTimeout;
            // Dapper names parameters without a prefix ("Id"). Microsoft.Data.Sqlite then looks each up in each statement as
            // "Id", "@Id", ":Id" and "$Id" (the last three to refuse an ambiguous name), making a UTF-8 copy of the name for
            // every look: 3.6% of a submission's CPU (issue 14). Our SQL writes every parameter as @Name, so named so it is
            // found at the first look, and a statement of a command that does not use it gives up at once.
            foreach (SqliteParameter parameter in command.Parameters)
            {
                if (parameter.ParameterName is { Length: > 0 } name && name[0] is not ('@' or ':' or '$'))
                {
                    parameter.ParameterName = "@" + name;
                }
            }
            return command;
        }

        protected override void Dispose(bool disposing)
        {
            if (disposing && _borrowed is { } borrowed)
            {
                // A reader still open holds the statement; closing it resets the statement for its next use.
                _reader?.Dispose();
                _reader = null;
                _borrowed = null;
                connection.GiveBack(borrowed);
            }
            base.Dispose(disposing);
        }
    }
}
