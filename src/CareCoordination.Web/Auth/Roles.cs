namespace CareCoordination.Auth;

public static class Roles
{
    public const string Referrer = "referrer";
    public const string Coordinator = "coordinator";
    public const string BedBureau = "bed-bureau";
    public const string Manager = "manager";
    public const string Admin = "admin";

    public static string Describe(string role) => role switch
    {
        Referrer => "Referrer",
        Coordinator => "Coordination centre",
        BedBureau => "Bed bureau",
        Manager => "Manager",
        Admin => "Administrator",
        _ => role,
    };
}

public static class CareClaims
{
    public const string Organisation = "org";
    public const string OrganisationName = "org_name";

    /// <summary>
    /// A partner request's organisation's ODS code and kind, as the store said them at this request's token check
    /// (PartnerTokens.AcceptAsync): set by the server on the principal it makes, never taken from a token.
    /// </summary>
    public const string OrganisationCode = "org_code";

    public const string OrganisationKind = "org_kind";
    public const string DisplayName = "display_name";

    /// <summary>A staff session's stamp: the account's session_stamp when it signed in; a sign-out moves it on (Revocation).</summary>
    public const string SessionStamp = "session";
    public const string ClientId = "client_id";
    public const string Scope = "scope";
}
