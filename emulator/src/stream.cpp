// stream.cpp: lazily executed streams (see stream.h).
#include "stream.h"

#include <algorithm>
#include <chrono>

namespace tome_emu {

namespace {

std::mutex capture_gate;   // guards every Stream::capture

}  // namespace

double NowMilliseconds()
{
    using namespace std::chrono;
    return duration<double, std::milli>(steady_clock::now().time_since_epoch()).count();
}

Stream::Stream(unsigned int flags, bool legacy)
    : flags_(flags), legacy_(legacy),
      id_(Ordering::Get().NewStream(legacy ? "the legacy default stream" : Format("stream %p", (void*)this)))
{
}

uint64_t Stream::Push(Op op)
{
    std::lock_guard<std::mutex> lock(gate_);
    pending_.push_back(std::move(op));
    return ++enqueued_;
}

uint64_t Stream::Enqueued()
{
    std::lock_guard<std::mutex> lock(gate_);
    return enqueued_;
}

bool Stream::Done(uint64_t sequence)
{
    std::lock_guard<std::mutex> lock(gate_);
    return completed_ >= sequence;
}

bool Stream::Idle()
{
    std::lock_guard<std::mutex> lock(gate_);
    return completed_ == enqueued_;
}

// Ops run in order, one at a time per stream, on whichever host thread needs them; a thread that finds
// the stream busy waits for the op in flight. The dependencies of an op are drained without holding the
// stream, and always refer to earlier work, so two streams draining each other cannot deadlock.
void Stream::Drain(uint64_t target)
{
    std::unique_lock<std::mutex> lock(gate_);
    while (completed_ < target) {
        if (busy_) {
            changed_.wait(lock);
            continue;
        }
        Op op = std::move(pending_.front());
        pending_.pop_front();
        busy_ = true;
        const bool skip = !error_.ok();
        lock.unlock();
        Status status;
        if (!skip) {
            for (auto& [other, sequence] : op.waits)
                other->Drain(sequence);
            status = op.run();
        }
        lock.lock();
        if (!status.ok() && error_.ok())
            error_ = status;
        ++completed_;
        busy_ = false;
        changed_.notify_all();
    }
}

Status Stream::TakeError()
{
    std::lock_guard<std::mutex> lock(gate_);
    Status error = error_;
    error_ = Status{};
    return error;
}

StreamSet& StreamSet::Get()
{
    static StreamSet* set = new StreamSet();
    return *set;
}

StreamSet::StreamSet() : legacy_(std::make_shared<Stream>(0u, true)) {}

std::shared_ptr<Stream> StreamSet::Resolve(void* handle, Status* status)
{
    const auto value = (uintptr_t)handle;
    if (value <= 2)
        return legacy_;
    std::lock_guard<std::mutex> lock(gate_);
    for (const auto& stream : streams_)
        if ((void*)stream.get() == handle)
            return stream;
    *status = Fail(kInvalidHandle, Format("stream %p does not exist (destroyed, or never created)", handle));
    return nullptr;
}

void* StreamSet::Create(unsigned int flags)
{
    auto stream = std::make_shared<Stream>(flags, false);
    std::lock_guard<std::mutex> lock(gate_);
    streams_.push_back(stream);
    return stream.get();
}

Status StreamSet::Destroy(void* handle)
{
    Status status;
    std::shared_ptr<Stream> stream = Resolve(handle, &status);
    if (stream == nullptr || stream->legacy())
        return stream == nullptr ? status : Fail(kInvalidHandle, "the default stream cannot be destroyed");
    stream->DrainAll();   // the real driver finishes queued work before releasing the stream
    std::lock_guard<std::mutex> lock(gate_);
    streams_.erase(std::remove(streams_.begin(), streams_.end(), stream), streams_.end());
    return {};
}

Status StreamSet::Enqueue(const std::shared_ptr<Stream>& stream, Op op, uint64_t* sequence)
{
    {
        std::lock_guard<std::mutex> lock(capture_gate);
        if (stream->capture != nullptr) {
            if (stream->capture->invalidated.ok())
                stream->capture->ops.push_back(std::move(op));
            return stream->capture->invalidated.ok() ? Status{} : Fail(kStreamCaptureInvalidated, stream->capture->invalidated.detail);
        }
    }
    // The legacy stream waits for every blocking stream's earlier work, and a blocking stream for the legacy
    // stream's; non-blocking streams wait for nothing they were not told to.
    if (stream->legacy()) {
        std::lock_guard<std::mutex> lock(gate_);
        for (const auto& other : streams_) {
            if (!other->blocking())
                continue;
            std::lock_guard<std::mutex> capture_lock(capture_gate);
            if (other->capture != nullptr) {
                Status why = Fail(kStreamCaptureImplicit, op.what + " on the legacy stream would wait for a blocking stream that is being captured");
                other->capture->invalidated = why;
                return why;
            }
            op.waits.emplace_back(other, other->Enqueued());
        }
    } else if (stream->blocking()) {
        op.waits.emplace_back(legacy_, legacy_->Enqueued());
    }
    std::vector<Clock> clocks = op.wait_clocks;
    for (const auto& [other, sequence] : op.waits)
        clocks.push_back(Ordering::Get().StreamClock(other->id()));
    Clock clock;
    Status race = Ordering::Get().Order(stream->id(), clocks, op.accesses, op.what, &clock);
    if (!race.ok())
        op.run = [race] { return race; };   // reported by whoever waits for this work
    const uint64_t number = stream->Push(std::move(op));
    if (sequence != nullptr)
        *sequence = number;
    return {};
}

Status StreamSet::Synchronize(const std::shared_ptr<Stream>& stream)
{
    {
        std::lock_guard<std::mutex> lock(capture_gate);
        if (stream->capture != nullptr) {
            Status why = Fail(kStreamCaptureUnsupported, "synchronizing a stream that is being captured");
            if (stream->capture->invalidated.ok())
                stream->capture->invalidated = why;
            return why;
        }
    }
    const uint64_t target = stream->Enqueued();
    const Clock clock = Ordering::Get().StreamClock(stream->id());
    stream->Drain(target);
    Ordering::Get().HostJoins(clock);
    Status error = stream->TakeError();
    // The legacy stream's work waited on blocking streams; their errors surface here too.
    if (error.ok() && stream->legacy()) {
        std::lock_guard<std::mutex> lock(gate_);
        for (const auto& other : streams_)
            if (other->blocking() && error.ok())
                error = other->TakeError();
    }
    return error;
}

Status StreamSet::SynchronizeAll(bool take_errors)
{
    std::vector<std::shared_ptr<Stream>> all;
    {
        std::lock_guard<std::mutex> lock(gate_);
        all = streams_;
    }
    all.push_back(legacy_);
    Status first;
    for (const auto& stream : all) {
        const Clock clock = Ordering::Get().StreamClock(stream->id());
        stream->DrainAll();
        Ordering::Get().HostJoins(clock);
        if (!take_errors)
            continue;
        Status error = stream->TakeError();
        if (first.ok())
            first = error;
    }
    return first;
}

Status StreamSet::CheckNotCapturing(const char* api)
{
    std::lock_guard<std::mutex> lock(gate_);
    std::lock_guard<std::mutex> capture_lock(capture_gate);
    for (const auto& stream : streams_) {
        auto& capture = stream->capture;
        if (capture == nullptr || capture->mode == 2)
            continue;
        if (capture->mode == 0 || capture->thread == std::this_thread::get_id()) {
            Status why = Fail(kStreamCaptureUnsupported,
                              Format("%s is not permitted while a stream is being captured (%s mode)", api, capture->mode == 0 ? "global" : "thread-local"));
            if (capture->invalidated.ok())
                capture->invalidated = why;
            return why;
        }
    }
    return {};
}

Status StreamSet::BeginCapture(const std::shared_ptr<Stream>& stream, int mode)
{
    if (stream->legacy())
        return Fail(kStreamCaptureUnsupported, "the legacy default stream cannot be captured");
    if (mode < 0 || mode > 2)
        return Fail(kInvalidValue, Format("capture mode %d is not a CUstreamCaptureMode", mode));
    std::lock_guard<std::mutex> lock(capture_gate);
    if (stream->capture != nullptr)
        return Fail(kIllegalState, "the stream is already being captured");
    stream->capture = std::make_shared<Capture>();
    stream->capture->mode = mode;
    stream->capture->thread = std::this_thread::get_id();
    return {};
}

Status StreamSet::EndCapture(const std::shared_ptr<Stream>& stream, std::vector<Op>* ops)
{
    std::lock_guard<std::mutex> lock(capture_gate);
    if (stream->capture == nullptr)
        return Fail(kIllegalState, "the stream is not being captured");
    std::shared_ptr<Capture> capture = stream->capture;
    if (capture->mode == 1 && capture->thread != std::this_thread::get_id())
        return Fail(kStreamCaptureWrongThread, "a thread-local capture must be ended by the thread that began it");
    stream->capture = nullptr;
    if (!capture->invalidated.ok())
        return Fail(kStreamCaptureInvalidated, capture->invalidated.detail);
    *ops = std::move(capture->ops);
    return {};
}

int StreamSet::CaptureStatus(const std::shared_ptr<Stream>& stream)
{
    std::lock_guard<std::mutex> lock(capture_gate);
    if (stream->capture == nullptr)
        return 0;
    return stream->capture->invalidated.ok() ? 1 : 2;
}

Status StreamSet::Invalidate(const std::shared_ptr<Stream>& stream, Status why)
{
    std::lock_guard<std::mutex> lock(capture_gate);
    if (stream->capture != nullptr && stream->capture->invalidated.ok())
        stream->capture->invalidated = why;
    return why;
}

void StreamSet::Reset()
{
    SynchronizeAll(false);
    std::lock_guard<std::mutex> lock(gate_);
    streams_.clear();
}

}  // namespace tome_emu
