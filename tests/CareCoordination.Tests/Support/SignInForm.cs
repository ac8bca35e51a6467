using System.Net;
using System.Text.RegularExpressions;

namespace CareCoordination.Tests.Support;

/// <summary>The real sign-in page as a browser uses it, over any client: the test host's, or real HTTP to a node or a proxy.</summary>
public static partial class SignInForm
{
    /// <summary>GET the form, POST it back with its antiforgery token. A redirect is a sign-in; 200 is the page again with why not.</summary>
    public static Task<HttpResponseMessage> PostAsync(HttpClient client, string username, string password, string returnUrl = "/") =>
        PostAsync(client, client, username, password, returnUrl);

    /// <summary>The form from one node posted to another, as when a browser is moved off a node between the two.</summary>
    public static async Task<HttpResponseMessage> PostAsync(HttpClient formFrom, HttpClient postTo, string username, string password, string returnUrl = "/")
    {
        var form = await formFrom.GetStringAsync($"/signin?returnUrl={Uri.EscapeDataString(returnUrl)}");
        var token = AntiforgeryField().Match(form).Groups[1].Value;
        using var post = new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["_handler"] = "signin",
            ["__RequestVerificationToken"] = WebUtility.HtmlDecode(token),
            ["Input.Username"] = username,
            ["Input.Password"] = password,
        });
        return await postTo.PostAsync($"/signin?returnUrl={Uri.EscapeDataString(returnUrl)}", post);
    }

    public const string LockedOut = "Too many failed sign-ins";

    [GeneratedRegex("name=\"__RequestVerificationToken\" value=\"([^\"]+)\"")]
    private static partial Regex AntiforgeryField();
}
