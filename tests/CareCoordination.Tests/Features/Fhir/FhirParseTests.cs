using System.Text;
using CareCoordination.Features.Fhir;
using CareCoordination.Tests.Support;
using Hl7.Fhir.Model;

namespace CareCoordination.Tests.Features.Fhir;

/// <summary>
/// FhirRequests.Parse on its own, without a server: Firely now reads the body's own bytes (issue 14) instead of a string
/// decoded from them and encoded back, so the body is checked for UTF-8 in place, and must still be refused at the same
/// byte, and read the same, with or without a byte order mark.
/// </summary>
public sealed class FhirParseTests
{
    private static byte[] Transaction() =>
        Encoding.UTF8.GetBytes(FhirPayloads.ProfileExamplesTransaction("9434765919").ToJsonString());

    private static readonly byte[] ByteOrderMark = [0xEF, 0xBB, 0xBF];

    [Theory]
    [InlineData("C328", false)] // a lead byte without its continuation
    [InlineData("FF", false)] // never in UTF-8
    [InlineData("C0AF", false)] // '/' spelt in two bytes (overlong)
    [InlineData("EDA080", false)] // half of a surrogate pair, encoded
    [InlineData("F4908080", false)] // beyond U+10FFFF
    [InlineData("C328", true)]
    [InlineData("EDA080", true)]
    public void BytesThatAreNotUtf8_AreRefused_AtTheFirstOfThem(string hex, bool withByteOrderMark)
    {
        var body = Transaction();
        // Inside the family name's string, where a reader would otherwise take the bytes as text.
        var at = body.AsSpan().IndexOf("Trelawny"u8);
        Assert.True(at > 0);
        byte[] sent = [.. withByteOrderMark ? ByteOrderMark : [], .. body[..at], .. Convert.FromHexString(hex), .. body[at..]];
        var expected = at + (withByteOrderMark ? ByteOrderMark.Length : 0);

        var refused = Assert.Throws<InvalidResource>(() => FhirRequests.Parse<Bundle>(sent, "Bundle"));

        var issue = Assert.Single(refused.Issues);
        Assert.Null(issue.Expression);
        Assert.Equal($"The body is not valid UTF-8 (byte {expected} and on): send it encoded as UTF-8.", issue.Message);
    }

    [Fact]
    public void AByteOrderMark_IsReadPast_AndTextBeyondAsciiIsKeptAsSent()
    {
        var body = Transaction();
        var at = body.AsSpan().IndexOf("Trelawny"u8);
        // "Trelawny" becomes "Tréla wny": a two-byte é and a three-byte thin space (U+2009).
        byte[] sent = [.. ByteOrderMark, .. body[..at], .. "Tr\u00e9la\u2009wny"u8, .. body[(at + "Trelawny".Length)..]];

        var bundle = FhirRequests.Parse<Bundle>(sent, "Bundle");

        var patient = Assert.Single(bundle.Entry.Select(e => e.Resource).OfType<Patient>());
        Assert.Equal("Tr\u00e9la\u2009wny", patient.Name[0].Family);
        Assert.Equal(2, bundle.Entry.Count);
    }

    [Fact]
    public void FirelysOwnRefusal_StillNamesTheElement_AndTheLineOfTheBytesSent()
    {
        var body = Encoding.UTF8.GetString(Transaction()).Replace("\"gender\":\"female\"", "\n\"gender\":\"woman\"", StringComparison.Ordinal);
        Assert.Contains("\"woman\"", body, StringComparison.Ordinal);

        var refused = Assert.Throws<InvalidResource>(() => FhirRequests.Parse<Bundle>(Encoding.UTF8.GetBytes(body), "Bundle"));

        var issue = Assert.Single(refused.Issues);
        Assert.Contains("woman", issue.Message, StringComparison.Ordinal);
        // The one line break is the one put before gender: Firely counts lines in the bytes it read, which are the ones sent.
        Assert.Matches(@"\bline 2\b", issue.Message);
        Assert.StartsWith("Bundle.entry[0]", issue.Expression, StringComparison.Ordinal);
        Assert.EndsWith("gender", issue.Expression, StringComparison.Ordinal);
    }
}
