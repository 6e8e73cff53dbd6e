using System.Diagnostics.CodeAnalysis;
using System.Text.RegularExpressions;
using ToMe.Model;

namespace ToMe.Weights.Hub;

/// <summary>A model repository on the hub, <c>owner/name</c>, e.g. <c>timm/vit_tiny_patch16_224.augreg_in21k_ft_in1k</c>.</summary>
public sealed partial record HubRepoId
{
    /// <summary>The user or organization, e.g. <c>timm</c>.</summary>
    public string Owner { get; }

    /// <summary>The repository's name, e.g. <c>vit_tiny_patch16_224.augreg_in21k_ft_in1k</c>.</summary>
    public string Name { get; }

    /// <summary>The repository <c>owner/name</c>.</summary>
    /// <exception cref="ArgumentException">A part is empty or holds characters the hub does not allow in a repository id.</exception>
    public HubRepoId(string owner, string name)
    {
        if (!IsValidPart(owner) || !IsValidPart(name))
            throw new ArgumentException($"'{owner}/{name}' is not a valid hub repository id");
        Owner = owner;
        Name = name;
    }

    /// <summary>The repository's folder in the cache, as huggingface_hub names it.</summary>
    public string CacheFolderName => $"models--{Owner}--{Name}";

    /// <summary><c>owner/name</c>.</summary>
    public override string ToString() => $"{Owner}/{Name}";

    // timm's default pretrained tag for names given without one (the first tag timm lists for each name), so
    // `vit_tiny_patch16_224` fetches what timm.create_model(..., pretrained=True) fetches.
    private static readonly Dictionary<string, string> defaultTags = new()
    {
        ["vit_tiny_patch16_224"] = "augreg_in21k_ft_in1k",
        ["vit_tiny_patch16_384"] = "augreg_in21k_ft_in1k",
        ["vit_small_patch16_224"] = "augreg_in21k_ft_in1k",
        ["vit_small_patch16_384"] = "augreg_in21k_ft_in1k",
        ["vit_small_patch32_224"] = "augreg_in21k_ft_in1k",
        ["vit_small_patch32_384"] = "augreg_in21k_ft_in1k",
        ["vit_base_patch16_224"] = "augreg2_in21k_ft_in1k",
        ["vit_base_patch16_384"] = "augreg_in21k_ft_in1k",
        ["vit_base_patch32_224"] = "augreg_in21k_ft_in1k",
        ["vit_base_patch32_384"] = "augreg_in21k_ft_in1k",
        ["vit_base_patch8_224"] = "augreg2_in21k_ft_in1k",
        ["vit_large_patch16_224"] = "augreg_in21k_ft_in1k",
        ["vit_large_patch16_384"] = "augreg_in21k_ft_in1k",
        ["deit_tiny_patch16_224"] = "fb_in1k",
        ["deit_small_patch16_224"] = "fb_in1k",
        ["deit_base_patch16_224"] = "fb_in1k",
        ["deit_base_patch16_384"] = "fb_in1k",
        ["deit_tiny_distilled_patch16_224"] = "fb_in1k",
        ["deit_small_distilled_patch16_224"] = "fb_in1k",
        ["deit_base_distilled_patch16_224"] = "fb_in1k",
        ["deit_base_distilled_patch16_384"] = "fb_in1k",
    };

    /// <summary>
    /// Reads a model name the way timm's <c>pretrained=True</c> takes it: <c>timm/NAME</c>, <c>hf-hub:OWNER/NAME</c>,
    /// or a bare timm name (<c>vit_..</c>/<c>deit_..</c>, with or without its pretrained tag) meaning <c>timm/NAME</c>.
    /// Returns false for anything else (a path, a typo), so callers can fall back to treating the text as a path.
    /// </summary>
    /// <exception cref="ArgumentException">A bare timm name without a tag whose default tag the engine does not know.</exception>
    public static bool TryParse(string text, [NotNullWhen(true)] out HubRepoId? id)
    {
        id = null;
        foreach (var prefix in (string[])["hf-hub:", "hf_hub:"])
        {
            if (text.StartsWith(prefix, StringComparison.Ordinal))
            {
                var parts = text[prefix.Length..].Split('/');
                if (parts.Length != 2 || !IsValidPart(parts[0]) || !IsValidPart(parts[1]))
                    return false;
                id = new HubRepoId(parts[0], parts[1]);
                return true;
            }
        }
        if (text.StartsWith("timm/", StringComparison.Ordinal))
        {
            var name = text["timm/".Length..];
            if (!IsValidPart(name))
                return false;
            id = new HubRepoId("timm", name);
            return true;
        }
        if (!IsValidPart(text) || !ArchitectureTable.TryResolve(text, out _))
            return false;
        if (text.Contains('.'))
        {
            id = new HubRepoId("timm", text);
            return true;
        }
        if (!defaultTags.TryGetValue(text, out var tag))
        {
            // The example is a repository that exists (a name with a known default tag), never this name plus a guessed tag.
            var example = defaultTags.MinBy(d => ArchitectureTable.EditDistance(text, d.Key));
            throw new ArgumentException($"{text}: timm names its hub repositories with a pretrained tag (NAME.TAG) and the engine does not know this name's default; " +
                                        $"give the full name of a repository listed on https://huggingface.co/timm, e.g. timm/{example.Key}.{example.Value}");
        }
        id = new HubRepoId("timm", $"{text}.{tag}");
        return true;
    }

    // The hub's repository-name rules, which also keep a name from escaping the cache folder ("..", separators).
    [GeneratedRegex(@"^[A-Za-z0-9][A-Za-z0-9._-]{0,95}$")]
    private static partial Regex PartPattern();

    private static bool IsValidPart(string part) =>
        PartPattern().IsMatch(part) && !part.Contains("..", StringComparison.Ordinal) && !part.Contains("--", StringComparison.Ordinal)
        && !part.EndsWith('.');
}
