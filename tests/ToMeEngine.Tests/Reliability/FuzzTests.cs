using System.Text;
using ToMe.Imaging;
using ToMe.Merging;
using ToMe.Model;
using ToMe.Tests.Imaging;
using ToMe.Tests.Support;
using ToMe.Weights;

namespace ToMe.Tests.Reliability;

/// <summary>One parser under fuzz: its seed files, how an input is parsed, and the exceptions it documents.</summary>
internal sealed record FuzzTarget(string Name, Func<IReadOnlyList<byte[]>> Seeds, bool Text, Action<byte[]> Parse, Type[] Documented);

/// <summary>
/// Mutation fuzzing of every parser. In CI each target runs a fixed number of seeded iterations under a time cap
/// (about 3 s each); <c>TOME_FUZZ_SECONDS=N</c> spreads N seconds over the targets instead, and <c>TOME_FUZZ_SEED</c>
/// changes the inputs. A finding fails the test with the input and a minimized copy saved under the temp folder;
/// commit the minimized copy to TestData/fuzz-regressions/TARGET/ with the fix, and <see cref="RegressionInputs"/> replays it.
/// </summary>
public sealed class FuzzTests(ITestOutputHelper output)
{
    // Small enough that a forged dimension costs milliseconds, not seconds; MaxPixels itself has its own tests.
    private static readonly DecodeOptions Limited = new() { MaxPixels = 2_000_000 };
    private static readonly TimeSpan PerInput = TimeSpan.FromSeconds(1);
    private static readonly string ScratchDir = Directory.CreateTempSubdirectory("tome-fuzz-model-").FullName;

    private static byte[] Data(string relative) => File.ReadAllBytes(RepoData.Path(relative));

    private static byte[] Utf8(string s) => Encoding.UTF8.GetBytes(s);

    internal const string HubConfig =
        """
        {"architecture": "vit_tiny_patch16_224.augreg_in21k_ft_in1k", "num_classes": 4, "num_features": 192, "global_pool": "token",
         "model_args": {"img_size": [224, 224], "patch_size": 16, "embed_dim": 192, "depth": 12, "num_heads": 3, "mlp_ratio": 4.0, "class_token": true, "qkv_bias": true},
         "pretrained_cfg": {"tag": "augreg_in21k_ft_in1k", "input_size": [3, 224, 224], "interpolation": "bicubic", "crop_pct": 0.9, "crop_mode": "center",
           "mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5], "num_classes": 4, "first_conv": "patch_embed.proj", "classifier": "head"},
         "label_names": ["a", "b", "c", "d"]}
        """;

    private static void ParseModelFile(byte[] input)
    {
        // One file per thread: a hang left running on a worker must not share a path with the next input.
        var path = Path.Combine(ScratchDir, $"fuzz{Environment.CurrentManagedThreadId}.safetensors");
        File.WriteAllBytes(path, input);
        ModelLoader.Load(path);
    }

    /// <summary>What <c>tome info</c> computes from a config alone: all of it must stay cheap for any accepted config.</summary>
    private static void UseConfig(ModelConfig config)
    {
        _ = ModelWeights.Expected(config).Count();
        _ = config.ParameterCount;
        _ = FlopCounter.MultiplyAdds(config, MergeSchedule.None);
        var plan = MergeStrategy.ToMe.Plan(MergeSchedule.Constant(8), config.Depth, config.Tokens, config.PrefixTokens);
        if (plan is var (tokens, merged, _))
            _ = FlopCounter.MultiplyAdds(config, tokens, merged);
    }

    private static readonly Type[] ModelErrors = [typeof(InvalidModelException)];
    private static readonly Type[] ImageErrors = [typeof(InvalidImageException)];

    internal static readonly FuzzTarget[] All =
    [
        new("safetensors", () => [HostileCorpus.TinyModel().ToArray(), HostileCorpus.TinyModel(config: null).Add("x", [2], new int[2]).ToArray()],
            true, ParseModelFile, ModelErrors),
        new("config-embedded", () => [Utf8(HostileCorpus.TinyConfig), Utf8(HostileCorpus.TinyConfig.Replace("}", ", \"global_pool\": \"avg\", \"class_token\": false, \"label_names\": [\"a\", \"b\", \"c\", \"d\"]}"))],
            true, input => UseConfig(ModelConfigReader.FromEmbeddedConfig(Encoding.UTF8.GetString(input), "fuzz")), ModelErrors),
        new("config-hub", () => [Utf8(HubConfig), Utf8("""{"architecture": "deit_small_distilled_patch16_224", "num_classes": 10, "pretrained_cfg": {"crop_pct": 0.875}}""")],
            true, input => UseConfig(ModelConfigReader.FromHubConfig(Encoding.UTF8.GetString(input), "fuzz")), ModelErrors),
        new("jpeg", () => [Data("images/tiny_420_q90.jpg"), Data("images/libjpeg/s422_restart_blocks.jpg"), Data("images/libjpeg/gray22.jpg"), Data("images/libjpeg/cb_big.jpg")],
            false, input => ImageDecoder.Decode(input, Limited), ImageErrors),
        new("jpeg-progressive", () => [Data("images/libjpeg/prog_restart.jpg"), Data("images/libjpeg/gray_prog.jpg"), Data("images/libjpeg/s1x4p.jpg")],
            false, input => ImageDecoder.Decode(input, Limited), ImageErrors),
        new("png", () => [Data("images/png_palette.png"), HostileCorpus.Png(8, 8, 2, 8, new byte[8 * 25]),
                PngWriter.Encode(23, 17, 2, 8, Enumerable.Range(0, 23 * 17 * 3).Select(i => i * 7 % 256).ToArray(), adam7: true),
                PngWriter.Encode(9, 7, 6, 16, Enumerable.Range(0, 9 * 7 * 4).Select(i => i * 977 % 65536).ToArray()),
                PngWriter.Encode(10, 6, 0, 2, Enumerable.Range(0, 60).Select(i => i % 4).ToArray())],
            false, input => ImageDecoder.Decode(input, Limited), ImageErrors),
        new("bmp", () => [Data("images/bmp_rgb.bmp"), HostileCorpus.Bmp(8, 8), HostileCorpus.Bmp(8, -8, 8), HostileCorpus.Bmp(9, 5, 1), HostileCorpus.Bmp(7, 5, 4), HostileCorpus.Bmp(6, 6, 32)],
            false, input => ImageDecoder.Decode(input, Limited), ImageErrors),
        new("pnm", () => [Data("images/libjpeg/gray22.ref.pnm"), Data("images/libjpeg/cb_big.ref.pnm"),
                [.. "P6\n# sixteen-bit\n4 3\n65535\n"u8, .. Enumerable.Range(0, 72).Select(i => (byte)(i * 29))]],
            false, input => ImageDecoder.Decode(input, Limited), ImageErrors),
    ];

    public static TheoryData<string> Targets() => new(All.Select(t => t.Name));

    private static int StableHash(string s) => s.Aggregate(17, (h, c) => unchecked(h * 31 + c));

    [Theory]
    [MemberData(nameof(Targets))]
    public void Fuzz(string name)
    {
        var target = All.Single(t => t.Name == name);
        int baseSeed = int.TryParse(Environment.GetEnvironmentVariable("TOME_FUZZ_SEED"), out var s) ? s : 1;
        var longMode = int.TryParse(Environment.GetEnvironmentVariable("TOME_FUZZ_SECONDS"), out var total) && total > 0;
        var budget = longMode ? TimeSpan.FromSeconds((double)total / All.Length) : TimeSpan.FromSeconds(3);
        int iterations = longMode ? int.MaxValue : 20_000;
        int done = 0;
        var finding = new Fuzzer(baseSeed ^ StableHash(name)).Run(name, target.Seeds(), target.Text, target.Parse, target.Documented,
            iterations, budget, PerInput, i => done = i + 1);
        output.WriteLine($"{name}: {done} inputs, seed {baseSeed}");
        if (finding is null)
            return;
        var dir = Directory.CreateDirectory(Path.Combine(Path.GetTempPath(), "tome-fuzz", name)).FullName;
        var inputPath = Path.Combine(dir, $"seed{baseSeed}-iter{finding.Iteration}.bin");
        var minimizedPath = Path.Combine(dir, $"seed{baseSeed}-iter{finding.Iteration}.min.bin");
        File.WriteAllBytes(inputPath, finding.Input);
        File.WriteAllBytes(minimizedPath, finding.Minimized);
        Assert.Fail($"{name}: input {finding.Iteration} (seed {baseSeed}): {finding.Problem}. Saved {inputPath} and, minimized to " +
            $"{finding.Minimized.Length} bytes, {minimizedPath}: {Convert.ToBase64String(finding.Minimized.AsSpan(0, Math.Min(600, finding.Minimized.Length)))}");
    }

    /// <summary>Every input the fuzzer once broke a parser with, replayed against today's parser.</summary>
    [Fact]
    public void RegressionInputs()
    {
        var root = RepoData.Path("fuzz-regressions");
        int count = 0;
        foreach (var target in All)
        {
            var dir = Path.Combine(root, target.Name);
            if (!Directory.Exists(dir))
                continue;
            foreach (var file in Directory.GetFiles(dir, "*.bin").Order(StringComparer.Ordinal))
            {
                var problem = Fuzzer.Check(File.ReadAllBytes(file), target.Parse, target.Documented, PerInput);
                Assert.True(problem is null, $"{target.Name}/{Path.GetFileName(file)}: {problem}");
                count++;
            }
        }
        output.WriteLine($"{count} regression inputs replayed");
    }
}
