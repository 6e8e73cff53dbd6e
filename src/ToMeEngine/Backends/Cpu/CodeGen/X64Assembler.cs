namespace ToMe.Backends.Cpu.CodeGen;

/// <summary>x86-64 general-purpose registers in encoding order.</summary>
internal enum Gpr
{
    Rax, Rcx, Rdx, Rbx, Rsp, Rbp, Rsi, Rdi, R8, R9, R10, R11, R12, R13, R14, R15,
}

/// <summary>A memory operand [base + index·scale + disp].</summary>
internal readonly record struct Mem(Gpr Base, Gpr? Index = null, int Scale = 1, int Disp = 0)
{
    public static implicit operator Mem(Gpr b) => new(b);

    public static Mem operator +(Mem m, int disp) => m with { Disp = m.Disp + disp };
}

/// <summary>A forward or backward jump target of <see cref="X64Assembler"/>.</summary>
internal readonly record struct Label(int Id);

/// <summary>
/// A minimal x86-64 encoder for the run-time generated kernels (int8 micro-kernel, GELU): just the instructions they need,
/// each encoded in one fixed form (64-bit operands, rel32 branches, 512-bit EVEX vector forms; float operations also with
/// an opmask and a {1to16} broadcast dword memory operand).
/// </summary>
/// <remarks>
/// Vector registers are numbered 0–31 (zmm). Memory operands take the shortest displacement the hardware accepts; for EVEX
/// that is the compressed disp8·N (N = 64 for a full zmm access, 4 for a broadcast dword), as an assembler would choose.
/// </remarks>
internal sealed class X64Assembler
{
    private readonly List<byte> code = [];
    private readonly List<int> labels = [];            // bound offset per label, −1 until bound
    private readonly List<(int At, int Label)> fixups = []; // rel32 fields waiting for their label

    public int Length => code.Count;

    /// <summary>The machine code; every label used must be bound.</summary>
    public byte[] ToArray()
    {
        foreach (var (at, label) in fixups)
        {
            int target = labels[label];
            if (target < 0)
                throw new InvalidOperationException($"label {label} is used but never bound");
            int rel = target - (at + 4);
            for (int i = 0; i < 4; i++)
                code[at + i] = (byte)(rel >> (8 * i));
        }
        return [.. code];
    }

    public Label NewLabel()
    {
        labels.Add(-1);
        return new Label(labels.Count - 1);
    }

    public void Bind(Label label)
    {
        if (labels[label.Id] >= 0)
            throw new InvalidOperationException($"label {label.Id} is bound twice");
        labels[label.Id] = code.Count;
    }

    // ---- general-purpose instructions (REX.W forms) ----

    /// <summary>mov dst, qword [m]</summary>
    public void MovLoad(Gpr dst, Mem m) => Legacy(0x8B, (int)dst, m);

    /// <summary>lea dst, [m]</summary>
    public void Lea(Gpr dst, Mem m) => Legacy(0x8D, (int)dst, m);

    /// <summary>add dst, imm (imm8 form when it fits)</summary>
    public void Add(Gpr dst, int imm) => ImmediateOp(0, dst, imm);

    /// <summary>sub dst, imm (imm8 form when it fits)</summary>
    public void Sub(Gpr dst, int imm) => ImmediateOp(5, dst, imm);

    /// <summary>add dst, src</summary>
    public void Add(Gpr dst, Gpr src) => RegisterOp(0x01, src, dst);

    /// <summary>cmp a, imm (imm8 form when it fits)</summary>
    public void Cmp(Gpr a, int imm) => ImmediateOp(7, a, imm);

    /// <summary>cmp a, b</summary>
    public void Cmp(Gpr a, Gpr b) => RegisterOp(0x39, b, a);

    /// <summary>prefetcht0 [m]</summary>
    public void Prefetch0(Mem m)
    {
        byte rex = Rex(false, 0, m.Index is { } i ? (int)i : 0, (int)m.Base);
        if (rex != 0x40)
            Emit(rex);
        Emit(0x0F, 0x18);
        Address(1, m, n: 1);
    }

    /// <summary>mov dst, imm64</summary>
    public void MovImmediate(Gpr dst, long imm)
    {
        Emit(Rex(true, 0, 0, (int)dst), (byte)(0xB8 + ((int)dst & 7)));
        Emit32((int)imm);
        Emit32((int)(imm >> 32));
    }

    /// <summary>test a, b</summary>
    public void Test(Gpr a, Gpr b) => RegisterOp(0x85, b, a);

    /// <summary>dec r</summary>
    public void Dec(Gpr r)
    {
        Emit(Rex(true, 0, 0, (int)r), 0xFF, ModRm(3, 1, (int)r));
    }

    public void Push(Gpr r)
    {
        if ((int)r >= 8)
            Emit(0x41);
        Emit((byte)(0x50 + ((int)r & 7)));
    }

    public void Pop(Gpr r)
    {
        if ((int)r >= 8)
            Emit(0x41);
        Emit((byte)(0x58 + ((int)r & 7)));
    }

    /// <summary>jnz label (rel32)</summary>
    public void Jnz(Label target) => Branch(0x85, target);

    /// <summary>jz label (rel32)</summary>
    public void Jz(Label target) => Branch(0x84, target);

    /// <summary>jl label (rel32, signed less)</summary>
    public void Jl(Label target) => Branch(0x8C, target);

    /// <summary>jae label (rel32, unsigned above or equal)</summary>
    public void Jae(Label target) => Branch(0x83, target);

    /// <summary>jmp label (rel32)</summary>
    public void Jmp(Label target)
    {
        Emit(0xE9);
        fixups.Add((code.Count, target.Id));
        Emit32(0);
    }

    public void Ret() => Emit(0xC3);

    public void Vzeroupper() => Emit(0xC5, 0xF8, 0x77);

    // ---- 512-bit EVEX instructions ----

    /// <summary>vpdpbusd acc, u8, s8 (zmm): acc += Σ of four u8·s8 products per int32 lane</summary>
    public void Vpdpbusd(int acc, int unsignedBytes, int signedBytes) =>
        EvexRegister(map: 2, pp: 1, opcode: 0x50, acc, unsignedBytes, signedBytes);

    /// <summary>vpxord dst, a, b (zmm)</summary>
    public void Vpxord(int dst, int a, int b) => EvexRegister(map: 1, pp: 1, opcode: 0xEF, dst, a, b);

    /// <summary>vpbroadcastd dst, dword [m] (zmm)</summary>
    public void VpbroadcastdLoad(int dst, Mem m) => EvexMemory(map: 2, pp: 1, opcode: 0x58, dst, m, n: 4);

    /// <summary>vmovdqu32 dst, zmmword [m]</summary>
    public void Vmovdqu32Load(int dst, Mem m) => EvexMemory(map: 1, pp: 2, opcode: 0x6F, dst, m, n: 64);

    /// <summary>vmovdqu32 zmmword [m], src</summary>
    public void Vmovdqu32Store(Mem m, int src) => EvexMemory(map: 1, pp: 2, opcode: 0x7F, src, m, n: 64);

    /// <summary>vmovdqu32 dst, xmmword [m] (the low 128 bits, which the Windows convention preserves in xmm6–15)</summary>
    public void Vmovdqu32LoadXmm(int dst, Mem m) => EvexMemory(map: 1, pp: 2, opcode: 0x6F, dst, m, n: 16, length: 0);

    /// <summary>vmovdqu32 xmmword [m], src</summary>
    public void Vmovdqu32StoreXmm(Mem m, int src) => EvexMemory(map: 1, pp: 2, opcode: 0x7F, src, m, n: 16, length: 0);

    // ---- 512-bit EVEX float instructions: dst = a op b, b a register or a broadcast dword [m]{1to16} ----
    // mask: write only the lanes set in k(mask) (1–7; 0 = all lanes); zero: clear the other lanes instead of keeping them.

    /// <summary>vbroadcastss dst, dword [m]</summary>
    public void Vbroadcastss(int dst, Mem m) => EvexMemory(map: 2, pp: 1, opcode: 0x18, dst, m, n: 4);

    /// <summary>vmovaps dst, src</summary>
    public void Vmovaps(int dst, int src) => FloatOp(1, 0, 0x28, dst, 0, src);

    public void Vaddps(int dst, int a, int b) => FloatOp(1, 0, 0x58, dst, a, b);
    public void Vaddps(int dst, int a, Mem b) => FloatOp(1, 0, 0x58, dst, a, b);
    public void Vmulps(int dst, int a, int b) => FloatOp(1, 0, 0x59, dst, a, b);
    public void Vmulps(int dst, int a, Mem b) => FloatOp(1, 0, 0x59, dst, a, b);
    public void Vsubps(int dst, int a, int b, int mask = 0) => FloatOp(1, 0, 0x5C, dst, a, b, mask);
    public void Vdivps(int dst, int a, int b) => FloatOp(1, 0, 0x5E, dst, a, b);
    public void Vmaxps(int dst, int a, int b) => FloatOp(1, 0, 0x5F, dst, a, b);

    /// <summary>vpandd dst, a, dword [m]{1to16}</summary>
    public void Vpandd(int dst, int a, Mem b) => FloatOp(1, 1, 0xDB, dst, a, b);

    /// <summary>vfmadd213ps dst, a, b: dst = a·dst + b, rounded once</summary>
    public void Vfmadd213ps(int dst, int a, Mem b) => FloatOp(2, 1, 0xA8, dst, a, b);

    /// <summary>vfmadd231ps dst, a, b: dst = a·b + dst, rounded once</summary>
    public void Vfmadd231ps(int dst, int a, int b) => FloatOp(2, 1, 0xB8, dst, a, b);
    public void Vfmadd231ps(int dst, int a, Mem b) => FloatOp(2, 1, 0xB8, dst, a, b);

    /// <summary>vfnmadd231ps dst, a, b: dst = −(a·b) + dst, rounded once</summary>
    public void Vfnmadd231ps(int dst, int a, int b) => FloatOp(2, 1, 0xBC, dst, a, b);

    /// <summary>vscalefps dst, a, b: a·2^floor(b)</summary>
    public void Vscalefps(int dst, int a, int b, int mask = 0, bool zero = false) => FloatOp(2, 1, 0x2C, dst, a, b, mask, zero);

    /// <summary>vrndscaleps dst, src, imm</summary>
    public void Vrndscaleps(int dst, int src, byte imm) => FloatOp(3, 1, 0x08, dst, 0, src, imm: imm);

    /// <summary>vcmpps k, a, b, predicate</summary>
    public void Vcmpps(int k, int a, int b, byte predicate) => FloatOp(1, 0, 0xC2, CheckMask(k), a, b, imm: predicate);
    public void Vcmpps(int k, int a, Mem b, byte predicate) => FloatOp(1, 0, 0xC2, CheckMask(k), a, b, imm: predicate);

    private void FloatOp(int map, int pp, byte opcode, int dst, int a, int b, int mask = 0, bool zero = false, byte? imm = null)
    {
        CheckVector(dst);
        CheckVector(a);
        CheckVector(b);
        Evex(map, pp, dst, a, x: b >> 4, b: b >> 3, mask: CheckMask(mask), zero: zero);
        Emit(opcode, ModRm(3, dst, b));
        if (imm is { } i)
            Emit(i);
    }

    private void FloatOp(int map, int pp, byte opcode, int dst, int a, Mem b, byte? imm = null)
    {
        CheckVector(dst);
        CheckVector(a);
        Evex(map, pp, dst, a, x: b.Index is { } i ? (int)i >> 3 : 0, b: (int)b.Base >> 3, broadcast: true);
        Emit(opcode);
        Address(dst, b, n: 4);
        if (imm is { } v)
            Emit(v);
    }

    private static int CheckMask(int k) =>
        (uint)k <= 7 ? k : throw new ArgumentOutOfRangeException(nameof(k), $"k{k} does not exist");

    // ---- encoding ----

    private void Emit(params ReadOnlySpan<byte> bytes)
    {
        foreach (var b in bytes)
            code.Add(b);
    }

    private static byte Rex(bool w, int reg, int index, int rm) =>
        (byte)(0x40 | (w ? 8 : 0) | ((reg >> 3) & 1) << 2 | ((index >> 3) & 1) << 1 | ((rm >> 3) & 1));

    private static byte ModRm(int mod, int reg, int rm) => (byte)(mod << 6 | (reg & 7) << 3 | (rm & 7));

    private void Legacy(byte opcode, int reg, Mem m)
    {
        Emit(Rex(true, reg, m.Index is { } i ? (int)i : 0, (int)m.Base), opcode);
        Address(reg, m, n: 1);
    }

    private void RegisterOp(byte opcode, Gpr reg, Gpr rm) =>
        Emit(Rex(true, (int)reg, 0, (int)rm), opcode, ModRm(3, (int)reg, (int)rm));

    private void ImmediateOp(int extension, Gpr dst, int imm)
    {
        if (imm is >= sbyte.MinValue and <= sbyte.MaxValue)
        {
            Emit(Rex(true, 0, 0, (int)dst), 0x83, ModRm(3, extension, (int)dst), (byte)imm);
            return;
        }
        Emit(Rex(true, 0, 0, (int)dst), 0x81, ModRm(3, extension, (int)dst));
        Emit32(imm);
    }

    private void Branch(byte condition, Label target)
    {
        Emit(0x0F, condition);
        fixups.Add((code.Count, target.Id));
        Emit32(0);
    }

    private void Emit32(int v) => Emit((byte)v, (byte)(v >> 8), (byte)(v >> 16), (byte)(v >> 24));

    // ModRM (+ SIB) (+ disp) for reg and memory operand m; n: the EVEX disp8 scale (1 for legacy encodings).
    private void Address(int reg, Mem m, int n)
    {
        int b = (int)m.Base;
        if (m.Index == Gpr.Rsp)
            throw new ArgumentException("rsp cannot be an index register");
        if (m.Scale is not (1 or 2 or 4 or 8))
            throw new ArgumentException($"scale {m.Scale} is not 1, 2, 4 or 8");
        bool sib = m.Index is not null || (b & 7) == 4;
        int mod;
        if (m.Disp == 0 && (b & 7) != 5)
            mod = 0;
        else if (m.Disp % n == 0 && m.Disp / n is >= sbyte.MinValue and <= sbyte.MaxValue)
            mod = 1;
        else
            mod = 2;
        Emit(ModRm(mod, reg, sib ? 4 : b));
        if (sib)
        {
            int index = m.Index is { } i ? (int)i : 4; // 100: no index
            int scale = m.Scale switch { 1 => 0, 2 => 1, 4 => 2, _ => 3 };
            Emit((byte)(scale << 6 | (index & 7) << 3 | (b & 7)));
        }
        if (mod == 1)
            Emit((byte)(sbyte)(m.Disp / n));
        else if (mod == 2)
            Emit32(m.Disp);
    }

    // 62 P0 P1 P2: map 1 = 0F, 2 = 0F38, 3 = 0F3A; pp 1 = 66, 2 = F3; W0; L'L = length: 10 (512 bits, or {1to16} with
    // broadcast), 00 (128 bits).
    // x, b: EVEX.X and EVEX.B as bits (stored inverted); mask: the opmask register (aaa), zero: EVEX.z.
    private void Evex(int map, int pp, int reg, int vvvv, int x, int b, int mask = 0, bool zero = false, bool broadcast = false,
        int length = 2)
    {
        int p0 = (~reg >> 3 & 1) << 7 | (~x & 1) << 6 | (~b & 1) << 5 | (~reg >> 4 & 1) << 4 | map;
        int p1 = (~vvvv & 15) << 3 | 1 << 2 | pp;
        int p2 = (zero ? 1 : 0) << 7 | length << 5 | (broadcast ? 1 : 0) << 4 | (~vvvv >> 4 & 1) << 3 | mask;
        Emit(0x62, (byte)p0, (byte)p1, (byte)p2);
    }

    private void EvexRegister(int map, int pp, byte opcode, int dst, int src1, int src2)
    {
        CheckVector(dst);
        CheckVector(src1);
        CheckVector(src2);
        // Register-direct r/m: EVEX.X extends it to zmm16–31, EVEX.B to 8–15.
        Evex(map, pp, dst, src1, x: src2 >> 4, b: src2 >> 3);
        Emit(opcode, ModRm(3, dst, src2));
    }

    private void EvexMemory(int map, int pp, byte opcode, int reg, Mem m, int n, int length = 2)
    {
        CheckVector(reg);
        // No second source: vvvv = 1111 (and V' = 1), which is register 0 inverted.
        Evex(map, pp, reg, vvvv: 0, x: m.Index is { } i ? (int)i >> 3 : 0, b: (int)m.Base >> 3, length: length);
        Emit(opcode);
        Address(reg, m, n);
    }

    private static void CheckVector(int v)
    {
        if ((uint)v > 31)
            throw new ArgumentOutOfRangeException(nameof(v), $"zmm{v} does not exist");
    }
}
