// JsonNode and Firely's model are nullable throughout; here a missing value fails the test just as an assert would.
#nullable disable

using System.Text;
using System.Text.Json.Nodes;
using CareCoordination.Features.Fhir;
using CareCoordination.Features.Fhir.Profiles;
using Hl7.Fhir.Model;

namespace CareCoordination.Tests.Features.Fhir;

/// <summary>
/// A write's resources are checked against their profiles from its body as the partner sent it (issue 14: writing each
/// parsed resource out again for the checker was a third of the check). The verdict, and each fault's place and words, are
/// the ones the resource written out gets; for a Bundle's entries and a resource's contained resources too.
/// </summary>
public sealed class FhirProfileAsSentTests
{
    private static readonly FhirProfiles Profiles = FhirProfiles.Load();

    private static readonly Dictionary<string, Func<string>> Bodies = new()
    {
        ["the referral example"] = () => Example(FhirProfiles.Referral).ToJsonString(),
        ["the person example"] = () => Example(FhirProfiles.Person).ToJsonString(),
        ["the triage task example"] = () => Example(FhirProfiles.TriageTask).ToJsonString(),
        ["the bed example"] = () => Example(FhirProfiles.BedLocation).ToJsonString(),
        ["the capacity report example"] = () => Example(FhirProfiles.CapacityReport).ToJsonString(),
        ["a referral with faults in codes, a slice, a fixed value, a choice type and a reference"] = () =>
        {
            var referral = Example(FhirProfiles.Referral);
            referral["code"]["coding"][0]["code"] = "9";
            referral["identifier"][0].AsObject().Remove("system");
            referral["orderDetail"][1]["coding"][0]["code"] = "gardening";
            referral["requester"]["identifier"]["system"] = "https://example.org/Id/ods";
            referral["subject"]["reference"] = "Group/7";
            ExtensionOf(referral, "self-funding").Remove("valueBoolean");
            ExtensionOf(referral, "self-funding")["valueString"] = "yes";
            referral["extension"].AsArray().Add(ExtensionOf(referral, "referral-source").DeepClone());
            ExtensionOf(referral, "hospital-stay")["extension"].AsArray().Add(new JsonObject { ["url"] = "wrad", ["valueString"] = "Ward 9" });
            return referral.ToJsonString();
        },
        ["a person with two NHS numbers and a coding without a system"] = () =>
        {
            var patient = Example(FhirProfiles.Person);
            patient["identifier"].AsArray().Add(new JsonObject { ["system"] = "https://fhir.nhs.uk/Id/nhs-number", ["value"] = "9434765870" });
            return patient.ToJsonString();
        },
        ["a task declined for a reason of its own"] = () =>
        {
            var task = Example(FhirProfiles.TriageTask);
            task["status"] = "rejected";
            task["businessStatus"]["coding"][0]["code"] = "lost";
            task["statusReason"] = new JsonObject { ["coding"] = new JsonArray(new JsonObject { ["system"] = FhirProfiles.Canonical + "/CodeSystem/decline-reason", ["code"] = "far-away" }) };
            return task.ToJsonString();
        },
        ["a transaction of a person and a referral, each with a fault"] = () =>
        {
            var patient = Example(FhirProfiles.Person);
            patient["identifier"][0]["system"] = "https://fhir.hl7.org.uk/Id/nhs-number";
            var referral = Example(FhirProfiles.Referral);
            referral["code"]["coding"][0]["code"] = "step-down";
            return Transaction(patient, referral).ToJsonString();
        },
        ["a referral whose person is contained, with a fault in each"] = () =>
        {
            var patient = Example(FhirProfiles.Person);
            patient["id"] = "person";
            patient["identifier"].AsArray().Add(new JsonObject { ["system"] = "https://fhir.nhs.uk/Id/nhs-number", ["value"] = "9434765870" });
            var referral = Example(FhirProfiles.Referral);
            referral["contained"] = new JsonArray(patient);
            referral["subject"] = new JsonObject { ["reference"] = "#person" };
            referral["orderDetail"][0]["coding"][0]["code"] = "gardening";
            return referral.ToJsonString();
        },
        // Escaped text compares as the text it stands for, as it does once parsed and written out (which escapes nothing here).
        ["the person example with its NHS number's system written with escapes, after a byte order mark"] = () =>
            "\uFEFF" + Example(FhirProfiles.Person).ToJsonString().Replace("https://fhir.nhs.uk/Id/nhs-number", @"https:\/\/fhir.nhs.uk\/Id\/nhs\u002Dnumber", StringComparison.Ordinal),
    };

    public static TheoryData<string> Cases => [.. Bodies.Keys];

    [Theory]
    [MemberData(nameof(Cases))]
    public void AResourceCheckedFromItsBody_GetsTheVerdictOfTheResourceWrittenOut(string body)
    {
        var bytes = Encoding.UTF8.GetBytes(Bodies[body]());
        var sent = FhirRequests.Parse<Resource>(bytes, "Resource");
        var checkedOnes = Profiled(sent).ToList();
        Assert.NotEmpty(checkedOnes);
        var writtenOut = checkedOnes.Select(r => Issues(Profiles.Validate(r))).ToList();
        // Each then made to break its profile, before the check: only a check of the body as sent still gives the verdict above,
        // and Require answers from that verdict, not from a check of its own now.
        foreach (var resource in checkedOnes)
        {
            Break(resource);
        }
        Assert.All(checkedOnes.Zip(writtenOut), pair => Assert.NotEqual(pair.Second, Issues(Profiles.Validate(pair.First))));

        Profiles.CheckAhead(sent, bytes);

        Assert.Equal(writtenOut, checkedOnes.Select(Told).ToList());
        if (body.StartsWith("the ", StringComparison.Ordinal))
        {
            Assert.All(writtenOut, Assert.Empty);
        }
        else
        {
            Assert.Contains(writtenOut, issues => issues.Count > 0);
        }
    }

    [Fact]
    public void TheVerdict_IsOfTheBodyAsSent_ForTheResourceItsEntriesAndWhatTheyContain()
    {
        var person = Example(FhirProfiles.Person);
        person["id"] = "person";
        var referral = Example(FhirProfiles.Referral);
        referral["contained"] = new JsonArray(person.DeepClone());
        referral["subject"] = new JsonObject { ["reference"] = "#person" };
        var bytes = Encoding.UTF8.GetBytes(Transaction(person, referral).ToJsonString());
        var bundle = FhirRequests.Parse<Bundle>(bytes, "Bundle");
        var (entryPerson, entryReferral) = ((Patient)bundle.Entry[0].Resource, (ServiceRequest)bundle.Entry[1].Resource);
        var containedPerson = (Patient)entryReferral.Contained.Single();
        // Each made to break its profile after it was read: only a check of the body itself still finds them sound.
        Break(entryPerson);
        Break(containedPerson);
        Break(entryReferral);
        Assert.All(new Resource[] { entryPerson, containedPerson, entryReferral }, r => Assert.NotEmpty(Profiles.Validate(r)));

        Profiles.CheckAhead(bundle, bytes);

        Assert.All(new Resource[] { entryPerson, containedPerson, entryReferral }, r => Assert.Empty(Told(r)));
    }

    /// <summary>A change that breaks the resource's profile, were it checked again.</summary>
    private static void Break(Resource resource)
    {
        switch (resource)
        {
            case Patient patient: patient.Identifier.Clear(); break;
            case ServiceRequest referral: referral.Status = null; break;
            case Hl7.Fhir.Model.Task task: task.AuthoredOn = null; break;
            case Location bed: bed.OperationalStatus = null; break;
            case MeasureReport report: report.Date = null; break;
            default: throw new ArgumentException($"No way to break a {resource.TypeName} here.", nameof(resource));
        }
    }

    private static IEnumerable<Resource> Profiled(Resource resource)
    {
        var all = resource is Bundle bundle ? bundle.Entry.Select(e => e.Resource) : [resource];
        foreach (var one in all)
        {
            if (FhirProfiles.ProfileFor(one) is not null)
            {
                yield return one;
            }
            foreach (var inner in (one as DomainResource)?.Contained ?? [])
            {
                yield return inner;
            }
        }
    }

    private static List<(string, string)> Issues(IEnumerable<ProfileIssue> issues) => [.. issues.Select(i => (i.Expression, i.Message))];

    private static List<(string, string)> Told(Resource resource)
    {
        try
        {
            Profiles.Require(resource);
            return [];
        }
        catch (InvalidResource refused)
        {
            return [.. refused.Issues.Select(i => (i.Expression, i.Message))];
        }
    }

    private static JsonObject Transaction(JsonObject patient, JsonObject referral)
    {
        referral["subject"] = new JsonObject { ["reference"] = "urn:uuid:7d1c8a52-3c9e-4f34-9e51-2a1f0c3b5d10" };
        return new JsonObject
        {
            ["resourceType"] = "Bundle",
            ["type"] = "transaction",
            ["entry"] = new JsonArray(
                new JsonObject
                {
                    ["fullUrl"] = "urn:uuid:7d1c8a52-3c9e-4f34-9e51-2a1f0c3b5d10",
                    ["resource"] = patient,
                    ["request"] = new JsonObject { ["method"] = "POST", ["url"] = "Patient" },
                },
                new JsonObject
                {
                    ["fullUrl"] = "urn:uuid:0b6a9f0e-8f0d-4d4e-a1b7-5b8d6c1e2f30",
                    ["resource"] = referral,
                    ["request"] = new JsonObject { ["method"] = "POST", ["url"] = "ServiceRequest" },
                }),
        };
    }

    private static JsonObject Example(string profile) => ProfileFiles.ExampleOf(profile);

    private static JsonObject ExtensionOf(JsonObject resource, string name) =>
        resource["extension"].AsArray().First(e => (string)e["url"] == $"{FhirProfiles.Canonical}/StructureDefinition/{name}").AsObject();
}
