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
/// vectors' temporaries spill to the stack. Here every constant is a {1to16} broadcast memory operand (a load, which the
/// core has to spare) and a vector's state between the two halves is only t and the exp argument, so eight vectors' chains
/// stay in registers with no spill, and masked instructions replace the compiled blends (the exp's flush to zero folds
/// into vscalefps, the sign's select into a masked subtraction) and the negation before −u²+r into vfnmadd.
/// The sign test reads x &lt; 0 rather than u = x/√2 &lt; 0: the two agree for every float (u rounds away from zero
/// for the smallest |x|, as 1/√2 &gt; ½). Registers: zmm0–5 and zmm16–31, k1–k2 only, which are caller-saved on both the
/// System V and the Windows x64 conventions, so no register is saved. TOME_GELU_JIT=0 turns it off.
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
        asm.Lea(Gpr.Rax, new Mem(c));
        asm.Lea(Gpr.R9, new Mem(ld));
        asm.Lea(Gpr.R10, new Mem(rows));
        asm.Lea(Gpr.R11, new Mem(Gpr.R9, Gpr.R9, 2)); // 3·ldc
        asm.MovImmediate(Gpr.R8, (long)constants);
        asm.Vbroadcastss(One, Const(K.One));

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
        asm.Vzeroupper();
        asm.Ret();
        return asm.ToArray();
    }

    // zmm registers: the constant 1, four temporaries, then t and the exp argument of up to eight vectors.
    private const int One = 0, A = 1, N = 2, P = 3, G = 4, FirstT = 16, FirstE = 24;
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

    // GELU of rows × 32 floats: every vector up to the exp argument, then every vector to the end. The comments give the
    // VectorMath operation each instruction is.
    private static void Block(X64Assembler asm, int rows)
    {
        int vectors = 2 * rows;
        for (int i = 0; i < vectors; i++)
        {
            int t = FirstT + i, e = FirstE + i;
            asm.Vmovdqu32Load(A, Vector(i));
            asm.Vmulps(A, A, Const(K.InvSqrt2));         // u = x·(1/√2)
            asm.Vpandd(A, A, Const(K.AbsMask));          // |u|
            asm.Vmovaps(t, One);
            asm.Vfmadd231ps(t, A, Const(K.Half));        // fma(0.5, |u|, 1)
            asm.Vdivps(t, One, t);                       // t = 1 / that
            asm.Vbroadcastss(e, Const(K.R0 + 8));
            asm.Vfmadd231ps(e, t, Const(K.R9));          // r = fma(R9, t, R8)
            for (int k = 7; k >= 0; k--)
                asm.Vfmadd213ps(e, t, Const(K.R0 + k));  // r = fma(r, t, Rk)
            asm.Vfnmadd231ps(e, A, A);                   // exponent = fma(−|u|, |u|, r)
        }
        for (int i = 0; i < vectors; i++)
        {
            int t = FirstT + i, e = FirstE + i;
            asm.Vbroadcastss(A, Const(K.Floor));
            asm.Vmaxps(A, A, e);                         // clamped = Max(exponent, ExpFloor), NaN kept
            asm.Vmulps(N, A, Const(K.Log2E));
            asm.Vrndscaleps(N, N, 0);                    // n = Round(clamped·log2 e), to nearest even
            asm.Vfmadd231ps(A, N, Const(K.NegLn2Hi));    // g = fma(n, −Ln2Hi, clamped)
            asm.Vfmadd231ps(A, N, Const(K.NegLn2Lo));    // g = fma(n, −Ln2Lo, g)
            asm.Vbroadcastss(P, Const(K.E0 + 1));
            asm.Vfmadd231ps(P, A, Const(K.E0));          // p = fma(E0, g, E1)
            for (int k = 2; k <= 5; k++)
                asm.Vfmadd213ps(P, A, Const(K.E0 + k));  // p = fma(p, g, Ek)
            asm.Vmulps(G, A, A);
            asm.Vfmadd231ps(A, G, P);                    // fma(p, g·g, g)
            asm.Vaddps(A, A, One);                       // y = that + 1
            asm.Vcmpps(1, e, Const(K.Floor), NotLessThan);
            asm.Vscalefps(A, A, N, mask: 1, zero: true); // y·2ⁿ, 0 where exponent < ExpFloor
            asm.Vmulps(t, A, t);                         // erfc = t·exp
            asm.Vmovdqu32Load(N, Vector(i));
            asm.Vcmpps(2, N, Const(K.Zero), NotLessThan);
            asm.Vbroadcastss(G, Const(K.Two));
            asm.Vsubps(t, G, t, mask: 2);                // 1 + erf(u): erfc where u < 0, else 2 − erfc
            asm.Vmulps(N, N, Const(K.Half));             // 0.5·x
            asm.Vmulps(t, t, N);                         // 0.5·x·(1 + erf(u))
            asm.Vmovdqu32Store(Vector(i), t);
        }
    }
}
