using System.Text.Json;

namespace CareCoordination.Tests.Deployment;

/// <summary>
/// The runtime settings the app ships with in its runtimeconfig.json, which every way of running it reads
/// (dotnet run, the built dll, a publish): docs/performance.md says why each is there.
/// </summary>
public class RuntimeSettingsTests
{
    private static JsonElement ConfigProperties()
    {
        var path = Path.Combine(AppContext.BaseDirectory, "CareCoordination.Web.runtimeconfig.json");
        using var document = JsonDocument.Parse(File.ReadAllText(path));
        return document.RootElement.GetProperty("runtimeOptions").GetProperty("configProperties").Clone();
    }

    [Fact]
    public void Dynamic_PGO_is_off_so_that_a_restart_does_not_JIT_start_up_code_twice() =>
        Assert.False(ConfigProperties().GetProperty("System.Runtime.TieredPGO").GetBoolean());

    [Fact]
    public void Server_GC_keeps_its_heaps_and_budgets_under_load_rather_than_adapting_them_down() =>
        Assert.Equal(0, ConfigProperties().GetProperty("System.GC.DynamicAdaptationMode").GetInt32());

    [Fact]
    public void Idle_pool_threads_do_not_spin_for_the_CPU_the_store_writer_needs() =>
        Assert.Equal(0, ConfigProperties().GetProperty("System.Threading.ThreadPool.UnfairSemaphoreSpinLimit").GetInt32());
}
