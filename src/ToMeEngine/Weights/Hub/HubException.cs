namespace ToMe.Weights.Hub;

/// <summary>
/// A model could not be fetched from the hub or found in the cache. An <see cref="IOException"/> so callers that
/// already report I/O failures as user errors (the CLI) report these the same way.
/// </summary>
public class HubException(string message, Exception? inner = null) : IOException(message, inner);

/// <summary>The hub could not be reached (no network, timeout, server error): the cache may still serve the model.</summary>
public sealed class HubUnreachableException(string message, Exception? inner = null) : HubException(message, inner);
