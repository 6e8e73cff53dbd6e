using ToMe.Backends.Cpu.CodeGen;
using static ToMe.Backends.Cpu.CodeGen.Gpr;

namespace ToMe.Tests.Cpu;

/// <summary>
/// The run-time x86-64 encoder against GNU as. Every expected byte string below was produced by GNU as 2.40 (Debian
/// binutils) from the Intel-syntax source line quoted with it (`.intel_syntax noprefix`, `as t.s -o t.o`) and read back
/// with `objdump -d -M intel t.o`; the branches were assembled with `{disp32}` to force the rel32 form the encoder uses.
/// </summary>
public class X64AssemblerTests
{
    private static readonly (string Source, Action<X64Assembler> Encode, string Bytes)[] Table =
    [
        ("vpdpbusd zmm16, zmm2, zmm0", a => a.Vpdpbusd(16, 2, 0), "62 e2 6d 48 50 c0"),
        ("vpdpbusd zmm31, zmm5, zmm1", a => a.Vpdpbusd(31, 5, 1), "62 62 55 48 50 f9"),
        ("vpdpbusd zmm0, zmm1, zmm2", a => a.Vpdpbusd(0, 1, 2), "62 f2 75 48 50 c2"),
        ("vpbroadcastd zmm2, dword ptr [rax]", a => a.VpbroadcastdLoad(2, new Mem(Rax)), "62 f2 7d 48 58 10"),
        ("vpbroadcastd zmm3, dword ptr [rax+rdx]", a => a.VpbroadcastdLoad(3, new Mem(Rax, Rdx)), "62 f2 7d 48 58 1c 10"),
        ("vpbroadcastd zmm4, dword ptr [rax+rdx*2]", a => a.VpbroadcastdLoad(4, new Mem(Rax, Rdx, 2)), "62 f2 7d 48 58 24 50"),
        ("vpbroadcastd zmm5, dword ptr [rax+r10]", a => a.VpbroadcastdLoad(5, new Mem(Rax, R10)), "62 b2 7d 48 58 2c 10"),
        ("vpbroadcastd zmm2, dword ptr [rax+rdx*4]", a => a.VpbroadcastdLoad(2, new Mem(Rax, Rdx, 4)), "62 f2 7d 48 58 14 90"),
        ("vpbroadcastd zmm3, dword ptr [r8+rdx*2]", a => a.VpbroadcastdLoad(3, new Mem(R8, Rdx, 2)), "62 d2 7d 48 58 1c 50"),
        ("vpbroadcastd zmm4, dword ptr [r8+r10]", a => a.VpbroadcastdLoad(4, new Mem(R8, R10)), "62 92 7d 48 58 24 10"),
        ("vpbroadcastd zmm5, dword ptr [r8+rdx*4]", a => a.VpbroadcastdLoad(5, new Mem(R8, Rdx, 4)), "62 d2 7d 48 58 2c 90"),
        ("vpbroadcastd zmm2, dword ptr [rax+12]", a => a.VpbroadcastdLoad(2, new Mem(Rax, Disp: 12)), "62 f2 7d 48 58 50 03"),
        ("vpbroadcastd zmm3, dword ptr [r8+rdx*4+8]", a => a.VpbroadcastdLoad(3, new Mem(R8, Rdx, 4, 8)), "62 d2 7d 48 58 5c 90 02"),
        ("vpbroadcastd zmm4, dword ptr [rax+1024]", a => a.VpbroadcastdLoad(4, new Mem(Rax, Disp: 1024)), "62 f2 7d 48 58 a0 00 04 00 00"),
        ("vpbroadcastd zmm5, dword ptr [rax+6]", a => a.VpbroadcastdLoad(5, new Mem(Rax, Disp: 6)), "62 f2 7d 48 58 a8 06 00 00 00"),
        ("vmovdqu32 zmm0, zmmword ptr [r9]", a => a.Vmovdqu32Load(0, new Mem(R9)), "62 d1 7e 48 6f 01"),
        ("vmovdqu32 zmm1, zmmword ptr [r9+r11]", a => a.Vmovdqu32Load(1, new Mem(R9, R11)), "62 91 7e 48 6f 0c 19"),
        ("vmovdqu32 zmm0, zmmword ptr [r9+192]", a => a.Vmovdqu32Load(0, new Mem(R9, Disp: 192)), "62 d1 7e 48 6f 41 03"),
        ("vmovdqu32 zmm1, zmmword ptr [r9+r11+64]", a => a.Vmovdqu32Load(1, new Mem(R9, R11, 1, 64)), "62 91 7e 48 6f 4c 19 01"),
        ("vmovdqu32 zmm1, zmmword ptr [r9+r11+8192]", a => a.Vmovdqu32Load(1, new Mem(R9, R11, 1, 8192)), "62 91 7e 48 6f 8c 19 00 20 00 00"),
        ("vmovdqu32 zmm1, zmmword ptr [r9+32]", a => a.Vmovdqu32Load(1, new Mem(R9, Disp: 32)), "62 d1 7e 48 6f 89 20 00 00 00"),
        ("vmovdqu32 zmmword ptr [rax], zmm16", a => a.Vmovdqu32Store(new Mem(Rax), 16), "62 e1 7e 48 7f 00"),
        ("vmovdqu32 zmmword ptr [rax+960], zmm31", a => a.Vmovdqu32Store(new Mem(Rax, Disp: 960), 31), "62 61 7e 48 7f 78 0f"),
        ("vmovdqu32 zmmword ptr [rax+64], zmm17", a => a.Vmovdqu32Store(new Mem(Rax, Disp: 64), 17), "62 e1 7e 48 7f 48 01"),
        ("vpxord zmm16, zmm16, zmm16", a => a.Vpxord(16, 16, 16), "62 a1 7d 40 ef c0"),
        ("vpxord zmm31, zmm31, zmm31", a => a.Vpxord(31, 31, 31), "62 01 05 40 ef ff"),
        ("mov rax, qword ptr [rdi]", a => a.MovLoad(Rax, new Mem(Rdi)), "48 8b 07"),
        ("mov rdx, qword ptr [rdi+8]", a => a.MovLoad(Rdx, new Mem(Rdi, Disp: 8)), "48 8b 57 08"),
        ("mov r8, qword ptr [rcx+16]", a => a.MovLoad(R8, new Mem(Rcx, Disp: 16)), "4c 8b 41 10"),
        ("mov r11, qword ptr [rcx+40]", a => a.MovLoad(R11, new Mem(Rcx, Disp: 40)), "4c 8b 59 28"),
        ("mov rcx, qword ptr [rcx+24]", a => a.MovLoad(Rcx, new Mem(Rcx, Disp: 24)), "48 8b 49 18"),
        ("mov rax, qword ptr [rsp+8]", a => a.MovLoad(Rax, new Mem(Rsp, Disp: 8)), "48 8b 44 24 08"),
        ("mov rax, qword ptr [rbp]", a => a.MovLoad(Rax, new Mem(Rbp)), "48 8b 45 00"),
        ("mov r9, qword ptr [r13+0]", a => a.MovLoad(R9, new Mem(R13)), "4d 8b 4d 00"),
        ("mov r10, qword ptr [r12+200]", a => a.MovLoad(R10, new Mem(R12, Disp: 200)), "4d 8b 94 24 c8 00 00 00"),
        ("lea r10, [rdx+rdx*2]", a => a.Lea(R10, new Mem(Rdx, Rdx, 2)), "4c 8d 14 52"),
        ("lea r8, [rax+r10]", a => a.Lea(R8, new Mem(Rax, R10)), "4e 8d 04 10"),
        ("add rax, 4", a => a.Add(Rax, 4), "48 83 c0 04"),
        ("add r9, 64", a => a.Add(R9, 64), "49 83 c1 40"),
        ("add r9, 256", a => a.Add(R9, 256), "49 81 c1 00 01 00 00"),
        ("add rax, r11", a => a.Add(Rax, R11), "4c 01 d8"),
        ("sub rcx, 1", a => a.Sub(Rcx, 1), "48 83 e9 01"),
        ("dec rcx", a => a.Dec(Rcx), "48 ff c9"),
        ("test rcx, rcx", a => a.Test(Rcx, Rcx), "48 85 c9"),
        ("cmp rbx, rbp", a => a.Cmp(Rbx, Rbp), "48 39 eb"),
        ("cmp r8, r10", a => a.Cmp(R8, R10), "4d 39 d0"),
        ("prefetcht0 byte ptr [rbx]", a => a.Prefetch0(new Mem(Rbx)), "0f 18 0b"),
        ("prefetcht0 byte ptr [rbp]", a => a.Prefetch0(new Mem(Rbp)), "0f 18 4d 00"),
        ("prefetcht0 byte ptr [r9+r11*2+64]", a => a.Prefetch0(new Mem(R9, R11, 2, 64)), "43 0f 18 4c 59 40"),
        ("mov rbx, qword ptr [rdi+48]", a => a.MovLoad(Rbx, new Mem(Rdi, Disp: 48)), "48 8b 5f 30"),
        ("push rbx", a => a.Push(Rbx), "53"),
        ("pop rbp", a => a.Pop(Rbp), "5d"),
        ("push rdi", a => a.Push(Rdi), "57"),
        ("push rcx", a => a.Push(Rcx), "51"),
        ("pop rdi", a => a.Pop(Rdi), "5f"),
        ("pop rcx", a => a.Pop(Rcx), "59"),
        ("push r10", a => a.Push(R10), "41 52"),
        ("pop r10", a => a.Pop(R10), "41 5a"),
        ("vbroadcastss zmm0, dword ptr [r8+12]", a => a.Vbroadcastss(0, new Mem(R8, Disp: 12)), "62 d2 7d 48 18 40 03"),
        ("vmovaps zmm16, zmm0", a => a.Vmovaps(16, 0), "62 e1 7c 48 28 c0"),
        ("vaddps zmm1, zmm1, zmm0", a => a.Vaddps(1, 1, 0), "62 f1 74 48 58 c8"),
        ("vaddps zmm1, zmm1, dword bcst [r8+12]", a => a.Vaddps(1, 1, new Mem(R8, Disp: 12)), "62 d1 74 58 58 48 03"),
        ("vmulps zmm2, zmm2, zmm2", a => a.Vmulps(2, 2, 2), "62 f1 6c 48 59 d2"),
        ("vmulps zmm1, zmm1, dword bcst [r8]", a => a.Vmulps(1, 1, new Mem(R8)), "62 d1 74 58 59 08"),
        ("vmulps zmm23, zmm23, zmm2", a => a.Vmulps(23, 23, 2), "62 e1 44 40 59 fa"),
        ("vmulps zmm1, zmm1, dword bcst [r8+1024]", a => a.Vmulps(1, 1, new Mem(R8, Disp: 1024)), "62 d1 74 58 59 88 00 04 00 00"),
        ("vsubps zmm16 {k2}, zmm4, zmm16", a => a.Vsubps(16, 4, 16, mask: 2), "62 a1 5c 4a 5c c0"),
        ("vdivps zmm16, zmm0, zmm16", a => a.Vdivps(16, 0, 16), "62 a1 7c 48 5e c0"),
        ("vmaxps zmm1, zmm1, zmm24", a => a.Vmaxps(1, 1, 24), "62 91 74 48 5f c8"),
        ("vpandd zmm1, zmm1, dword bcst [r8+4]", a => a.Vpandd(1, 1, new Mem(R8, Disp: 4)), "62 d1 75 58 db 48 01"),
        ("vfmadd213ps zmm24, zmm16, dword bcst [r8+44]", a => a.Vfmadd213ps(24, 16, new Mem(R8, Disp: 44)), "62 42 7d 50 a8 40 0b"),
        ("vfmadd231ps zmm16, zmm1, dword bcst [r8+8]", a => a.Vfmadd231ps(16, 1, new Mem(R8, Disp: 8)), "62 c2 75 58 b8 40 02"),
        ("vfmadd231ps zmm1, zmm4, zmm3", a => a.Vfmadd231ps(1, 4, 3), "62 f2 5d 48 b8 cb"),
        ("vfnmadd231ps zmm24, zmm1, zmm1", a => a.Vfnmadd231ps(24, 1, 1), "62 62 75 48 bc c1"),
        ("vscalefps zmm1 {k1}{z}, zmm1, zmm2", a => a.Vscalefps(1, 1, 2, mask: 1, zero: true), "62 f2 75 c9 2c ca"),
        ("vrndscaleps zmm2, zmm2, 0", a => a.Vrndscaleps(2, 2, 0), "62 f3 7d 48 08 d2 00"),
        ("vcmpps k1, zmm24, dword bcst [r8+92], 5", a => a.Vcmpps(1, 24, new Mem(R8, Disp: 92), 5), "62 d1 3c 50 c2 48 17 05"),
        ("vcmpps k2, zmm2, zmm31, 5", a => a.Vcmpps(2, 2, 31, 5), "62 91 6c 48 c2 d7 05"),
        ("cmp r10, 4", a => a.Cmp(R10, 4), "49 83 fa 04"),
        ("cmp r10, 300", a => a.Cmp(R10, 300), "49 81 fa 2c 01 00 00"),
        ("mov r8, 0x123456789abc", a => a.MovImmediate(R8, 0x123456789abc), "49 b8 bc 9a 78 56 34 12 00 00"),
        ("vmovdqu32 xmmword ptr [rsp+16], xmm6", a => a.Vmovdqu32StoreXmm(new Mem(Rsp, Disp: 16), 6), "62 f1 7e 08 7f 74 24 01"),
        ("vmovdqu32 xmm15, xmmword ptr [rsp+144]", a => a.Vmovdqu32LoadXmm(15, new Mem(Rsp, Disp: 144)), "62 71 7e 08 6f 7c 24 09"),
        ("vmovdqu32 xmmword ptr [rsp], xmm9", a => a.Vmovdqu32StoreXmm(new Mem(Rsp), 9), "62 71 7e 08 7f 0c 24"),
        ("sub rsp, 160", a => a.Sub(Rsp, 160), "48 81 ec a0 00 00 00"),
        ("add rsp, 160", a => a.Add(Rsp, 160), "48 81 c4 a0 00 00 00"),
        ("vzeroupper", a => a.Vzeroupper(), "c5 f8 77"),
        ("ret", a => a.Ret(), "c3"),
    ];

    public static TheoryData<string> Sources() => new(Table.Select(t => t.Source));

    private static string Hex(byte[] code) => string.Join(" ", code.Select(b => b.ToString("x2")));

    [Theory]
    [MemberData(nameof(Sources))]
    public void EncodesAsGnuAsDoes(string source)
    {
        var (_, encode, bytes) = Table.Single(t => t.Source == source);
        var asm = new X64Assembler();
        encode(asm);
        Assert.Equal(bytes, Hex(asm.ToArray()));
    }

    [Fact]
    public void BranchesResolveBackwardAndForward()
    {
        // 1: dec rcx / {disp32} jnz 1b / {disp32} jz 2f / push r10 / pop r10 / 2: ret
        var asm = new X64Assembler();
        var back = asm.NewLabel();
        var forward = asm.NewLabel();
        asm.Bind(back);
        asm.Dec(Rcx);
        asm.Jnz(back);
        asm.Jz(forward);
        asm.Push(R10);
        asm.Pop(R10);
        asm.Bind(forward);
        asm.Ret();
        Assert.Equal("48 ff c9 0f 85 f7 ff ff ff 0f 84 04 00 00 00 41 52 41 5a c3", Hex(asm.ToArray()));
    }

    [Fact]
    public void UnsignedBranchSkipsForward()
    {
        // cmp rbx, rbp / {disp32} jae 2f / prefetcht0 [rbx] / add rbx, 64 / 2: ret (as assembled by GNU as)
        var asm = new X64Assembler();
        var skip = asm.NewLabel();
        asm.Cmp(Rbx, Rbp);
        asm.Jae(skip);
        asm.Prefetch0(new Mem(Rbx));
        asm.Add(Rbx, 64);
        asm.Bind(skip);
        asm.Ret();
        Assert.Equal("48 39 eb 0f 83 07 00 00 00 0f 18 0b 48 83 c3 40 c3", Hex(asm.ToArray()));
    }

    [Fact]
    public void LoopBranchesResolve()
    {
        // 1: cmp r10, 4 / {disp32} jl 2f / {disp32} jmp 1b / 2: ret
        var asm = new X64Assembler();
        var top = asm.NewLabel();
        var exit = asm.NewLabel();
        asm.Bind(top);
        asm.Cmp(R10, 4);
        asm.Jl(exit);
        asm.Jmp(top);
        asm.Bind(exit);
        asm.Ret();
        Assert.Equal("49 83 fa 04 0f 8c 05 00 00 00 e9 f1 ff ff ff c3", Hex(asm.ToArray()));
    }

    [Fact]
    public void RejectsWhatItCannotEncode()
    {
        var asm = new X64Assembler();
        Assert.Throws<ArgumentException>(() => asm.MovLoad(Rax, new Mem(Rax, Rsp)));
        Assert.Throws<ArgumentException>(() => asm.Lea(Rax, new Mem(Rax, Rdx, 3)));
        Assert.Throws<ArgumentOutOfRangeException>(() => asm.Vpdpbusd(32, 0, 0));
        Assert.Throws<ArgumentOutOfRangeException>(() => asm.Vcmpps(8, 0, 0, 5));
        Assert.Throws<ArgumentOutOfRangeException>(() => asm.Vsubps(0, 0, 0, mask: 8));
        var unbound = asm.NewLabel();
        asm.Jnz(unbound);
        Assert.Throws<InvalidOperationException>(() => asm.ToArray());
    }
}
