// JsonNode and Firely's model are nullable throughout; here a missing value fails the test just as an assert would.
#nullable disable

using System.Text.Json;
using System.Text.Json.Nodes;
using CareCoordination.Domain;
using CareCoordination.Features.Fhir;
using CareCoordination.Features.Fhir.Profiles;
using CareCoordination.Tests.Support;
using Hl7.Fhir.Model;
using Hl7.Fhir.Serialization;
using Task = System.Threading.Tasks.Task;

namespace CareCoordination.Tests.Features.Fhir;

/// <summary>
/// The files in fhir-profiles/ as partners read them: they parse as FHIR R4, their examples meet them, the
/// checker refuses what they forbid, and their codes are the app's codes.
/// </summary>
public sealed class FhirProfileTests
{
    private static readonly FhirProfiles Profiles = FhirProfiles.Load();

    [Fact]
    public void EveryConformanceFile_ParsesWithFirely_AndIsNamedByItsCanonicalUrl()
    {
        var files = ProfileFiles.Conformance().ToList();
        Assert.NotEmpty(files);
        foreach (var file in files)
        {
            var resource = ProfileFiles.Parse(file);
            var url = resource switch
            {
                StructureDefinition definition => definition.Url,
                CodeSystem codeSystem => codeSystem.Url,
                ValueSet valueSet => valueSet.Url,
                _ => throw new Xunit.Sdk.XunitException($"{file} is a {resource.TypeName}, not a conformance resource."),
            };
            Assert.Equal($"{resource.TypeName}-{resource.Id}.json", Path.GetFileName(file));
            Assert.Equal($"{FhirProfiles.Canonical}/{resource.TypeName}/{resource.Id}", url);
        }
    }

    [Fact]
    public void EveryConformanceFile_IsEmbeddedInTheWebAssembly_AndNothingElse()
    {
        var embedded = typeof(FhirProfiles).Assembly.GetManifestResourceNames().Where(n => n.StartsWith("fhir-profiles/", StringComparison.Ordinal)).Order();

        Assert.Equal(ProfileFiles.Conformance().Select(f => "fhir-profiles/" + Path.GetFileName(f)).Order(), embedded);
    }

    [Fact]
    public void EveryProfile_HasOneExample_AndEveryExampleClaimsAProfile()
    {
        var profiles = ProfileFiles.Conformance().Select(ProfileFiles.Read)
            .Where(r => (string)r["resourceType"] == "StructureDefinition" && (string)r["type"] != "Extension")
            .Select(r => (string)r["url"]).Order();
        var claimed = ProfileFiles.Examples().Select(ProfileFiles.Read).Select(r => (string)r["meta"]["profile"][0]).Order();

        Assert.Equal(FhirProfiles.ByResourceType.Values.Order(), profiles);
        Assert.Equal(profiles, claimed);
    }

    public static TheoryData<string> Examples => [.. ProfileFiles.Examples().Select(f => Path.GetFileName(f))];

    [Theory]
    [MemberData(nameof(Examples))]
    public void Example_ParsesWithFirely_AndMeetsItsProfile(string example)
    {
        var file = ProfileFiles.Example(example);
        var resource = ProfileFiles.Parse(file);

        Assert.Equal((string)ProfileFiles.Read(file)["meta"]["profile"][0], FhirProfiles.ProfileFor(resource));
        Assert.Empty(Profiles.Validate(resource));
    }

    /// <summary>
    /// Every element a profile's differential requires (min 1 or more), read from the StructureDefinition, with
    /// the required elements of the extensions its slices use, named as if inlined under the slice.
    /// </summary>
    public static TheoryData<string, string> RequiredElements()
    {
        var data = new TheoryData<string, string>();
        foreach (var profile in FhirProfiles.ByResourceType.Values)
        {
            foreach (var element in ProfileFiles.Required(profile))
            {
                data.Add(profile, element);
            }
        }
        return data;
    }

    [Fact]
    public void RequiredElements_AreReadFromTheProfiles_IncludingSubExtensions()
    {
        var required = RequiredElements().Select(row => (string)row[1]).ToList();

        Assert.Contains("ServiceRequest.status", required);
        Assert.Contains("ServiceRequest.extension:referralSource.value[x]", required);
        Assert.Contains("ServiceRequest.extension:hospitalStay.extension:medicallyOptimised", required);
        Assert.Contains("ServiceRequest.extension:consent.extension:shared.value[x]", required);
        Assert.Contains("Patient.identifier:nhsNumber", required);
        Assert.Contains("Location.extension:bedStatus", required);
        Assert.DoesNotContain("ServiceRequest.extension:hospitalStay", required);
        // Issue 12: a referral in the standard shapes (BaRS, UK Core) carries none of our extensions, may name no pathway of
        // ours and may have no note; it is accepted, and what it lacks is marked "information needed" instead.
        Assert.DoesNotContain("ServiceRequest.code", required);
        Assert.DoesNotContain("ServiceRequest.note", required);
        Assert.DoesNotContain("ServiceRequest.extension:referralSource", required);
        Assert.DoesNotContain("ServiceRequest.extension:consent", required);
        Assert.DoesNotContain("ServiceRequest.extension:whatMatters", required);
        Assert.DoesNotContain("ServiceRequest.extension:hospitalStay.extension:bed", required);
    }

    [Theory]
    [MemberData(nameof(RequiredElements))]
    public void ExampleWithoutARequiredElement_IsRefused_NamingIt(string profile, string elementId)
    {
        var example = ProfileFiles.ExampleOf(profile);
        var (removed, emptiedParent) = ProfileFiles.Remove(example, profile, elementId);
        Assert.True(removed > 0, $"The example of {profile} should show {elementId}, so that a test can take it away.");

        var issues = Profiles.Validate(Parse(example, Lenient), profile);

        // An object left empty is no object at all in FHIR JSON: then it is the parent that is missing.
        var expected = emptiedParent ? elementId[..elementId.LastIndexOf('.')] : elementId;
        var named = issues.Where(i => i.ElementId == expected).ToList();
        Assert.True(named.Count > 0, $"No issue names {expected}; the issues were:\n" + string.Join("\n", issues));
        Assert.All(named, issue => Assert.StartsWith(example["resourceType"] + ".", issue.Expression, StringComparison.Ordinal));
    }

    [Theory]
    [InlineData("4")]
    [InlineData("step-down")]
    public void AReferralForAPathwayNotInTheValueSet_IsRefused(string pathway)
    {
        var referral = ProfileFiles.ExampleOf(FhirProfiles.Referral);
        referral["code"]["coding"][0]["code"] = pathway;

        var issue = Assert.Single(Profiles.Validate(Parse(referral)));

        Assert.Equal("ServiceRequest.code", issue.ElementId);
        Assert.Equal("ServiceRequest.code.coding[0]", issue.Expression);
        Assert.Contains($"'{pathway}'", issue.Message, StringComparison.Ordinal);
    }

    /// <summary>The pathway's binding is extensible: a BaRS service code alone meets the profile (the pathway is then information needed).</summary>
    [Fact]
    public void APathwayInSomeoneElsesCodeSystemOnly_MeetsTheProfile_AndOursAlongsideItIsFine()
    {
        var referral = ProfileFiles.ExampleOf(FhirProfiles.Referral);
        var ours = referral["code"]["coding"][0]!.DeepClone();
        referral["code"]["coding"] = new JsonArray(new JsonObject { ["system"] = "http://snomed.info/sct", ["code"] = "306206005" });

        Assert.Empty(Profiles.Validate(Parse(referral)));

        referral["code"]["coding"].AsArray().Add(ours);
        Assert.Empty(Profiles.Validate(Parse(referral)));
    }

    [Fact]
    public void ANeedOrSourceOrRiskNotInItsValueSet_IsRefused()
    {
        var referral = ProfileFiles.ExampleOf(FhirProfiles.Referral);
        referral["orderDetail"][1]["coding"][0]["code"] = "gardening";
        ExtensionOf(referral, "referral-source")["valueCoding"]["code"] = "walk-in";
        ExtensionOf(referral, "referral-risk")["valueCodeableConcept"]["coding"][0]["code"] = "boredom";

        var issues = Profiles.Validate(Parse(referral));

        Assert.Equal(
            ["ServiceRequest.extension:referralSource.value[x]", "ServiceRequest.extension:risk.value[x]", "ServiceRequest.orderDetail"],
            issues.Select(i => i.ElementId).Order());
        Assert.Contains(issues, i => i.Expression == "ServiceRequest.orderDetail[1].coding[0]");
    }

    [Fact]
    public void Issues_BecomeAnOperationOutcome_WithOneErrorEach_SayingWhereAndWhy()
    {
        var referral = ProfileFiles.ExampleOf(FhirProfiles.Referral);
        referral["identifier"][0].AsObject().Remove("system");
        referral["code"]["coding"][0]["code"] = "9";

        var refusal = Assert.Throws<InvalidResource>(() => Profiles.Require(Parse(referral)));
        var (status, outcome) = FhirRequests.Answer(refusal, write: true);

        Assert.Equal(400, status);
        Assert.Equal(2, outcome.Issue.Count);
        Assert.All(outcome.Issue, i => Assert.Equal((OperationOutcome.IssueSeverity.Error, OperationOutcome.IssueType.Invalid), (i.Severity, i.Code)));
        Assert.Equal(["ServiceRequest.code.coding[0]", "ServiceRequest.identifier[0].system"], outcome.Issue.Select(i => i.Expression.Single()).Order());
        Assert.Contains(outcome.Issue, i => i.Diagnostics == "ServiceRequest.identifier.system is required but missing.");
    }

    [Fact]
    public void ACodingWithoutASystem_IsRefused()
    {
        var referral = ProfileFiles.ExampleOf(FhirProfiles.Referral);
        referral["code"]["coding"][0].AsObject().Remove("system");

        Assert.Contains(Profiles.Validate(Parse(referral)), i => i.ElementId == "ServiceRequest.code" && i.Message.Contains("system", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData("https://fhir.nhs.uk/Id/nhs-number-typo")]
    [InlineData("https://fhir.hl7.org.uk/Id/nhs-number")]
    [InlineData("http://westmoor-general.nhs.uk/Id/mrn")]
    public void AnNhsNumberInAnotherSystem_DoesNotFillTheNhsNumberSlice(string system)
    {
        var patient = ProfileFiles.ExampleOf(FhirProfiles.Person);
        patient["identifier"][0]["system"] = system;

        var issue = Assert.Single(Profiles.Validate(Parse(patient)));

        Assert.Equal("Patient.identifier:nhsNumber", issue.ElementId);
        Assert.Equal("Patient.identifier.where(system='https://fhir.nhs.uk/Id/nhs-number')", issue.Expression);
    }

    [Fact]
    public void TwoNhsNumbers_AreRefused_ButAnotherIdentifierBesideOneIsFine()
    {
        var patient = ProfileFiles.ExampleOf(FhirProfiles.Person);
        patient["identifier"].AsArray().Add(new JsonObject { ["system"] = "http://westmoor-general.nhs.uk/Id/mrn", ["value"] = "K1234567" });
        Assert.Empty(Profiles.Validate(Parse(patient)));

        patient["identifier"].AsArray().Add(new JsonObject { ["system"] = "https://fhir.nhs.uk/Id/nhs-number", ["value"] = "9434765870" });
        Assert.Equal("Patient.identifier:nhsNumber", Assert.Single(Profiles.Validate(Parse(patient))).ElementId);
    }

    [Fact]
    public void FixedAndPatternValues_ChoiceTypes_AndReferenceTargets_AreEnforced()
    {
        var referral = ProfileFiles.ExampleOf(FhirProfiles.Referral);
        referral["requester"]["identifier"]["system"] = "https://example.org/Id/ods";
        referral["subject"]["reference"] = "Group/7";
        ExtensionOf(referral, "self-funding").Remove("valueBoolean");
        ExtensionOf(referral, "self-funding")["valueString"] = "yes";

        var issues = Profiles.Validate(Parse(referral));

        Assert.Equal(["ServiceRequest.extension:selfFunding.value[x]", "ServiceRequest.requester.identifier.system", "ServiceRequest.subject"],
            issues.Select(i => i.ElementId).Order());

        var ward = (Location)Parse(ProfileFiles.ExampleOf(FhirProfiles.BedLocation));
        ward.PhysicalType = new CodeableConcept(FhirMapping.PhysicalTypeSystem, "wa", "Ward");
        Assert.Null(FhirProfiles.ProfileFor(ward));
        Assert.Equal("Location.physicalType", Assert.Single(Profiles.Validate(ward, FhirProfiles.BedLocation)).ElementId);
    }

    [Fact]
    public void FaultsInSeveralSlicesAndSubExtensions_AreEachToldOnce_InTheProfilesOrder_AtTheirPlace()
    {
        // The checker reads a node's children by name once and reuses them for every slice that asks (issue 14): each
        // fault is still found under its own slice, once, in the order of the profile's elements.
        var referral = ProfileFiles.ExampleOf(FhirProfiles.Referral);
        referral["extension"].AsArray().Add(ExtensionOf(referral, "referral-source").DeepClone());
        ExtensionOf(referral, "hospital-stay")["extension"].AsArray().Add(new JsonObject { ["url"] = "ward", ["valueString"] = "Ward 8" });
        ExtensionOf(referral, "hospital-stay")["extension"].AsArray().Add(new JsonObject { ["url"] = "wrad", ["valueString"] = "Ward 9" });
        referral.Remove("status");

        var issues = Profiles.Validate(Parse(referral, Lenient));

        Assert.Equal(
        [
            ("ServiceRequest.extension:referralSource", $"ServiceRequest.extension('{FhirProfiles.Canonical}/StructureDefinition/referral-source')"),
            ("ServiceRequest.extension:hospitalStay.extension", "ServiceRequest.extension[1].extension[6]"),
            ("ServiceRequest.extension:hospitalStay.extension:ward", "ServiceRequest.extension[1].extension('ward')"),
            ("ServiceRequest.status", "ServiceRequest.status"),
        ], issues.Select(i => (i.ElementId, i.Expression)));
        Assert.Contains("'wrad'", issues[1].Message, StringComparison.Ordinal);
    }

    /// <summary>
    /// A rule on an element under a repeated one holds under each of them, not only the first or the last: the checker gathers
    /// an element's values from every parent (issue 14 made it gather only when a second parent has any).
    /// </summary>
    [Fact]
    public void ARuleUnderARepeatedElement_IsCheckedUnderEveryOne_NotOnlyTheFirst()
    {
        var patient = ProfileFiles.ExampleOf(FhirProfiles.Person);
        var secondPractice = patient["generalPractitioner"]![0]!.DeepClone();
        secondPractice["identifier"]!["system"] = "https://example.org/Id/practice";
        patient["generalPractitioner"]!.AsArray().Add(secondPractice);

        var issues = Profiles.Validate(Parse(patient));

        Assert.Equal([("Patient.generalPractitioner", "Patient.generalPractitioner"), ("Patient.generalPractitioner.identifier.system", "Patient.generalPractitioner[1].identifier.system")],
            issues.Select(i => (i.ElementId, i.Expression)));

        // Here the first of two parents: neither the first's values nor the last's alone will do.
        var report = ProfileFiles.ExampleOf(FhirProfiles.CapacityReport);
        report["group"]!.AsArray().Add(report["group"]![0]!.DeepClone());
        report["group"]![0]!["population"]![2]!["code"]!["coding"]![0]!["code"] = "beds-imagined";

        var issue = Assert.Single(Profiles.Validate(Parse(report)));
        Assert.Equal("MeasureReport.group.population.code", issue.ElementId);
        Assert.Equal("MeasureReport.group[0].population[2].code.coding[0]", issue.Expression);
    }

    [Fact]
    public void AnUnknownPartOfAComplexExtension_IsRefused()
    {
        var referral = ProfileFiles.ExampleOf(FhirProfiles.Referral);
        ExtensionOf(referral, "hospital-stay")["extension"].AsArray().Add(new JsonObject { ["url"] = "medicalyOptimised", ["valueDate"] = "2025-06-02" });

        var issue = Assert.Single(Profiles.Validate(Parse(referral)));

        Assert.Equal("ServiceRequest.extension:hospitalStay.extension", issue.ElementId);
        Assert.Contains("'medicalyOptimised'", issue.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void ATasksStatusReason_MayBeText_ButACodedDeclineReasonMustBeOurs()
    {
        var task = ProfileFiles.ExampleOf(FhirProfiles.TriageTask);
        task["status"] = "rejected";
        task["businessStatus"]["coding"][0]["code"] = "declined";
        task["statusReason"] = new JsonObject { ["text"] = "Lives in Cornwall" };
        Assert.Empty(Profiles.Validate(Parse(task)));

        task["statusReason"]["coding"] = new JsonArray(new JsonObject { ["system"] = FhirProfiles.Canonical + "/CodeSystem/decline-reason", ["code"] = "out-of-area" });
        Assert.Empty(Profiles.Validate(Parse(task)));

        task["statusReason"]["coding"][0]["code"] = "far-away";
        task["businessStatus"]["coding"][0]["code"] = "lost";
        Assert.Equal(["Task.businessStatus", "Task.statusReason"], Profiles.Validate(Parse(task)).Select(i => i.ElementId).Order());
    }

    [Fact]
    public void CodeSystems_HaveExactlyTheAppsCodes()
    {
        AssertCodes("discharge-pathway", ReferralCodes.Pathways.Select(c => c.Value));
        AssertCodes("referral-source", ReferralCodes.Sources.Select(c => c.Value), ReferralCodes.Sources.Select(c => c.Label));
        AssertCodes("need", ReferralCodes.Needs.Select(c => c.Value), ReferralCodes.Needs.Select(c => c.Label));
        AssertCodes("decline-reason", ReferralCodes.DeclineReasons.Select(c => c.Value), ReferralCodes.DeclineReasons.Select(c => c.Label));
        AssertCodes("bed-type", FhirMapping.BedTypeCodes);
        // Every referral state a partner can see: the ones behind each ServiceRequest status (a draft is never shown).
        AssertCodes("referral-status", FhirMapping.ServiceRequestStatusCodes.SelectMany(FhirMapping.ReferralStatusesFor).Order(), ordered: false);
        AssertCodes("risk", ReferralCodes.Risks.Select(c => c.Value), ReferralCodes.Risks.Select(c => c.Label));
    }

    [Fact]
    public void EveryValueSet_IncludesItsWholeCodeSystem()
    {
        foreach (var file in ProfileFiles.Conformance().Where(f => Path.GetFileName(f).StartsWith("ValueSet-", StringComparison.Ordinal)))
        {
            var valueSet = (ValueSet)ProfileFiles.Parse(file);
            var include = Assert.Single(valueSet.Compose.Include);
            Assert.Equal($"{FhirProfiles.Canonical}/CodeSystem/{valueSet.Id}", include.System);
            Assert.Empty(include.Concept);
            Assert.Empty(include.Filter);
            Assert.True(File.Exists(ProfileFiles.Named($"CodeSystem-{valueSet.Id}.json")));
        }
    }

    private static void AssertCodes(string codeSystem, IEnumerable<string> codes, IEnumerable<string> displays = null, bool ordered = true)
    {
        var system = (CodeSystem)ProfileFiles.Parse(ProfileFiles.Named($"CodeSystem-{codeSystem}.json"));
        var published = system.Concept.Select(c => c.Code).ToList();
        Assert.Equal(ordered ? codes : codes.Order(), ordered ? published : published.Order());
        Assert.Equal(published.Count, system.Count);
        if (displays is not null)
        {
            Assert.Equal(displays, system.Concept.Select(c => c.Display));
        }
    }

    private static JsonObject ExtensionOf(JsonObject resource, string name) =>
        resource["extension"].AsArray().First(e => (string)e["url"] == $"{FhirProfiles.Canonical}/StructureDefinition/{name}").AsObject();

    private static Resource Parse(JsonObject json, JsonSerializerOptions options = null) => JsonSerializer.Deserialize<Resource>(json.ToJsonString(), options ?? FhirMapping.Json);

    /// <summary>
    /// Firely's parser already refuses some of these copies (an element the core spec requires, an empty object),
    /// but a resource built in code never meets the parser: the checker must name every such element by itself.
    /// </summary>
    private static readonly JsonSerializerOptions Lenient = new JsonSerializerOptions().ForFhir(ModelInfo.ModelInspector).UsingMode(DeserializationMode.Recoverable);
}

/// <summary>
/// What the server itself answers meets the profiles it publishes: its triage Tasks, beds and capacity reports
/// from the demo data, and the codes and displays of every coding in our code systems.
/// </summary>
public sealed class FhirProfileOutboundTests(AppFactory app) : IClassFixture<AppFactory>
{
    private static readonly FhirProfiles Profiles = FhirProfiles.Load();

    /// <summary>Every resource a search finds, following next links.</summary>
    private static async Task<List<Resource>> AllAsync(HttpClient client, string search)
    {
        var found = new List<Resource>();
        for (var url = search; url is not null;)
        {
            var response = await client.GetAsync(url);
            var body = await response.Content.ReadAsStringAsync();
            Assert.True(response.IsSuccessStatusCode, $"{(int)response.StatusCode} for {url}: {body}");
            var bundle = JsonSerializer.Deserialize<Bundle>(body, FhirMapping.Json);
            found.AddRange(bundle.Entry.Select(e => e.Resource));
            url = bundle.Link.FirstOrDefault(l => l.Relation == "next")?.Url;
        }
        return found;
    }

    private static void AssertMeetsItsProfile(Resource resource)
    {
        var issues = Profiles.Validate(resource);
        Assert.True(issues.Count == 0,
            $"{resource.TypeName}/{resource.Id} breaks {FhirProfiles.ProfileFor(resource)}:\n" + string.Join("\n", issues.Select(i => $"{i.Expression}: {i.Message}")));
    }

    [Fact]
    public async Task TheServersTriageTasks_MeetCcTriageTask_InEveryStatusTheDemoHas()
    {
        using var client = await app.PartnerAsync();

        var tasks = await AllAsync(client, "/fhir/Task?_count=100");

        Assert.True(tasks.Select(t => ((Hl7.Fhir.Model.Task)t).Status).Distinct().Count() >= 4, "the demo data should show tasks in several statuses");
        Assert.All(tasks, AssertMeetsItsProfile);
        Assert.All(tasks, AssertCodingsMatchCodeSystems);
    }

    [Fact]
    public async Task TheServersBeds_MeetCcBedLocation_AndSitesAndWardsClaimNoProfile()
    {
        using var client = await app.PartnerAsync();

        var places = await AllAsync(client, "/fhir/Location?_count=100");

        var beds = places.Where(p => FhirProfiles.ProfileFor(p) == FhirProfiles.BedLocation).ToList();
        Assert.NotEmpty(beds);
        Assert.Contains(places, p => FhirProfiles.ProfileFor(p) is null);
        Assert.Equal(FhirMapping.BedTypeCodes.Order(), beds.Select(b => ((Location)b).Type.Single().Coding.Single().Code).Distinct().Order());
        Assert.All(beds, AssertMeetsItsProfile);
        Assert.All(places, AssertCodingsMatchCodeSystems);
    }

    [Fact]
    public async Task TheServersCapacityReports_MeetCcCapacityReport_AndUseEveryBedCapacityCode()
    {
        using var client = await app.PartnerAsync();

        var reports = (await AllAsync(client, "/fhir/MeasureReport?_count=100")).Cast<MeasureReport>().ToList();

        Assert.NotEmpty(reports);
        Assert.All(reports, AssertMeetsItsProfile);
        Assert.All(reports, AssertCodingsMatchCodeSystems);
        var group = reports[0].Group.Single();
        var used = group.Population.Select(p => p.Code.Coding.Single().Code).Prepend(group.Code.Coding.Single().Code);
        var published = ((CodeSystem)ProfileFiles.Parse(ProfileFiles.Named("CodeSystem-bed-capacity.json"))).Concept.Select(c => c.Code);
        Assert.Equal(published, used);
    }

    [Fact]
    public async Task TheServersReferrals_UseOurCodesAndDisplays()
    {
        using var client = await app.PartnerAsync();

        var referrals = await AllAsync(client, "/fhir/ServiceRequest?_count=100");

        Assert.NotEmpty(referrals);
        Assert.All(referrals, AssertCodingsMatchCodeSystems);
    }

    [Fact]
    public async Task Metadata_PointsEachResourceAtItsProfile()
    {
        using var client = app.CreateClient();

        var capability = JsonSerializer.Deserialize<CapabilityStatement>(await client.GetStringAsync("/fhir/metadata"), FhirMapping.Json);

        var resources = capability.Rest.Single().Resource.ToDictionary(r => r.Type);
        foreach (var (type, profile) in FhirProfiles.ByResourceType)
        {
            Assert.Equal([profile], resources[type].SupportedProfile);
            Assert.Equal(type == "Location" ? null : profile, resources[type].Profile);
            Assert.True(File.Exists(ProfileFiles.Named($"StructureDefinition-{profile[(profile.LastIndexOf('/') + 1)..]}.json")), profile);
        }
    }

    /// <summary>Every coding in one of our code systems uses one of its codes, with its display when it has one.</summary>
    private static void AssertCodingsMatchCodeSystems(Resource resource)
    {
        var json = JsonSerializer.SerializeToNode(resource, resource.GetType(), FhirMapping.Json);
        foreach (var coding in Descendants(json).OfType<JsonObject>().Where(o => o["system"] is not null && o["code"] is not null))
        {
            if (CodeSystems.TryGetValue((string)coding["system"], out var concepts))
            {
                Assert.True(concepts.TryGetValue((string)coding["code"], out var display), $"{resource.TypeName}/{resource.Id}: {coding.ToJsonString()}");
                if (coding["display"] is not null)
                {
                    Assert.Equal(display, (string)coding["display"]);
                }
            }
        }
    }

    private static readonly Dictionary<string, Dictionary<string, string>> CodeSystems = ProfileFiles.Conformance()
        .Where(f => Path.GetFileName(f).StartsWith("CodeSystem-", StringComparison.Ordinal))
        .Select(f => (CodeSystem)ProfileFiles.Parse(f))
        .ToDictionary(c => c.Url, c => c.Concept.ToDictionary(k => k.Code, k => k.Display));

    private static IEnumerable<JsonNode> Descendants(JsonNode node) => node switch
    {
        JsonObject o => o.Select(p => p.Value).Where(v => v is not null).SelectMany(v => Descendants(v!)).Prepend(o),
        JsonArray a => a.Where(v => v is not null).SelectMany(v => Descendants(v!)),
        _ => [node],
    };
}

/// <summary>
/// The fhir-profiles folder read straight from disk, independently of the checker: the test's own reading of
/// element ids, slices and extension definitions, to find what to take away from an example.
/// </summary>
internal static class ProfileFiles
{
    private static readonly string Folder = FindFolder();

    private static string FindFolder()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "CareCoordination.sln")))
            {
                return Path.Combine(dir.FullName, "fhir-profiles");
            }
        }
        throw new DirectoryNotFoundException("fhir-profiles: no CareCoordination.sln above " + AppContext.BaseDirectory);
    }

    public static string Named(string name) => Path.Combine(Folder, name);

    public static string Example(string name) => Path.Combine(Folder, "examples", name);

    public static IEnumerable<string> Conformance() => Directory.GetFiles(Folder, "*.json").Order();

    public static IEnumerable<string> Examples() => Directory.GetFiles(Path.Combine(Folder, "examples"), "*.json").Order();

    public static JsonObject Read(string file) => JsonNode.Parse(File.ReadAllText(file)).AsObject();

    public static Resource Parse(string file) => JsonSerializer.Deserialize<Resource>(File.ReadAllText(file), FhirMapping.Json);

    public static JsonObject ExampleOf(string profile) =>
        Examples().Select(Read).Single(e => (string)e["meta"]["profile"][0] == profile);

    private static readonly Dictionary<string, JsonObject> Definitions = Conformance().Select(Read)
        .Where(r => (string)r["resourceType"] == "StructureDefinition").ToDictionary(r => (string)r["url"]);

    private static IEnumerable<JsonObject> Elements(JsonObject definition) => definition["differential"]["element"].AsArray().Select(e => e.AsObject());

    private static JsonObject Element(JsonObject definition, string id) => Elements(definition).FirstOrDefault(e => (string)e["id"] == id);

    private static string ExtensionProfile(JsonObject element) =>
        element["type"]?.AsArray().SelectMany(t => t["profile"]?.AsArray() ?? []).Select(p => (string)p).FirstOrDefault(Definitions.ContainsKey);

    /// <summary>Elements with min 1 or more, and those of the extensions used, their ids rooted at the slice that uses them.</summary>
    public static IEnumerable<string> Required(string url, string idRoot = null)
    {
        var definition = Definitions[url];
        var type = (string)definition["type"];
        foreach (var element in Elements(definition).Where(e => (string)e["id"] != type))
        {
            var id = (idRoot ?? type) + ((string)element["id"])[type.Length..];
            if ((int?)element["min"] >= 1)
            {
                yield return id;
            }
            if (ExtensionProfile(element) is { } extension)
            {
                foreach (var nested in Required(extension, id))
                {
                    yield return nested;
                }
            }
        }
    }

    /// <summary>Removes every value of the element from the example: how many it removed, and whether that left an object empty.</summary>
    public static (int Removed, bool EmptiedParent) Remove(JsonObject resource, string profile, string elementId)
    {
        // Where each value sits, so that it can be taken out of its object or array.
        var found = new List<(JsonObject Parent, string Property, JsonNode Value)> { (new JsonObject(), "", resource) };
        var definition = Definitions[profile];
        var at = (string)definition["type"];
        foreach (var step in elementId.Split('.').Skip(1))
        {
            var parts = step.Split(':');
            var (name, slice) = (parts[0], parts.Length > 1 ? parts[1] : null);
            Func<JsonNode, bool> inSlice = _ => true;
            string next = null;
            if (slice is not null)
            {
                var sliced = Element(definition, $"{at}.{name}");
                var path = (string)sliced["slicing"]["discriminator"][0]["path"];
                var sliceElement = Element(definition, $"{at}.{step}");
                var fixedAt = Element(definition, $"{at}.{step}.{path}")?.FirstOrDefault(p => p.Key.StartsWith("fixed", StringComparison.Ordinal) || p.Key.StartsWith("pattern", StringComparison.Ordinal)).Value;
                var expected = fixedAt is not null ? (string)fixedAt : (string)sliceElement["type"][0]["profile"][0];
                inSlice = value => (string)value[path] == expected;
                next = ExtensionProfile(sliceElement);
            }
            found = [.. found.SelectMany(f => Children(f.Value, name)).Where(c => inSlice(c.Value))];
            if (next is not null)
            {
                definition = Definitions[next];
                at = (string)definition["type"];
            }
            else
            {
                at += "." + step;
            }
        }
        foreach (var (parent, property, value) in found)
        {
            if (parent[property] is JsonArray array)
            {
                array.Remove(value);
                if (array.Count == 0)
                {
                    parent.Remove(property);
                }
            }
            else
            {
                parent.Remove(property);
            }
        }
        return (found.Count, found.Any(f => f.Parent.Count == 0));
    }

    private static IEnumerable<(JsonObject Parent, string Property, JsonNode Value)> Children(JsonNode node, string name)
    {
        if (node is not JsonObject obj)
        {
            yield break;
        }
        var choice = name.EndsWith("[x]", StringComparison.Ordinal) ? name[..^3] : null;
        foreach (var (property, value) in obj.ToList())
        {
            if (value is null || (choice is null ? property != name : !(property.StartsWith(choice, StringComparison.Ordinal) && property.Length > choice.Length && char.IsUpper(property[choice.Length]))))
            {
                continue;
            }
            if (value is JsonArray array)
            {
                foreach (var item in array.ToList())
                {
                    yield return (obj, property, item!);
                }
            }
            else
            {
                yield return (obj, property, value);
            }
        }
    }
}
