// blas_common.h: what the emulated cuBLAS and cuBLASLt share: type codes
// (library_types.h), and queuing a matrix product on a stream.
#pragma once
#include <memory>

#include "driver.h"
#include "gemm.h"
#include "handles.h"
#include "stream.h"

namespace tome_emu {

// cudaDataType_t values.
enum DataType : int { kR32F = 0, kR64F = 1, kR16F = 2, kR8I = 3, kR32I = 10, kR16BF = 14 };

// cublasComputeType_t values.
enum ComputeType : int {
    kCompute16F = 64, kCompute16FPedantic = 65, kCompute32F = 68, kCompute32FPedantic = 69, kCompute64F = 70,
    kCompute32I = 72, kCompute32FFast16F = 74, kCompute32FFast16BF = 75, kCompute32FFastTf32 = 77,
};

// The element type of a cudaDataType the emulated GEMM handles.
bool ElementOf(int data_type, Element* element);

// How a compute type (and, for cuBLAS, the TF32 math mode) rounds fp32 inputs; false when not emulated.
bool RoundingOf(int compute_type, bool tf32_math, InputRounding* rounding);

// Queues `problem` on `stream_handle` (0: the legacy stream) after checking the context.
int QueueGemm(void* stream_handle, GemmProblem problem, bool lt);

}  // namespace tome_emu
