using ToMe.Backends.Cuda.Kernels;

namespace ToMe.Tests.Cuda;

public class KernelCacheTests
{
    [Fact]
    public void SecondStartCompilesNothing()
    {
        NvrtcRequirement.Require();
        using var dir = new TempDirectory();
        var source = KernelSources.Get("layer_norm.cu");
        var options = new KernelCompileOptions("sm_86");

        var first = new KernelCompiler(new KernelCache(dir.Path));
        var compiled = first.Compile(source, options);
        Assert.False(compiled.FromCache);
        Assert.Equal(1, first.CompilationCount);

        // A new compiler over the same directory stands for the next process start.
        var second = new KernelCompiler(new KernelCache(dir.Path));
        var cached = second.Compile(source, options);
        Assert.True(cached.FromCache);
        Assert.Equal(0, second.CompilationCount);
        Assert.Equal(compiled.Image, cached.Image);
        Assert.Equal(compiled.Functions, cached.Functions);
        Assert.Empty(Directory.GetFiles(dir.Path, "*.tmp"));

        // Different options are a different entry.
        var withLineInfo = second.Compile(source, options with { LineInfo = true });
        Assert.False(withLineInfo.FromCache);
        Assert.Equal(1, second.CompilationCount);
    }

    [Theory]
    [InlineData("truncated")]
    [InlineData("overwritten")]
    [InlineData("no log")]
    public void ADamagedEntryIsCompiledAgainNotLoaded(string damage)
    {
        NvrtcRequirement.Require();
        using var dir = new TempDirectory();
        var source = KernelSources.Get("layer_norm.cu");
        var options = new KernelCompileOptions("sm_86");
        var compiled = new KernelCompiler(new KernelCache(dir.Path)).Compile(source, options);
        var entry = Assert.Single(Directory.GetFiles(dir.Path, "*.cubin"));
        switch (damage)
        {
            case "truncated": File.WriteAllBytes(entry, File.ReadAllBytes(entry)[..(compiled.Image.Length / 2)]); break;
            case "overwritten": File.WriteAllBytes(entry, Enumerable.Range(0, compiled.Image.Length).Select(i => (byte)i).ToArray()); break;
            default: File.Delete(Path.ChangeExtension(entry, ".log")); break;
        }

        // A driver given the damaged bytes could fail, or crash, on every start: the entry is dropped and rebuilt.
        var next = new KernelCompiler(new KernelCache(dir.Path));
        var again = next.Compile(source, options);
        Assert.False(again.FromCache);
        Assert.Equal(1, next.CompilationCount);
        Assert.Equal(compiled.Image, again.Image);
        Assert.True(new KernelCompiler(new KernelCache(dir.Path)).Compile(source, options).FromCache);
    }

    [Fact]
    public void KeyCoversSourceHeadersOptionsAndNvrtcVersion()
    {
        var source = new KernelSource("a.cu", "kernel text");
        var header = new KernelSource("common.cuh", "header text");
        string[] options = ["--gpu-architecture=sm_86"];
        var key = KernelCache.Key(source, [header], options, (11, 8));

        Assert.Equal(key, KernelCache.Key(source, [header], options, (11, 8)));
        Assert.NotEqual(key, KernelCache.Key(source with { Text = "kernel text!" }, [header], options, (11, 8)));
        Assert.NotEqual(key, KernelCache.Key(source, [header with { Text = "header text!" }], options, (11, 8)));
        Assert.NotEqual(key, KernelCache.Key(source, [header], ["--gpu-architecture=sm_90"], (11, 8)));
        Assert.NotEqual(key, KernelCache.Key(source, [header], options, (12, 4)));
    }

    [Fact]
    public void CorruptOrUnwritableCacheIsNotFatal()
    {
        using var dir = new TempDirectory();
        var cache = new KernelCache(Path.Combine(dir.Path, "sub"));
        Assert.False(cache.TryRead("a.cu", "sm_86", new string('0', 64), out _, out _));
        Assert.True(cache.TryWrite("a.cu", "sm_86", new string('0', 64), [1, 2, 3], "log"));
        Assert.True(cache.TryRead("a.cu", "sm_86", new string('0', 64), out var cubin, out var log));
        Assert.Equal([1, 2, 3], cubin);
        Assert.Equal("log", log);
    }

    [Fact]
    public void DefaultDirectoryFollowsOverride()
    {
        var saved = Environment.GetEnvironmentVariable("TOME_KERNEL_CACHE");
        try
        {
            Environment.SetEnvironmentVariable("TOME_KERNEL_CACHE", "/tmp/tome-cache-override");
            Assert.Equal(Path.GetFullPath("/tmp/tome-cache-override"), KernelCache.DefaultDirectory());
        }
        finally
        {
            Environment.SetEnvironmentVariable("TOME_KERNEL_CACHE", saved);
        }
        if (!OperatingSystem.IsWindows() && saved is null)
            Assert.EndsWith(Path.Combine("tome", "kernels"), KernelCache.DefaultDirectory());
    }
}

public class VirtualArchTests
{
    [Fact]
    public void DeviceNewerThanNvrtcGetsPtxForTheNewestSupportedArch()
    {
        NvrtcRequirement.Require();
        var supported = KernelCompiler.SupportedArchsOrNull();
        Assert.NotNull(supported);
        var newest = supported.Max();
        Assert.Equal($"compute_{newest}", KernelCompiler.ArchFor(15, 9));

        using var dir = new TempDirectory();
        var compiler = new KernelCompiler(new KernelCache(dir.Path));
        var options = new KernelCompileOptions($"compute_{newest}");
        Assert.DoesNotContain("--ptxas-options=-v", options.NvrtcOptions());
        var ptx = compiler.Compile(KernelSources.Get("layer_norm.cu"), options);
        Assert.Empty(ptx.Functions);
        Assert.Equal(0, ptx.Image[^1]); // cuModuleLoadData needs NUL-terminated PTX
        Assert.Contains(".entry layer_norm_f32", System.Text.Encoding.UTF8.GetString(ptx.Image));
        Assert.True(new KernelCompiler(new KernelCache(dir.Path)).Compile(KernelSources.Get("layer_norm.cu"), options).FromCache);
    }
}
