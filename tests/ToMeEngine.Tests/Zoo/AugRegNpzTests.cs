using ToMe.Backends.Cpu;
using ToMe.Merging;
using ToMe.Model;
using ToMe.Tests.Model;
using ToMe.Tests.Support;
using ToMe.Weights;

namespace ToMe.Tests.Zoo;

/// <summary>
/// The AugReg .npz path, engine side. That the converter maps the shared ViT-Ti's AugReg re-expression back to identical
/// tensors and config is weights-converter/tests/test_convert.py's test_npz_augreg_round_trip; here the converted model
/// must give the original's logits on the shared reference batch.
/// </summary>
public class AugRegNpzTests
{
    private static readonly object gate = new();
    private static string? converted;

    /// <summary>The shared ViT-Ti as an AugReg .npz, converted back: once per run (the .npz is 20 MB).</summary>
    private static string Converted(string original)
    {
        lock (gate)
        {
            if (converted is null)
            {
                var dir = ZooPython.NewFolder("augreg");
                var npz = Path.Combine(dir, "Ti_16-augreg.npz");
                ZooPython.Run(ZooPython.Helper, "npz", original, npz);
                ZooPython.Run(ZooPython.Converter, npz, "-o", Path.Combine(dir, "model"), "--labels", Path.Combine(original, "config.json"));
                converted = Path.Combine(dir, "model");
            }
            return converted;
        }
    }

    [Theory]
    [InlineData(0)]
    [InlineData(13)]
    public void ConvertedNpzGivesTheOriginalsLogits(int r)
    {
        var original = SharedData.Require(RealModelTests.VitTiny);
        var goldenPath = SharedData.Require("reference/vit_tiny_8.golden.safetensors");
        var convertedModel = Converted(original);

        using var golden = SafeTensorsFile.Open(goldenPath);
        var input = golden.ReadFloat32("input");
        int batch = golden.Get("input").Shape[0];
        var options = new ForwardOptions { Schedule = MergeSchedule.Constant(r) };
        ForwardResult Run(string model)
        {
            using var backend = new CpuBackend();
            using var pass = new ForwardPass(backend, ModelLoader.Load(model));
            return pass.Run(input, batch, options);
        }
        var expected = Run(original);
        var converted = Run(convertedModel);
        // Identical tensors through the same code path: identical results, bit for bit.
        Assert.Equal(expected.Logits, converted.Logits);
        Assert.Equal(expected.Groups, converted.Groups);
    }
}
