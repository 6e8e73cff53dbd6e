using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics.X86;
using ToMe.Backends.Cpu.CodeGen;

namespace ToMe.Backends.Cpu;

/// <summary>
/// The int8 micro-kernel on 512-bit VNNI (EVEX VPDPBUSD on zmm), generated as machine code when first needed: .NET 10
/// exposes AVX-VNNI only VEX-encoded on ymm, and a zmm VPDPBUSD does twice the multiply-adds per instruction. It computes
/// the same exact int32 sums as <see cref="Int8Kernels"/> (<see cref="Int8Path.Avx512Vnni"/>).
/// </summary>
/// <remarks>
/// One call: <see cref="Mr"/> rows of uint8 activations (or fewer: one entry point per row count, for a row block's
/// short last micro-panel) × one or two 16-column panels of an <see cref="Int8Weight"/>, over all of K; the sums go to
/// memory as [Mr][<see cref="OutStride"/>] int32 and the C# epilogue dequantizes them. Per
/// k-quad the two panel vectors are loaded once and each row's four bytes broadcast once, for 16 VPDPBUSD (8 × 2
/// accumulators in zmm16–31, operands in zmm0–5). Besides rbx and rbp, which it saves, only caller-saved registers are
/// used on both the System V and the Windows x64 conventions; its one argument is a pointer to <see cref="Args"/>.
/// Used only where the CPU reports AVX512_VNNI and the OS keeps zmm state (Avx512F/Avx512BW supported), on Linux and
/// Windows; TOME_INT8_JIT=0 turns it off.
/// </remarks>
internal static unsafe class Int8JitKernels
{
    public const int Mr = 8;
    public const int MaxPanels = 2;
    public const int OutStride = MaxPanels * Int8Weight.PanelWidth;

    /// <summary>The generated code's argument block (its offsets are baked into the code).</summary>
    [StructLayout(LayoutKind.Sequential)]
    public struct Args
    {
        public byte* A;          // row 0 of the activations, Mr rows
        public long Lda;         // bytes between rows
        public sbyte* B;         // the first panel's first k-quad
        public long PanelStride; // bytes from one panel to the next
        public long KQuads;
        public int* Sums;        // [Mr][OutStride]
        public byte* Prefetch;   // lines [Prefetch, PrefetchEnd) to touch, one per k-quad from the first (see Int8Gemm)
        public byte* PrefetchEnd;
    }

    private sealed class Kernels(ExecutableMemory memory, int[] offsets)
    {
        // [rows − 1, panels − 1]: the row block's last micro-panel (197 rows = 24·8 + 5) runs only its real rows.
        private readonly nint[] entries = offsets.Select(o => (nint)((byte*)memory.Pointer + o)).ToArray();
        public readonly ExecutableMemory Memory = memory; // mapped for the life of the process

        public delegate* unmanaged[SuppressGCTransition]<Args*, void> Entry(int rows, int panels) =>
            (delegate* unmanaged[SuppressGCTransition]<Args*, void>)entries[(rows - 1) * MaxPanels + panels - 1];
    }

    private static readonly Lazy<Kernels?> kernels = new(Create);

    /// <summary>Whether the CPU and OS run 512-bit VNNI: AVX512_VNNI (CPUID leaf 7, ECX bit 11) with zmm state enabled.</summary>
    public static bool CpuSupports =>
        Environment.Is64BitProcess && X86Base.IsSupported && Avx512F.IsSupported && Avx512BW.IsSupported
        && (X86Base.CpuId(7, 0).Ecx & (1 << 11)) != 0;

    /// <summary>TOME_INT8_JIT=0 turns the generated kernel off.</summary>
    public static bool Disabled { get; } = Environment.GetEnvironmentVariable("TOME_INT8_JIT")?.Trim() == "0";

    /// <summary>Whether the generated kernel runs here (generates it on first use).</summary>
    public static bool IsAvailable => !Disabled && kernels.Value is not null;

    private static Kernels? Create()
    {
        if (!CpuSupports || !(OperatingSystem.IsLinux() || OperatingSystem.IsWindows()))
            return null;
        bool windows = OperatingSystem.IsWindows();
        var code = new List<byte>();
        var offsets = new int[Mr * MaxPanels];
        for (int rows = 1; rows <= Mr; rows++)
            for (int panels = 1; panels <= MaxPanels; panels++)
            {
                while (code.Count % 64 != 0)
                    code.Add(0xCC); // int3 between the entry points
                offsets[(rows - 1) * MaxPanels + panels - 1] = code.Count;
                code.AddRange(Generate(panels, windows, rows));
            }
        var memory = ExecutableMemory.TryCreate(code.ToArray());
        return memory is null ? null : new Kernels(memory, offsets);
    }

    /// <summary>
    /// Sums for the first <paramref name="rows"/> (1 to Mr) rows × <paramref name="panels"/> (1 or 2) panels into sums
    /// [Mr][OutStride]; the rows after them are neither read nor written.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Run(int panels, int kq, byte* a, int lda, sbyte* b, long panelStride, int* sums, int rows = Mr,
        byte* prefetch = null, byte* prefetchEnd = null)
    {
        var k = kernels.Value!;
        var args = new Args
        {
            A = a, Lda = lda, B = b, PanelStride = panelStride, KQuads = kq, Sums = sums, Prefetch = prefetch, PrefetchEnd = prefetchEnd,
        };
        k.Entry(rows, panels)(&args);
    }

    /// <summary>
    /// The machine code of the kernel for 1 or 2 panels and 1 to Mr rows, for the Windows or the System V calling convention.
    /// </summary>
    internal static byte[] Generate(int panels, bool windowsAbi, int rowCount = Mr)
    {
        if (panels is not (1 or 2))
            throw new ArgumentOutOfRangeException(nameof(panels));
        if (rowCount is < 1 or > Mr)
            throw new ArgumentOutOfRangeException(nameof(rowCount));
        var asm = new X64Assembler();
        var args = windowsAbi ? Gpr.Rcx : Gpr.Rdi;
        const int firstAccumulator = 16, firstBroadcast = 2, broadcasts = 4;
        asm.Push(args); // kept for the output pointer: rcx becomes the loop counter
        // rbx and rbp (saved on both conventions) walk the lines to prefetch: cmp + jae skips once they meet.
        asm.Push(Gpr.Rbx);
        asm.Push(Gpr.Rbp);
        asm.MovLoad(Gpr.Rbx, new Mem(args, Disp: 48));
        asm.MovLoad(Gpr.Rbp, new Mem(args, Disp: 56));
        asm.MovLoad(Gpr.Rax, new Mem(args, Disp: 0));
        asm.MovLoad(Gpr.Rdx, new Mem(args, Disp: 8));
        asm.MovLoad(Gpr.R9, new Mem(args, Disp: 16));
        asm.MovLoad(Gpr.R11, new Mem(args, Disp: 24));
        asm.MovLoad(Gpr.Rcx, new Mem(args, Disp: 32));
        asm.Lea(Gpr.R10, new Mem(Gpr.Rdx, Gpr.Rdx, 2)); // 3·lda
        asm.Lea(Gpr.R8, new Mem(Gpr.Rax, Gpr.R10));     // row 3
        // Rows 0–7 from two bases (rows 0 and 3) and lda, 2·lda, 3·lda, 4·lda.
        Mem[] rows =
        [
            new(Gpr.Rax), new(Gpr.Rax, Gpr.Rdx), new(Gpr.Rax, Gpr.Rdx, 2), new(Gpr.Rax, Gpr.R10),
            new(Gpr.Rax, Gpr.Rdx, 4), new(Gpr.R8, Gpr.Rdx, 2), new(Gpr.R8, Gpr.R10), new(Gpr.R8, Gpr.Rdx, 4),
        ];
        for (int acc = 0; acc < rowCount * panels; acc++)
            asm.Vpxord(firstAccumulator + acc, firstAccumulator + acc, firstAccumulator + acc);
        var loop = asm.NewLabel();
        var done = asm.NewLabel();
        asm.Test(Gpr.Rcx, Gpr.Rcx);
        asm.Jz(done);
        asm.Bind(loop);
        asm.Vmovdqu32Load(0, new Mem(Gpr.R9));
        if (panels == 2)
            asm.Vmovdqu32Load(1, new Mem(Gpr.R9, Gpr.R11));
        for (int r = 0; r < rowCount; r++)
        {
            int broadcast = firstBroadcast + r % broadcasts;
            asm.VpbroadcastdLoad(broadcast, rows[r]);
            for (int p = 0; p < panels; p++)
                asm.Vpdpbusd(firstAccumulator + r * panels + p, broadcast, p);
        }
        var prefetched = asm.NewLabel();
        asm.Cmp(Gpr.Rbx, Gpr.Rbp);
        asm.Jae(prefetched);
        asm.Prefetch0(new Mem(Gpr.Rbx));
        asm.Add(Gpr.Rbx, 64);
        asm.Bind(prefetched);
        asm.Add(Gpr.Rax, 4);
        asm.Add(Gpr.R8, 4);
        asm.Add(Gpr.R9, 4 * Int8Weight.PanelWidth);
        asm.Dec(Gpr.Rcx);
        asm.Jnz(loop);
        asm.Bind(done);
        asm.Pop(Gpr.Rbp);
        asm.Pop(Gpr.Rbx);
        asm.Pop(Gpr.R10);
        asm.MovLoad(Gpr.R10, new Mem(Gpr.R10, Disp: 40));
        for (int r = 0; r < rowCount; r++)
            for (int p = 0; p < panels; p++)
                asm.Vmovdqu32Store(new Mem(Gpr.R10, Disp: (r * OutStride + p * Int8Weight.PanelWidth) * sizeof(int)), firstAccumulator + r * panels + p);
        asm.Vzeroupper();
        asm.Ret();
        return asm.ToArray();
    }
}
