using Mediator;

namespace CareCoordination.Pipeline;

/// <summary>How a page sends a command: a refusal comes back as the sentence to show, never as an error page.</summary>
public static class PageCommands
{
    public static async Task<string?> TrySendAsync(this IMediator mediator, IMessage command)
    {
        try
        {
            await mediator.Send((object)command);
            return null;
        }
        catch (DomainFailure failure)
        {
            return failure is ValidationFailed invalid ? string.Join(" ", invalid.Errors.SelectMany(e => e.Value)) : failure.Message;
        }
    }
}
