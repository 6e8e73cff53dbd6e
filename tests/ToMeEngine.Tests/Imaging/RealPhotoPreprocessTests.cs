using System.Text.Json;
using ToMe.Imaging;
using ToMe.Tests.Support;
using ToMe.Weights;

namespace ToMe.Tests.Imaging;

/// <summary>
/// Decode + preprocessing of real ImageNet photos against the tensors timm fed the reference model
/// (shared/reference/vit_tiny_8.golden.safetensors: AugReg ViT, mean = std = 0.5, crop_pct 0.9).
/// </summary>
public class RealPhotoPreprocessTests
{
    [Fact]
    public void ImageNetSamplesMatchTimmInputs()
    {
        var golden = SharedData.Require("reference/vit_tiny_8.golden.safetensors");
        var samples = SharedData.Require("imagenet-samples");
        using var file = SafeTensorsFile.Open(golden);
        var names = JsonSerializer.Deserialize<string[]>(file.Metadata["images"])!;
        var expected = file.ReadFloat32("input");
        var pre = new Preprocessor(PreprocessConfig.Inception());
        var n = pre.OutputLength;
        var compared = 0;
        var worst = 0.0;
        for (var img = 0; img < names.Length; img++)
        {
            // The sample folder may hold only part of the collection; compare the photos present.
            var path = Path.Combine(samples, names[img]);
            if (!File.Exists(path)) continue;
            var actual = pre.Run(ImageDecoder.Decode(path));
            for (var i = 0; i < n; i++)
                worst = Math.Max(worst, Math.Abs(expected[img * n + i] - actual[i]));
            compared++;
        }
        if (compared == 0)
            Assert.Skip("none of the reference photos is in shared/imagenet-samples");
        // Decode and resize are bit-exact, so only float rounding remains.
        Assert.True(worst < 1e-5, $"largest difference {worst} over {compared} photos");
    }
}
