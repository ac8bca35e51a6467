using Mediator;

namespace CareCoordination.Pipeline;

/// <summary>How a page sends a command: a refusal comes back as the sentence to show, never as an error page.</summary>
public static class PageCommands
{
    /// <param name="whenStale">What to say instead when the command named a version the record has moved past: the page's words, not the API's.</param>
    public static async Task<string?> TrySendAsync(this IMediator mediator, IMessage command, string? whenStale = null)
    {
        try
        {
            await mediator.Send((object)command);
            return null;
        }
        catch (PreconditionFailed) when (whenStale is not null)
        {
            return whenStale;
        }
        catch (DomainFailure failure)
        {
            return failure is ValidationFailed invalid ? string.Join(" ", invalid.Errors.SelectMany(e => e.Value)) : failure.Message;
        }
    }
}
