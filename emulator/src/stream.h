// stream.h: streams, events and graphs of the emulated device, with CUDA's ordering rules and no more.
//
// Work is queued per stream and runs lazily: only when the host waits for it (a stream, event or context
// synchronization, a copy to the host) or another stream waits on it (an event wait; the legacy default
// stream and blocking streams waiting on each other). So work on a non-blocking stream never waits for
// the legacy stream by accident: a kernel that reads memory filled by a synchronous cuMemsetD32 or
// uploaded by cuMemcpyHtoD from pageable memory, without an event or synchronization in between, runs
// before that fill or upload lands and sees stale data, every time.
//
// An error in queued work is kept by its stream and returned by the next call that waits for that work
// (then cleared: unlike a real device, the context stays usable). Later work on the stream is skipped
// until the error has been reported.
#pragma once
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>
#include <deque>

#include "ordering.h"
#include "status.h"

namespace tome_emu {

class Stream;

struct Op {
    std::string what;
    std::function<Status()> run;
    std::vector<std::pair<std::shared_ptr<Stream>, uint64_t>> waits;   // complete these first
    std::vector<Clock> wait_clocks;                                      // and everything these cover (events)
    std::vector<Access> accesses;                                        // device memory it reads and writes
};

struct Capture {
    int mode = 0;   // CUstreamCaptureMode: 0 global, 1 thread-local, 2 relaxed
    std::thread::id thread;
    std::vector<Op> ops;
    Status invalidated;   // why the capture was invalidated, if it was
};

class Stream {
public:
    Stream(unsigned int flags, bool legacy);
    uint32_t id() const { return id_; }
    bool legacy() const { return legacy_; }
    bool blocking() const { return !legacy_ && (flags_ & 1u) == 0; }
    unsigned int flags() const { return flags_; }

    // Runs this stream's work up to and including sequence number `target` (0: nothing).
    void Drain(uint64_t target);
    // Runs everything queued so far.
    void DrainAll() { Drain(Enqueued()); }
    // The error of work already run, cleared by taking it.
    Status TakeError();
    uint64_t Enqueued();
    bool Idle();
    bool Done(uint64_t sequence);

    std::shared_ptr<Capture> capture;   // guarded by the context's capture mutex

private:
    friend class StreamSet;
    uint64_t Push(Op op);

    const unsigned int flags_;
    const bool legacy_;
    const uint32_t id_;
    std::mutex gate_;
    std::condition_variable changed_;
    std::deque<Op> pending_;
    uint64_t enqueued_ = 0, completed_ = 0;
    bool busy_ = false;
    Status error_;
};

// When an event's recorded point was reached; shared with the queued op that stamps it, which may outlive the event.
struct EventTime {
    std::mutex gate;
    uint64_t generation = 0;   // a newer record makes an older, still queued stamp moot
    double ms = 0;
};

struct Event {
    unsigned int flags = 0;
    std::shared_ptr<Stream> stream;   // where it was last recorded
    uint64_t sequence = 0;
    Clock clock;                      // what the recorded point covers
    bool captured = false;
    std::shared_ptr<EventTime> time = std::make_shared<EventTime>();
};

// The context's streams: the legacy default stream, created streams, capture and the implicit
// synchronization between the legacy stream and blocking streams.
class StreamSet {
public:
    static StreamSet& Get();

    // The stream a CUstream names: 0 and CU_STREAM_LEGACY (1) and CU_STREAM_PER_THREAD (2) are the legacy stream.
    std::shared_ptr<Stream> Resolve(void* handle, Status* status);
    Status Find(void* handle, std::shared_ptr<Stream>* stream)
    {
        Status status;
        *stream = Resolve(handle, &status);
        return status;
    }
    void* Create(unsigned int flags);
    Status Destroy(void* handle);

    // Queues `op` on `stream` (or records it into the stream's capture); returns its sequence number.
    Status Enqueue(const std::shared_ptr<Stream>& stream, Op op, uint64_t* sequence = nullptr);
    // Waits for the stream's work queued so far and returns its error, if any.
    Status Synchronize(const std::shared_ptr<Stream>& stream);
    // Waits for every stream's queued work; with `take_errors`, returns (and clears) the first error.
    Status SynchronizeAll(bool take_errors = true);

    // A "potentially unsafe" call (synchronous memory call, allocation) while a capture forbids it on this
    // thread invalidates that capture and fails with CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED.
    Status CheckNotCapturing(const char* api);
    Status BeginCapture(const std::shared_ptr<Stream>& stream, int mode);
    Status EndCapture(const std::shared_ptr<Stream>& stream, std::vector<Op>* ops);
    int CaptureStatus(const std::shared_ptr<Stream>& stream);
    // Invalidates the capture of `stream` (if any) with `why`; returns `why`.
    Status Invalidate(const std::shared_ptr<Stream>& stream, Status why);

    void Reset();   // the primary context was reset

private:
    StreamSet();
    std::mutex gate_;
    std::shared_ptr<Stream> legacy_;
    std::vector<std::shared_ptr<Stream>> streams_;
};

double NowMilliseconds();

}  // namespace tome_emu
