using ToMe.Backends;
using ToMe.Backends.Cpu;
using ToMe.Model;
using ToMe.Tests.Model;
using ToMe.Tests.Reliability;
using ToMe.Tests.Support;

namespace ToMe.Tests.Cpu;

/// <summary>
/// The CPU backend's buffers start on 64-byte boundaries (so whole activation rows and per-image slices do), read and
/// write like the arrays they replace, are freed when disposed, and a forward pass allocates them once and reuses them.
/// </summary>
public sealed unsafe class AlignedArrayTests
{
    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(15)]
    [InlineData(16)]
    [InlineData(17)]
    [InlineData(197 * 192)]
    [InlineData(577 * 3 * 384 + 5)]
    public void StartsOnACacheLineZeroedAndBoundsChecked(int length)
    {
        // Many at once, so the pinned heap hands out addresses at every offset a cache line can have.
        var floats = Enumerable.Range(0, 24).Select(_ => new AlignedArray<float>(length)).ToList();
        var ints = Enumerable.Range(0, 24).Select(_ => new AlignedArray<int>(length)).ToList();
        foreach (var a in floats)
        {
            Assert.Equal(0u, (uint)((nuint)a.Pointer % 64));
            Assert.Equal(length, a.Length);
            Assert.Equal(length, a.AsSpan().Length);
            Assert.True(a.AsSpan().IndexOfAnyExcept(0f) < 0);
            fixed (float* p = a)
                Assert.True(p == a.Pointer);
            Assert.Throws<IndexOutOfRangeException>(() => a[length]);
            Assert.Throws<IndexOutOfRangeException>(() => a[-1]);
            Assert.Throws<ArgumentOutOfRangeException>(() => a.AsSpan(0, length + 1));
            if (length > 0)
            {
                a[length - 1] = 3f;
                Assert.Equal(3f, a.AsSpan(length - 1, 1)[0]);
            }
        }
        foreach (var a in ints)
        {
            Assert.Equal(0u, (uint)((nuint)a.Pointer % 64));
            Assert.Equal(length, a.AsSpan().Length);
        }
    }

    [Fact]
    public void ScratchSlotsGrowOnDemandAndStayAligned()
    {
        AlignedArray<float>? slot = null;
        var first = AlignedArray<float>.Ensure(ref slot, 100);
        Assert.Same(first, slot);
        Assert.Equal(100, first.Length);
        first[99] = 7f;
        // Big enough: the same buffer, contents kept.
        Assert.Same(first, AlignedArray<float>.Ensure(ref slot, 100));
        Assert.Same(first, AlignedArray<float>.Ensure(ref slot, 1));
        Assert.Equal(7f, slot![99]);
        // Too small: at least doubled (a slot that grows by one element each call is not reallocated each call).
        var second = AlignedArray<float>.Ensure(ref slot, 101);
        Assert.NotSame(first, second);
        Assert.Same(second, slot);
        Assert.Equal(200, second.Length);
        Assert.Equal(0u, (uint)((nuint)second.Pointer % 64));
        Assert.True(second.AsSpan().IndexOfAnyExcept(0f) < 0);
        // Far larger than twice: exactly what was asked.
        Assert.Equal(5000, AlignedArray<float>.Ensure(ref slot, 5000).Length);
    }

    [Fact]
    public void EveryBufferTheBackendHandsOutIsAligned()
    {
        using var cpu = new CpuBackend(2);
        foreach (long length in new long[] { 0, 1, 3, 16, 197, 197 * 192, 16 * 197 * 3 * 768 + 1 })
        {
            using var f = cpu.AllocateFloat(length);
            using var i = cpu.AllocateInt(length);
            using var activation = ((IBackend)cpu).AllocateActivation(length, Precision.Float32);
            Assert.Equal(length, f.Length);
            Assert.Equal(0u, (uint)((nuint)CpuBackend.F(f).Pointer % 64));
            Assert.Equal(0u, (uint)((nuint)CpuBackend.I(i).Pointer % 64));
            Assert.Equal(0u, (uint)((nuint)CpuBackend.F(activation).Pointer % 64));
        }
    }

    [Fact]
    public void BadSizesAreRefusedClearly()
    {
        using var cpu = new CpuBackend(1);
        Assert.Throws<ArgumentOutOfRangeException>(() => cpu.AllocateFloat(-1));
        Assert.Throws<ArgumentOutOfRangeException>(() => cpu.AllocateInt(-1));
        // The padding that aligns a buffer comes out of the largest array .NET allows; the limit says so.
        Assert.True(cpu.MaxBufferElements < Array.MaxLength);
        var error = Assert.Throws<ArgumentOutOfRangeException>(() => cpu.AllocateFloat(cpu.MaxBufferElements + 1));
        Assert.Contains("at most", error.Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => new AlignedArray<float>(Array.MaxLength));
    }


    [Fact]
    public void AForwardPassAllocatesOnceReusesOverManyRunsAndFreesOnDispose()
    {
        var weights = Fixtures.Model("vit_p14_d3");
        var config = weights.Config;
        const int batch = 4;
        var images = Reference.Random(batch * 3 * config.ImageSize * config.ImageSize, 7);
        var options = WorkspaceReuseTests.Options("tome");
        var recorder = new Recorder(new CpuBackend(2));
        ForwardResult first;
        int allocatedAfterFirst, allocatedWarm = 0;
        using (var pass = new ForwardPass(recorder, weights))
        {
            first = pass.Run(images, batch, options);
            allocatedAfterFirst = recorder.Buffers.Count;
            for (int i = 0; i < 500; i++)
            {
                var again = pass.Run(images, batch, options);
                if (i % 100 == 0)
                    Assert.Equal(first.Logits, again.Logits);
                if (i == 199)
                    allocatedWarm = recorder.Buffers.Count;
            }
            // Each image running at once has its own workspace, made the first time that many run together: where the
            // worker thread joined no image of the first forward (it wakes later than the caller starts), the second
            // image workspace comes in a later one. At most one workspace per thread, then nothing more.
            Assert.True(allocatedWarm <= 2 * allocatedAfterFirst, $"{allocatedAfterFirst} buffers after one forward, {allocatedWarm} after 200");
            Assert.Equal(allocatedWarm, recorder.Buffers.Count);
            Assert.NotEmpty(recorder.Buffers);
            foreach (var b in recorder.Buffers)
            {
                nuint address = b is CpuFloatBuffer f ? (nuint)f.Data.Pointer : (nuint)((CpuIntBuffer)b).Data.Pointer;
                Assert.Equal(0u, (uint)(address % 64));
            }
        }
        Assert.All(recorder.Buffers, b => Assert.Equal(0, b.Length));
    }

    /// <summary>The CPU backend, recording every buffer it hands out; images still run one per thread.</summary>
    private sealed class Recorder(CpuBackend inner) : ForwardingBackend(inner)
    {
        public List<DeviceBuffer> Buffers { get; } = [];
        public override int ImageConcurrency => Inner.ImageConcurrency;
        public override void ForEachImage(int count, Action<int> body) => Inner.ForEachImage(count, body);
        public override DeviceBuffer AllocateFloat(long length) => Record(Inner.AllocateFloat(length));
        public override DeviceBuffer AllocateInt(long length) => Record(Inner.AllocateInt(length));
        public override DeviceBuffer AllocateActivation(long length, Precision precision) => Record(Inner.AllocateActivation(length, precision));

        private DeviceBuffer Record(DeviceBuffer buffer)
        {
            lock (Buffers)
                Buffers.Add(buffer);
            return buffer;
        }
    }
}

/// <summary>
/// Disposing a CPU buffer hands its memory back. Measured as the process's managed heap, so it runs with the other tests
/// that measure process-wide counters, alone (another test's allocations in between would read as held memory).
/// </summary>
[Collection(nameof(SoakCollection))]
public sealed class AlignedArrayMemoryTests
{
    [Fact]
    public void DisposingABufferFreesItsMemory()
    {
        using var cpu = new CpuBackend(1);
        const int count = 32, length = 1 << 20; // 128 MB in all, held only through buffers that stay referenced
        long before = GC.GetTotalMemory(forceFullCollection: true);
        var buffers = new List<DeviceBuffer>();
        for (int i = 0; i < count; i++)
        {
            buffers.Add(cpu.AllocateFloat(length));
            CpuBackend.F(buffers[^1]).AsSpan().Fill(1f);
        }
        Assert.True(GC.GetTotalMemory(forceFullCollection: true) - before > (long)count * length * sizeof(float) / 2);
        foreach (var b in buffers)
            b.Dispose();
        long after = GC.GetTotalMemory(forceFullCollection: true);
        Assert.True(after - before < 16L << 20, $"{(after - before) >> 20} MB still held after disposing every buffer");
        // A disposed buffer is empty: any use fails its bounds checks instead of reaching freed memory.
        Assert.Equal(0, buffers[0].Length);
        Assert.Throws<ArgumentOutOfRangeException>(() => CpuBackend.F(buffers[0]).AsSpan(0, 1));
        Assert.Throws<IndexOutOfRangeException>(() => CpuBackend.F(buffers[0])[0]);
        GC.KeepAlive(buffers);
    }
}
