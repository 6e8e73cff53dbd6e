// status.cpp: error names and descriptions, and the per-thread sentence behind the last reported error.
#include "status.h"

#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <unordered_set>

#include "faults.h"

namespace tome_emu {

namespace {

struct Known {
    int code;
    const char* name;
    const char* description;
};

const Known kKnown[] = {
    {kSuccess, "CUDA_SUCCESS", "no error"},
    {kInvalidValue, "CUDA_ERROR_INVALID_VALUE", "invalid argument"},
    {kOutOfMemory, "CUDA_ERROR_OUT_OF_MEMORY", "out of memory"},
    {kNotInitialized, "CUDA_ERROR_NOT_INITIALIZED", "initialization error"},
    {kDeinitialized, "CUDA_ERROR_DEINITIALIZED", "driver shutting down"},
    {kNoDevice, "CUDA_ERROR_NO_DEVICE", "no CUDA-capable device is detected"},
    {kInvalidDevice, "CUDA_ERROR_INVALID_DEVICE", "invalid device ordinal"},
    {kInvalidImage, "CUDA_ERROR_INVALID_IMAGE", "device kernel image is invalid"},
    {kInvalidContext, "CUDA_ERROR_INVALID_CONTEXT", "invalid device context"},
    {kNoBinaryForGpu, "CUDA_ERROR_NO_BINARY_FOR_GPU", "no kernel image is available for execution on the device"},
    {kUnsupportedPtxVersion, "CUDA_ERROR_UNSUPPORTED_PTX_VERSION", "the provided PTX was compiled with an unsupported toolchain"},
    {kInvalidHandle, "CUDA_ERROR_INVALID_HANDLE", "invalid resource handle"},
    {kIllegalState, "CUDA_ERROR_ILLEGAL_STATE", "the operation cannot be performed in the present state"},
    {kNotFound, "CUDA_ERROR_NOT_FOUND", "named symbol not found"},
    {kNotReady, "CUDA_ERROR_NOT_READY", "device not ready"},
    {kIllegalAddress, "CUDA_ERROR_ILLEGAL_ADDRESS", "an illegal memory access was encountered"},
    {kLaunchOutOfResources, "CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES", "too many resources requested for launch"},
    {kAssert, "CUDA_ERROR_ASSERT", "device-side assert triggered"},
    {kMisalignedAddress, "CUDA_ERROR_MISALIGNED_ADDRESS", "misaligned address"},
    {kLaunchFailed, "CUDA_ERROR_LAUNCH_FAILED", "unspecified launch failure"},
    {kNotPermitted, "CUDA_ERROR_NOT_PERMITTED", "operation not permitted"},
    {kNotSupported, "CUDA_ERROR_NOT_SUPPORTED", "operation not supported"},
    {kStreamCaptureUnsupported, "CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED", "operation not permitted when stream is capturing"},
    {kStreamCaptureInvalidated, "CUDA_ERROR_STREAM_CAPTURE_INVALIDATED", "operation failed due to a previous error during capture"},
    {kStreamCaptureIsolation, "CUDA_ERROR_STREAM_CAPTURE_ISOLATION", "dependency created on uncaptured work in another stream"},
    {kStreamCaptureImplicit, "CUDA_ERROR_STREAM_CAPTURE_IMPLICIT", "operation would make the legacy stream depend on a capturing blocking stream"},
    {kCapturedEvent, "CUDA_ERROR_CAPTURED_EVENT", "operation not permitted on an event last recorded in a capturing stream"},
    {kStreamCaptureWrongThread, "CUDA_ERROR_STREAM_CAPTURE_WRONG_THREAD", "attempt to terminate a thread-local capture sequence from another thread"},
    {kUnknown, "CUDA_ERROR_UNKNOWN", "unknown error"},
};

const Known* Find(int code)
{
    for (const auto& known : kKnown)
        if (known.code == code)
            return &known;
    return nullptr;
}

thread_local int last_code = kSuccess;
thread_local std::string last_detail;
thread_local std::string last_blas_detail;

// Strings handed to callers of cuGetErrorString stay valid for the life of the process (as the real
// driver's static strings do); each distinct sentence is kept once.
const char* Intern(const std::string& text)
{
    static std::mutex gate;
    static std::unordered_set<std::string>* strings = new std::unordered_set<std::string>();
    std::lock_guard<std::mutex> lock(gate);
    if (strings->size() > 100000)
        return "emulated CUDA device: too many distinct error messages to keep";
    return strings->insert(text).first->c_str();
}

bool Verbose()
{
    static const bool verbose = [] {
        const char* v = std::getenv("TOME_EMU_VERBOSE");
        return v != nullptr && v[0] == '1';
    }();
    return verbose;
}

}  // namespace

int Report(const Status& status)
{
    if (!status.ok()) {
        last_code = status.code;
        last_detail = status.detail;
        NoteReportedError(status);
        if (Verbose())
            std::fprintf(stderr, "[tome cuda emulator] %s: %s\n", ErrorName(status.code) ? ErrorName(status.code) : "?",
                         status.detail.c_str());
    }
    return status.code;
}

int BlasReport(int status, const std::string& detail)
{
    if (status != kBlasSuccess) {
        last_blas_detail = detail;
        if (Verbose())
            std::fprintf(stderr, "[tome cuda emulator] cublasStatus_t %d: %s\n", status, detail.c_str());
    }
    return status;
}

const char* LastBlasError() { return last_blas_detail.c_str(); }

const char* ErrorName(int code)
{
    const Known* known = Find(code);
    return known == nullptr ? nullptr : known->name;
}

const char* ErrorDescription(int code)
{
    const Known* known = Find(code);
    return known == nullptr ? nullptr : known->description;
}

const char* DescribeWithDetail(int code)
{
    const char* description = ErrorDescription(code);
    if (description == nullptr)
        return nullptr;
    if (code != last_code || last_detail.empty())
        return description;
    return Intern(std::string(description) + " [emulated CUDA device: " + last_detail + "]");
}

std::string Format(const char* format, ...)
{
    va_list args, again;
    va_start(args, format);
    va_copy(again, args);
    const int length = std::vsnprintf(nullptr, 0, format, args);
    va_end(args);
    std::string text(length > 0 ? (size_t)length : 0, '\0');
    std::vsnprintf(text.data(), text.size() + 1, format, again);
    va_end(again);
    return text;
}

}  // namespace tome_emu
