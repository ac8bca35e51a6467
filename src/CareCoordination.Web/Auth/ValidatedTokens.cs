using System.Collections.Concurrent;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;

namespace CareCoordination.Auth;

/// <summary>
/// The bearer handler's token check, remembering the tokens it has found valid. A partner sends the same token with every
/// request for its hour; checking it again each time (decode, parse the JSON, HMAC, build the claims) was about 3.6% of the
/// server's CPU per referral (issue 14). A token is its own proof: the same string, under the same key, is as valid as it
/// was, so a repeat skips all of that, except its lifetime, which is checked again against the clock on every request.
/// The client's standing is not remembered: PartnerTokens.AcceptAsync still asks the store on every request.
/// </summary>
public sealed class ValidatedTokens(PartnerTokens tokens) : JsonWebTokenHandler
{
    /// <summary>More live tokens than partners will ever hold at once: past it the memory starts afresh, which only costs a check each.</summary>
    internal const int Capacity = 10_000;

    private readonly ConcurrentDictionary<string, Valid> _valid = new(StringComparer.Ordinal);

    private sealed record Valid(TokenValidationResult Result, SecurityKey Key, DateTime NotBefore, DateTime Expires);

    public override async Task<TokenValidationResult> ValidateTokenAsync(string token, TokenValidationParameters validationParameters)
    {
        if (_valid.TryGetValue(token, out var valid) && ReferenceEquals(valid.Key, tokens.Key))
        {
            if (tokens.IsCurrent(valid.NotBefore, valid.Expires))
            {
                return valid.Result;
            }
            _valid.TryRemove(token, out _);
        }
        var result = await base.ValidateTokenAsync(token, validationParameters);
        if (result.IsValid && result.SecurityToken is JsonWebToken checkedToken)
        {
            // Built once here, before the result is shared between requests.
            _ = result.ClaimsIdentity;
            if (_valid.Count >= Capacity)
            {
                _valid.Clear();
            }
            _valid[token] = new Valid(result, tokens.Key, checkedToken.ValidFrom, checkedToken.ValidTo);
        }
        return result;
    }
}
