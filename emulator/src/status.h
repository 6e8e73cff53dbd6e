// status.h: the error codes the emulated libraries return, CUresult (cuda.h) and cublasStatus_t (cublas_api.h), with
// their published values, and how an emulator error carries its sentence.
#pragma once
#include <string>

namespace tome_emu {

enum Result : int {
    kSuccess = 0,
    kInvalidValue = 1,
    kOutOfMemory = 2,
    kNotInitialized = 3,
    kDeinitialized = 4,
    kNoDevice = 100,
    kInvalidDevice = 101,
    kInvalidImage = 200,
    kInvalidContext = 201,
    kNoBinaryForGpu = 209,
    kUnsupportedPtxVersion = 222,
    kInvalidHandle = 400,
    kIllegalState = 401,
    kNotFound = 500,
    kNotReady = 600,
    kIllegalAddress = 700,
    kLaunchOutOfResources = 701,
    kAssert = 710,
    kMisalignedAddress = 716,
    kLaunchFailed = 719,
    kNotPermitted = 800,
    kNotSupported = 801,
    kStreamCaptureUnsupported = 900,
    kStreamCaptureInvalidated = 901,
    kStreamCaptureIsolation = 905,
    kStreamCaptureImplicit = 906,
    kCapturedEvent = 907,
    kStreamCaptureWrongThread = 908,
    kUnknown = 999,
};

// cublasStatus_t, returned by the emulated cuBLAS and cuBLASLt.
enum BlasStatus : int {
    kBlasSuccess = 0,
    kBlasNotInitialized = 1,
    kBlasAllocFailed = 3,
    kBlasInvalidValue = 7,
    kBlasArchMismatch = 8,
    kBlasExecutionFailed = 13,
    kBlasInternalError = 14,
    kBlasNotSupported = 15,
};

// A result and, when it is an error, the sentence that says what went wrong and where.
struct Status {
    int code = kSuccess;
    std::string detail;
    bool ok() const { return code == kSuccess; }
};

inline Status Fail(int code, std::string detail) { return Status{code, std::move(detail)}; }

// Returns `status.code` to the API caller, first remembering its sentence on this thread so that
// cuGetErrorString names it (and printing it when TOME_EMU_VERBOSE=1).
int Report(const Status& status);

// Returns a cuBLAS(Lt) `status` to the API caller, first remembering `detail` on this thread (LastBlasError) when it is
// a failure (and printing it when TOME_EMU_VERBOSE=1). The driver's last error is left alone.
int BlasReport(int status, const std::string& detail);

// The sentence behind the last cuBLAS(Lt) failure on this thread.
const char* LastBlasError();

// cuda.h's name and description of a code, or null for a code the driver does not define.
const char* ErrorName(int code);
const char* ErrorDescription(int code);

// The description of `code` followed by the last sentence reported for it on this thread, if any.
const char* DescribeWithDetail(int code);

std::string Format(const char* format, ...) __attribute__((format(printf, 1, 2)));

}  // namespace tome_emu
