using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics.X86;
using ToMe.Backends.Cpu.CodeGen;
using static ToMe.Backends.Cpu.VectorMath;

namespace ToMe.Backends.Cpu;

/// <summary>
/// In place GELU of a GEMM tile (rows × 32 floats) as run-time generated AVX-512 code, bit for bit
/// <see cref="VectorMath.Gelu(System.Runtime.Intrinsics.Vector512{float})"/>: the same operations in the same order, each
/// rounded as there (every fused multiply-add fused, the division, the exp's two-part range reduction, its clamp and flush).
/// </summary>
/// <remarks>
/// The compiled <see cref="VectorMath.GeluRows4x32"/> keeps its two dozen constants in zmm registers, so its eight
/// vectors' temporaries spill to the stack, and it writes each vector's chain of some forty dependent operations after the
/// previous one, leaving the core to find the eight-way parallelism across hundreds of waiting instructions. Here every
/// constant but 1 and 2 is a {1to16} broadcast memory operand (a load, which the core has to spare), so the registers
/// hold the vectors instead, and the code is written in lockstep: each step for all eight vectors before the next step
/// (the second half, from the exp on, four vectors at a time), so the instructions come in the order they can issue.
/// Masked instructions replace the compiled blends (the exp's flush to zero folds into vscalefps, the sign's select into
/// a masked subtraction) and vfnmadd the negation before −u² + r.
/// The sign test reads x &lt; 0 rather than u = x/√2 &lt; 0: the two agree for every float (u rounds away from zero
/// for the smallest |x|, as 1/√2 &gt; ½). All 32 zmm registers and k1–k4 are used: caller-saved under System V; under
/// the Windows convention the code saves and restores xmm6–15, whose low halves the caller keeps.
/// TOME_GELU_JIT=0 turns it off.
/// </remarks>
internal static unsafe class GeluJitKernel
{
    public const int Columns = 32;
    private const int RowsPerGroup = 4;

    // The constant table's dword slots (byte offset = 4·slot from r8).
    private enum K { InvSqrt2, AbsMask, Half, One, R0, R9 = R0 + 9, Log2E, NegLn2Hi, NegLn2Lo, E0, E5 = E0 + 5, Floor, Two, Zero, Count }

    private static readonly float[] RCoefficients = [R0, R1, R2, R3, R4, R5, R6, R7, R8, R9];
    private static readonly float[] ECoefficients = [E0, E1, E2, E3, E4, E5];

    private static readonly nint entry = Create();

    /// <summary>Whether the CPU and OS run AVX-512 (zmm state enabled) in a 64-bit process.</summary>
    public static bool CpuSupports => Environment.Is64BitProcess && Avx512F.IsSupported;

    /// <summary>TOME_GELU_JIT=0 turns the generated GELU off.</summary>
    public static bool Disabled => Environment.GetEnvironmentVariable("TOME_GELU_JIT")?.Trim() == "0";

    /// <summary>Whether the generated GELU runs here.</summary>
    public static bool IsAvailable => entry != 0;

    /// <summary>GELU of <paramref name="rows"/> rows of 32 floats at c (row stride ldc floats), in place.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Run(float* c, int ldc, int rows) =>
        ((delegate* unmanaged[SuppressGCTransition]<float*, nint, nint, void>)entry)(c, (nint)ldc * sizeof(float), rows);

    private static nint Create()
    {
        if (Disabled || !CpuSupports || !(OperatingSystem.IsLinux() || OperatingSystem.IsWindows()))
            return 0;
        // Lives for the process, as the code that reads it.
        var constants = (float*)NativeMemory.AlignedAlloc((nuint)K.Count * sizeof(float), 64);
        FillConstants(constants);
        var memory = ExecutableMemory.TryCreate(Generate(OperatingSystem.IsWindows(), constants));
        if (memory is null)
        {
            NativeMemory.AlignedFree(constants);
            return 0;
        }
        GC.SuppressFinalize(memory); // mapped for the life of the process
        return (nint)memory.Pointer;
    }

    internal static void FillConstants(float* k)
    {
        k[(int)K.InvSqrt2] = InvSqrt2;
        ((uint*)k)[(int)K.AbsMask] = 0x7FFF_FFFF;
        k[(int)K.Half] = 0.5f;
        k[(int)K.One] = 1f;
        for (int i = 0; i < RCoefficients.Length; i++)
            k[(int)K.R0 + i] = RCoefficients[i];
        k[(int)K.Log2E] = Log2E;
        k[(int)K.NegLn2Hi] = -Ln2Hi;
        k[(int)K.NegLn2Lo] = -Ln2Lo;
        for (int i = 0; i < ECoefficients.Length; i++)
            k[(int)K.E0 + i] = ECoefficients[i];
        k[(int)K.Floor] = ExpFloor;
        k[(int)K.Two] = 2f;
        k[(int)K.Zero] = 0f;
    }

    /// <summary>
    /// The machine code: (float* c, nint ldcBytes, nint rows) in the Windows or the System V convention, with the constant
    /// table's address built in.
    /// </summary>
    internal static byte[] Generate(bool windowsAbi, float* constants)
    {
        var asm = new X64Assembler();
        var (c, ld, rows) = windowsAbi ? (Gpr.Rcx, Gpr.Rdx, Gpr.R8) : (Gpr.Rdi, Gpr.Rsi, Gpr.Rdx);
        const int saved = 10, savedBytes = saved * 16; // xmm6–15 under the Windows convention
        if (windowsAbi)
        {
            asm.Sub(Gpr.Rsp, savedBytes);
            for (int i = 0; i < saved; i++)
                asm.Vmovdqu32StoreXmm(new Mem(Gpr.Rsp, Disp: 16 * i), 6 + i);
        }
        asm.Lea(Gpr.Rax, new Mem(c));
        asm.Lea(Gpr.R9, new Mem(ld));
        asm.Lea(Gpr.R10, new Mem(rows));
        asm.Lea(Gpr.R11, new Mem(Gpr.R9, Gpr.R9, 2)); // 3·ldc
        asm.MovImmediate(Gpr.R8, (long)constants);
        asm.Vbroadcastss(One, Const(K.One));
        asm.Vbroadcastss(Two, Const(K.Two));

        var group = asm.NewLabel();
        var tail = asm.NewLabel();
        var done = asm.NewLabel();
        asm.Bind(group);
        asm.Cmp(Gpr.R10, RowsPerGroup);
        asm.Jl(tail);
        Block(asm, RowsPerGroup);
        asm.Lea(Gpr.Rax, new Mem(Gpr.Rax, Gpr.R9, 4));
        asm.Sub(Gpr.R10, RowsPerGroup);
        asm.Jmp(group);
        asm.Bind(tail);
        var blocks = new Label[RowsPerGroup];
        for (int r = RowsPerGroup - 1; r >= 1; r--)
        {
            blocks[r] = asm.NewLabel();
            asm.Cmp(Gpr.R10, r);
            asm.Jz(blocks[r]);
        }
        asm.Jmp(done);
        for (int r = RowsPerGroup - 1; r >= 1; r--)
        {
            asm.Bind(blocks[r]);
            Block(asm, r);
            asm.Jmp(done);
        }
        asm.Bind(done);
        if (windowsAbi)
        {
            for (int i = 0; i < saved; i++)
                asm.Vmovdqu32LoadXmm(6 + i, new Mem(Gpr.Rsp, Disp: 16 * i));
            asm.Add(Gpr.Rsp, savedBytes);
        }
        asm.Vzeroupper();
        asm.Ret();
        return asm.ToArray();
    }

    // zmm registers. Constants 1 and 2; per vector i of a group, through the first half: |u| (1 + i), t (16 + i) and the
    // exp argument (24 + i); through the second half, four vectors at a time (j = i mod 4): g, then y (1 + j), the
    // polynomial p (5 + j), g² (9 + j), n and later x in the exp argument's register; k(1 + j) holds the flush mask, then
    // the sign mask.
    private const int One = 0, Two = 15, FirstAbs = 1, FirstT = 16, FirstE = 24, FirstP = 5, FirstG = 9, Half2 = 4;
    private const byte NotLessThan = 5; // vcmpps predicate NLT_US: true where a < b is false, NaN included

    private static Mem Const(K slot) => new(Gpr.R8, Disp: (int)slot * sizeof(float));

    // Rows 0–3 of the group at rax (stride r9, r11 = 3·r9), both 16-float halves.
    private static Mem Vector(int i)
    {
        int row = i / 2, disp = i % 2 * 64;
        return row switch
        {
            0 => new Mem(Gpr.Rax, Disp: disp),
            1 => new Mem(Gpr.Rax, Gpr.R9, 1, disp),
            2 => new Mem(Gpr.Rax, Gpr.R9, 2, disp),
            _ => new Mem(Gpr.Rax, Gpr.R11, 1, disp),
        };
    }

    // GELU of rows × 32 floats, each step for every vector before the next step. The comments give the VectorMath
    // operation each step is.
    private static void Block(X64Assembler asm, int rows)
    {
        int vectors = 2 * rows;
        void Each(int first, int count, Action<int> step)
        {
            for (int i = first; i < first + count; i++)
                step(i);
        }
        static int T(int i) => FirstT + i;
        static int E(int i) => FirstE + i;
        static int Abs(int i) => FirstAbs + i;

        Each(0, vectors, i => asm.Vmovdqu32Load(Abs(i), Vector(i)));
        Each(0, vectors, i => asm.Vmulps(Abs(i), Abs(i), Const(K.InvSqrt2)));   // u = x·(1/√2)
        Each(0, vectors, i => asm.Vpandd(Abs(i), Abs(i), Const(K.AbsMask)));    // |u|
        Each(0, vectors, i => asm.Vmovaps(T(i), One));
        Each(0, vectors, i => asm.Vfmadd231ps(T(i), Abs(i), Const(K.Half)));    // fma(0.5, |u|, 1)
        Each(0, vectors, i => asm.Vdivps(T(i), One, T(i)));                     // t = 1 / that
        Each(0, vectors, i => asm.Vbroadcastss(E(i), Const(K.R0 + 8)));
        Each(0, vectors, i => asm.Vfmadd231ps(E(i), T(i), Const(K.R9)));        // r = fma(R9, t, R8)
        for (int k = 7; k >= 0; k--)
            Each(0, vectors, i => asm.Vfmadd213ps(E(i), T(i), Const(K.R0 + k))); // r = fma(r, t, Rk)
        Each(0, vectors, i => asm.Vfnmadd231ps(E(i), Abs(i), Abs(i)));          // exponent = fma(−|u|, |u|, r)

        for (int first = 0; first < vectors; first += Half2)
        {
            int count = Math.Min(Half2, vectors - first);
            int Y(int i) => 1 + i - first;
            int P(int i) => FirstP + i - first;
            int G(int i) => FirstG + i - first;
            int Mask(int i) => 1 + i - first;
            Each(first, count, i => asm.Vbroadcastss(Y(i), Const(K.Floor)));
            Each(first, count, i => asm.Vmaxps(Y(i), Y(i), E(i)));                  // clamped = Max(exponent, ExpFloor), NaN kept
            Each(first, count, i => asm.Vcmpps(Mask(i), E(i), Const(K.Floor), NotLessThan)); // not (exponent < ExpFloor)
            Each(first, count, i => asm.Vmulps(E(i), Y(i), Const(K.Log2E)));
            Each(first, count, i => asm.Vrndscaleps(E(i), E(i), 0));               // n = Round(clamped·log2 e), to even
            Each(first, count, i => asm.Vfmadd231ps(Y(i), E(i), Const(K.NegLn2Hi))); // g = fma(n, −Ln2Hi, clamped)
            Each(first, count, i => asm.Vfmadd231ps(Y(i), E(i), Const(K.NegLn2Lo))); // g = fma(n, −Ln2Lo, g)
            Each(first, count, i => asm.Vbroadcastss(P(i), Const(K.E0 + 1)));
            Each(first, count, i => asm.Vfmadd231ps(P(i), Y(i), Const(K.E0)));     // p = fma(E0, g, E1)
            for (int k = 2; k <= 5; k++)
                Each(first, count, i => asm.Vfmadd213ps(P(i), Y(i), Const(K.E0 + k))); // p = fma(p, g, Ek)
            Each(first, count, i => asm.Vmulps(G(i), Y(i), Y(i)));
            Each(first, count, i => asm.Vfmadd231ps(Y(i), G(i), P(i)));            // fma(p, g·g, g)
            Each(first, count, i => asm.Vaddps(Y(i), Y(i), One));                  // y = that + 1
            Each(first, count, i => asm.Vscalefps(Y(i), Y(i), E(i), mask: Mask(i), zero: true)); // y·2ⁿ, 0 below the floor
            Each(first, count, i => asm.Vmulps(T(i), Y(i), T(i)));                 // erfc = t·exp
            Each(first, count, i => asm.Vmovdqu32Load(E(i), Vector(i)));
            Each(first, count, i => asm.Vcmpps(Mask(i), E(i), Const(K.Zero), NotLessThan)); // not (x < 0)
            Each(first, count, i => asm.Vsubps(T(i), Two, T(i), mask: Mask(i)));   // 1 + erf(u): erfc where u < 0, else 2 − erfc
            Each(first, count, i => asm.Vmulps(E(i), E(i), Const(K.Half)));        // 0.5·x
            Each(first, count, i => asm.Vmulps(T(i), T(i), E(i)));                 // 0.5·x·(1 + erf(u))
            Each(first, count, i => asm.Vmovdqu32Store(Vector(i), T(i)));
        }
    }
}
