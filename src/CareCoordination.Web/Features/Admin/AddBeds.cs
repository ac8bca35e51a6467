using System.Globalization;
using CareCoordination.Auth;
using CareCoordination.Domain;
using CareCoordination.Features.BedBureau;
using CareCoordination.Pipeline;
using CareCoordination.Store;
using Dapper;
using FluentValidation;
using Mediator;

namespace CareCoordination.Features.Admin;

/// <summary>
/// Beds for a ward, several at once: labels are the prefix and a two-digit number counting up from the first
/// number (B01, B02…). Each new bed is available and confirmed now. Labels are unique in a ward; the database
/// holds that rule, and a clash is refused naming the label, with no bed added.
/// </summary>
public static class AddBeds
{
    public const int MaxAtOnce = 60;

    [AllowRoles(Roles.Admin)]
    public sealed record Command(long WardId, int Count, string LabelPrefix, string BedType, string AllowedSex, bool SingleRoom, int FirstNumber = 1)
        : ICommand<IReadOnlyList<long>>;

    public sealed class Validator : AbstractValidator<Command>
    {
        public Validator()
        {
            RuleFor(c => c.WardId).GreaterThan(0).WithMessage("Choose the ward.");
            RuleFor(c => c.Count).InclusiveBetween(1, MaxAtOnce).WithMessage($"Add between 1 and {MaxAtOnce} beds at a time.");
            RuleFor(c => c.LabelPrefix).NotNull().MaximumLength(10).WithMessage("Keep the label prefix to 10 characters or fewer.")
                .Matches("^[A-Za-z0-9 -]*$").WithMessage("A label prefix has letters, digits, spaces or hyphens only.");
            RuleFor(c => c.FirstNumber).InclusiveBetween(0, 999).WithMessage("Start numbering between 0 and 999.");
            RuleFor(c => c.BedType).Must(t => AdminCodes.BedTypes.Has(t)).WithMessage("Choose the type of bed.");
            RuleFor(c => c.AllowedSex).Must(s => AdminCodes.AllowedSexes.Has(s)).WithMessage("Choose who the beds are for: any sex, a female bay or a male bay.");
        }
    }

    private sealed record Ward
    {
        public string Name { get; init; } = "";
        public long SiteId { get; init; }
        public string SiteName { get; init; } = "";
        public bool SiteActive { get; init; }
    }

    public static string Label(string prefix, int number) => prefix.Trim() + number.ToString("D2", CultureInfo.InvariantCulture);

    public sealed class Handler(Work work, Database database) : ICommandHandler<Command, IReadOnlyList<long>>
    {
        public async ValueTask<IReadOnlyList<long>> Handle(Command command, CancellationToken cancellationToken)
        {
            var ward = await work.Connection.QuerySingleOrDefaultAsync<Ward>(
                """
                SELECT w.name AS Name, s.id AS SiteId, s.name AS SiteName, s.active AS SiteActive
                FROM ward w JOIN site s ON s.id = w.site_id WHERE w.id = @WardId
                """, new { command.WardId }, work.Transaction)
                ?? throw new NotFound($"Ward {command.WardId}");
            if (!ward.SiteActive)
            {
                throw new RuleBroken($"{ward.SiteName} is closed: it takes no new beds.");
            }
            var ids = new List<long>(command.Count);
            for (var number = command.FirstNumber; number < command.FirstNumber + command.Count; number++)
            {
                var label = Label(command.LabelPrefix, number);
                long bedId;
                try
                {
                    bedId = await work.Connection.ExecuteScalarAsync<long>(
                        """
                        INSERT INTO bed (ward_id, label, bed_type, allowed_sex, status, closed_reason, confirmed_at, version, single_room)
                        VALUES (@WardId, @label, @BedType, @AllowedSex, 'available', NULL, @Now, 1, @SingleRoom) RETURNING id
                        """, new { command.WardId, label, command.BedType, command.AllowedSex, work.Scope.Now, command.SingleRoom }, work.Transaction);
                }
                catch (Exception ex) when (database.IsUniqueViolation(ex))
                {
                    throw new Conflict($"{ward.SiteName}, {ward.Name} already has a bed labelled {label}. Start the numbering after the last bed, or use another prefix.");
                }
                ids.Add(bedId);
                work.Scope.Touch("bed", bedId);
                await Beds.RecordStateAsync(work, bedId, 1, "available", command.BedType);
                var bed = new BedRow
                {
                    Id = bedId, Label = label, BedType = command.BedType, AllowedSex = command.AllowedSex, Status = "available", SingleRoom = command.SingleRoom,
                    WardId = command.WardId, WardName = ward.Name, SiteId = ward.SiteId, SiteName = ward.SiteName,
                };
                Beds.RecordChange(work, bed, "bed.added", "available",
                    detail: new { label, allowedSex = command.AllowedSex, singleRoom = command.SingleRoom });
            }
            return ids;
        }
    }
}
