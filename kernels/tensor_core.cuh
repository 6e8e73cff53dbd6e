// tensor_core.cuh: warp-wide matrix instructions for half-precision kernels (fp16 and bf16 on tensor cores).
//
//   mma_m16n8k16<T>(d, a, b)   d[16×8] += a[16×16] · b[16×8], T = half_t or bf16_t, fp32 accumulation (sm_80+)
//   mma_m8n8k4_f16<BRow>(d, a, b)   four independent d[8×8] += a[8×4] · b[4×8], one per quad-pair, fp16 in, fp32
//                                   accumulation (sm_70+: V100's tensor cores; sm_80+ run it too, slowly)
//   ldmatrix_x4 / _x2_trans / _x4_trans   8×8 b16 matrices from shared memory into fragments (sm_75+)
//   cp_async_16, cp_async_commit, cp_async_wait<N>   global → shared copies that bypass registers (sm_80+)
//
// Fragment layouts (PTX ISA, "Matrix Fragments for mma.m16n8k16"), g = lane / 4, t = lane % 4; each .b32
// register holds two b16 elements, the lower-indexed one in the low half:
//   A (row-major 16×16): a[0] = A[g][2t..2t+1], a[1] = A[g+8][2t..2t+1], a[2] = A[g][2t+8..], a[3] = A[g+8][2t+8..]
//   B (column 16×8):     b[0] = B[2t..2t+1][g], b[1] = B[2t+8..2t+9][g]
//   C, D (fp32 16×8):    d[0], d[1] = D[g][2t], D[g][2t+1]; d[2], d[3] = D[g+8][2t], D[g+8][2t+1]
// m8n8k4 (PTX ISA, "Matrix Fragments for mma.m8n8k4 with .f16 floating point type"): quad-pair q = lanes 4q..4q+3
// (low) and 16+4q..16+4q+3 (high) computes its own product; hi = lane / 16, each .b32 register two b16 elements:
//   A (.row 8×4):        a[0], a[1] = A[lane%4 + 4hi][0..1], [2..3]
//   B (.col 4×8):        b[0], b[1] = B[0..1][lane%4 + 4hi], B[2..3][…]   (.row: B[lane%4][4hi + 0..1], [4hi + 2..3])
//   C, D (fp32 8×8):     d[i] = D[(lane&1) + (i&2) + 4hi][(i&4) + (lane&2) + (i&1)], i = 0..7
// ldmatrix: lanes 8i..8i+7 give the row addresses of matrix i (16-byte aligned rows of eight b16); every lane
// receives, in register i, row g's elements 2t, 2t+1 of matrix i (with .trans: rows 2t, 2t+1 of column g).
//
// Every instruction goes through TOME_PTX (common.cuh): the emulated device runs its twin from
// emulator/include/tome_ptx_mma.h, a warp collective that rebuilds the matrices from these layouts.
#pragma once
#include "common.cuh"

// Two 16-bit values in one .b32 register, `lo` in the low half (the lower-indexed element of a fragment).
template <typename T> TOME_DEVICE u32 pack2(T lo, T hi) { return (u32)lo.bits | ((u32)hi.bits << 16); }
template <typename T> TOME_DEVICE u32 pack2_float(float lo, float hi) { return pack2(from_float<T>(lo), from_float<T>(hi)); }

// The 32-bit shared-window address of a generic pointer into shared memory (ldmatrix and cp.async take it).
TOME_DEVICE u32 shared_address(const void* p)
{
    u32 address;
    TOME_PTX(address = tome_ptx::shared_address(p),
             asm("{ .reg .u64 a; cvta.to.shared.u64 a, %1; cvt.u32.u64 %0, a; }" : "=r"(address) : "l"(p)));
    return address;
}

#if __CUDA_ARCH__ >= 750
TOME_DEVICE void ldmatrix_x4(u32 (&r)[4], const void* row)
{
    const u32 a = shared_address(row);
    TOME_PTX(tome_ptx::ldmatrix(r, 4, false, row, a),
             asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];"
                          : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3]) : "r"(a)));
}

TOME_DEVICE void ldmatrix_x2_trans(u32 (&r)[2], const void* row)
{
    const u32 a = shared_address(row);
    TOME_PTX(tome_ptx::ldmatrix(r, 2, true, row, a),
             asm volatile("ldmatrix.sync.aligned.m8n8.x2.trans.shared.b16 {%0, %1}, [%2];" : "=r"(r[0]), "=r"(r[1]) : "r"(a)));
}

TOME_DEVICE void ldmatrix_x4_trans(u32 (&r)[4], const void* row)
{
    const u32 a = shared_address(row);
    TOME_PTX(tome_ptx::ldmatrix(r, 4, true, row, a),
             asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];"
                          : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3]) : "r"(a)));
}
#endif

#if __CUDA_ARCH__ >= 700
// BRow: B's fragments hold rows of B (.row), else columns (.col); A is always .row.
template <bool BRow> TOME_DEVICE void mma_m8n8k4_f16(float (&d)[8], const u32 (&a)[2], const u32 (&b)[2])
{
#define TOME_MMA884_OPERANDS                                                                                       \
    : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7])                 \
    : "r"(a[0]), "r"(a[1]), "r"(b[0]), "r"(b[1])
    if (BRow)
        TOME_PTX(tome_ptx::mma_m8n8k4(d, a, b, true),
                 asm volatile("mma.sync.aligned.m8n8k4.row.row.f32.f16.f16.f32 {%0, %1, %2, %3, %4, %5, %6, %7}, {%8, %9}, "
                              "{%10, %11}, {%0, %1, %2, %3, %4, %5, %6, %7};" TOME_MMA884_OPERANDS));
    else
        TOME_PTX(tome_ptx::mma_m8n8k4(d, a, b, false),
                 asm volatile("mma.sync.aligned.m8n8k4.row.col.f32.f16.f16.f32 {%0, %1, %2, %3, %4, %5, %6, %7}, {%8, %9}, "
                              "{%10, %11}, {%0, %1, %2, %3, %4, %5, %6, %7};" TOME_MMA884_OPERANDS));
#undef TOME_MMA884_OPERANDS
}
#endif

#if __CUDA_ARCH__ >= 800
template <typename T> TOME_DEVICE void mma_m16n8k16(float (&d)[4], const u32 (&a)[4], const u32 (&b)[2]);

template <> TOME_DEVICE void mma_m16n8k16<half_t>(float (&d)[4], const u32 (&a)[4], const u32 (&b)[2])
{
    TOME_PTX(tome_ptx::mma_m16n8k16(d, a, b, tome_ptx::MmaType::F16),
             asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
                          "{%0, %1, %2, %3};"
                          : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
                          : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1])));
}

template <> TOME_DEVICE void mma_m16n8k16<bf16_t>(float (&d)[4], const u32 (&a)[4], const u32 (&b)[2])
{
    TOME_PTX(tome_ptx::mma_m16n8k16(d, a, b, tome_ptx::MmaType::BF16),
             asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
                          "{%0, %1, %2, %3};"
                          : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
                          : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1])));
}

// 16 bytes global → shared without passing through registers (.cg: cached in L2 only, K/V tiles are read once
// per block). Both addresses 16-byte aligned.
TOME_DEVICE void cp_async_16(void* shared_dst, const void* global_src)
{
    const u32 dst = shared_address(shared_dst);
    TOME_PTX(tome_ptx::cp_async_16(shared_dst, global_src),
             asm volatile("cp.async.cg.shared.global [%0], [%1], 16;" ::"r"(dst), "l"(global_src) : "memory"));
}

TOME_DEVICE void cp_async_commit() { TOME_PTX(tome_ptx::cp_async_commit(), asm volatile("cp.async.commit_group;" ::: "memory")); }

// Waits until at most `pending` of this thread's committed groups are still in flight.
template <int pending> TOME_DEVICE void cp_async_wait()
{
    TOME_PTX(tome_ptx::cp_async_wait(pending), asm volatile("cp.async.wait_group %0;" ::"n"(pending) : "memory"));
}
#endif
