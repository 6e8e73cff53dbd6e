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
    /// <summary>
    /// The layer's precision in a pass that runs in <paramref name="pass"/>. In int8 the patch embedding and the head stay
    /// float32: the first quantizes raw pixels and the second moves the logits directly, and together they are about 2% of
    /// a ViT's multiply-adds. In bf16/fp16 the head stays float32 (its input is the float32 pooled token, its output the
    /// logits; one row per image). The patch embedding is a tensor-core GEMM: fp16 in an fp16 pass; TF32 in a bf16 pass,
    /// whose 8-bit significand would round the pixels themselves (measured on the fixtures: the largest logit error falls
    /// from 2.5e-2 to 2.1e-2 on vit_p14_d3 with TF32's 11 bits).
    /// </summary>
    public Precision DefaultPrecision(Precision pass) => Kind switch
    {
        LinearKind.PatchEmbed when pass == Precision.Int8 => Precision.Float32,
        LinearKind.PatchEmbed when pass == Precision.BFloat16 => Precision.TensorFloat32,
        LinearKind.Head when pass is Precision.Int8 or Precision.BFloat16 or Precision.Float16 => Precision.Float32,
        _ => pass,
    };

    /// <summary>Every Linear layer of <paramref name="config"/> with its [out, in] shape, in forward order.</summary>
    public static IEnumerable<(LinearLayer Layer, int Out, int In)> All(ModelConfig config)
    {
        int c = config.EmbedDim, h = config.MlpHidden;
        yield return (new(LinearKind.PatchEmbed, -1), c, 3 * config.PatchSize * config.PatchSize);
        for (int l = 0; l < config.Depth; l++)
        {
            yield return (new(LinearKind.Qkv, l), 3 * c, c);
            yield return (new(LinearKind.Proj, l), c, c);
            yield return (new(LinearKind.Fc1, l), h, c);
            yield return (new(LinearKind.Fc2, l), c, h);
        }
        bool twoTokens = config.Distilled && config.GlobalPool == GlobalPool.Token;
        yield return (new(LinearKind.Head, -1), config.NumClasses, twoTokens ? 2 * c : c);
    }

    /// <summary>
    /// Bytes of a prepared [out, in] Linear: int8 one per weight plus a scale, Σq and bias per output; bf16/fp16 two per
    /// weight and a float32 bias; else float32.
    /// </summary>
    public static long WeightBytes(int outFeatures, int inFeatures, Precision precision) => precision switch
    {
        Precision.Int8 => (long)outFeatures * inFeatures + 12L * outFeatures,
        Precision.BFloat16 or Precision.Float16 => 2L * outFeatures * inFeatures + 4L * outFeatures,
        _ => 4L * ((long)outFeatures * inFeatures + outFeatures),
    };
}
