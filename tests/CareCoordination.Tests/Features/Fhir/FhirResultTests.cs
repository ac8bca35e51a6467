using System.Text;
using CareCoordination.Features.Fhir;
using Hl7.Fhir.Model;
using Microsoft.AspNetCore.Http;
using Task = System.Threading.Tasks.Task;

namespace CareCoordination.Tests.Features.Fhir;

/// <summary>
/// Issue 14: a FHIR answer is serialised straight to UTF-8 into the response, not into a UTF-16 string first; what the
/// partner receives must be byte for byte what the serializer makes, non-ASCII names included.
/// </summary>
public sealed class FhirResultTests
{
    [Fact]
    public async Task AResource_IsWrittenAsUtf8IntoTheResponse_ExactlyAsTheSerializerMakesIt()
    {
        var patient = new Patient
        {
            Id = "7",
            Name = [new HumanName { Family = "Ó Súilleabháin", Given = ["Siân", "<Zoë>"] }],
            BirthDate = "1940-01-01",
        };
        var result = Assert.IsType<FhirEndpoints.FhirResult>(FhirEndpoints.Fhir(patient, StatusCodes.Status201Created));
        var context = new DefaultHttpContext();
        using var body = new MemoryStream();
        context.Response.Body = body;

        await result.ExecuteAsync(context);

        Assert.Equal(StatusCodes.Status201Created, context.Response.StatusCode);
        Assert.Equal("application/fhir+json; charset=utf-8", context.Response.ContentType);
        Assert.Equal(FhirMapping.Serialize(patient), Encoding.UTF8.GetString(body.ToArray()));
    }
}
