namespace ToMe.Weights;

/// <summary>
/// A weights or configuration file is malformed or does not fit the model: the message names the file,
/// the tensor or field, what was found and what was expected.
/// </summary>
public sealed class InvalidModelException : FormatException
{
    public InvalidModelException(string message) : base(message) { }

    public InvalidModelException(string message, Exception inner) : base(message, inner) { }
}
