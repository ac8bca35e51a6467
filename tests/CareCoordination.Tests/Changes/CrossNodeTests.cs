using CareCoordination.Changes;
using CareCoordination.Domain;
using CareCoordination.Features.Referrals;
using CareCoordination.Store;
using CareCoordination.Tests.Support;
using Microsoft.Extensions.DependencyInjection;

namespace CareCoordination.Tests.Changes;

/// <summary>Two nodes on one PostgreSQL store: a change committed on one reaches the other's live screens.</summary>
public sealed class CrossNodeTests(PostgresAppFactory first) : IClassFixture<PostgresAppFactory>
{
    /// <summary>Another node: the same store, already migrated and seeded by the first.</summary>
    private sealed class SecondNode(string connectionString) : AppFactory(new ExistingStore(connectionString));

    private sealed class ExistingStore(string connectionString) : ITestStore
    {
        public StoreProvider Provider => StoreProvider.PostgreSQL;

        public Task<string> CreateEmptyAsync() => Task.FromResult(connectionString);
    }

    [Fact]
    public async Task AReferralSentOnOneNode_IsPublishedByTheOthersFeed_InSeqOrder()
    {
        _ = first.Services;
        await using var second = new SecondNode(first.ConnectionString);
        var heard = new List<Change>();
        var done = new TaskCompletionSource<Change>(TaskCreationOptions.RunContinuationsAsynchronously);
        var form = ReferralForms.Discharge(LondonTime.Today(first.Clock), await first.NewNhsNumberAsync());
        using var subscription = second.Services.GetRequiredService<ChangeFeed>().Subscribe(change =>
        {
            lock (heard)
            {
                heard.Add(change);
            }
            if (change is { Kind: "task.created" })
            {
                done.TrySetResult(change);
            }
            return ValueTask.CompletedTask;
        });

        var sent = await first.SendAsync<SubmitReferral.Result>(new SubmitReferral.Command(form, Guid.NewGuid().ToString("N")), await first.StaffAsync("referrer"));

        var task = await done.Task.WaitAsync(TimeSpan.FromSeconds(10));
        lock (heard)
        {
            Assert.Contains(heard, c => c.Kind == "referral.submitted" && c.EntityId == sent.ReferralId);
            Assert.Equal(heard.Select(c => c.Seq).Order(), heard.Select(c => c.Seq));
        }
        Assert.Contains(sent.ReferralId!.Value.ToString(System.Globalization.CultureInfo.InvariantCulture), task.Data, StringComparison.Ordinal);
    }
}
