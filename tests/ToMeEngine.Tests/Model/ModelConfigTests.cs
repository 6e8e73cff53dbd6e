using ToMe.Imaging;
using ToMe.Model;
using ToMe.Weights;

namespace ToMe.Tests.Model;

public class ModelConfigTests
{
    [Theory]
    [InlineData("vit_tiny_patch16_224", 192, 12, 3, 16, 224, false)]
    [InlineData("vit_base_patch32_384.augreg_in21k_ft_in1k", 768, 12, 12, 32, 384, false)]
    [InlineData("vit_large_patch16_224", 1024, 24, 16, 16, 224, false)]
    [InlineData("vit_huge_patch14_224", 1280, 32, 16, 14, 224, false)]
    [InlineData("deit_small_distilled_patch16_224.fb_in1k", 384, 12, 6, 16, 224, true)]
    public void ResolvesTimmNames(string name, int dim, int depth, int heads, int patch, int size, bool distilled)
    {
        var a = ArchitectureTable.Resolve(name);
        Assert.Equal((dim, depth, heads, patch, size, distilled), (a.EmbedDim, a.Depth, a.NumHeads, a.PatchSize, a.ImageSize, a.Distilled));
    }

    [Theory]
    [InlineData("resnet50")]
    [InlineData("vit_gigantic_patch16_224")]
    [InlineData("vit_small_distilled_patch16_224")]
    [InlineData("vit_base_patch16_225")]
    public void RefusesUnknownNames(string name)
    {
        var error = Assert.Throws<InvalidModelException>(() => ArchitectureTable.Resolve(name));
        Assert.Contains($"'{name}'", error.Message);
    }

    [Fact]
    public void EveryListedNameResolves()
    {
        foreach (var name in ArchitectureTable.KnownNames)
            Assert.True(ArchitectureTable.TryResolve(name, out _), name);
    }

    [Theory]
    [InlineData("vit_p14_d3")]
    [InlineData("deit_t4_distilled")]
    public void ParameterCountIsTheFilesElementCount(string model)
    {
        using var file = SafeTensorsFile.Open(Support.Fixtures.ModelPath(model));
        var config = ModelLoader.ReadConfig(file.FilePath);
        Assert.Equal(file.Tensors.Values.Sum(t => t.ElementCount), config.ParameterCount);
    }

    [Fact]
    public void HubConfigCarriesPreprocessingAndLabels()
    {
        var json = """
            {"architecture": "deit_base_distilled_patch16_384", "num_classes": 3, "global_pool": "token",
             "pretrained_cfg": {"input_size": [3, 384, 384], "interpolation": "bicubic", "crop_pct": 1.0,
                                "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]},
             "label_names": ["a", "b", "c"]}
            """;
        var c = ModelConfigReader.FromHubConfig(json, "config.json");
        Assert.Equal((768, 12, 12, 16, 384, 3), (c.EmbedDim, c.Depth, c.NumHeads, c.PatchSize, c.ImageSize, c.NumClasses));
        Assert.True(c.Distilled);
        Assert.Equal(2, c.PrefixTokens);
        Assert.Equal(24 * 24 + 2, c.Tokens);
        Assert.Equal(384, c.Preprocess.ScaleSize);
        Assert.Equal(["a", "b", "c"], c.LabelNames);
    }

    [Fact]
    public void HubConfigModelArgsOverrideTheName()
    {
        var json = """{"architecture": "vit_base_patch16_224", "num_classes": 10, "model_args": {"class_token": false, "global_pool": "avg", "img_size": 256}}""";
        var c = ModelConfigReader.FromHubConfig(json, "config.json");
        Assert.False(c.ClassToken);
        Assert.Equal(GlobalPool.Avg, c.GlobalPool);
        Assert.True(c.FcNorm);
        Assert.Equal(256, c.ImageSize);
        Assert.Equal(0.5f, c.Preprocess.Mean[0]);
        Assert.Equal(0.9, c.Preprocess.CropPct);
    }

    [Theory]
    [InlineData("{}", "missing field 'architecture'")]
    [InlineData("{\"architecture\": 5}", "'architecture' must be a string")]
    [InlineData("{\"architecture\": \"vit_tiny_patch16_224\", \"num_classes\": \"ten\"}", "'num_classes' must be an integer")]
    [InlineData("{\"architecture\": \"vit_tiny_patch16_224\", \"global_pool\": \"max\"}", "global_pool 'max'")]
    [InlineData("{\"architecture\": \"vit_tiny_patch16_224\", \"label_names\": [\"x\"]}", "label_names has 1 entries, expected num_classes = 1000")]
    [InlineData("{\"architecture\": \"vit_tiny_patch16_224\", \"label_names\": 42}", "field 'label_names' must be an array of strings (one per class), found 42")]
    [InlineData("{\"architecture\": \"vit_tiny_patch16_224\", \"label_names\": \"tench\"}", "field 'label_names' must be an array of strings (one per class), found \"tench\"")]
    [InlineData("{\"architecture\": \"vit_tiny_patch16_224\", \"label_names\": {}}", "field 'label_names' must be an array of strings (one per class), found {}")]
    [InlineData("{\"architecture\": \"vit_tiny_patch16_224\", \"pretrained_cfg\": {\"crop_mode\": \"sqush\"}}", "crop_mode 'sqush' is not supported (expected center, squash or border)")]
    [InlineData("{\"architecture\": \"vit_tiny_patch16_224\", \"pretrained_cfg\": {\"crop_mode\": 1}}", "field 'crop_mode' must be a string")]
    public void BadHubConfigsAreNamed(string json, string fragment)
    {
        var error = Assert.Throws<InvalidModelException>(() => ModelConfigReader.FromHubConfig(json, "config.json"));
        Assert.Contains("config.json", error.Message);
        Assert.Contains(fragment, error.Message);
    }
    // timm's pretrained_cfg.crop_mode selects the eval resize (transforms_factory.transforms_imagenet_eval); absent means center.
    [Theory]
    [InlineData(null, CropMode.Center)]
    [InlineData("center", CropMode.Center)]
    [InlineData("squash", CropMode.Squash)]
    [InlineData("border", CropMode.Border)]
    public void CropModeIsRead(string? mode, CropMode expected)
    {
        var cfg = mode is null ? "{}" : $$"""{"crop_mode": "{{mode}}"}""";
        var hub = ModelConfigReader.FromHubConfig($$"""{"architecture": "vit_tiny_patch16_224", "pretrained_cfg": {{cfg}}}""", "config.json");
        Assert.Equal(expected, hub.Preprocess.CropMode);
        var embedded = ModelConfigReader.FromEmbeddedConfig($$"""
            {"img_size": 32, "patch_size": 8, "embed_dim": 16, "depth": 1, "num_heads": 2, "num_classes": 3{{(mode is null ? "" : $", \"crop_mode\": \"{mode}\"")}}}
            """, "m.safetensors");
        Assert.Equal(expected, embedded.Preprocess.CropMode);
    }
}
