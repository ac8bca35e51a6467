using System.Globalization;
using System.Security.Claims;

namespace CareCoordination.Auth;

public enum ActorKind { Anonymous, Staff, Partner, System }

/// <summary>Who is asking: a signed-in member of staff, a partner system, or the system itself.</summary>
public sealed record Actor(
    ActorKind Kind,
    string? Id,
    string Name,
    string? Role,
    long? OrganisationId,
    IReadOnlySet<string> Scopes)
{
    public static Actor Anonymous { get; } = new(ActorKind.Anonymous, null, "anonymous", null, null, new HashSet<string>());
    public static Actor System { get; } = new(ActorKind.System, null, "system", null, null, new HashSet<string>());

    public long? UserId => Kind == ActorKind.Staff && long.TryParse(Id, CultureInfo.InvariantCulture, out var id) ? id : null;

    /// <summary>A member of staff's session: the account's session stamp when it signed in (0 for a session from before stamps).</summary>
    public long SessionStamp { get; init; }

    public static Actor From(ClaimsPrincipal? principal)
    {
        if (principal?.Identity?.IsAuthenticated != true)
        {
            return Anonymous;
        }
        long? organisation = long.TryParse(principal.FindFirstValue(CareClaims.Organisation), CultureInfo.InvariantCulture, out var org) ? org : null;
        var clientId = principal.FindFirstValue(CareClaims.ClientId);
        var fromPartnerToken = principal.Identity.AuthenticationType == PartnerTokens.AuthenticationType;
        if (fromPartnerToken && clientId is not null)
        {
            var scopes = (principal.FindFirstValue(CareClaims.Scope) ?? "").Split(' ', StringSplitOptions.RemoveEmptyEntries);
            return new Actor(ActorKind.Partner, clientId, clientId, null, organisation, scopes.ToHashSet(StringComparer.Ordinal));
        }
        if (fromPartnerToken || clientId is not null)
        {
            // A bearer token only ever speaks for a partner system, whatever else it claims; and a client id anywhere
            // else (a cookie, a sign-in) was not put there by us. Either way it speaks for nobody.
            return Anonymous;
        }
        return new Actor(
            ActorKind.Staff,
            principal.FindFirstValue(ClaimTypes.NameIdentifier),
            // People read this name in notes, timelines and "who has it": the name colleagues know, not the login.
            principal.FindFirstValue(CareClaims.DisplayName) ?? principal.FindFirstValue(ClaimTypes.Name) ?? "unknown",
            principal.FindFirstValue(ClaimTypes.Role),
            organisation,
            new HashSet<string>())
        {
            SessionStamp = long.TryParse(principal.FindFirstValue(CareClaims.SessionStamp), CultureInfo.InvariantCulture, out var stamp) ? stamp : 0,
        };
    }
}

/// <summary>
/// The principal behind the current scope. HTTP requests set it in middleware; a Blazor circuit has no
/// HttpContext to trust, so its circuit handler sets it from the authentication state instead.
/// </summary>
public sealed class ActorAccessor
{
    // One field, replaced whole: the circuit handler may set it from another thread while a message reads it.
    private volatile Holder _current = new(null, Actor.Anonymous);

    public ClaimsPrincipal? Principal
    {
        get => _current.Principal;
        set => _current = new Holder(value, Actor.From(value));
    }

    public Actor Current => _current.Actor;

    /// <summary>For work the system starts itself (a timer), never for a request.</summary>
    public void ActAsSystem() => _current = new Holder(null, Actor.System);

    private sealed record Holder(ClaimsPrincipal? Principal, Actor Actor);
}
