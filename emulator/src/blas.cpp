// blas.cpp: the emulated cuBLAS (libcublas.so.12): handles and cublasGemmStridedBatchedEx, column-major,
// with transposes, leading dimensions, batch strides, compute types and the math mode honoured.
#include <algorithm>
#include <cstdio>
#include <cstdlib>

#include "blas_common.h"
#include "memory.h"

namespace tome_emu {

namespace {

struct BlasHandle {
    void* stream = nullptr;
    int math_mode = 0;   // cublasMath_t; 3 (CUBLAS_TF32_TENSOR_OP_MATH) lets fp32 GEMMs round inputs to TF32
    unsigned long long workspace = 0;
    size_t workspace_bytes = 0;
    unsigned long long own_workspace = 0;   // allocated at the first GEMM without a user workspace, as cuBLAS does
};

// cuBLAS's default workspace on sm_90 is 32 MiB; the emulator needs none, so it takes less host memory but is still a
// device allocation that can fail (CUBLAS_STATUS_ALLOC_FAILED), in the first GEMM, as with the real library.
constexpr size_t kDefaultWorkspaceBytes = (size_t)1 << 20;

HandleSet<BlasHandle> handles;
const char* OperationName(int op) { return op == 0 ? "N" : op == 1 ? "T" : "C"; }

}  // namespace

bool ElementOf(int data_type, Element* element)
{
    switch (data_type) {
    case kR32F: *element = Element::F32; return true;
    case kR16F: *element = Element::F16; return true;
    case kR16BF: *element = Element::BF16; return true;
    default: return false;
    }
}

bool RoundingOf(int compute_type, bool tf32_math, InputRounding* rounding)
{
    switch (compute_type) {
    case kCompute32F: *rounding = tf32_math ? InputRounding::Tf32 : InputRounding::None; return true;
    case kCompute32FPedantic: *rounding = InputRounding::None; return true;
    case kCompute32FFastTf32: *rounding = InputRounding::Tf32; return true;
    case kCompute32FFast16F: *rounding = InputRounding::F16; return true;
    case kCompute32FFast16BF: *rounding = InputRounding::Bf16; return true;
    default: return false;
    }
}

int QueueGemm(void* stream_handle, GemmProblem problem, bool lt)
{
    Status status = Ready(true, problem.api.c_str());
    std::shared_ptr<Stream> stream;
    if (status.ok())
        stream = StreamSet::Get().Resolve(stream_handle, &status);
    if (!status.ok())
        return BlasReport(lt ? kBlasInvalidValue : kBlasNotInitialized, status.detail);
    Op op;
    op.what = problem.api;
    op.accesses = GemmAccesses(problem);
    op.run = [problem] { return RunGemm(problem); };
    status = StreamSet::Get().Enqueue(stream, std::move(op));
    return status.ok() ? kBlasSuccess : BlasReport(kBlasExecutionFailed, status.detail);
}

}  // namespace tome_emu

using namespace tome_emu;

TOME_EMU_EXPORT int cublasGetProperty(int type, int* value)
{
    if (value == nullptr || type < 0 || type > 2)
        return BlasReport(kBlasInvalidValue, "cublasGetProperty: unknown libraryPropertyType");
    *value = type == 0 ? 12 : 0;   // reports itself as cuBLAS 12.0.0
    return kBlasSuccess;
}

TOME_EMU_EXPORT int cublasCreate_v2(void** handle)
{
    if (Status status = Ready(true, "cublasCreate"); !status.ok())
        return BlasReport(kBlasNotInitialized, status.detail);
    *handle = handles.Add(new BlasHandle());
    return kBlasSuccess;
}

TOME_EMU_EXPORT int cublasDestroy_v2(void* handle)
{
    if (!handles.Has(handle))
        return BlasReport(kBlasNotInitialized, "cublasDestroy: not a live cuBLAS handle");
    if (unsigned long long own = static_cast<BlasHandle*>(handle)->own_workspace; own != 0)
        Memory::Get().Free(own);   // fails only when a context reset already freed it
    handles.Remove(handle);
    return kBlasSuccess;
}

TOME_EMU_EXPORT int cublasSetStream_v2(void* handle, void* stream)
{
    if (!handles.Has(handle))
        return BlasReport(kBlasNotInitialized, "cublasSetStream: not a live cuBLAS handle");
    static_cast<BlasHandle*>(handle)->stream = stream;
    return kBlasSuccess;
}

TOME_EMU_EXPORT int cublasSetWorkspace_v2(void* handle, unsigned long long workspace, size_t bytes)
{
    if (!handles.Has(handle))
        return BlasReport(kBlasNotInitialized, "cublasSetWorkspace: not a live cuBLAS handle");
    auto* h = static_cast<BlasHandle*>(handle);
    h->workspace = workspace;
    h->workspace_bytes = bytes;
    return kBlasSuccess;
}

TOME_EMU_EXPORT int cublasSetMathMode(void* handle, int mode)
{
    if (!handles.Has(handle))
        return BlasReport(kBlasNotInitialized, "cublasSetMathMode: not a live cuBLAS handle");
    const int base = mode & 0xf;
    if ((mode & ~0x1f) != 0 || (base != 0 && base != 1 && base != 2 && base != 3))
        return BlasReport(kBlasInvalidValue, Format("cublasSetMathMode: %d is not a cublasMath_t", mode));
    static_cast<BlasHandle*>(handle)->math_mode = mode;
    return kBlasSuccess;
}

TOME_EMU_EXPORT int cublasGemmStridedBatchedEx(void* handle, int transa, int transb, int m, int n, int k, const void* alpha,
                                               const void* a, int a_type, int lda, long long stride_a, const void* b, int b_type, int ldb,
                                               long long stride_b, const void* beta, void* c, int c_type, int ldc, long long stride_c,
                                               int batch_count, int compute_type, int algo)
{
    if (!handles.Has(handle))
        return BlasReport(kBlasNotInitialized, "cublasGemmStridedBatchedEx: not a live cuBLAS handle");
    auto* h = static_cast<BlasHandle*>(handle);
    if (h->workspace == 0 && h->own_workspace == 0) {
        if (Status status = Ready(true, "cublasGemmStridedBatchedEx"); !status.ok())
            return BlasReport(kBlasNotInitialized, status.detail);
        uintptr_t address = 0;
        if (Status status = Memory::Get().Allocate(kDefaultWorkspaceBytes, &address); !status.ok())
            return BlasReport(kBlasAllocFailed, Format("cublasGemmStridedBatchedEx: cuBLAS could not allocate its %zu-byte workspace: %s",
                                                       kDefaultWorkspaceBytes, status.detail.c_str()));
        h->own_workspace = address;
    }
    GemmProblem g;
    g.api = Format("cublasGemmStridedBatchedEx(%s, %s, m %d, n %d, k %d, lda %d, ldb %d, ldc %d, batch %d)", OperationName(transa),
                   OperationName(transb), m, n, k, lda, ldb, ldc, batch_count);
    const bool ops_ok = transa >= 0 && transa <= 2 && transb >= 0 && transb <= 2;
    const int rows_a = transa == 0 ? m : k, rows_b = transb == 0 ? k : n;
    if (!ops_ok || m < 0 || n < 0 || k < 0 || batch_count < 0 || lda < std::max(1, rows_a) || ldb < std::max(1, rows_b) ||
        ldc < std::max(1, m) || stride_a < 0 || stride_b < 0 || stride_c < 0 || alpha == nullptr || beta == nullptr)
        return BlasReport(kBlasInvalidValue, g.api + ": an operation, dimension, leading dimension (lda ≥ rows of op's stored A, "
                                                     "ldb ≥ rows of stored B, ldc ≥ m) or stride is invalid");
    if (!(algo == -1 || (algo >= 0 && algo <= 23) || (algo >= 99 && algo <= 115)))
        return BlasReport(kBlasInvalidValue, Format("%s: %d is not a cublasGemmAlgo_t", g.api.c_str(), algo));
    Element ta, tb, tc;
    InputRounding rounding;
    const bool tf32_math = (h->math_mode & 0xf) == 3;
    if (!ElementOf(a_type, &ta) || !ElementOf(b_type, &tb) || !ElementOf(c_type, &tc) || ta != tb ||
        (ta == Element::F32 && tc != Element::F32) || (ta != Element::F32 && tc != ta && tc != Element::F32) ||
        !RoundingOf(compute_type, tf32_math, &rounding))
        return BlasReport(kBlasNotSupported, Format("%s: types A %d, B %d, C %d with compute type %d are not emulated (32F compute "
                                                    "types over fp32, fp16 or bf16 inputs are)", g.api.c_str(), a_type, b_type, c_type, compute_type));
    if (m == 0 || n == 0 || batch_count == 0)
        return kBlasSuccess;
    g.m = m;
    g.n = n;
    g.k = k;
    g.batch = batch_count;
    g.a = MatrixArg{a, ta, transa != 0, lda, stride_a};
    g.b = MatrixArg{b, tb, transb != 0, ldb, stride_b};
    g.c = MatrixArg{c, tc, false, ldc, stride_c};
    g.d = g.c;
    g.alpha = *static_cast<const float*>(alpha);   // CUBLAS_POINTER_MODE_HOST
    g.beta = *static_cast<const float*>(beta);
    g.rounding = rounding;
    g.workspace = (const void*)h->workspace;
    return QueueGemm(h->stream, g, false);
}

// The sentence behind the last cuBLAS(Lt) failure on this thread (emulator only).
TOME_EMU_EXPORT const char* tomeEmuLastBlasError() { return LastBlasError(); }
