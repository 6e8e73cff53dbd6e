using ToMe.Weights;

namespace ToMe.Tests.Weights;

public class SafeTensorsRoundTripTests
{
    [Fact]
    public void WrittenFileReadsBackEveryDType()
    {
        var path = Path.Combine(Path.GetTempPath(), $"tome-rt-{Guid.NewGuid():N}.safetensors");
        try
        {
            var f32 = new[] { 1.5f, -2.25f, 3e-8f, float.MaxValue, 0f, -0f };
            var halves = new[] { (Half)1.5f, (Half)(-0.333f), Half.MaxValue };
            var bf16 = new ushort[] { 0x3FC0, 0xC000 }; // 1.5, -2
            new SafeTensorsWriter()
                .AddMetadata("config", "{\"a\":1}")
                .Add("w", [2, 3], f32)
                .Add("h", DType.F16, [3], System.Runtime.InteropServices.MemoryMarshal.AsBytes(halves.AsSpan()))
                .Add("b", DType.BF16, [2], System.Runtime.InteropServices.MemoryMarshal.AsBytes(bf16.AsSpan()))
                .Add("i", [1, 2], new[] { 7, -9 })
                .Add("empty", [0, 4], ReadOnlySpan<float>.Empty)
                .Save(path);
            using var file = SafeTensorsFile.Open(path);
            Assert.Equal("{\"a\":1}", file.Metadata["config"]);
            Assert.Equal(f32, file.GetFloat32Span("w").ToArray());
            Assert.Equal([2, 3], file.Get("w").Shape);
            Assert.Equal(halves.Select(h => (float)h), file.ReadFloat32("h"));
            Assert.Equal([1.5f, -2f], file.ReadFloat32("b"));
            Assert.Equal([7, -9], file.ReadInt32("i"));
            Assert.Equal(0, file.Get("empty").ElementCount);
            var missing = Assert.Throws<InvalidModelException>(() => file.Get("nope"));
            Assert.Contains("'nope'", missing.Message);
        }
        finally
        {
            File.Delete(path);
        }
    }
}
