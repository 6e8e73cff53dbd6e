using ToMe.Imaging;
using ToMe.Tests.Support;

namespace ToMe.Tests.Serving;

/// <summary>The fixture model and a handful of test images of different sizes and formats, with their serial answers.</summary>
internal static class ServingTestData
{
    public static readonly string[] ImageNames =
        ["tiny_420_q90.jpg", "baseline_420_q90.jpg", "gray_q90.jpg", "png_palette.png", "bmp_rgb.bmp", "progressive_420_q85.jpg"];

    public static string ModelPath => Fixtures.ModelPath("vit_p14_d3");

    /// <summary>The fixture model on the CPU backend (deterministic per row, so batching cannot change an answer).</summary>
    public static ToMeEngine LoadEngine(int threads = 0) =>
        ToMeEngine.Load(ModelPath, new EngineOptions { Backend = BackendKind.Cpu, Threads = threads });

    public static byte[][] Encoded() => ImageNames.Select(n => File.ReadAllBytes(RepoData.Path(Path.Combine("images", n)))).ToArray();

    /// <summary>The top <paramref name="topK"/> of each of <see cref="Encoded"/>, classified alone by a fresh engine.</summary>
    public static IReadOnlyList<Prediction>[] SerialAnswers(int topK)
    {
        using var reference = LoadEngine();
        return Serial(reference, Encoded(), topK);
    }

    /// <summary>Every class of each image, classified alone.</summary>
    public static IReadOnlyList<Prediction>[] Serial(ToMeEngine engine, byte[][] encoded, int topK) =>
        encoded.Select(bytes => engine.Classify(ImageDecoder.Decode(bytes), topK)).ToArray();

    public static void AssertSame(IReadOnlyList<Prediction> expected, IReadOnlyList<Prediction> actual, string what)
    {
        Assert.True(expected.Count == actual.Count, $"{what}: {actual.Count} classes, expected {expected.Count}");
        for (int i = 0; i < expected.Count; i++)
        {
            // Bit-identical: batching must not change a single probability.
            if (expected[i].ClassIndex != actual[i].ClassIndex
                || BitConverter.SingleToInt32Bits(expected[i].Probability) != BitConverter.SingleToInt32Bits(actual[i].Probability))
                Assert.Fail($"{what}: rank {i} is class {actual[i].ClassIndex} p={actual[i].Probability:R}, expected class {expected[i].ClassIndex} p={expected[i].Probability:R}");
        }
    }
}
