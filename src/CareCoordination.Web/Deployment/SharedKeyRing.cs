using System.Xml.Linq;
using CareCoordination.Store;
using Dapper;
using Microsoft.AspNetCore.DataProtection;
using Microsoft.AspNetCore.DataProtection.KeyManagement;
using Microsoft.AspNetCore.DataProtection.Repositories;
using Microsoft.Extensions.Options;

namespace CareCoordination.Deployment;

/// <summary>
/// Sign-in cookies, form tokens and the sign-in page's state are sealed with the Data Protection key ring,
/// so every node behind one load balancer must hold the same ring: a cookie made on one node is then read
/// on any other, and a browser moved off a failed node stays signed in. The ring lives in a folder every
/// node shares (DataProtection:KeysPath) when one is configured, else on PostgreSQL in the store itself,
/// so several nodes need nothing more than their shared database. SQLite is one node: the framework's
/// per-machine folder is enough there.
/// </summary>
public static class SharedKeyRing
{
    // The framework keys the ring to the install folder unless it is named: nodes installed in different
    // folders would not read each other's cookies.
    private const string ApplicationName = "CareCoordination";

    public static IServiceCollection AddSharedKeyRing(this IServiceCollection services, IConfiguration configuration)
    {
        var dataProtection = services.AddDataProtection().SetApplicationName(ApplicationName);
        // The framework leaves the keys unencrypted on Linux: wherever the ring is kept, whoever can read it (a copy of the
        // database, a backup) can seal a sign-in cookie for anyone. With a certificate each key is kept encrypted to it, and
        // only a node holding its private key can use the ring.
        if (configuration["DataProtection:CertificatePath"] is { Length: > 0 } certificatePath)
        {
            dataProtection.ProtectKeysWithCertificate(LoadCertificate(certificatePath, configuration["DataProtection:CertificatePassword"]));
        }
        if (configuration["DataProtection:KeysPath"] is { Length: > 0 } keys)
        {
            dataProtection.PersistKeysToFileSystem(new DirectoryInfo(keys));
            return services;
        }
        services.AddOptions<KeyManagementOptions>().Configure<Database>((options, database) =>
        {
            if (database.Provider == StoreProvider.PostgreSQL)
            {
                options.XmlRepository = new StoreKeyRing(database);
            }
        });
        return services;
    }

    /// <summary>The key-encryption certificate with its private key (a PKCS#12 file), or a start-up failure that says what is wrong.</summary>
    private static System.Security.Cryptography.X509Certificates.X509Certificate2 LoadCertificate(string path, string? password)
    {
        System.Security.Cryptography.X509Certificates.X509Certificate2 certificate;
        try
        {
            certificate = System.Security.Cryptography.X509Certificates.X509CertificateLoader.LoadPkcs12FromFile(path, password);
        }
        catch (Exception failure) when (failure is System.Security.Cryptography.CryptographicException or IOException or UnauthorizedAccessException)
        {
            throw new InvalidOperationException(
                $"DataProtection:CertificatePath ({path}) could not be read as a PKCS#12 (.pfx) file with DataProtection:CertificatePassword: {failure.Message}", failure);
        }
        if (!certificate.HasPrivateKey)
        {
            throw new InvalidOperationException($"DataProtection:CertificatePath ({path}) holds no private key: the key ring could be sealed but never read back.");
        }
        return certificate;
    }

    /// <summary>
    /// Makes the first key before the node serves, under a store lock. Left to the first request, two nodes
    /// starting together would each make one, and for a while each would refuse the other's cookies.
    /// Later keys are made days before they are used, and every node reloads the ring daily, so they need nothing.
    /// </summary>
    public static async Task PrepareKeyRingAsync(this WebApplication app)
    {
        if (app.Services.GetRequiredService<IOptions<KeyManagementOptions>>().Value.XmlRepository is not StoreKeyRing)
        {
            return;
        }
        var database = app.Services.GetRequiredService<Database>();
        var keyManager = app.Services.GetRequiredService<IKeyManager>();
        await using var connection = await database.OpenAsync();
        await using var transaction = await database.BeginWriteAsync(connection);
        await database.LockAsync(connection, transaction, "data-protection-key-ring");
        // The framework's own clock: it judges whether a key is usable by the real time, not by a test's.
        var now = DateTimeOffset.UtcNow;
        if (!keyManager.GetAllKeys().Any(k => !k.IsRevoked && k.ActivationDate <= now && k.ExpirationDate > now))
        {
            var lifetime = app.Services.GetRequiredService<IOptions<KeyManagementOptions>>().Value.NewKeyLifetime;
            keyManager.CreateNewKey(now, now + lifetime);
        }
        await transaction.CommitAsync();
    }

    /// <summary>The key ring as rows of the store's data_protection_key table (migration 0011).</summary>
    internal sealed class StoreKeyRing(Database database) : IXmlRepository
    {
        // The framework's repository contract is synchronous. It is read once when the ring is first used and
        // again about once a day, and written when a key is made: blocking here costs nothing a user waits on.
        public IReadOnlyCollection<XElement> GetAllElements()
        {
            using var connection = database.OpenAsync().GetAwaiter().GetResult();
            return connection.Query<string>("SELECT xml FROM data_protection_key ORDER BY id").Select(x => XElement.Parse(x)).ToList();
        }

        public void StoreElement(XElement element, string friendlyName)
        {
            using var connection = database.OpenAsync().GetAwaiter().GetResult();
            connection.Execute("INSERT INTO data_protection_key (friendly_name, xml) VALUES (@friendlyName, @xml)",
                new { friendlyName, xml = element.ToString(SaveOptions.DisableFormatting) });
        }
    }
}
