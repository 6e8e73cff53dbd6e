using System.Text.RegularExpressions;

namespace ToMe.Model;

/// <summary>
/// The timm ViT / DeiT / DeiT III / DINOv2 / MAE names the engine knows: width, depth and heads per size, and the
/// family's token layout (register tokens, position embeddings for patches only, LayerScale, pooling), parsed from the name.
/// </summary>
public static partial class ArchitectureTable
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

    private static readonly string[] Sizes = ["tiny", "small", "base", "large", "huge"];

    /// <summary>Names as timm (or the MAE repository) registers them, for listings; <see cref="TryResolve"/> accepts these and their tagged forms.</summary>
    public static IReadOnlyList<string> KnownNames { get; } = BuildKnownNames();

    private static List<string> BuildKnownNames()
    {
        var names = new List<string>();
        foreach (var size in Sizes)
            foreach (int patch in (int[])[8, 14, 16, 32])
                foreach (int img in (int[])[224, 384, 518])
                    if (img % patch == 0)
                        names.Add($"vit_{size}_patch{patch}_{img}");
        foreach (var size in (string[])["tiny", "small", "base"])
            foreach (var dist in (string[])["", "_distilled"])
                foreach (int img in (int[])[224, 384])
                    names.Add($"deit_{size}{dist}_patch16_{img}");
        foreach (var size in (string[])["small", "medium", "base", "large"])
            foreach (int img in (int[])[224, 384])
                names.Add($"deit3_{size}_patch16_{img}");
        names.Add("deit3_huge_patch14_224");
        foreach (var size in (string[])["small", "base", "large"])
        {
            names.Add($"vit_{size}_patch14_dinov2");
            names.Add($"vit_{size}_patch14_reg4_dinov2");
        }
        names.AddRange(["vit_base_patch16", "vit_large_patch16", "vit_huge_patch14"]);
        return names;
    }

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

    internal static string UnknownMessage(string name) =>
        $"unknown architecture '{name}' (expected a timm ViT/DeiT name such as {string.Join(", ", KnownNames.Take(4))}, ...; see `tome info --list`)";
}
