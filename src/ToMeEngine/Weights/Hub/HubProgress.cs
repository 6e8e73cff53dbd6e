namespace ToMe.Weights.Hub;

/// <summary>Download progress of one file: <paramref name="BytesDone"/> of <paramref name="BytesTotal"/> (resumed bytes included).</summary>
public readonly record struct HubProgress(string Repo, string File, long BytesDone, long BytesTotal)
{
    public bool Completed => BytesDone == BytesTotal;
}
