using System.Security.Cryptography;
using System.Text.Json;
using ToMe.Imaging;
using ToMe.Tests.Support;
using ToMe.Weights;

namespace ToMe.Tests.Imaging;

/// <summary>The shipped (reduced) PIL/torchvision golden file and its manifest.</summary>
internal sealed class ImagingGoldens
{
    public sealed record Transform(string Key, int ImgSize, double CropPct, float[] Mean, float[] Std, int ResizeH, int ResizeW);

    public sealed record Case(string Name, string File, string PilMode, int Width, int Height, IReadOnlyList<Transform> Transforms);

    private static readonly Lazy<ImagingGoldens> instance = new(() => new ImagingGoldens());

    public static ImagingGoldens Instance => instance.Value;

    public SafeTensorsFile File { get; }
    public IReadOnlyList<Case> Cases { get; }
    private readonly Dictionary<string, string> hashes;

    private ImagingGoldens()
    {
        File = SafeTensorsFile.Open(RepoData.Path("images/images.golden.safetensors"));
        hashes = JsonSerializer.Deserialize<Dictionary<string, string>>(File.Metadata["sha256"])!;
        using var doc = JsonDocument.Parse(System.IO.File.ReadAllText(RepoData.Path("images/manifest.json")));
        Cases = doc.RootElement.EnumerateArray().Select(c => new Case(
            c.GetProperty("name").GetString()!,
            c.GetProperty("file").GetString()!,
            c.GetProperty("pil_mode").GetString()!,
            c.GetProperty("size")[0].GetInt32(),
            c.GetProperty("size")[1].GetInt32(),
            c.GetProperty("transforms").EnumerateObject().Select(t => new Transform(
                t.Name,
                t.Value.GetProperty("img_size").GetInt32(),
                t.Value.GetProperty("crop_pct").GetDouble(),
                t.Value.GetProperty("mean").EnumerateArray().Select(x => (float)x.GetDouble()).ToArray(),
                t.Value.GetProperty("std").EnumerateArray().Select(x => (float)x.GetDouble()).ToArray(),
                t.Value.GetProperty("resize_to")[0].GetInt32(),
                t.Value.GetProperty("resize_to")[1].GetInt32())).ToList())).ToList();
    }

    public Case Get(string name) => Cases.Single(c => c.Name == name);

    public static TheoryData<string> CaseNames() => new(Instance.Cases.Select(c => c.Name));

    public static RgbImage Decode(Case c) => ImageDecoder.Decode(RepoData.Path("images/" + c.File));

    /// <summary>
    /// Asserts that <paramref name="actual"/> equals the golden U8 tensor <paramref name="name"/> exactly:
    /// element by element when the tensor is shipped (reporting the first difference), otherwise via the
    /// SHA-256 and shape recorded from the full golden file. Returns false when neither is recorded.
    /// </summary>
    public bool AssertExact(string name, RgbImage actual)
    {
        if (File.Contains(name))
        {
            var info = File.Get(name);
            Assert.Equal([actual.Height, actual.Width, 3], info.Shape);
            var expected = File.ReadUInt8(name);
            var mismatch = expected.AsSpan().CommonPrefixLength(actual.Pixels);
            if (mismatch < expected.Length)
            {
                var diff = expected.Zip(actual.Pixels).Count(p => p.First != p.Second);
                var px = mismatch / 3;
                Assert.Fail($"{name}: {diff} values differ; first at x={px % actual.Width} y={px / actual.Width} c={mismatch % 3}: " +
                            $"expected {expected[mismatch]}, got {actual.Pixels[mismatch]}");
            }
            return true;
        }
        if (hashes.TryGetValue(name, out var hashAndShape))
        {
            var parts = hashAndShape.Split(':');
            Assert.Equal(parts[1], $"{actual.Height}x{actual.Width}x3");
            Assert.True(parts[0] == Convert.ToHexStringLower(SHA256.HashData(actual.Pixels)), $"{name}: pixels differ from the golden (SHA-256 mismatch)");
            return true;
        }
        return false;
    }
}
