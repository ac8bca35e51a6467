using CareCoordination.Domain;
using CareCoordination.Features.Referrals;
using CareCoordination.Tests.Support;
using Mediator;

namespace CareCoordination.Tests.Features.Boards;

/// <summary>What the shared board figures' tests do: boards watched by each role asking at once, the clock set, a referral in.</summary>
internal static class OpenBoards
{
    private static readonly string[] Watchers = ["manager", "coordinator", "bedbureau", "admin"];

    /// <summary><paramref name="boards"/> boards asking at once, watched in turn by each role that may open them.</summary>
    public static async Task<T[]> AskAsync<T>(AppFactory app, IMessage query, int boards)
    {
        var callers = await Task.WhenAll(Watchers.Select(app.StaffAsync));
        return await Task.WhenAll(Enumerable.Range(0, boards).Select(i => app.SendAsync<T>(query, callers[i % callers.Length])));
    }

    /// <summary>Ten in the morning, London time, the next day: no test runs into a midnight it did not mean to, and a triage task's wait runs.</summary>
    public static void NextMorning(AppFactory app)
    {
        var tomorrow = LondonTime.Today(app.Clock).AddDays(1);
        app.Clock.Advance(LondonTime.StartOf(tomorrow).AddHours(10) - app.Clock.GetUtcNow());
    }

    /// <summary>A discharge referral submitted today by the referrer; its id.</summary>
    public static async Task<long> SubmitAsync(AppFactory app)
    {
        var form = ReferralForms.Discharge(LondonTime.Today(app.Clock), await app.NewNhsNumberAsync());
        var sent = await app.SendAsync<SubmitReferral.Result>(new SubmitReferral.Command(form, Guid.NewGuid().ToString("N")), await app.StaffAsync("referrer"));
        return sent.ReferralId!.Value;
    }
}
