namespace ToMe.Weights;

/// <summary>
/// A weights or configuration file is malformed or does not fit the model: the message names the file,
/// the tensor or field, what was found and what was expected.
/// </summary>
public sealed class InvalidModelException : FormatException
{
    /// <summary>A model file that does not fit; <paramref name="message"/> names the file, the tensor or field and what was expected.</summary>
    public InvalidModelException(string message) : base(message) { }

    /// <summary>A model file that does not fit, found through <paramref name="inner"/> (e.g. a JSON parser's error).</summary>
    public InvalidModelException(string message, Exception inner) : base(message, inner) { }
}
