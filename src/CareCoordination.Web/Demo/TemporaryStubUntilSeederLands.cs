// TEMPORARY: placeholder so the host compiles while the seeder is written; removed when DemoSeeder.cs lands.
using CareCoordination.Store;
namespace CareCoordination.Demo;
public sealed record DemoCredentials(string Password, string PartnerSecret);
public enum DemoSeedOutcome { Seeded, AlreadySeeded, RefusedRealData }
public sealed class DemoSeeder(Database database, TimeProvider clock, ILogger<DemoSeeder> logger)
{
    public Task<DemoSeedOutcome> SeedAsync(DemoCredentials credentials, CancellationToken cancellationToken = default)
    {
        _ = (database, clock, logger, credentials, cancellationToken);
        return Task.FromResult(DemoSeedOutcome.AlreadySeeded);
    }
}
