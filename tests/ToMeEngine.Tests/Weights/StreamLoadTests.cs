using System.Buffers.Binary;
using System.Text;
using ToMe.Model;
using ToMe.Tests.Support;
using ToMe.Weights;

namespace ToMe.Tests.Weights;

/// <summary>A model loaded from the bytes of its .safetensors file in a stream (a download, a blob, a resource).</summary>
public sealed class StreamLoadTests
{
    private const string Fixture = "vit_p14_d3";

    [Theory]
    [InlineData(false, 0)]
    [InlineData(true, 1)]
    [InlineData(true, 7)]
    [InlineData(true, 65_536)]
    public void AStreamLoadsTheModelTheFileDoes(bool oneChunkAtATime, int maxChunk)
    {
        var bytes = File.ReadAllBytes(Fixtures.ModelPath(Fixture));
        Stream stream = oneChunkAtATime ? new Trickle(bytes, maxChunk, seed: maxChunk) : new MemoryStream(bytes);
        var fromStream = ModelLoader.Load(stream, "blob://models/" + Fixture);
        AssertSameLogits(ModelLoader.Load(Fixtures.ModelPath(Fixture)), fromStream);
        Assert.True(stream.CanRead, "the stream is the caller's: left open");
    }

    [Fact]
    public void ReadingStopsAtTheEndOfTheFileItsHeaderDeclares()
    {
        var bytes = File.ReadAllBytes(Fixtures.ModelPath(Fixture));
        using var stream = new MemoryStream([.. bytes, .. "trailing bytes of the next entry"u8]);
        ModelLoader.Load(stream, Fixture);
        Assert.Equal(bytes.Length, stream.Position);
    }

    [Fact]
    public void AHubModelLoadsFromItsFileAndConfigJson()
    {
        var folder = SharedData.Require("models/vit_tiny_patch16_224.augreg_in21k_ft_in1k");
        using var weights = File.OpenRead(Path.Combine(folder, "model.safetensors"));
        var fromStream = ModelLoader.Load(weights, "vit_tiny", File.ReadAllText(Path.Combine(folder, "config.json")));
        AssertSameLogits(ModelLoader.Load(folder), fromStream);
        using var again = File.OpenRead(Path.Combine(folder, "model.safetensors"));
        var error = Assert.Throws<InvalidModelException>(() => ModelLoader.Load(again, "vit_tiny"));
        Assert.Equal("vit_tiny: no model configuration: expected __metadata__.config in the file or a config.json beside it", error.Message);
    }

    [Theory]
    [InlineData(5, "blob: truncated safetensors file (5 bytes")]
    [InlineData(100, "blob: header length")]
    [InlineData(-1000, "blob: truncated: its header declares")]
    public void AStreamThatEndsEarlyNamesTheModelAndWhere(int keep, string expected)
    {
        var bytes = File.ReadAllBytes(Fixtures.ModelPath(Fixture));
        var cut = bytes[..(keep > 0 ? keep : bytes.Length + keep)];
        var error = Assert.Throws<InvalidModelException>(() => ModelLoader.Load(new Trickle(cut, 4096, seed: 1), "blob"));
        Assert.StartsWith(expected, error.Message);
    }

    [Fact]
    public void AHeaderDeclaringHalfATerabyteFailsWhereTheStreamEndsWithoutAllocatingIt()
    {
        // 512 tensors of 1 GiB each, then 4 KiB of data.
        const long GiB = 1L << 30;
        var header = Encoding.UTF8.GetBytes("{" + string.Join(",", Enumerable.Range(0, 512).Select(i =>
            $"\"w{i}\":{{\"dtype\":\"F32\",\"shape\":[{GiB / 4}],\"data_offsets\":[{i * GiB},{(i + 1) * GiB}]}}")) + "}");
        var bytes = new byte[8 + header.Length + 4096];
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, (ulong)header.Length);
        header.CopyTo(bytes, 8);
        // Allocating what the header declares would throw OutOfMemoryException here instead.
        var error = Assert.Throws<InvalidModelException>(() => ModelLoader.Load(new Trickle(bytes, 1 << 20, seed: 2), "huge"));
        Assert.Equal($"huge: truncated: its header declares {8 + header.Length + 512 * GiB} bytes, the stream ended after {bytes.Length}", error.Message);
    }

    [Fact]
    public void BytesOfAnotherKindAreSaidToBeNoSafetensorsFile()
    {
        var png = File.ReadAllBytes(RepoData.Path("images/png_rgb.png"));
        var error = Assert.Throws<InvalidModelException>(() => ModelLoader.Load(new MemoryStream(png), "photo"));
        Assert.StartsWith("photo is not a safetensors file (", error.Message);
        Assert.EndsWith("; pass the bytes of a .safetensors file", error.Message);
        Assert.Throws<ArgumentNullException>(() => ModelLoader.Load((Stream)null!, "x"));
        Assert.Throws<ArgumentNullException>(() => ModelLoader.Load(new MemoryStream(png), null!));
    }

    private static void AssertSameLogits(ModelWeights expected, ModelWeights actual)
    {
        var image = ToMe.Imaging.ImageDecoder.Decode(RepoData.Path("images/png_rgb.png"));
        using var a = ToMeEngine.Create(expected, new EngineOptions { Backend = BackendKind.Cpu, WarmUp = false });
        using var b = ToMeEngine.Create(actual, new EngineOptions { Backend = BackendKind.Cpu, WarmUp = false });
        Assert.Equal(a.Classify(image, 10).Select(p => (p.ClassIndex, p.Probability)), b.Classify(image, 10).Select(p => (p.ClassIndex, p.Probability)));
    }

    /// <summary>A stream that cannot seek and hands out at most a few random bytes per read, as a network stream may.</summary>
    private sealed class Trickle(byte[] data, int maxChunk, int seed) : Stream
    {
        private readonly Random random = new(seed);
        private int position;

        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

        public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

        public override int Read(Span<byte> buffer)
        {
            int n = Math.Min(Math.Min(buffer.Length, data.Length - position), 1 + random.Next(maxChunk));
            data.AsSpan(position, n).CopyTo(buffer);
            position += n;
            return n;
        }

        public override void Flush() { }
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}
