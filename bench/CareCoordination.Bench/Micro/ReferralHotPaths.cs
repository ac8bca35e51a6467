using System.Text;
using BenchmarkDotNet.Attributes;
using CareCoordination.Bench.BareApp;
using CareCoordination.Bench.Load;
using CareCoordination.Features.Fhir;
using CareCoordination.Features.Fhir.Profiles;
using CareCoordination.Features.Referrals;
using Hl7.Fhir.Model;

namespace CareCoordination.Bench.Micro;

/// <summary>
/// The product's in-process work on one partner referral (the load's Bundle, ~5 KB), step by step, against the bare app's
/// whole parse as the baseline: Firely's parse of the Bundle with the product's byte checks (FhirRequests.Parse), the map onto
/// the referral form (ReferralIntake.ToForm), the form's rules (ReferralForm.SubmissionRules, what SubmitReferral's validator
/// applies) and the published profiles' check of both resources, from the body as received (FhirProfiles.CheckAhead, what a
/// submission runs) and from each resource written out (FhirProfiles.Validate, for a resource not read from a body).
/// </summary>
[MemoryDiagnoser]
public class ReferralHotPaths
{
    private byte[] _bundleBytes = [];
    private Bundle _bundle = null!;
    private ServiceRequest _request = null!;
    private Patient _patient = null!;
    private ReferralForm _form = null!;
    private FhirProfiles _profiles = null!;
    private ReferralForm.SubmissionRules _rules = null!;

    [GlobalSetup]
    public void Setup()
    {
        _bundleBytes = Encoding.UTF8.GetBytes(new Submissions().Next().Json);
        _bundle = FhirParse();
        _request = _bundle.Entry.Select(e => e.Resource).OfType<ServiceRequest>().Single();
        _patient = _bundle.Entry.Select(e => e.Resource).OfType<Patient>().Single();
        _form = MapToForm();
        _profiles = FhirProfiles.Load();
        _rules = new ReferralForm.SubmissionRules(TimeProvider.System);
    }

    [Benchmark(Baseline = true, Description = "bare app: parse (System.Text.Json)")]
    public BareReferral BareParse() => BareReferral.Parse(_bundleBytes);

    [Benchmark(Description = "product: FHIR parse (Firely + byte checks)")]
    public Bundle FhirParse() => FhirRequests.Parse<Bundle>(_bundleBytes, "Bundle");

    [Benchmark(Description = "product: map to the referral form")]
    public ReferralForm MapToForm() => ReferralIntake.ToForm(_request, _patient, new Sent(_request, _bundle));

    [Benchmark(Description = "product: validation (form rules)")]
    public int Validate() => _rules.Validate(_form).Errors.Count;

    [Benchmark(Description = "product: profile check (ServiceRequest + Patient), each written out as JSON for it")]
    public int ProfileCheck() => _profiles.Validate(_request).Count + _profiles.Validate(_patient).Count;

    /// <summary>What a submission runs: the Bundle's resources checked from the body as received (FhirProfiles.CheckAhead).</summary>
    [Benchmark(Description = "product: profile check (ServiceRequest + Patient) from the body as received")]
    public int ProfileCheckAsReceived()
    {
        _profiles.CheckAhead(_bundle, _bundleBytes);
        return Issues(_request) + Issues(_patient);
    }

    /// <summary>The issues the verdict worked out ahead holds for the resource (Require answers from it).</summary>
    private int Issues(Resource resource)
    {
        try
        {
            _profiles.Require(resource);
            return 0;
        }
        catch (InvalidResource refused)
        {
            return refused.Issues.Count;
        }
    }
}
