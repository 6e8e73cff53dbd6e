// gemm.h: the matrix product behind the emulated cuBLAS and cuBLASLt, in BLAS's column-major terms.
//
//   D[b] = epilogue(alpha · op(A[b]) · op(B[b]) + beta · C[b] (+ bias)),  b < batch
// op(A) is m×k, op(B) k×n, C and D m×n; element (i, j) of a column-major matrix X with leading dimension
// ld is X[i + j·ld], and op = T reads it transposed. Inputs are widened to fp32 (after the rounding the
// compute type asks for: TF32, fp16, bf16), products accumulate in fp32, and beta = 0 never reads C.
#pragma once
#include <cstdint>
#include <string>

#include "ordering.h"
#include "status.h"

namespace tome_emu {

enum class Element { F32, F16, BF16 };
enum class InputRounding { None, Tf32, F16, Bf16 };
enum class Activation { None, Relu, GeluTanh };

struct MatrixArg {
    const void* data = nullptr;
    Element type = Element::F32;
    bool transposed = false;
    int64_t ld = 0;
    int64_t batch_stride = 0;
    bool row_major = false;   // cuBLASLt's CUBLASLT_ORDER_ROW: element (i, j) at i·ld + j
};

struct GemmProblem {
    std::string api;   // for messages
    int64_t m = 0, n = 0, k = 0, batch = 1;
    MatrixArg a, b, c, d;   // a and b may be transposed; c and d are not
    float alpha = 1, beta = 0;
    InputRounding rounding = InputRounding::None;
    const void* bias = nullptr;   // m values, added to every column
    Element bias_type = Element::F32;
    int64_t bias_batch_stride = 0;
    Activation activation = Activation::None;
    const void* workspace = nullptr;   // cuBLAS may scribble on it: an access like a write
};

// Every element the problem touches lies in device memory; else why not.
Status CheckGemmMemory(const GemmProblem& problem);
// The device memory the problem reads and writes, for the ordering checks.
std::vector<Access> GemmAccesses(const GemmProblem& problem);
// Runs the problem on the worker threads.
Status RunGemm(const GemmProblem& problem);

size_t ElementBytes(Element type);

}  // namespace tome_emu
