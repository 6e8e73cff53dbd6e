using System.Text;
using ToMe.Model;
using ToMe.Tests.Support;
using ToMe.Weights;

namespace ToMe.Tests.Weights;

/// <summary>Malformed weights files: each gives a one-line error naming the problem, never a crash.</summary>
public sealed class HostileWeightsTests : IDisposable
{
    private readonly string dir = Directory.CreateTempSubdirectory("tome-hostile-").FullName;

    public void Dispose() => Directory.Delete(dir, recursive: true);

    private string Write(string name, byte[] bytes)
    {
        var path = Path.Combine(dir, name);
        File.WriteAllBytes(path, bytes);
        return path;
    }

    private static byte[] RawFile(string headerJson, int dataBytes)
    {
        var header = Encoding.UTF8.GetBytes(headerJson);
        var bytes = new byte[8 + header.Length + dataBytes];
        BitConverter.TryWriteBytes(bytes.AsSpan(0, 8), (ulong)header.Length);
        header.CopyTo(bytes, 8);
        return bytes;
    }

    private void AssertRejected(byte[] bytes, params string[] fragments)
    {
        var path = Write("bad.safetensors", bytes);
        var error = Assert.Throws<InvalidModelException>(() => SafeTensorsFile.Open(path).Dispose());
        Assert.DoesNotContain('\n', error.Message);
        Assert.Contains("bad.safetensors", error.Message);
        foreach (var f in fragments)
            Assert.Contains(f, error.Message);
    }

    [Fact]
    public void ZeroByteAndTinyFiles()
    {
        AssertRejected([], "truncated");
        AssertRejected([1, 2, 3], "truncated");
    }

    [Fact]
    public void HeaderLengthBeyondTheFile()
    {
        var bytes = RawFile("{}", 0);
        BitConverter.TryWriteBytes(bytes.AsSpan(0, 8), 1_000_000UL);
        AssertRejected(bytes, "header length 1000000", "past the end");
        BitConverter.TryWriteBytes(bytes.AsSpan(0, 8), ulong.MaxValue);
        AssertRejected(bytes, "exceeds");
    }

    [Theory]
    [InlineData("not json at all", "not valid JSON")]
    [InlineData("[1,2,3]", "must be a JSON object")]
    [InlineData("{\"w\": 5}", "'w'", "entry must be an object")]
    [InlineData("{\"w\": {\"dtype\": \"F8_E4M3\", \"shape\": [2], \"data_offsets\": [0, 2]}}", "'w'", "unsupported dtype 'F8_E4M3'")]
    [InlineData("{\"w\": {\"dtype\": \"F32\", \"shape\": [-1], \"data_offsets\": [0, 4]}}", "'w'", "non-negative")]
    [InlineData("{\"w\": {\"dtype\": \"F32\", \"shape\": [3], \"data_offsets\": [0, 8]}}", "'w'", "needs 12 bytes", "hold 8")]
    [InlineData("{\"w\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [8, 0]}}", "'w'", "begin <= end")]
    [InlineData("{\"w\": {\"dtype\": \"F32\", \"shape\": [4], \"data_offsets\": [0, 16]}}", "'w'", "past the end of the data")]
    [InlineData("{\"w\": {\"dtype\": \"F32\", \"shape\": [2]}}", "'w'", "data_offsets")]
    [InlineData("{\"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8]}, \"b\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [4, 8]}}", "overlap")]
    [InlineData("{\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4]}, \"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [4, 8]}}", "'a' appears twice")]
    [InlineData("{\"__metadata__\": {\"config\": 5}}", "__metadata__.config must be a string")]
    public void MalformedHeaders(string header, params string[] fragments) => AssertRejected(RawFile(header, 8), fragments);

    [Fact]
    public void TruncatedAtEveryRegion()
    {
        var good = File.ReadAllBytes(Fixtures.ModelPath("vit_p14_d3"));
        foreach (var length in new[] { 4, 8, 20, 200, good.Length / 2, good.Length - 1 })
        {
            var path = Write($"cut{length}.safetensors", good[..length]);
            var error = Assert.Throws<InvalidModelException>(() => SafeTensorsFile.Open(path).Dispose());
            Assert.Contains($"cut{length}.safetensors", error.Message);
        }
    }

    /// <summary>Rewrites the fixture model with one change, keeping its configuration metadata.</summary>
    private string Rewrite(Action<SafeTensorsWriter, SafeTensorsFile> change, Func<string, bool>? keep = null)
    {
        using var source = SafeTensorsFile.Open(Fixtures.ModelPath("vit_p14_d3"));
        var writer = new SafeTensorsWriter();
        foreach (var (k, v) in source.Metadata)
            writer.AddMetadata(k, v);
        foreach (var info in source.Tensors.Values)
            if (keep?.Invoke(info.Name) ?? true)
                writer.Add(info.Name, info.DType, info.Shape.ToArray(), source.GetBytes(info));
        change(writer, source);
        var path = Path.Combine(dir, "model.safetensors");
        writer.Save(path);
        return path;
    }

    [Fact]
    public void MissingTensorIsNamed()
    {
        var path = Rewrite((_, _) => { }, keep: name => name != "blocks.1.mlp.fc2.bias");
        var error = Assert.Throws<InvalidModelException>(() => ModelLoader.Load(path));
        Assert.Contains("missing tensor 'blocks.1.mlp.fc2.bias'", error.Message);
        Assert.Contains("[128]", error.Message);
    }

    [Fact]
    public void WrongShapeNamesFoundAndExpected()
    {
        var path = Rewrite((w, _) => w.Add("blocks.0.attn.qkv.weight", [384, 127], new float[384 * 127]));
        var error = Assert.Throws<InvalidModelException>(() => ModelLoader.Load(path));
        Assert.Contains("'blocks.0.attn.qkv.weight' has shape [384, 127], expected [384, 128]", error.Message);
    }

    [Fact]
    public void WrongDTypeIsNamed()
    {
        var path = Rewrite((w, _) => w.Add("head.bias", DType.I32, [100], new byte[400]));
        var error = Assert.Throws<InvalidModelException>(() => ModelLoader.Load(path));
        Assert.Contains("'head.bias' is I32, expected F32, F16 or BF16", error.Message);
    }

    [Fact]
    public void UnexpectedTensorIsNamed()
    {
        var path = Rewrite((w, _) => w.Add("blocks.0.attn.extra", [2], new float[2]));
        var error = Assert.Throws<InvalidModelException>(() => ModelLoader.Load(path));
        Assert.Contains("unexpected tensor 'blocks.0.attn.extra'", error.Message);
    }

    [Fact]
    public void BadConfigurationIsNamed()
    {
        using var source = SafeTensorsFile.Open(Fixtures.ModelPath("vit_p14_d3"));
        var config = source.Metadata["config"].Replace("\"num_heads\": 2", "\"num_heads\": 3");
        var path = Rewrite((w, _) => w.AddMetadata("config", config));
        var error = Assert.Throws<InvalidModelException>(() => ModelLoader.Load(path));
        Assert.Contains("embed_dim 128 must be a positive multiple of num_heads 3", error.Message);
    }

    [Fact]
    public void HalfPrecisionWeightsLoad()
    {
        // F16 storage converts at load; the model still runs.
        var path = Rewrite((w, s) =>
        {
            var values = s.ReadFloat32("head.weight");
            var halves = values.Select(v => (Half)v).ToArray();
            w.Add("head.weight", DType.F16, [100, 128], System.Runtime.InteropServices.MemoryMarshal.AsBytes(halves.AsSpan()));
        });
        var weights = ModelLoader.Load(path);
        Assert.Equal(100 * 128, weights.HeadWeight.Length);
    }
    // Two folders each holding a model.safetensors: the message must say which one is damaged.
    [Fact]
    public void ErrorsNameThePathNotJustTheFileName()
    {
        var folder = Directory.CreateDirectory(Path.Combine(dir, "second-model")).FullName;
        var path = Path.Combine(folder, "model.safetensors");
        var good = File.ReadAllBytes(Fixtures.ModelPath("vit_p14_d3"));
        File.WriteAllBytes(path, good[..(good.Length - 5)]);
        var error = Assert.Throws<InvalidModelException>(() => SafeTensorsFile.Open(path).Dispose());
        Assert.StartsWith($"{path}: tensor '", error.Message);
        Assert.Contains("run past the end of the data", error.Message);
    }

    [Theory]
    [InlineData("config.json", "it looks like JSON")]
    [InlineData("photo.jpg", "it looks like a JPEG image")]
    [InlineData("photo.png", "it looks like a PNG image")]
    [InlineData("notes.txt", "its first 8 bytes give a header length of")]
    public void AnotherKindOfFileIsNamedAsNotSafetensors(string name, string looksLike)
    {
        byte[] bytes = name switch
        {
            "config.json" => Encoding.UTF8.GetBytes("""{"architecture": "vit_tiny_patch16_224", "num_classes": 1000}"""),
            "photo.jpg" => File.ReadAllBytes(RepoData.Path("images/baseline_420_q90.jpg")),
            "photo.png" => File.ReadAllBytes(RepoData.Path("images/png_rgb.png")),
            _ => Encoding.UTF8.GetBytes("hello world, this is not a model"),
        };
        var path = Write(name, bytes);
        var error = Assert.Throws<InvalidModelException>(() => SafeTensorsFile.Open(path).Dispose());
        Assert.StartsWith($"{path} is not a safetensors file ({looksLike}", error.Message);
        // Given as the model, the message says what to pass instead.
        error = Assert.Throws<InvalidModelException>(() => ModelLoader.ReadConfig(path));
        Assert.EndsWith("; pass the model folder or its .safetensors file", error.Message);
    }

    [Fact]
    public void AModelFoldersConfigThatIsADirectoryIsNamedAsOne()
    {
        var folder = Directory.CreateDirectory(Path.Combine(dir, "model")).FullName;
        File.Copy(Fixtures.ModelPath("vit_p14_d3"), Path.Combine(folder, "model.safetensors"));
        var config = Directory.CreateDirectory(Path.Combine(folder, "config.json")).FullName;
        var error = Assert.Throws<InvalidModelException>(() => ModelLoader.ReadConfig(folder));
        Assert.StartsWith($"{config} is a directory", error.Message);
    }
}
