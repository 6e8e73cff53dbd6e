using System.Text.RegularExpressions;

namespace ToMe.Model;

/// <summary>The timm ViT / DeiT names the engine knows: width, depth and heads per size, parsed from the name.</summary>
public static partial class ArchitectureTable
{
    /// <summary>timm's widths: (embed_dim, depth, num_heads).</summary>
    private static readonly Dictionary<string, (int EmbedDim, int Depth, int Heads)> widths = new()
    {
        ["tiny"] = (192, 12, 3),
        ["small"] = (384, 12, 6),
        ["base"] = (768, 12, 12),
        ["large"] = (1024, 24, 16),
        ["huge"] = (1280, 32, 16),
    };

    /// <summary>One resolved architecture name.</summary>
    public sealed record Architecture(string Name, string Family, int EmbedDim, int Depth, int NumHeads, int PatchSize, int ImageSize, bool Distilled);

    [GeneratedRegex(@"^(?<family>vit|deit)_(?<size>tiny|small|base|large|huge)(?<dist>_distilled)?_patch(?<patch>\d{1,4})_(?<img>\d{1,5})$")]
    private static partial Regex NamePattern();

    /// <summary>Names as timm registers them, for listings; <see cref="TryResolve"/> accepts these and their tagged forms.</summary>
    public static IReadOnlyList<string> KnownNames { get; } =
    [
        "vit_tiny_patch16_224", "vit_tiny_patch16_384",
        "vit_small_patch16_224", "vit_small_patch16_384", "vit_small_patch32_224", "vit_small_patch32_384", "vit_small_patch8_224",
        "vit_base_patch16_224", "vit_base_patch16_384", "vit_base_patch32_224", "vit_base_patch32_384", "vit_base_patch8_224",
        "vit_large_patch16_224", "vit_large_patch16_384", "vit_large_patch32_224", "vit_large_patch32_384", "vit_large_patch14_224",
        "vit_huge_patch14_224",
        "deit_tiny_patch16_224", "deit_small_patch16_224", "deit_base_patch16_224", "deit_base_patch16_384",
        "deit_tiny_distilled_patch16_224", "deit_small_distilled_patch16_224", "deit_base_distilled_patch16_224",
        "deit_base_distilled_patch16_384",
    ];

    /// <summary>Resolves a timm name such as <c>vit_base_patch16_224.augreg_in21k_ft_in1k</c> (the tag after the dot is ignored).</summary>
    public static bool TryResolve(string name, out Architecture architecture)
    {
        var baseName = name.Split('.', 2)[0];
        var match = NamePattern().Match(baseName);
        if (!match.Success || !widths.TryGetValue(match.Groups["size"].Value, out var w))
        {
            architecture = null!;
            return false;
        }
        bool distilled = match.Groups["dist"].Success;
        if (distilled && match.Groups["family"].Value != "deit")
        {
            architecture = null!;
            return false;
        }
        architecture = new Architecture(baseName, match.Groups["family"].Value, w.EmbedDim, w.Depth, w.Heads,
            int.Parse(match.Groups["patch"].Value), int.Parse(match.Groups["img"].Value), distilled);
        return architecture.PatchSize > 0 && architecture.ImageSize % architecture.PatchSize == 0;
    }

    public static Architecture Resolve(string name) =>
        TryResolve(name, out var a) ? a : throw new Weights.InvalidModelException(UnknownMessage(name));

    internal static string UnknownMessage(string name) =>
        $"unknown architecture '{name}' (expected a timm ViT/DeiT name such as {string.Join(", ", KnownNames.Take(4))}, ...; see `tome info --list`)";
}
