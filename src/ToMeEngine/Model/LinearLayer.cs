namespace ToMe.Model;

/// <summary>The Linear layers of a ViT.</summary>
internal enum LinearKind
{
    PatchEmbed,
    Qkv,
    Proj,
    Fc1,
    Fc2,
    Head,
}

/// <summary>One Linear layer of a model: its kind and block (−1 for the patch embedding and the head).</summary>
internal readonly record struct LinearLayer(LinearKind Kind, int Block)
{
    /// <summary>The layer's precision in a pass that runs in <paramref name="pass"/>.</summary>
    public Precision DefaultPrecision(Precision pass) =>
        pass == Precision.Int8 && Kind is LinearKind.PatchEmbed or LinearKind.Head ? Precision.Float32 : pass;
}
