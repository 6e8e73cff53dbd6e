namespace ToMe;

/// <summary>The message of an exception as a person reads it: one line, without what .NET appends for a developer.</summary>
internal static class ErrorText
{
    /// <summary>
    /// <paramref name="e"/>'s message without " (Parameter 'name')" and the "Actual value was ..." line that argument
    /// exceptions add: the callers that show it to a user name the setting themselves, in the user's terms.
    /// </summary>
    public static string Plain(Exception e)
    {
        string text = e.Message;
        if (e is ArgumentOutOfRangeException { ActualValue: not null } && text.LastIndexOf(Environment.NewLine, StringComparison.Ordinal) is var end and >= 0)
            text = text[..end];
        if (e is ArgumentException { ParamName: { Length: > 0 } name } && text.EndsWith($" (Parameter '{name}')", StringComparison.Ordinal))
            text = text[..^$" (Parameter '{name}')".Length];
        return text;
    }
}
