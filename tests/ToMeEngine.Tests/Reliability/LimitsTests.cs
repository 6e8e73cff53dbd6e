using System.Text;
using ToMe.Imaging;
using ToMe.Model;
using ToMe.Tests.Imaging;
using ToMe.Weights;

namespace ToMe.Tests.Reliability;

/// <summary>Every limit: its default holds, its option moves it, and a refusal is typed, names the limit and allocates nothing big.</summary>
public sealed class LimitsTests : IDisposable
{
    private readonly string dir = Directory.CreateTempSubdirectory("tome-limits-").FullName;

    public void Dispose() => Directory.Delete(dir, recursive: true);

    private string Save(string name, byte[] bytes)
    {
        var path = Path.Combine(dir, name);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.WriteAllBytes(path, bytes);
        return path;
    }

    private string TinyModelPath() => Save("tiny/tiny.safetensors", HostileCorpus.TinyModel().ToArray());

    private static string ManyTensorsHeader(int count)
    {
        var header = new StringBuilder("{");
        for (int i = 0; i < count; i++)
            header.Append(i == 0 ? "" : ",").Append($"\"t{i}\":{{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[0,0]}}");
        return header.Append('}').ToString();
    }

    [Fact]
    public void TensorCountDefaultAndOption()
    {
        var huge = HostileCorpus.Raw(ManyTensorsHeader(ModelLimits.Default.MaxTensors + 1));
        var e = Assert.Throws<InvalidModelException>(() => SafeTensorsFile.ParseHeader("many.safetensors", huge, huge.Length));
        Assert.Contains("more than 100000 tensors", e.Message);
        Assert.Contains("ModelLimits.MaxTensors", e.Message);

        var path = TinyModelPath();
        var options = new EngineOptions { Backend = BackendKind.Cpu, ModelLimits = new ModelLimits { MaxTensors = 5 } };
        Assert.Contains("more than 5 tensors", Assert.Throws<InvalidModelException>(() => ToMeEngine.Load(path, options)).Message);
        ToMeEngine.Load(path, new EngineOptions { Backend = BackendKind.Cpu }).Dispose();
    }

    [Fact]
    public void HeaderSizeOption()
    {
        var path = TinyModelPath();
        var e = Assert.Throws<InvalidModelException>(() => ModelLoader.Load(path, new ModelLimits { MaxHeaderBytes = 64 }));
        Assert.Contains("ModelLimits.MaxHeaderBytes", e.Message);
    }

    [Fact]
    public void ConfigSizeAndDepthOptions()
    {
        var folder = Path.Combine(dir, "hub");
        Save("hub/model.safetensors", HostileCorpus.TinyModel(config: null).ToArray());
        Save("hub/config.json", Encoding.UTF8.GetBytes(FuzzTests.HubConfig));
        var e = Assert.Throws<InvalidModelException>(() => ModelLoader.ReadConfig(folder, new ModelLimits { MaxConfigBytes = 100 }));
        Assert.Contains("ModelLimits.MaxConfigBytes", e.Message);
        // The hub config nests 3 deep; a limit of 4 passes the parse and fails at the tensor check, a limit below fails the parse.
        Assert.Contains("has shape", Assert.Throws<InvalidModelException>(() => ModelLoader.ReadConfig(folder, new ModelLimits { MaxJsonDepth = 4 })).Message);
        Assert.Contains("depth", Assert.Throws<InvalidModelException>(
            () => ModelConfigReader.FromHubConfig("""{"a": {"b": {"c": {"d": {"e": 1}}}}}""", "deep.json", new ModelLimits { MaxJsonDepth = 4 })).Message);
    }

    [Theory]
    [InlineData(0, 1, 0)]
    [InlineData(1, 0, 0)]
    [InlineData(1, 1, -1)]
    public void InvalidLimitOptionsAreRefused(int maxTensors, int maxBatch, long budget)
    {
        var options = new EngineOptions
        {
            Backend = BackendKind.Cpu,
            ModelLimits = new ModelLimits { MaxTensors = maxTensors == 0 ? 0 : 1000 },
            MaxBatchSize = maxBatch,
            GpuMemoryBudgetBytes = budget,
        };
        Assert.Throws<ArgumentOutOfRangeException>(() => ToMeEngine.Load(TinyModelPath(), options));
    }

    /// <summary>A header declaring 5000x5000 is refused by MaxPixels before a pixel buffer exists, in every format.</summary>
    [Theory]
    [InlineData("png")]
    [InlineData("jpeg")]
    [InlineData("bmp")]
    [InlineData("pnm")]
    public void MaxPixelsIsCheckedBeforeAllocation(string format)
    {
        byte[] data = format switch
        {
            "png" => HostileCorpus.Png(5000, 5000, 2, 8, new byte[8 * 25]),
            "bmp" => HostileCorpus.Bmp(5000, 5000),
            "pnm" => Encoding.ASCII.GetBytes("P6\n5000 5000\n255\n").Concat(new byte[4096]).ToArray(),
            _ => ForgedJpeg(5000, 5000),
        };
        var options = new DecodeOptions { MaxPixels = 1_000_000 };
        long allocated = GC.GetAllocatedBytesForCurrentThread();
        var e = Assert.Throws<InvalidImageException>(() => ImageDecoder.Decode(data, options));
        allocated = GC.GetAllocatedBytesForCurrentThread() - allocated;
        Assert.Contains("DecodeOptions.MaxPixels", e.Message);
        Assert.True(allocated < 1 << 20, $"{format}: {allocated} bytes allocated before refusing");
        // The same file passes the pixel check with a higher limit (and then fails, or not, for its own reasons).
        try
        {
            ImageDecoder.Decode(data, new DecodeOptions { MaxPixels = 30_000_000 });
        }
        catch (InvalidImageException other)
        {
            Assert.DoesNotContain("MaxPixels", other.Message);
        }
    }

    private static byte[] ForgedJpeg(int width, int height)
    {
        var jpeg = File.ReadAllBytes(Support.RepoData.Path("images/tiny_420_q90.jpg"));
        int sof = JpegDecoderTests.FindMarker(jpeg, 0xC0);
        jpeg[sof + 5] = (byte)(height >> 8);
        jpeg[sof + 6] = (byte)height;
        jpeg[sof + 7] = (byte)(width >> 8);
        jpeg[sof + 8] = (byte)width;
        return jpeg;
    }

    [Fact]
    public void PngDeclaredSizeMustFitTheCompressedData()
    {
        var forged = HostileCorpus.Png(9000, 9000, 6, 8, new byte[8 * 33]);
        long allocated = GC.GetAllocatedBytesForCurrentThread();
        Assert.Contains("cannot hold", Assert.Throws<InvalidImageException>(() => ImageDecoder.Decode(forged)).Message);
        Assert.True(GC.GetAllocatedBytesForCurrentThread() - allocated < 1 << 20);
    }

    [Fact]
    public void PngInflationStopsAtTheDeclaredSize()
    {
        // 64 MiB of zeros compressed into about 400 KB, behind an 8x8 header: only 200 bytes are ever inflated.
        var bomb = HostileCorpus.Png(8, 8, 2, 8, [], idat: HostileCorpus.ZeroBombZlib(64 << 20));
        long allocated = GC.GetAllocatedBytesForCurrentThread();
        var image = ImageDecoder.Decode(bomb);
        Assert.Equal(8, image.Width);
        Assert.True(GC.GetAllocatedBytesForCurrentThread() - allocated < 4L * bomb.Length + (1 << 20));
    }

    [Fact]
    public void BatchesAreSplitByClassifyAndRefusedByForward()
    {
        using var engine = ToMeEngine.Load(TinyModelPath(), new EngineOptions { Backend = BackendKind.Cpu, MaxBatchSize = 2 });
        var images = Enumerable.Range(0, 5).Select(i => new RgbImage(9, 7, Enumerable.Range(0, 9 * 7 * 3).Select(j => (byte)(j * (i + 3))).ToArray())).ToList();
        var batched = engine.ClassifyBatch(images);
        Assert.Equal(5, batched.Count);
        for (int i = 0; i < images.Count; i++)
            Assert.Equal(engine.Classify(images[i]), batched[i]);
        var input = new float[3 * 3 * 8 * 8];
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => engine.Logits(input, 3));
        Assert.Contains("MaxBatchSize", e.Message);
        Assert.Equal(2 * 4, engine.Logits(input.AsSpan(0, 2 * 3 * 8 * 8), 2).Length);
    }

    [Fact]
    public void GpuBudgetIsCheckedOnCudaOnly()
    {
        var config = ModelConfigReader.FromArchitectureName("vit_base_patch16_224");
        long one = GpuMemoryBudget.EstimateBytes(config, 1), many = GpuMemoryBudget.EstimateBytes(config, 64);
        Assert.InRange(one, 4 * config.ParameterCount, 4 * config.ParameterCount + (64L << 20));
        Assert.True(many > one);
        var tight = new EngineOptions { GpuMemoryBudgetBytes = 256L << 20, MaxBatchSize = 64 };
        var e = Assert.Throws<InvalidOperationException>(() => GpuMemoryBudget.Check(config, tight, "cuda"));
        Assert.Contains("GpuMemoryBudgetBytes", e.Message);
        GpuMemoryBudget.Check(config, tight, "cpu");
        GpuMemoryBudget.Check(config, tight with { GpuMemoryBudgetBytes = 0 }, "cuda");
        GpuMemoryBudget.Check(config, tight with { GpuMemoryBudgetBytes = 64L << 30 }, "cuda");
    }

    /// <summary>A 2 KB JPEG whose SOF claims 10000x10000 once cost 3 s and a gigabyte of zero-filled planes.</summary>
    [Theory]
    [InlineData("images/tiny_420_q90.jpg", (byte)0xC0)]
    [InlineData("images/libjpeg/prog_restart.jpg", (byte)0xC2)]
    public void JpegDeclaredSizeMustFitTheCodedData(string name, byte sofMarker)
    {
        var jpeg = File.ReadAllBytes(Support.RepoData.Path(name));
        int sof = JpegDecoderTests.FindMarker(jpeg, sofMarker);
        jpeg[sof + 5] = 10000 >> 8;
        jpeg[sof + 6] = 10000 & 255;
        jpeg[sof + 7] = 10000 >> 8;
        jpeg[sof + 8] = 10000 & 255;
        var clock = System.Diagnostics.Stopwatch.StartNew();
        long allocated = GC.GetAllocatedBytesForCurrentThread();
        Assert.Contains("forged header", Assert.Throws<InvalidImageException>(() => ImageDecoder.Decode(jpeg)).Message);
        Assert.True(GC.GetAllocatedBytesForCurrentThread() - allocated < 1 << 20);
        Assert.True(clock.ElapsedMilliseconds < 500, $"{clock.ElapsedMilliseconds} ms");
    }
}
