using ToMe.Weights.Hub;

namespace ToMe.Tests.Hub;

public sealed class HubNameAndOptionsTests
{
    [Theory]
    [InlineData("timm/vit_tiny_patch16_224.augreg_in21k_ft_in1k", "timm/vit_tiny_patch16_224.augreg_in21k_ft_in1k")]
    [InlineData("vit_tiny_patch16_224.augreg_in21k_ft_in1k", "timm/vit_tiny_patch16_224.augreg_in21k_ft_in1k")]
    [InlineData("vit_base_patch16_224", "timm/vit_base_patch16_224.augreg2_in21k_ft_in1k")]
    [InlineData("deit_small_distilled_patch16_224", "timm/deit_small_distilled_patch16_224.fb_in1k")]
    [InlineData("hf-hub:someone/my_vit", "someone/my_vit")]
    [InlineData("timm/some_future_vit.tag", "timm/some_future_vit.tag")]
    public void HubNamesResolveToRepositories(string text, string expected)
    {
        Assert.True(HubRepoId.TryParse(text, out var id));
        Assert.Equal(expected, id.ToString());
        Assert.Equal("models--" + expected.Replace("/", "--"), id.CacheFolderName);
    }

    [Theory]
    [InlineData("model.safetensors")]
    [InlineData("./models/vit")]
    [InlineData("/abs/path")]
    [InlineData("someone/my_vit")] // other owners need hf-hub:, so relative paths are not taken for repositories
    [InlineData("timm/../etc")]
    [InlineData("timm/a/b")]
    [InlineData("hf-hub:timm/..")]
    [InlineData("resnet50.a1_in1k")]
    public void OtherTextIsNotAHubName(string text) => Assert.False(HubRepoId.TryParse(text, out _));

    [Fact]
    public void BareNameWithoutAKnownDefaultTagAsksForTheTag()
    {
        var error = Assert.Throws<ArgumentException>(() => HubRepoId.TryParse("vit_huge_patch14_224", out _));
        Assert.Contains("pretrained tag", error.Message);
    }

    [Fact]
    public void EnvironmentSelectsCacheEndpointOfflineAndToken()
    {
        var env = new Dictionary<string, string>
        {
            ["HOME"] = "/home/u",
            ["HF_HOME"] = "/data/hf",
            ["HF_ENDPOINT"] = "http://127.0.0.1:1234/",
            ["HF_HUB_OFFLINE"] = "1",
            ["HF_TOKEN"] = "hf_x",
            ["HF_HUB_ETAG_TIMEOUT"] = "2.5",
        };
        var options = HubOptions.FromEnvironment(env.GetValueOrDefault);
        Assert.Equal(Path.Combine("/data/hf", "hub"), options.CacheDirectory);
        Assert.Equal("http://127.0.0.1:1234", options.Endpoint);
        Assert.True(options.Offline);
        Assert.Equal("hf_x", options.Token);
        Assert.Equal(TimeSpan.FromSeconds(2.5), options.RequestTimeout);

        env["HF_HUB_CACHE"] = "~/hubcache";
        env["HF_HUB_OFFLINE"] = "0";
        options = HubOptions.FromEnvironment(env.GetValueOrDefault);
        Assert.Equal(Path.Combine("/home/u", "hubcache"), options.CacheDirectory);
        Assert.False(options.Offline);
    }

    [Fact]
    public void DefaultsMatchHuggingfaceHub()
    {
        var options = HubOptions.FromEnvironment(name => name == "HOME" ? "/home/u" : null);
        Assert.Equal(Path.Combine("/home/u", ".cache", "huggingface", "hub"), options.CacheDirectory);
        Assert.Equal("https://huggingface.co", options.Endpoint);
        Assert.False(options.Offline);
        Assert.Null(options.Token);
        Assert.Equal("main", options.Revision);
    }
}
