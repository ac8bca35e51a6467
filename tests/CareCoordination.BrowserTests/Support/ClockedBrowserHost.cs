using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.TestHost;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;
using Xunit.Abstractions;

namespace CareCoordination.BrowserTests.Support;

/// <summary>
/// The browser host on a clock the test moves, for what only time passing does on a screen nobody touches (the wall
/// board reading again every 30 s), without a test that waits 30 real seconds. A host of its own: moving its clock fires
/// every timer of every page open on it, which would reach into other tests' pages.
/// </summary>
public sealed class ClockedBrowserHost(IMessageSink diagnostics) : BrowserHost(diagnostics)
{
    /// <summary>The app's clock: still until the test moves it.</summary>
    public FakeTimeProvider Clock { get; } = new(DateTimeOffset.UtcNow);

    protected override void ConfigureWebHost(IWebHostBuilder builder)
    {
        base.ConfigureWebHost(builder);
        builder.ConfigureTestServices(services => services.AddSingleton<TimeProvider>(Clock));
    }
}
