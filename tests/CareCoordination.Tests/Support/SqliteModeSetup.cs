using System.Runtime.CompilerServices;
using CareCoordination.Store;

namespace CareCoordination.Tests.Support;

internal static class SqliteModeSetup
{
    /// <summary>
    /// SQLite's threading mode as the app runs it (SqliteThreading), set before any test's first connection, whichever test
    /// runs first: the suite's concurrency tests (one winner among racing decisions, group commit, kill mid-batch) then hold
    /// in the mode production uses.
    /// </summary>
#pragma warning disable CA2255 // A test assembly's own set-up, run once before any test: what a module initializer is for.
    [ModuleInitializer]
#pragma warning restore CA2255
    internal static void RunAsTheAppDoes() => SqliteThreading.Configure();
}
