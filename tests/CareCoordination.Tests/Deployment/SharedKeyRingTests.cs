using System.Net;
using CareCoordination.Store;
using CareCoordination.Tests.Support;
using Dapper;
using Microsoft.AspNetCore.Hosting;

namespace CareCoordination.Tests.Deployment;

/// <summary>
/// Two nodes on one PostgreSQL store, installed in different folders as on two machines: a browser moved
/// from one to the other keeps its sign-in and its half-filled form, because the key ring that seals them
/// is in the store.
/// </summary>
public sealed class SharedKeyRingTests(PostgresAppFactory first) : IClassFixture<PostgresAppFactory>
{
    /// <summary>Another node on the same store (migrated and seeded by the first), with its own install folder.</summary>
    private sealed class SecondNode(string connectionString) : AppFactory(new ExistingStore(connectionString))
    {
        private readonly string _installedAt = Testing.TestScratch.NewFolder("node-");

        protected override void ConfigureWebHost(IWebHostBuilder builder)
        {
            base.ConfigureWebHost(builder);
            builder.UseContentRoot(_installedAt);
        }
    }

    private sealed class ExistingStore(string connectionString) : ITestStore
    {
        public StoreProvider Provider => StoreProvider.PostgreSQL;

        public Task<string> CreateEmptyAsync() => Task.FromResult(connectionString);
    }

    [Fact]
    public async Task AFormFromOneNode_SignsInOnAnother_AndThatSignInIsReadByTheFirst()
    {
        _ = first.Services;
        await using var second = new SecondNode(first.ConnectionString);
        var browser = new HandCookies();
        using var onFirst = first.CreateDefaultClient(browser.Handler());
        using var onSecond = second.CreateDefaultClient(browser.Handler());

        // The form and its antiforgery cookie come from the first node; the second checks them and signs in.
        var signIn = await SignInForm.PostAsync(onFirst, onSecond, "coordinator", AppFactory.Password);
        Assert.Equal(HttpStatusCode.Redirect, signIn.StatusCode);
        _ = browser.LastSet("carecoordination");

        // The first node reads the second's sign-in cookie.
        var me = await onFirst.GetAsync("/api/me");
        Assert.Equal(HttpStatusCode.OK, me.StatusCode);
        Assert.Contains("coordinator", await me.Content.ReadAsStringAsync(), StringComparison.Ordinal);

        // One key for both: the second node found the first's rather than making its own.
        await using var connection = await first.OpenAsync();
        Assert.Equal(1, await connection.ExecuteScalarAsync<long>("SELECT COUNT(*) FROM data_protection_key"));
    }
}

/// <summary>
/// The key ring kept in the store encrypted to a certificate (DataProtection:CertificatePath): no key in the table can be
/// read from a copy of the database alone, and signing in works as before. A certificate that cannot be used stops the start.
/// </summary>
public sealed class SharedKeyRingAtRestTests : IDisposable
{
    private const string Password = "ring-password";
    private readonly string _certificate = CertificateFile(Password);

    /// <summary>A node on a PostgreSQL store of its own, with the key-encryption certificate at <paramref name="path"/>.</summary>
    private sealed class CertifiedNode(string path, string password) : AppFactory(new PostgresTestStore())
    {
        protected override void ConfigureWebHost(IWebHostBuilder builder)
        {
            base.ConfigureWebHost(builder);
            builder.UseSetting("DataProtection:CertificatePath", path);
            builder.UseSetting("DataProtection:CertificatePassword", password);
        }
    }

    private static string CertificateFile(string password)
    {
        using var rsa = System.Security.Cryptography.RSA.Create(2048);
        var request = new System.Security.Cryptography.X509Certificates.CertificateRequest(
            "CN=CareCoordination test key ring", rsa, System.Security.Cryptography.HashAlgorithmName.SHA256, System.Security.Cryptography.RSASignaturePadding.Pkcs1);
        using var certificate = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddYears(1));
        var path = Testing.TestScratch.NewPath("ring-", ".pfx");
        File.WriteAllBytes(path, certificate.Export(System.Security.Cryptography.X509Certificates.X509ContentType.Pkcs12, password));
        return path;
    }

    [Fact]
    public async Task WithACertificate_TheKeyInTheStoreIsEncrypted_AndSignInWorksAsBefore()
    {
        await using var node = new CertifiedNode(_certificate, Password);
        using var client = node.CreateBrowserlessClient();

        Assert.Equal(HttpStatusCode.Redirect, (await node.SignInAsync(client, "coordinator", AppFactory.Password)).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await client.GetAsync("/api/me")).StatusCode);

        await using var connection = await node.OpenAsync();
        var key = Assert.Single(await connection.QueryAsync<string>("SELECT xml FROM data_protection_key"));
        Assert.Contains("<encryptedSecret", key, StringComparison.Ordinal);
        // Kept as it is, the key's secret is a <value> inside <masterKey>: here there is none to read.
        Assert.DoesNotContain("<value>", key, StringComparison.Ordinal);
    }

    [Fact]
    public void ACertificateThatCannotBeRead_StopsTheStart_SayingWhich()
    {
        using var node = new CertifiedNode(_certificate, "not the password");

        var failure = Record.Exception(() => node.Services);

        Assert.NotNull(failure);
        var said = string.Join(" | ", Causes(failure));
        Assert.Contains("DataProtection:CertificatePath", said, StringComparison.Ordinal);

        static IEnumerable<string> Causes(Exception? e)
        {
            for (; e is not null; e = e.InnerException)
            {
                yield return e.Message;
            }
        }
    }

    public void Dispose() => File.Delete(_certificate);
}
