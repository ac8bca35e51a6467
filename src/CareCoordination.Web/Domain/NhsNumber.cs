namespace CareCoordination.Domain;

/// <summary>The NHS number: ten digits, the last a modulus-11 check digit (NHS Data Dictionary).</summary>
public static class NhsNumber
{
    /// <summary>Digits only, or null when the text is not ten digits once spaces and dashes are dropped.</summary>
    public static string? Normalise(string? text)
    {
        if (string.IsNullOrWhiteSpace(text))
        {
            return null;
        }
        var digits = new string(text.Where(c => c is not (' ' or '-')).ToArray());
        return digits.Length == 10 && digits.All(char.IsAsciiDigit) ? digits : null;
    }

    /// <summary>Shown 3-3-4, the way it is printed on NHS letters and read out on the phone.</summary>
    public static string Format(string? text)
    {
        var digits = new string((text ?? "").Where(char.IsAsciiDigit).Take(10).ToArray());
        return digits.Length switch
        {
            <= 3 => digits,
            <= 6 => $"{digits[..3]} {digits[3..]}",
            _ => $"{digits[..3]} {digits[3..6]} {digits[6..]}",
        };
    }

    public static bool IsValid(string? text)
    {
        var digits = Normalise(text);
        return digits is not null && CheckDigit(digits.AsSpan(0, 9)) == digits[9] - '0';
    }

    /// <summary>The check digit for nine digits, or -1 where no valid number can end them (remainder 10).</summary>
    public static int CheckDigit(ReadOnlySpan<char> nineDigits)
    {
        var sum = 0;
        for (var i = 0; i < 9; i++)
        {
            sum += (nineDigits[i] - '0') * (10 - i);
        }
        var check = 11 - (sum % 11);
        return check switch
        {
            11 => 0,
            10 => -1,
            _ => check,
        };
    }
}
