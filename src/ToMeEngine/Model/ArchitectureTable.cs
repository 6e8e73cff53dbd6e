using System.Text.RegularExpressions;

namespace ToMe.Model;

/// <summary>
/// The timm ViT / DeiT / DeiT III / DINOv2 / MAE names the engine knows: width, depth and heads per size, and the
/// family's token layout (register tokens, position embeddings for patches only, LayerScale, pooling), parsed from the name.
/// </summary>
internal static partial class ArchitectureTable
{
    /// <summary>timm's widths: (embed_dim, depth, num_heads).</summary>
    private static readonly Dictionary<string, (int EmbedDim, int Depth, int Heads)> widths = new()
    {
        ["tiny"] = (192, 12, 3),
        ["small"] = (384, 12, 6),
        ["medium"] = (512, 12, 8),
        ["base"] = (768, 12, 12),
        ["large"] = (1024, 24, 16),
        ["huge"] = (1280, 32, 16),
    };

    /// <summary>
    /// One resolved architecture name. The layout fields default to a plain ViT; <c>model_args</c> in a hub config
    /// override any of them.
    /// </summary>
    public sealed record Architecture(string Name, string Family, int EmbedDim, int Depth, int NumHeads, int PatchSize, int ImageSize, bool Distilled)
    {
        public int RegTokens { get; init; }
        public bool NoEmbedClass { get; init; }
        public bool LayerScale { get; init; }
        public GlobalPool GlobalPool { get; init; } = GlobalPool.Token;
    }

    // vit_{size}_patch{p}_{img} (timm; the MAE repository's fine-tuned models drop the _{img}: avg pool + fc_norm),
    // deit_{size}[_distilled]_patch{p}_{img}, deit3_{size}_patch{p}_{img}, vit_{size}_patch14[_reg4]_dinov2.
    [GeneratedRegex(@"^(?:(?<family>vit|deit|deit3)_(?<size>[a-z]+)(?<dist>_distilled)?_patch(?<patch>\d{1,4})(?:_(?<img>\d{1,5}))?|vit_(?<size>[a-z]+)_patch(?<patch>\d{1,4})(?<reg>_reg(?<regs>\d{1,3}))?_(?<dinov2>dinov2))$")]
    private static partial Regex NamePattern();

    /// <summary>
    /// The names timm registers (timm/models/vision_transformer.py and deit.py) whose layout the engine runs, for listings
    /// and suggestions; <see cref="TryResolve"/> accepts these, their tagged forms, and other sizes of the same patterns.
    /// </summary>
    public static IReadOnlyList<string> KnownNames { get; } =
    [
        "vit_tiny_patch16_224", "vit_tiny_patch16_384",
        "vit_small_patch8_224", "vit_small_patch16_224", "vit_small_patch16_384", "vit_small_patch32_224", "vit_small_patch32_384",
        "vit_base_patch8_224", "vit_base_patch16_224", "vit_base_patch16_384", "vit_base_patch32_224", "vit_base_patch32_384",
        "vit_large_patch14_224", "vit_large_patch16_224", "vit_large_patch16_384", "vit_large_patch32_224", "vit_large_patch32_384",
        "vit_huge_patch14_224",
        "deit_tiny_patch16_224", "deit_small_patch16_224", "deit_base_patch16_224", "deit_base_patch16_384",
        "deit_tiny_distilled_patch16_224", "deit_small_distilled_patch16_224", "deit_base_distilled_patch16_224", "deit_base_distilled_patch16_384",
        "deit3_small_patch16_224", "deit3_small_patch16_384", "deit3_medium_patch16_224", "deit3_base_patch16_224", "deit3_base_patch16_384",
        "deit3_large_patch16_224", "deit3_large_patch16_384", "deit3_huge_patch14_224",
        "vit_small_patch14_dinov2", "vit_base_patch14_dinov2", "vit_large_patch14_dinov2",
        "vit_small_patch14_reg4_dinov2", "vit_base_patch14_reg4_dinov2", "vit_large_patch14_reg4_dinov2",
    ];

    /// <summary>The MAE repository's fine-tuned ViTs (models_vit.py): not timm names (neither listed nor suggested), but resolved.</summary>
    public static IReadOnlyList<string> MaeNames { get; } = ["vit_base_patch16", "vit_large_patch16", "vit_huge_patch14"];

    /// <summary>Resolves a timm name such as <c>vit_base_patch16_224.augreg_in21k_ft_in1k</c> (the tag after the dot is ignored).</summary>
    public static bool TryResolve(string name, out Architecture architecture)
    {
        architecture = null!;
        var baseName = name.Split('.', 2)[0];
        var match = NamePattern().Match(baseName);
        if (!match.Success || !widths.TryGetValue(match.Groups["size"].Value, out var w)
            || !int.TryParse(match.Groups["patch"].Value, out int patch) || patch <= 0)
            return false;
        bool dinov2 = match.Groups["dinov2"].Success;
        var family = dinov2 ? "dinov2" : match.Groups["family"].Value;
        bool distilled = match.Groups["dist"].Success;
        // deit's distilled variants are the only distilled ones; DeiT stops at base; medium exists only in DeiT III.
        var size = match.Groups["size"].Value;
        if (distilled && family != "deit" || family == "deit" && size is "large" or "huge" || size == "medium" && family != "deit3")
            return false;
        int image;
        if (match.Groups["img"].Success)
        {
            if (!int.TryParse(match.Groups["img"].Value, out image))
                return false;
        }
        else if (dinov2)
        {
            image = 518;
        }
        else if (family == "vit")
        {
            // The MAE repository's fine-tuned ViTs (models_vit.py) carry no image size: 224, avg pool + fc_norm.
            family = "mae";
            image = 224;
        }
        else
        {
            return false;
        }
        int regs = match.Groups["regs"].Success && int.TryParse(match.Groups["regs"].Value, out int n) ? n : 0;
        if (image <= 0 || image % patch != 0 || match.Groups["reg"].Success && regs <= 0)
            return false;
        architecture = new Architecture(baseName, family, w.EmbedDim, w.Depth, w.Heads, patch, image, distilled)
        {
            RegTokens = regs,
            // DeiT III and the register DINOv2s give positions to the patches only (timm's no_embed_class).
            NoEmbedClass = family == "deit3" || regs > 0,
            LayerScale = family is "deit3" or "dinov2",
            GlobalPool = family == "mae" ? GlobalPool.Avg : GlobalPool.Token,
        };
        return true;
    }

    public static Architecture Resolve(string name) =>
        TryResolve(name, out var a) ? a : throw new Weights.InvalidModelException(UnknownMessage(name));

    internal static string UnknownMessage(string name)
    {
        var closest = Closest(name.Split('.', 2)[0]);
        return closest.Count > 0
            ? $"unknown architecture '{name}' (did you mean {string.Join(" or ", closest)}? `tome info --list` lists the timm names the engine runs)"
            : $"unknown architecture '{name}': the engine runs timm's ViT, DeiT, DeiT III and DINOv2 Vision Transformers only (`tome info --list` lists their names)";
    }

    /// <summary>
    /// The listed names (<see cref="KnownNames"/>, what <c>tome info --list</c> prints) nearest to <paramref name="name"/> by
    /// edit distance: the nearest, and up to two more at most one edit further. Empty when even the nearest is more than
    /// max(2, length / 4) edits away: such a name (resnet50) is another family, not a typo.
    /// </summary>
    public static IReadOnlyList<string> Closest(string name)
    {
        int cutoff = Math.Max(2, name.Length / 4);
        var ranked = KnownNames
            .Select(known => (Name: known, Distance: EditDistance(name, known)))
            .Where(c => c.Distance <= cutoff)
            .OrderBy(c => c.Distance).ThenBy(c => c.Name, StringComparer.Ordinal)
            .ToList();
        return ranked.Take(3).Where(c => c.Distance <= ranked[0].Distance + 1).Select(c => c.Name).ToArray();
    }

    /// <summary>Levenshtein distance (insertions, deletions, substitutions), in one row of memory.</summary>
    internal static int EditDistance(string a, string b)
    {
        var row = new int[b.Length + 1];
        for (int j = 0; j <= b.Length; j++)
            row[j] = j;
        for (int i = 1; i <= a.Length; i++)
        {
            int diagonal = row[0];
            row[0] = i;
            for (int j = 1; j <= b.Length; j++)
            {
                int above = row[j];
                row[j] = Math.Min(Math.Min(row[j] + 1, row[j - 1] + 1), diagonal + (a[i - 1] == b[j - 1] ? 0 : 1));
                diagonal = above;
            }
        }
        return row[b.Length];
    }
}
