namespace ToMe.Weights.Hub;

/// <summary>Download progress of one file: <paramref name="BytesDone"/> of <paramref name="BytesTotal"/> (resumed bytes included).</summary>
/// <param name="Repo">The repository, <c>owner/name</c>.</param>
/// <param name="File">The file in it, e.g. <c>model.safetensors</c>.</param>
/// <param name="BytesDone">Bytes in the cache so far, those of a resumed partial download included.</param>
/// <param name="BytesTotal">The file's size, in bytes.</param>
public readonly record struct HubProgress(string Repo, string File, long BytesDone, long BytesTotal)
{
    /// <summary>Whether the whole file is in.</summary>
    public bool Completed => BytesDone == BytesTotal;
}
