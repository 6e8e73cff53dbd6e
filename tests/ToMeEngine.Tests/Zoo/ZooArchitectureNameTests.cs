using ToMe.Model;
using ToMe.Weights;

namespace ToMe.Tests.Zoo;

/// <summary>The names users bring, resolved through <see cref="ArchitectureTable"/> to their family's token layout.</summary>
public class ZooArchitectureNameTests
{
    [Theory]
    // name, dim, depth, heads, patch, image, registers, no_embed_class, LayerScale, avg pool
    [InlineData("vit_small_patch8_224.dino", 384, 12, 6, 8, 224, 0, false, false, false)]
    [InlineData("vit_base_patch32_384", 768, 12, 12, 32, 384, 0, false, false, false)]
    [InlineData("vit_large_patch14_518", 1024, 24, 16, 14, 518, 0, false, false, false)]
    [InlineData("deit3_small_patch16_224.fb_in1k", 384, 12, 6, 16, 224, 0, true, true, false)]
    [InlineData("deit3_medium_patch16_224", 512, 12, 8, 16, 224, 0, true, true, false)]
    [InlineData("deit3_huge_patch14_224", 1280, 32, 16, 14, 224, 0, true, true, false)]
    [InlineData("vit_base_patch14_dinov2.lvd142m", 768, 12, 12, 14, 518, 0, false, true, false)]
    [InlineData("vit_small_patch14_reg4_dinov2.lvd142m", 384, 12, 6, 14, 518, 4, true, true, false)]
    [InlineData("vit_base_patch16", 768, 12, 12, 16, 224, 0, false, false, true)]   // MAE fine-tuned
    [InlineData("vit_huge_patch14", 1280, 32, 16, 14, 224, 0, false, false, true)]
    public void ResolvesFamilies(string name, int dim, int depth, int heads, int patch, int image, int regs, bool noEmbedClass, bool layerScale, bool avg)
    {
        var a = ArchitectureTable.Resolve(name);
        Assert.Equal((dim, depth, heads, patch, image), (a.EmbedDim, a.Depth, a.NumHeads, a.PatchSize, a.ImageSize));
        Assert.Equal((regs, noEmbedClass, layerScale, avg ? GlobalPool.Avg : GlobalPool.Token), (a.RegTokens, a.NoEmbedClass, a.LayerScale, a.GlobalPool));

        var config = ModelConfigReader.FromArchitectureName(name);
        Assert.Equal(1 + regs, config.PrefixTokens);
        Assert.Equal((image / patch) * (image / patch) + (noEmbedClass ? 0 : 1 + regs), config.PosEmbedTokens);
        Assert.Equal(avg, config.FcNorm);
        // Only Google's ViTs normalize with 0.5; the other families use ImageNet statistics.
        Assert.Equal(name.StartsWith("vit_", StringComparison.Ordinal) && !avg && !name.Contains("dinov2") ? 0.5f : 0.485f, config.Preprocess.Mean[0]);
    }

    [Theory]
    [InlineData("deit_large_patch16_224")]
    [InlineData("vit_medium_patch16_224")]
    [InlineData("deit3_small_distilled_patch16_224")]
    [InlineData("vit_small_patch16_reg4_dinov2")]
    [InlineData("vit_small_patch14_reg0_dinov2")]
    [InlineData("vit_base_patch16_518")]
    [InlineData("deit3_base_patch16")]
    public void RefusesNamesNoModelHas(string name) =>
        Assert.Throws<InvalidModelException>(() => ArchitectureTable.Resolve(name));

    [Fact]
    public void ListsEveryFamily()
    {
        var names = ArchitectureTable.KnownNames;
        foreach (var expected in (string[])["vit_tiny_patch16_224", "vit_small_patch8_224", "vit_large_patch14_224", "vit_base_patch32_384",
                     "deit_tiny_distilled_patch16_224", "deit3_base_patch16_384", "vit_large_patch14_reg4_dinov2"])
            Assert.Contains(expected, names);
        Assert.Contains("vit_base_patch16", ArchitectureTable.MaeNames);
        foreach (var name in ArchitectureTable.MaeNames)
            Assert.True(ArchitectureTable.TryResolve(name, out var mae) && mae.Family == "mae", name);
        Assert.Equal(names.Count, names.Distinct().Count());
        foreach (var name in names)
            Assert.True(ArchitectureTable.TryResolve(name, out _), name);
    }

    [Fact]
    public void ModelArgsOverrideTheFamilyDefaults()
    {
        var json = """{"architecture": "vit_small_patch14_reg4_dinov2", "num_classes": 5, "model_args": {"reg_tokens": 2, "no_embed_class": false, "img_size": 224}}""";
        var c = ModelConfigReader.FromHubConfig(json, "config.json");
        Assert.Equal((2, false, true, 224), (c.RegTokens, c.NoEmbedClass, c.LayerScale, c.ImageSize));
        Assert.Equal(3 + 16 * 16, c.Tokens);
    }

    [Fact]
    public void DistilledWithRegistersIsRefused()
    {
        var json = """{"architecture": "deit_tiny_distilled_patch16_224", "num_classes": 5, "model_args": {"reg_tokens": 4}}""";
        var error = Assert.Throws<InvalidModelException>(() => ModelConfigReader.FromHubConfig(json, "config.json"));
        Assert.Contains("register", error.Message);
    }
}
