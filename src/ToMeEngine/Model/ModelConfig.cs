using ToMe.Imaging;

namespace ToMe.Model;

/// <summary>How the transformer's output becomes the head's input.</summary>
public enum GlobalPool
{
    /// <summary>The class token (timm <c>global_pool = "token"</c>).</summary>
    Token,

    /// <summary>Size-weighted mean of the non-prefix tokens, then <c>fc_norm</c> (timm <c>global_pool = "avg"</c>).</summary>
    Avg,
}

/// <summary>
/// Everything the forward pass needs to know about a timm ViT / DeiT: its shape, its head, its preprocessing and its
/// labels. <see cref="ModelLoader"/> reads it from timm's hub <c>config.json</c> (<c>model_args</c> over the
/// architecture's defaults) or from a file's <c>__metadata__.config</c>; <see cref="ToMeEngine.Config"/> is the loaded
/// model's. Sizes are in pixels and tokens; the checks a loaded configuration passed are in docs/architectures.md.
/// </summary>
public sealed record ModelConfig
{
    /// <summary>timm's model name without its pretrained tag, e.g. <c>vit_tiny_patch16_224</c>.</summary>
    public required string Architecture { get; init; }

    /// <summary>Side of the square input, in pixels (timm's <c>img_size</c>); a multiple of <see cref="PatchSize"/>.</summary>
    public required int ImageSize { get; init; }

    /// <summary>Side of a square patch, in pixels: one token per patch.</summary>
    public required int PatchSize { get; init; }

    /// <summary>Channels of every token (timm's <c>embed_dim</c>, C): 192 for ViT-Ti, 768 for ViT-B.</summary>
    public required int EmbedDim { get; init; }

    /// <summary>Transformer blocks; a merge schedule gives one r per block.</summary>
    public required int Depth { get; init; }

    /// <summary>Attention heads per block; divides <see cref="EmbedDim"/>.</summary>
    public required int NumHeads { get; init; }

    /// <summary>Hidden width of each block's MLP (<c>embed_dim × mlp_ratio</c>).</summary>
    public required int MlpHidden { get; init; }

    /// <summary>Classes of the head: the length of a row of logits.</summary>
    public required int NumClasses { get; init; }

    /// <summary>timm's <c>class_token</c>: a learned class token precedes the patches (true for all but avg-pool-only models).</summary>
    public bool ClassToken { get; init; } = true;

    /// <summary>DeiT's distillation token and second head: the logits are the mean of both heads.</summary>
    public bool Distilled { get; init; }

    /// <summary>How the last block's tokens become the head's input.</summary>
    public GlobalPool GlobalPool { get; init; } = GlobalPool.Token;

    /// <summary>timm's <c>fc_norm</c>: the LayerNorm runs after pooling instead of on every token before it (avg-pool models).</summary>
    public bool FcNorm { get; init; }

    /// <summary>timm's <c>qkv_bias</c>: the attention's QKV projection has a bias.</summary>
    public bool QkvBias { get; init; } = true;

    /// <summary>LayerScale (timm's <c>init_values</c>): each residual branch is scaled by learned per-channel gains (DeiT III, DINOv2).</summary>
    public bool LayerScale { get; init; }

    /// <summary>timm's <c>reg_tokens</c>: learned register tokens after the class token, [cls, reg..., patches].</summary>
    public int RegTokens { get; init; }

    /// <summary>timm's <c>no_embed_class</c>: the position embedding covers the patches only (DeiT III, DINOv2 with registers).</summary>
    public bool NoEmbedClass { get; init; }

    /// <summary>The LayerNorms' epsilon (timm's ViTs: 1e-6).</summary>
    public float NormEps { get; init; } = 1e-6f;

    /// <summary>The model's eval transform (timm's <c>pretrained_cfg</c>): resize, crop and normalization.</summary>
    public required PreprocessConfig Preprocess { get; init; }

    /// <summary>A name per class (<c>label_names</c>), or null when the configuration has none; predictions then say "class N".</summary>
    public IReadOnlyList<string>? LabelNames { get; init; }

    /// <summary>Patches per side: <c>ImageSize / PatchSize</c>.</summary>
    public int GridSize => ImageSize / PatchSize;

    /// <summary>Patches of one image: <c>GridSize²</c>.</summary>
    public int NumPatches => GridSize * GridSize;

    /// <summary>Class, distillation and register tokens: kept first and never merged away.</summary>
    public int PrefixTokens => (ClassToken ? 1 : 0) + (Distilled ? 1 : 0) + RegTokens;

    /// <summary>Rows of <c>pos_embed</c>: every token, or the patches only with <see cref="NoEmbedClass"/>.</summary>
    public int PosEmbedTokens => NoEmbedClass ? NumPatches : Tokens;

    /// <summary>Tokens entering the first block, before any merging: patches plus prefix tokens.</summary>
    public int Tokens => NumPatches + PrefixTokens;

    /// <summary>Channels per attention head: <c>EmbedDim / NumHeads</c>.</summary>
    public int HeadDim => EmbedDim / NumHeads;

    /// <summary>Parameters of the model (weights and biases), for reports.</summary>
    public long ParameterCount
    {
        get
        {
            long c = EmbedDim, h = MlpHidden;
            long perBlock = 4 * c + (3 * c * c + (QkvBias ? 3 * c : 0)) + (c * c + c) + (c * h + h) + (h * c + c) + (LayerScale ? 2 * c : 0);
            long embed = 3L * PatchSize * PatchSize * c + c + (long)PosEmbedTokens * c + PrefixTokens * c;
            long heads = (Distilled ? 2 : 1) * (c * NumClasses + NumClasses);
            return embed + Depth * perBlock + 2 * c + heads;
        }
    }

    internal void Validate(string source)
    {
        void Require(bool ok, string what)
        {
            if (!ok)
                throw new Weights.InvalidModelException($"{source}: {what}");
        }
        Require(ImageSize > 0 && PatchSize > 0 && ImageSize % PatchSize == 0, $"img_size {ImageSize} must be a positive multiple of patch_size {PatchSize}");
        Require(EmbedDim > 0 && NumHeads > 0 && EmbedDim % NumHeads == 0, $"embed_dim {EmbedDim} must be a positive multiple of num_heads {NumHeads}");
        Require(Depth > 0 && Depth <= 256, $"depth {Depth} must be in 1..256");
        Require(MlpHidden > 0, $"mlp hidden size {MlpHidden} must be positive");
        Require(NumClasses > 0, $"num_classes {NumClasses} must be positive (models without a head are not supported)");
        Require(!(Distilled && !ClassToken), "a distilled model needs a class token");
        Require(RegTokens is >= 0 and <= 256, $"reg_tokens {RegTokens} must be in 0..256");
        // timm's distilled ViT places [cls, dist, patches] and has no slot for registers.
        Require(!(Distilled && RegTokens > 0), "a distilled model with register tokens is not a timm layout");
        Require(GlobalPool == GlobalPool.Avg || ClassToken, "global_pool 'token' needs a class token");
        Require(Preprocess.Mean.Length == 3 && Preprocess.Std.Length == 3, "mean and std must have 3 entries");
        Require(Preprocess.Std.All(s => s > 0 && float.IsFinite(s)), "std entries must be positive");
        Require(Preprocess.CropPct is > 0 and <= 1.0 + 1e-9, $"crop_pct {Preprocess.CropPct} must be in (0, 1]");
        Require(Preprocess.ImgSize == ImageSize, $"pretrained_cfg input size {Preprocess.ImgSize} differs from img_size {ImageSize}");
        Require(LabelNames is null || LabelNames.Count == NumClasses, $"label_names has {LabelNames?.Count} entries, expected num_classes = {NumClasses}");
        ConfigLimits.Check(this, source);
    }
}
