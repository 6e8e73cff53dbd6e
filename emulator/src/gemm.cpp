// gemm.cpp: the emulated cuBLAS(Lt) matrix product (see gemm.h).
//
// Each output element is one fixed-order dot product (eight interleaved partial sums, then a pairwise
// total), whatever the matrix sizes: a row's result does not depend on how many other rows there are.
#include "gemm.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <utility>
#include <vector>

#include "memory.h"
#include "pool.h"
#include "tome_ptx_twins.h"

namespace tome_emu {

namespace {

constexpr int64_t kColumnsPerTask = 16;

float Load(const void* base, Element type, int64_t index)
{
    switch (type) {
    case Element::F16: return tome_ptx::cvt_f32_f16(static_cast<const uint16_t*>(base)[index]);
    case Element::BF16: return tome_ptx::mov_b32_to_f32((uint32_t)static_cast<const uint16_t*>(base)[index] << 16);
    default: return static_cast<const float*>(base)[index];
    }
}

void Store(void* base, Element type, int64_t index, float value)
{
    switch (type) {
    case Element::F16: static_cast<uint16_t*>(base)[index] = tome_ptx::cvt_rn_f16_f32(value); break;
    case Element::BF16: static_cast<uint16_t*>(base)[index] = tome_ptx::cvt_rn_bf16_f32(value); break;
    default: static_cast<float*>(base)[index] = value; break;
    }
}

// The input rounding of the reduced-precision compute types (TF32 is cvt.rna.tf32.f32).
float Round(float x, InputRounding rounding)
{
    switch (rounding) {
    case InputRounding::Tf32: return tome_ptx::cvt_rna_tf32_f32(x);
    case InputRounding::F16: return tome_ptx::cvt_f32_f16(tome_ptx::cvt_rn_f16_f32(x));
    case InputRounding::Bf16: return tome_ptx::mov_b32_to_f32((uint32_t)tome_ptx::cvt_rn_bf16_f32(x) << 16);
    default: return x;
    }
}

float Activate(float x, Activation activation)
{
    switch (activation) {
    case Activation::Relu: return x > 0.0f ? x : 0.0f;
    case Activation::GeluTanh: {
        // cuBLASLt's GELU: 0.5x(1 + tanh(sqrt(2/π)(x + 0.044715x³))).
        const float inner = 0.7978845608028654f * (x + 0.044715f * x * x * x);
        return 0.5f * x * (1.0f + std::tanh(inner));
    }
    default: return x;
    }
}

// dot(a, b) over k, in the fixed order described above; `R` rows against `C` columns at once.
template <int R, int C>
void DotBlock(const float* const* a, const float* const* b, int64_t k, float (&out)[R][C])
{
    float acc[R][C][8] = {};
    int64_t p = 0;
    for (; p + 8 <= k; p += 8)
        for (int r = 0; r < R; ++r)
            for (int c = 0; c < C; ++c)
                for (int l = 0; l < 8; ++l)
                    acc[r][c][l] += a[r][p + l] * b[c][p + l];
    for (int r = 0; r < R; ++r) {
        for (int c = 0; c < C; ++c) {
            for (int l = 0; p + l < k; ++l)
                acc[r][c][l] += a[r][p + l] * b[c][p + l];
            float(&s)[8] = acc[r][c];
            out[r][c] = ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
        }
    }
}

// Element (i, j) of op(X) for a stored matrix.
int64_t Index(const MatrixArg& x, int64_t i, int64_t j)
{
    if (x.transposed)
        std::swap(i, j);
    return x.row_major ? i * x.ld + j : i + j * x.ld;
}

void PackRows(const GemmProblem& g, int64_t batch, std::vector<float>& a)
{
    const auto* base = static_cast<const unsigned char*>(g.a.data) + batch * g.a.batch_stride * (int64_t)ElementBytes(g.a.type);
    a.resize((size_t)(g.m * g.k));
    for (int64_t i = 0; i < g.m; ++i)
        for (int64_t p = 0; p < g.k; ++p)
            a[(size_t)(i * g.k + p)] = Round(Load(base, g.a.type, Index(g.a, i, p)), g.rounding);
}

void ComputeColumns(const GemmProblem& g, int64_t batch, int64_t first, int64_t last, const std::vector<float>& a)
{
    const auto* b_base = static_cast<const unsigned char*>(g.b.data) + batch * g.b.batch_stride * (int64_t)ElementBytes(g.b.type);
    std::vector<float> b((size_t)((last - first) * g.k));
    for (int64_t j = first; j < last; ++j)
        for (int64_t p = 0; p < g.k; ++p)
            b[(size_t)((j - first) * g.k + p)] = Round(Load(b_base, g.b.type, Index(g.b, p, j)), g.rounding);
    const auto* c_base = g.beta != 0.0f ? static_cast<const unsigned char*>(g.c.data) + batch * g.c.batch_stride * (int64_t)ElementBytes(g.c.type)
                                        : nullptr;
    auto* d_base = static_cast<unsigned char*>(const_cast<void*>(g.d.data)) + batch * g.d.batch_stride * (int64_t)ElementBytes(g.d.type);
    const auto* bias = g.bias == nullptr ? nullptr
                                         : static_cast<const unsigned char*>(g.bias) + batch * g.bias_batch_stride * (int64_t)ElementBytes(g.bias_type);
    auto finish = [&](int64_t i, int64_t j, float dot) {
        float v = g.alpha * dot;
        if (c_base != nullptr)
            v += g.beta * Load(c_base, g.c.type, Index(g.c, i, j));
        if (bias != nullptr)
            v += Load(bias, g.bias_type, i);
        Store(d_base, g.d.type, Index(g.d, i, j), Activate(v, g.activation));
    };
    for (int64_t j = first; j < last; j += 2) {
        const int64_t columns = std::min<int64_t>(2, last - j);
        const float* bj[2] = {&b[(size_t)((j - first) * g.k)], &b[(size_t)((j - first + columns - 1) * g.k)]};
        int64_t i = 0;
        for (; i + 4 <= g.m; i += 4) {
            const float* ai[4] = {&a[(size_t)(i * g.k)], &a[(size_t)((i + 1) * g.k)], &a[(size_t)((i + 2) * g.k)], &a[(size_t)((i + 3) * g.k)]};
            float out[4][2];
            DotBlock<4, 2>(ai, bj, g.k, out);
            for (int r = 0; r < 4; ++r)
                for (int c = 0; c < columns; ++c)
                    finish(i + r, j + c, out[r][c]);
        }
        for (; i < g.m; ++i) {
            const float* ai[1] = {&a[(size_t)(i * g.k)]};
            float out[1][2];
            DotBlock<1, 2>(ai, bj, g.k, out);
            for (int c = 0; c < columns; ++c)
                finish(i, j + c, out[0][c]);
        }
    }
}

Status CheckMatrix(const GemmProblem& g, const MatrixArg& x, int64_t rows, int64_t columns, const char* name)
{
    if (rows == 0 || columns == 0 || g.batch == 0)
        return {};
    const int64_t last = (x.row_major ? (rows - 1) * x.ld + (columns - 1) : (rows - 1) + (columns - 1) * x.ld) + (g.batch - 1) * x.batch_stride;
    Status status = Memory::Get().CheckDevice((uintptr_t)x.data, (size_t)(last + 1) * ElementBytes(x.type),
                                              Format("%s: %s (%lld×%lld stored, ld %lld, batch stride %lld, %lld batches)", g.api.c_str(), name,
                                                     (long long)rows, (long long)columns, (long long)x.ld, (long long)x.batch_stride,
                                                     (long long)g.batch).c_str());
    if (!status.ok())
        status.code = kIllegalAddress;
    return status;
}

}  // namespace

size_t ElementBytes(Element type) { return type == Element::F32 ? 4 : 2; }

Status CheckGemmMemory(const GemmProblem& g)
{
    if (g.m == 0 || g.n == 0)
        return {};
    Status status = g.k == 0 ? Status{} : CheckMatrix(g, g.a, g.a.transposed ? g.k : g.m, g.a.transposed ? g.m : g.k, "A");
    if (status.ok() && g.k != 0)
        status = CheckMatrix(g, g.b, g.b.transposed ? g.n : g.k, g.b.transposed ? g.k : g.n, "B");
    if (status.ok() && g.beta != 0.0f)
        status = CheckMatrix(g, g.c, g.m, g.n, "C");
    if (status.ok())
        status = CheckMatrix(g, g.d, g.m, g.n, "D");
    if (status.ok() && g.bias != nullptr) {
        MatrixArg bias{g.bias, g.bias_type, false, g.m, g.bias_batch_stride};
        status = CheckMatrix(g, bias, g.m, 1, "bias");
    }
    return status;
}

std::vector<Access> GemmAccesses(const GemmProblem& g)
{
    std::vector<Access> accesses = {{(uintptr_t)g.a.data, false}, {(uintptr_t)g.b.data, false}, {(uintptr_t)g.bias, false}};
    if (g.beta != 0.0f)
        accesses.push_back({(uintptr_t)g.c.data, false});
    accesses.push_back({(uintptr_t)g.d.data, true});
    accesses.push_back({(uintptr_t)g.workspace, true});
    return accesses;
}

Status RunGemm(const GemmProblem& g)
{
    if (Status status = CheckGemmMemory(g); !status.ok())
        return status;
    if (g.m == 0 || g.n == 0 || g.batch == 0)
        return {};
    std::vector<std::vector<float>> packed((size_t)g.batch);
    WorkerPool::Get().Run((size_t)g.batch, [&](size_t batch, BlockRunner&) { PackRows(g, (int64_t)batch, packed[batch]); });
    const int64_t chunks = (g.n + kColumnsPerTask - 1) / kColumnsPerTask;
    WorkerPool::Get().Run((size_t)(g.batch * chunks), [&](size_t task, BlockRunner&) {
        const int64_t batch = (int64_t)task / chunks, chunk = (int64_t)task % chunks;
        const int64_t first = chunk * kColumnsPerTask;
        ComputeColumns(g, batch, first, std::min(g.n, first + kColumnsPerTask), packed[(size_t)batch]);
    });
    return {};
}

}  // namespace tome_emu
