using ToMe.Imaging;
using ToMe.Merging;
using ToMe.Tests.Serving;

namespace ToMe.Tests.Api;

/// <summary>Inspecting an image at another r is what an engine loaded with that r computes, and leaves the engine as it was.</summary>
public sealed class MergeInspectionTests
{
    [Theory]
    [InlineData(0)]
    [InlineData(13)]
    [InlineData(64)]
    [InlineData(500)] // beyond half the tokens: ToMe merges what it can
    public void InspectingAtRMatchesAnEngineLoadedWithR(int r)
    {
        var image = ImageDecoder.Decode(ServingTestData.Encoded()[1]);
        using var engine = ToMeEngine.Load(ServingTestData.ModelPath, new EngineOptions { Backend = BackendKind.Cpu, Schedule = MergeSchedule.Constant(8) });
        using var atR = ToMeEngine.Load(ServingTestData.ModelPath, new EngineOptions { Backend = BackendKind.Cpu, Schedule = MergeSchedule.Constant(r) });
        var before = engine.Classify(image, 5);

        var inspection = engine.Inspect(image, MergeSchedule.Constant(r));

        ServingTestData.AssertSame(atR.Classify(image, 5), inspection.Predictions, $"r = {r}");
        var features = atR.ExtractFeatures(image);
        Assert.Equal(features.FinalTokens, inspection.FinalTokens);
        Assert.Equal(atR.Forward(atR.Preprocess(image), 1).TokensPerLayer, inspection.TokensPerLayer);
        Assert.Equal(features.Groups.Skip(engine.Config.PrefixTokens).Distinct().Count(), inspection.PatchGroups);
        Assert.Equal(atR.VisualizeMerging(image, features).Pixels, inspection.Visualization.Pixels);
        Assert.True(inspection.ForwardTime > TimeSpan.Zero);
        if (r == 0)
            Assert.Equal(engine.Config.NumPatches, inspection.PatchGroups);
        ServingTestData.AssertSame(before, engine.Classify(image, 5), "the engine's own schedule after an inspection");
    }
}
