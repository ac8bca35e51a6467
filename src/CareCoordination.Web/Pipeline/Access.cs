namespace CareCoordination.Pipeline;

/// <summary>Which staff roles may send this message. Every message states its access; none is open by default.</summary>
[AttributeUsage(AttributeTargets.Class, Inherited = false)]
public sealed class AllowRolesAttribute(params string[] roles) : Attribute
{
    public IReadOnlyList<string> Roles { get; } = roles;
}

/// <summary>Partner systems holding this SMART v2 style scope may send this message.</summary>
[AttributeUsage(AttributeTargets.Class, AllowMultiple = false, Inherited = false)]
public sealed class AllowPartnerScopeAttribute(string scope) : Attribute
{
    /// <summary>Any partner with a valid token, whatever its scopes.</summary>
    public const string AnyScope = "*";

    public string Scope { get; } = scope;
}

/// <summary>Anyone, signed in or not, may send this message (sign-in itself, the token endpoint).</summary>
[AttributeUsage(AttributeTargets.Class, Inherited = false)]
public sealed class AllowAnonymousMessageAttribute : Attribute;

/// <summary>
/// A message that is not a command but whose every use is written to the audit trail: a query that reads a
/// person's record, a credential check. Its row is written on a short connection of its own, after the handler.
/// </summary>
public interface IAudited;
