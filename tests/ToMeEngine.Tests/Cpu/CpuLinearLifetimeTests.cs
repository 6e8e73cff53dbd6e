using System.Runtime.CompilerServices;
using ToMe.Backends;
using ToMe.Backends.Cpu;

namespace ToMe.Tests.Cpu;

/// <summary>
/// Disposing a CPU Linear layer releases its weights even while something still refers to the layer: an engine disposed
/// and kept (a service's field, a cache of engines) held its whole model in packed form.
/// </summary>
public sealed class CpuLinearLifetimeTests
{
    private const int Out = 48, In = 64, Rows = 3;

    [Theory]
    [InlineData(Precision.Float32)]
    [InlineData(Precision.Int8)]
    public void ADisposedLayerHoldsNoWeightsAndRefusesWork(Precision precision)
    {
        using var backend = new CpuBackend(maxThreads: 1);
        var (layer, weights) = Prepare(backend, precision);
        using var x = backend.AllocateFloat(Rows * In);
        using var y = backend.AllocateFloat(Rows * Out);
        backend.Linear(x, layer, Rows, LinearEpilogue.Bias, y);

        layer.Dispose();
        for (int i = 0; i < 3 && weights.IsAlive; i++)
        {
            GC.Collect();
            GC.WaitForPendingFinalizers();
        }
        Assert.False(weights.IsAlive, "the disposed layer still holds its weights");
        Assert.Equal((Out, In), (layer.OutFeatures, layer.InFeatures));
        Assert.Throws<ObjectDisposedException>(() => backend.Linear(x, layer, Rows, LinearEpilogue.Bias, y));
        layer.Dispose();
    }

    /// <summary>A layer and a weak reference to the weights it holds (taken here, so that no temporary keeps them).</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static (ILinearWeights Layer, WeakReference Weights) Prepare(CpuBackend backend, Precision precision)
    {
        var rng = new Random(3);
        var w = Enumerable.Range(0, Out * In).Select(_ => (float)rng.NextDouble() - 0.5f).ToArray();
        var layer = backend.PrepareLinear(w, Out, In, new float[Out], precision);
        object weights = layer switch
        {
            CpuLinearWeights f => f.Packed,
            CpuInt8LinearWeights q => q.Quantized,
            _ => throw new InvalidOperationException(layer.GetType().Name),
        };
        return (layer, new WeakReference(weights));
    }
}
