using ToMe.Imaging;
using ToMe.Merging;
using ToMe.Tests.Support;

namespace ToMe.Tests.Api;

/// <summary>The public engine API on the shipped fixture model and test pictures.</summary>
public sealed class EngineApiTests : IDisposable
{
    private readonly string dir = Directory.CreateTempSubdirectory("tome-api-").FullName;

    public void Dispose() => Directory.Delete(dir, recursive: true);

    private static ToMeEngine Load(MergeSchedule? schedule = null, int maxBatch = 32) =>
        ToMeEngine.Load(Fixtures.ModelPath("vit_p14_d3"), new EngineOptions
        {
            Backend = BackendKind.Cpu,
            Schedule = schedule ?? MergeSchedule.None,
            MaxBatchSize = maxBatch,
        });

    private static string Picture(string name) => RepoData.Path(Path.Combine("images", name));

    [Fact]
    public void EveryInputFormOfClassifyAgrees()
    {
        using var engine = Load(MergeSchedule.Constant(13));
        var path = Picture("baseline_420_q90.jpg");
        var fromPath = engine.Classify(path, topK: 3);
        Assert.Equal(fromPath, engine.Classify(File.ReadAllBytes(path), 3));
        using (var stream = File.OpenRead(path))
            Assert.Equal(fromPath, engine.Classify(stream, 3));
        Assert.Equal(fromPath, engine.Classify(ImageDecoder.Decode(path), 3));
        Assert.Equal(3, fromPath.Count);
        Assert.True(fromPath[0].Probability >= fromPath[1].Probability && fromPath[1].Probability >= fromPath[2].Probability);
        Assert.Equal($"class {fromPath[0].ClassIndex}", fromPath[0].Label); // the fixture has no label names
    }

    [Fact]
    public void AScheduleListLongerThanTheModelFailsAtLoad()
    {
        // vit_p14_d3 has 3 blocks; kth merging reads no schedule, so the list does not matter to it.
        var error = Assert.Throws<ArgumentException>(() => Load(MergeSchedule.Parse("[1,1,1,1]")));
        Assert.Contains("the model has 3 blocks", error.Message);
        using var kth = ToMeEngine.Load(Fixtures.ModelPath("vit_p14_d3"),
            new EngineOptions { Backend = BackendKind.Cpu, Schedule = MergeSchedule.Parse("[1,1,1,1]"), Merge = MergeStrategy.Kth(2) });
        using var engine = Load(MergeSchedule.Parse("[1,1,1]"));
        Assert.Throws<ArgumentException>(() => engine.EvaluateSchedules([(Picture("png_rgb.png"), 0)], [MergeSchedule.Parse("[1,1,1,1]")]));
    }

    [Fact]
    public void ClassifyMatchesTheGoldenTop5OfTimm()
    {
        // The golden input is these two pictures through timm's eval transform; case2 is r = 13 with prop-attn.
        using var golden = ToMe.Weights.SafeTensorsFile.Open(Fixtures.GoldenPath("vit_p14_d3"));
        using var engine = Load(MergeSchedule.Constant(13));
        var results = engine.ClassifyBatch([Picture("baseline_420_q90.jpg"), Picture("png_rgb.png")], topK: 5);
        var logits = golden.ReadFloat64("case2.logits_f64");
        for (int b = 0; b < 2; b++)
        {
            var expected = Enumerable.Range(0, 100).OrderByDescending(i => logits[b * 100 + i]).Take(5);
            Assert.Equal(expected, results[b].Select(p => p.ClassIndex));
        }
    }

    [Fact]
    public void BatchesAreSplitAndGiveTheSameAnswerAsSingleImages()
    {
        using var engine = Load(maxBatch: 2);
        var names = new[] { "baseline_420_q90.jpg", "png_rgb.png", "bmp_rgb.bmp", "gray_q90.jpg", "tiny_420_q90.jpg" };
        var batch = engine.ClassifyBatch(names.Select(Picture).ToList(), topK: 2);
        for (int i = 0; i < names.Length; i++)
            Assert.Equal(engine.Classify(Picture(names[i]), 2), batch[i]);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(3)]
    public void WarmUpAtLoadLeavesEveryLaterResultUnchanged(int maxBatch)
    {
        var options = new EngineOptions { Backend = BackendKind.Cpu, Schedule = MergeSchedule.Constant(13), MaxBatchSize = maxBatch, Threads = 2 };
        using var warm = ToMeEngine.Load(Fixtures.ModelPath("vit_p14_d3"), options);
        using var cold = ToMeEngine.Load(Fixtures.ModelPath("vit_p14_d3"), options with { WarmUp = false });
        Assert.True(warm.WarmedUp);
        Assert.False(cold.WarmedUp);
        int s = warm.Config.ImageSize, batch = maxBatch;
        var random = new Random(16);
        var images = Enumerable.Range(0, batch * 3 * s * s).Select(_ => (float)random.NextDouble() * 4 - 2).ToArray();
        var expected = cold.Forward(images, batch);
        var actual = warm.Forward(images, batch);
        Assert.Equal(expected.Logits, actual.Logits);
        Assert.Equal(expected.Size, actual.Size);
        Assert.Equal(expected.Groups, actual.Groups);
        Assert.Equal(cold.Forward(images.AsSpan(0, 3 * s * s), 1).Logits, warm.Forward(images.AsSpan(0, 3 * s * s), 1).Logits);
    }

    [Fact]
    public void BadImagesAndOptionsGiveTypedErrors()
    {
        using var engine = Load();
        var bad = Path.Combine(dir, "bad.jpg");
        File.WriteAllBytes(bad, [0xFF, 0xD8, 0xFF, 0xE0, 0, 16, 1, 2]);
        Assert.Throws<InvalidImageException>(() => engine.Classify(bad));
        Assert.Throws<InvalidImageException>(() => engine.Classify(Array.Empty<byte>()));
        Assert.Throws<ArgumentOutOfRangeException>(() => engine.Classify(Picture("png_rgb.png"), topK: 0));
        Assert.Throws<ArgumentOutOfRangeException>(() => ToMeEngine.Load(Fixtures.ModelPath("vit_p14_d3"), new EngineOptions { MaxBatchSize = 0 }));
        // And the engine still answers afterwards.
        Assert.Single(engine.Classify(Picture("png_rgb.png"), 1));
    }

    [Fact]
    public void DisposedEngineRefusesWork()
    {
        var engine = Load();
        engine.Dispose();
        engine.Dispose();
        Assert.Throws<ObjectDisposedException>(() => engine.Classify(Picture("png_rgb.png")));
        // Refused before the input is read: a missing file or bad bytes are not what is wrong with the call.
        var missing = Path.Combine(dir, "missing.jpg");
        Assert.Throws<ObjectDisposedException>(() => engine.Classify(missing));
        Assert.Throws<ObjectDisposedException>(() => engine.Classify(new byte[] { 1, 2, 3 }));
        Assert.Throws<ObjectDisposedException>(() => engine.Classify(new MemoryStream([1, 2, 3])));
        Assert.Throws<ObjectDisposedException>(() => engine.ExtractFeatures(missing));
        Assert.Throws<ObjectDisposedException>(() => engine.ExtractFeatures(new byte[] { 1, 2, 3 }));
        Assert.Throws<ObjectDisposedException>(() => engine.ClassifyBatch([missing]));
    }

    [Fact]
    public void FeaturesUnmergeOntoThePatchGrid()
    {
        using var engine = Load(MergeSchedule.Constant(13));
        var features = engine.ExtractFeatures(ImageDecoder.Decode(Picture("png_rgb.png")));
        int c = features.Channels, grid = features.GridSize;
        Assert.Equal(16, grid);
        for (int p = 0; p < grid * grid; p++)
        {
            int holder = features.Groups[1 + p];
            Assert.Equal(features.Tokens.AsSpan(holder * c, c).ToArray(), features.PatchGrid.AsSpan(p * c, c).ToArray());
        }
        Assert.Equal(257f, features.Sizes.Sum());
    }

    [Fact]
    public void VisualizationOutlinesEveryGroupAndWritesAPng()
    {
        using var engine = Load(MergeSchedule.Constant(60));
        var image = ImageDecoder.Decode(Picture("png_rgb.png"));
        var picture = engine.VisualizeMerging(image);
        Assert.Equal((224, 224), (picture.Width, picture.Height));
        var path = Path.Combine(dir, "groups.png");
        PngEncoder.Save(picture, path);
        var back = ImageDecoder.Decode(path);
        Assert.Equal(picture.Pixels, back.Pixels);
        // With no merging every patch is its own group: every patch border is drawn.
        using var plain = Load();
        var unmerged = plain.VisualizeMerging(image);
        var crop = new Preprocessor(plain.Config.Preprocess).ResizeAndCrop(image);
        Assert.NotEqual(crop.Pixels, unmerged.Pixels);
        Assert.NotEqual(unmerged.Pixels, picture.Pixels);
    }
}
