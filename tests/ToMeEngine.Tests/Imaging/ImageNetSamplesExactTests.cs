using System.Runtime.InteropServices;
using System.Security.Cryptography;
using System.Text.Json;
using ToMe.Imaging;
using ToMe.Tests.Support;

namespace ToMe.Tests.Imaging;

/// <summary>
/// Every photo of shared/imagenet-samples against PIL 9.4 (libjpeg-turbo 2.1.5) and timm's eval transform
/// (TestData/images/imagenet-samples.pil.json, made by imagenet_pil_hashes.py beside it): the decoded RGB,
/// the resized and cropped picture and the float32 tensor must all be bit-identical, for two preprocessing
/// configurations (resize 248 with mean = std = 0.5, resize 256 with ImageNet statistics).
/// </summary>
public class ImageNetSamplesExactTests
{
    private static readonly PreprocessConfig[] Configs = [PreprocessConfig.Inception(), PreprocessConfig.ImageNet()];

    private sealed record Expected(int Width, int Height, Dictionary<string, string> Hashes);

    private static Dictionary<string, Expected> Load()
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(RepoData.Path("images/imagenet-samples.pil.json")));
        var result = new Dictionary<string, Expected>();
        foreach (var file in doc.RootElement.GetProperty("files").EnumerateObject())
        {
            var size = file.Value.GetProperty("size");
            var hashes = file.Value.EnumerateObject().Where(p => p.Name != "size").ToDictionary(p => p.Name, p => p.Value.GetString()!);
            result[file.Name] = new Expected(size[0].GetInt32(), size[1].GetInt32(), hashes);
        }
        return result;
    }

    private static string Digest(ReadOnlySpan<byte> data) => Convert.ToHexStringLower(SHA256.HashData(data))[..16];

    [Fact]
    public void EverySampleIsBitIdenticalToPil()
    {
        var dir = SharedData.Require("imagenet-samples");
        var expected = Load();
        var pres = Configs.Select(c => new Preprocessor(c)).ToArray();
        var tensor = new float[pres[0].OutputLength];
        var compared = 0;
        var failures = new List<string>();
        foreach (var (name, e) in expected)
        {
            var path = Path.Combine(dir, name);
            if (!File.Exists(path)) continue;
            var bytes = File.ReadAllBytes(path);
            var image = ImageDecoder.Decode(bytes);
            if ((image.Width, image.Height) != (e.Width, e.Height))
                failures.Add($"{name}: size {image.Width}x{image.Height}, PIL {e.Width}x{e.Height}");
            else if (Digest(image.Pixels) != e.Hashes["rgb"])
                failures.Add($"{name}: decoded RGB differs from PIL's");
            foreach (var pre in pres)
            {
                var key = $"{pre.Config.ScaleSize}_{pre.Config.ImgSize}";
                if (Digest(pre.ResizeAndCrop(image).Pixels) != e.Hashes[$"crop_{key}"])
                    failures.Add($"{name}: resize {key} differs from PIL's");
                pre.Run(image, tensor);
                if (Digest(MemoryMarshal.AsBytes(tensor.AsSpan())) != e.Hashes[$"tensor_{key}"])
                    failures.Add($"{name}: tensor {key} (from the decoded picture) differs from timm's");
                // The file straight to the tensor: decodes only what the crop needs.
                tensor.AsSpan().Fill(float.NaN);
                pre.Run(bytes, tensor);
                if (Digest(MemoryMarshal.AsBytes(tensor.AsSpan())) != e.Hashes[$"tensor_{key}"])
                    failures.Add($"{name}: tensor {key} (from the file) differs from timm's");
            }
            compared++;
        }
        if (compared == 0)
            Assert.Skip($"none of the {expected.Count} photos is in {dir}");
        Assert.True(failures.Count == 0, $"{failures.Count} mismatches over {compared} photos:\n{string.Join("\n", failures.Take(20))}");
    }
}
