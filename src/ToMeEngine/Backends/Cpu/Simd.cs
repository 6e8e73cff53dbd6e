using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace ToMe.Backends.Cpu;

/// <summary>
/// The span primitives of the CPU backend's row ops (softmax, layer norm, the merge ops), with TensorPrimitives' names
/// and meaning, compiled fully optimized on first use.
/// </summary>
/// <remarks>
/// TensorPrimitives is generic code in another assembly, and under tiered compilation the row ops, which call it on short
/// rows many thousand times per forward, measured at scalar speed for the first several forwards (a 197-wide softmax
/// took 0.7 µs per row, five times what it takes compiled once with full optimization). These loops are marked
/// AggressiveOptimization like the GEMM kernels, so they run at full width from the first call. Where 512-bit vectors
/// are not accelerated they hand over to TensorPrimitives. Reductions use one vector accumulator in index order: fixed
/// for a given length, whatever the thread or batch.
/// </remarks>
internal static class Simd
{
    private const int W = 16;

    private static bool Wide => Vector512.IsHardwareAccelerated;

    [MethodImpl(Jit.Hot)]
    public static float Sum(ReadOnlySpan<float> x)
    {
        if (!Wide)
            return TensorPrimitives.Sum(x);
        ref float px = ref MemoryMarshal.GetReference(x);
        var acc = Vector512<float>.Zero;
        int n = x.Length, i = 0;
        for (; i <= n - W; i += W)
            acc += Vector512.LoadUnsafe(ref px, (nuint)i);
        float sum = Vector512.Sum(acc);
        for (; i < n; i++)
            sum += Unsafe.Add(ref px, i);
        return sum;
    }

    [MethodImpl(Jit.Hot)]
    public static float SumOfSquares(ReadOnlySpan<float> x) => Dot(x, x);

    [MethodImpl(Jit.Hot)]
    public static float Norm(ReadOnlySpan<float> x) => MathF.Sqrt(Dot(x, x));

    [MethodImpl(Jit.Hot)]
    public static float Dot(ReadOnlySpan<float> x, ReadOnlySpan<float> y)
    {
        if (!Wide)
            return TensorPrimitives.Dot(x, y);
        SameLength(x.Length, y.Length);
        ref float px = ref MemoryMarshal.GetReference(x);
        ref float py = ref MemoryMarshal.GetReference(y);
        var acc = Vector512<float>.Zero;
        int n = x.Length, i = 0;
        for (; i <= n - W; i += W)
            acc = Vector512.FusedMultiplyAdd(Vector512.LoadUnsafe(ref px, (nuint)i), Vector512.LoadUnsafe(ref py, (nuint)i), acc);
        float sum = Vector512.Sum(acc);
        for (; i < n; i++)
            sum = MathF.FusedMultiplyAdd(Unsafe.Add(ref px, i), Unsafe.Add(ref py, i), sum);
        return sum;
    }

    /// <summary>The largest element; NaN if any element is NaN (as TensorPrimitives.Max). x must not be empty.</summary>
    [MethodImpl(Jit.Hot)]
    public static float Max(ReadOnlySpan<float> x)
    {
        if (!Wide || x.IsEmpty)
            return TensorPrimitives.Max(x);
        ref float px = ref MemoryMarshal.GetReference(x);
        var max = Vector512.Create(float.NegativeInfinity);
        var nan = Vector512<float>.Zero;
        int n = x.Length, i = 0;
        for (; i <= n - W; i += W)
        {
            var v = Vector512.LoadUnsafe(ref px, (nuint)i);
            nan |= ~Vector512.Equals(v, v);
            max = Vector512.Max(max, v);
        }
        if (nan != Vector512<float>.Zero)
            return float.NaN;
        float m = float.NegativeInfinity;
        for (int j = 0; j < W; j++)
            m = MathF.Max(m, max.GetElement(j));
        for (; i < n; i++)
            m = MathF.Max(m, Unsafe.Add(ref px, i));
        return m;
    }

    /// <summary>dst = x + y.</summary>
    [MethodImpl(Jit.Hot)]
    public static void Add(ReadOnlySpan<float> x, ReadOnlySpan<float> y, Span<float> dst)
    {
        if (!Wide)
        {
            TensorPrimitives.Add(x, y, dst);
            return;
        }
        SameLength(x.Length, y.Length);
        Fits(x.Length, dst.Length);
        ref float px = ref MemoryMarshal.GetReference(x);
        ref float py = ref MemoryMarshal.GetReference(y);
        ref float pd = ref MemoryMarshal.GetReference(dst);
        int n = x.Length, i = 0;
        for (; i <= n - W; i += W)
            (Vector512.LoadUnsafe(ref px, (nuint)i) + Vector512.LoadUnsafe(ref py, (nuint)i)).StoreUnsafe(ref pd, (nuint)i);
        for (; i < n; i++)
            Unsafe.Add(ref pd, i) = Unsafe.Add(ref px, i) + Unsafe.Add(ref py, i);
    }

    /// <summary>dst = x − y.</summary>
    [MethodImpl(Jit.Hot)]
    public static void Subtract(ReadOnlySpan<float> x, float y, Span<float> dst)
    {
        if (Wide)
            Map<SubtractOp>(x, y, dst);
        else
            TensorPrimitives.Subtract(x, y, dst);
    }

    /// <summary>dst = x · y.</summary>
    [MethodImpl(Jit.Hot)]
    public static void Multiply(ReadOnlySpan<float> x, float y, Span<float> dst)
    {
        if (Wide)
            Map<MultiplyOp>(x, y, dst);
        else
            TensorPrimitives.Multiply(x, y, dst);
    }

    /// <summary>dst = x / y (a true division, not a multiplication by 1/y).</summary>
    [MethodImpl(Jit.Hot)]
    public static void Divide(ReadOnlySpan<float> x, float y, Span<float> dst)
    {
        if (Wide)
            Map<DivideOp>(x, y, dst);
        else
            TensorPrimitives.Divide(x, y, dst);
    }

    // One loop for the ops with a scalar right operand; the struct type argument gets its own compiled copy.
    [MethodImpl(Jit.Hot)]
    private static void Map<TOp>(ReadOnlySpan<float> x, float y, Span<float> dst) where TOp : struct, IScalarOp
    {
        Fits(x.Length, dst.Length);
        ref float px = ref MemoryMarshal.GetReference(x);
        ref float pd = ref MemoryMarshal.GetReference(dst);
        var vy = Vector512.Create(y);
        int n = x.Length, i = 0;
        for (; i <= n - W; i += W)
            TOp.Apply(Vector512.LoadUnsafe(ref px, (nuint)i), vy).StoreUnsafe(ref pd, (nuint)i);
        for (; i < n; i++)
            Unsafe.Add(ref pd, i) = TOp.Apply(Unsafe.Add(ref px, i), y);
    }

    private interface IScalarOp
    {
        static abstract Vector512<float> Apply(Vector512<float> x, Vector512<float> y);
        static abstract float Apply(float x, float y);
    }

    private readonly struct SubtractOp : IScalarOp
    {
        public static Vector512<float> Apply(Vector512<float> x, Vector512<float> y) => x - y;
        public static float Apply(float x, float y) => x - y;
    }

    private readonly struct MultiplyOp : IScalarOp
    {
        public static Vector512<float> Apply(Vector512<float> x, Vector512<float> y) => x * y;
        public static float Apply(float x, float y) => x * y;
    }

    private readonly struct DivideOp : IScalarOp
    {
        public static Vector512<float> Apply(Vector512<float> x, Vector512<float> y) => x / y;
        public static float Apply(float x, float y) => x / y;
    }

    /// <summary>dst = x · y + addend, rounded after the product (not fused), as TensorPrimitives.MultiplyAdd.</summary>
    [MethodImpl(Jit.Hot)]
    public static void MultiplyAdd(ReadOnlySpan<float> x, float y, ReadOnlySpan<float> addend, Span<float> dst)
    {
        if (!Wide)
        {
            TensorPrimitives.MultiplyAdd(x, y, addend, dst);
            return;
        }
        SameLength(x.Length, addend.Length);
        Fits(x.Length, dst.Length);
        ref float px = ref MemoryMarshal.GetReference(x);
        ref float pa = ref MemoryMarshal.GetReference(addend);
        ref float pd = ref MemoryMarshal.GetReference(dst);
        var vy = Vector512.Create(y);
        int n = x.Length, i = 0;
        for (; i <= n - W; i += W)
            (Vector512.LoadUnsafe(ref px, (nuint)i) * vy + Vector512.LoadUnsafe(ref pa, (nuint)i)).StoreUnsafe(ref pd, (nuint)i);
        for (; i < n; i++)
            Unsafe.Add(ref pd, i) = Unsafe.Add(ref px, i) * y + Unsafe.Add(ref pa, i);
    }

    /// <summary>dst = x · y + addend, fused (one rounding).</summary>
    [MethodImpl(Jit.Hot)]
    public static void FusedMultiplyAdd(ReadOnlySpan<float> x, ReadOnlySpan<float> y, ReadOnlySpan<float> addend, Span<float> dst)
    {
        if (!Wide)
        {
            TensorPrimitives.FusedMultiplyAdd(x, y, addend, dst);
            return;
        }
        SameLength(x.Length, y.Length);
        SameLength(x.Length, addend.Length);
        Fits(x.Length, dst.Length);
        ref float px = ref MemoryMarshal.GetReference(x);
        ref float py = ref MemoryMarshal.GetReference(y);
        ref float pa = ref MemoryMarshal.GetReference(addend);
        ref float pd = ref MemoryMarshal.GetReference(dst);
        int n = x.Length, i = 0;
        for (; i <= n - W; i += W)
            Vector512.FusedMultiplyAdd(Vector512.LoadUnsafe(ref px, (nuint)i), Vector512.LoadUnsafe(ref py, (nuint)i),
                Vector512.LoadUnsafe(ref pa, (nuint)i)).StoreUnsafe(ref pd, (nuint)i);
        for (; i < n; i++)
            Unsafe.Add(ref pd, i) = MathF.FusedMultiplyAdd(Unsafe.Add(ref px, i), Unsafe.Add(ref py, i), Unsafe.Add(ref pa, i));
    }

    /// <summary>dst = x − y, returning <see cref="Sum"/>(dst): one pass, the same sums as the two ops.</summary>
    [MethodImpl(Jit.Hot)]
    public static float SubtractThenSum(ReadOnlySpan<float> x, float y, Span<float> dst) =>
        SubtractThenReduce(x, y, dst, squares: false);

    /// <summary>dst = x − y, returning <see cref="SumOfSquares"/>(dst): one pass, the same sums as the two ops.</summary>
    [MethodImpl(Jit.Hot)]
    public static float SubtractThenSumOfSquares(ReadOnlySpan<float> x, float y, Span<float> dst) =>
        SubtractThenReduce(x, y, dst, squares: true);

    // Inlined into both callers with `squares` a constant, so each gets its own loop without a branch in it.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float SubtractThenReduce(ReadOnlySpan<float> x, float y, Span<float> dst, bool squares)
    {
        if (!Wide)
        {
            Subtract(x, y, dst);
            return squares ? SumOfSquares(dst[..x.Length]) : Sum(dst[..x.Length]);
        }
        Fits(x.Length, dst.Length);
        ref float px = ref MemoryMarshal.GetReference(x);
        ref float pd = ref MemoryMarshal.GetReference(dst);
        var vy = Vector512.Create(y);
        var acc = Vector512<float>.Zero;
        int n = x.Length, i = 0;
        for (; i <= n - W; i += W)
        {
            var d = Vector512.LoadUnsafe(ref px, (nuint)i) - vy;
            d.StoreUnsafe(ref pd, (nuint)i);
            acc = squares ? Vector512.FusedMultiplyAdd(d, d, acc) : acc + d;
        }
        float sum = Vector512.Sum(acc);
        for (; i < n; i++)
        {
            float d = Unsafe.Add(ref px, i) - y;
            Unsafe.Add(ref pd, i) = d;
            sum = squares ? MathF.FusedMultiplyAdd(d, d, sum) : sum + d;
        }
        return sum;
    }

    /// <summary>dst = fma(x·s, y, addend), the product x·s rounded first: <see cref="Multiply"/> then <see cref="FusedMultiplyAdd"/> in one pass.</summary>
    [MethodImpl(Jit.Hot)]
    public static void ScaleThenFusedMultiplyAdd(ReadOnlySpan<float> x, float s, ReadOnlySpan<float> y, ReadOnlySpan<float> addend, Span<float> dst)
    {
        if (!Wide)
        {
            Multiply(x, s, dst);
            FusedMultiplyAdd(dst[..x.Length], y, addend, dst);
            return;
        }
        SameLength(x.Length, y.Length);
        SameLength(x.Length, addend.Length);
        Fits(x.Length, dst.Length);
        ref float px = ref MemoryMarshal.GetReference(x);
        ref float py = ref MemoryMarshal.GetReference(y);
        ref float pa = ref MemoryMarshal.GetReference(addend);
        ref float pd = ref MemoryMarshal.GetReference(dst);
        var vs = Vector512.Create(s);
        int n = x.Length, i = 0;
        for (; i <= n - W; i += W)
            Vector512.FusedMultiplyAdd(Vector512.LoadUnsafe(ref px, (nuint)i) * vs, Vector512.LoadUnsafe(ref py, (nuint)i),
                Vector512.LoadUnsafe(ref pa, (nuint)i)).StoreUnsafe(ref pd, (nuint)i);
        for (; i < n; i++)
            Unsafe.Add(ref pd, i) = MathF.FusedMultiplyAdd(Unsafe.Add(ref px, i) * s, Unsafe.Add(ref py, i), Unsafe.Add(ref pa, i));
    }

    // The checks inline to a compare and a branch; the throws stay out of line (with them inside, the JIT called the
    // checks, which showed in the profile of the merge ops' many short rows).
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void SameLength(int a, int b)
    {
        if (a != b)
            ThrowLengths(a, b);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Fits(int needed, int destination)
    {
        if (destination < needed)
            ThrowFits(needed, destination);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void ThrowLengths(int a, int b) =>
        throw new ArgumentException($"spans of {a} and {b} elements: the lengths must be equal");

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void ThrowFits(int needed, int destination) =>
        throw new ArgumentException($"destination holds {destination} elements, {needed} needed", nameof(destination));
}
