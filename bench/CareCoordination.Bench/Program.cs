using CareCoordination.Bench;

// The benchmark of issue 14. One command runs every figure against its bare reference (see docs/performance.md):
//   dotnet run -c Release --project bench/CareCoordination.Bench -- all [--short] [--postgres "Host=..."]
// SQLite's threading mode as the app sets it, before the bench's own first connection (the bare references share it).
CareCoordination.Store.SqliteThreading.Configure();
var command = args.FirstOrDefault() ?? "all";
var options = new Options(args.Skip(1));
try
{
    // Commands that start the product start it as deployed: published ReadyToRun, unless --build or --short.
    if (command is "all" or "load" or "push" or "history" or "first")
    {
        await Product.PublishAsync(options);
    }
    var exit = command switch
    {
        "all" => await All.RunAsync(options),
        "load" => await CareCoordination.Bench.Load.LoadCommand.RunAsync(options),
        "micro" => CareCoordination.Bench.Micro.MicroCommand.Run(options),
        "bare-app" => await CareCoordination.Bench.BareApp.BareApp.RunAsync(options),
        "push" => await CareCoordination.Bench.Push.PushCommand.RunAsync(options),
        "history" => await CareCoordination.Bench.History.HistoryCommand.RunAsync(options),
        "first" => await CareCoordination.Bench.FirstReferral.FirstReferralCommand.RunAsync(options),
        _ => Usage(),
    };
    // Every measuring command ends with its figures and the correctness verdict (a broken guarantee fails the run).
    if (command != "bare-app" && exit != 2)
    {
        Report.Current.Print(Console.Out);
        exit = Report.Current.Failures.Count > 0 ? 1 : exit;
    }
    return exit;
}
finally
{
    Product.Remove();
}

static int Usage()
{
    Console.Error.WriteLine("""
        usage: CareCoordination.Bench <command> [options]
          all        every figure below, one after the other (the default)
          load       partner submissions over HTTP against the product, the bare app and a bare writer; reads while writing,
                     store growth, restart and cold start   [--short] [--postgres "Host=...;Username=..."] [--seconds N] [--rounds N]
                     [--reads-seconds N] [--warmup-seconds N] [--postgres-only] [--keep-databases]
          micro      BenchmarkDotNet: FHIR parse and map, validation, profile check   [--short]
          push       1,000 live boards on capacity while partners send 20 referrals/s: delivery latency, misses, memory per board
                     [--short] [--boards N] [--rate N] [--seconds N] [--rounds N] [--baseline OTHER-CareCoordination.Web.dll]
          history    a large store (1,000,000 referrals, 5,000 beds and their changes), then p95 of the queue, the capacity board and FHIR
                     searches on it against a read by primary key; then every manager's report (page and CSV) for a month, a quarter
                     and a year   [--referrals N] [--beds N] [--calls N] [--report-calls N] [--reports-only] [--report WORDS] [--store FILE] [--keep]
                     [--reuse] [--short]; with --postgres, the same store copied into a PostgreSQL database and measured there too
                     [--postgres-only] [--keep-databases]
          first      the first referral after a start against later ones, with the start-up warm-up off and on   [--short] [--rounds N] [--later N]
          bare-app   the bare reference app, as its own process   --urls http://127.0.0.1:PORT [--store FILE | --postgres CS --database NAME]
        Every command that starts the product publishes it first as it is deployed (ReadyToRun for this machine's runtime, about
        1.5 minutes, less when nothing changed); --composite publishes it self-contained as one ReadyToRun composite with the
        runtime (docs/deployment.md's faster-starting option, about 3.5 minutes); --build, and --short, run the plain build
        instead. push --baseline compares it with the build of another checkout as given.
        PostgreSQL figures also run when CARECOORDINATION_BENCH_POSTGRES holds a server's connection string.
        """);
    return 2;
}
