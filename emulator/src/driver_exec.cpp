// driver_exec.cpp: streams, events, modules, launches and graphs (libcuda.so.1 entry points).
#include <cstring>
#include <memory>
#include <mutex>
#include <set>

#include "driver.h"
#include "module.h"
#include "stream.h"

using namespace tome_emu;

namespace {

std::mutex handles_gate;
std::set<Event*>* events = new std::set<Event*>();

struct Graph {
    std::vector<Op> ops;
};
struct GraphExec {
    std::shared_ptr<const std::vector<Op>> ops;
};
std::set<Graph*>* graphs = new std::set<Graph*>();
std::set<GraphExec*>* graph_execs = new std::set<GraphExec*>();

template <typename T>
bool Live(std::set<T*>* set, void* handle)
{
    std::lock_guard<std::mutex> lock(handles_gate);
    return set->count(static_cast<T*>(handle)) != 0;
}

Event* EventOf(void* handle, Status* status)
{
    if (!Live(events, handle)) {
        *status = Fail(kInvalidHandle, Format("event %p does not exist", handle));
        return nullptr;
    }
    return static_cast<Event*>(handle);
}

std::shared_ptr<Stream> StreamOf(void* handle, Status* status) { return StreamSet::Get().Resolve(handle, status); }

}  // namespace

TOME_EMU_EXPORT int cuStreamCreate(void** stream, unsigned int flags)
{
    TOME_EMU_CHECK(Ready(true, "cuStreamCreate"));
    if (flags > 1)
        return Report(Fail(kInvalidValue, Format("stream flags 0x%x (CU_STREAM_DEFAULT 0 or CU_STREAM_NON_BLOCKING 1)", flags)));
    *stream = StreamSet::Get().Create(flags);
    return kSuccess;
}

TOME_EMU_EXPORT int cuStreamDestroy_v2(void* stream)
{
    TOME_EMU_CHECK(Ready(true, "cuStreamDestroy"));
    return Report(StreamSet::Get().Destroy(stream));
}

TOME_EMU_EXPORT int cuStreamSynchronize(void* handle)
{
    TOME_EMU_CHECK(Ready(true, "cuStreamSynchronize"));
    Status status;
    auto stream = StreamOf(handle, &status);
    TOME_EMU_CHECK(status);
    if (stream->legacy())
        TOME_EMU_CHECK(StreamSet::Get().CheckNotCapturing("cuStreamSynchronize(legacy stream)"));
    return Report(StreamSet::Get().Synchronize(stream));
}

TOME_EMU_EXPORT int cuStreamWaitEvent(void* handle, void* event_handle, unsigned int flags)
{
    TOME_EMU_CHECK(Ready(true, "cuStreamWaitEvent"));
    Status status;
    auto stream = StreamOf(handle, &status);
    TOME_EMU_CHECK(status);
    Event* event = EventOf(event_handle, &status);
    TOME_EMU_CHECK(status);
    if (flags != 0)
        return Report(Fail(kInvalidValue, "cuStreamWaitEvent flags must be 0"));
    if (event->stream == nullptr)
        return kSuccess;   // never recorded: nothing to wait for
    if (StreamSet::Get().CaptureStatus(stream) != 0) {
        if (event->captured)
            return kSuccess;   // recorded earlier in this capture: already ordered
        return Report(StreamSet::Get().Invalidate(
            stream, Fail(kStreamCaptureIsolation, "a captured stream waits for an event recorded outside the capture")));
    }
    Op op;
    op.what = "cuStreamWaitEvent";
    op.run = [] { return Status{}; };
    op.waits.emplace_back(event->stream, event->sequence);
    op.wait_clocks.push_back(event->clock);
    return Report(StreamSet::Get().Enqueue(stream, std::move(op)));
}

TOME_EMU_EXPORT int cuStreamIsCapturing(void* handle, int* capture_status)
{
    TOME_EMU_CHECK(Ready(true, "cuStreamIsCapturing"));
    Status status;
    auto stream = StreamOf(handle, &status);
    TOME_EMU_CHECK(status);
    *capture_status = StreamSet::Get().CaptureStatus(stream);
    return kSuccess;
}

TOME_EMU_EXPORT int cuEventCreate(void** event, unsigned int flags)
{
    TOME_EMU_CHECK(Ready(true, "cuEventCreate"));
    if ((flags & ~7u) != 0)
        return Report(Fail(kInvalidValue, Format("event flags 0x%x", flags)));
    auto* created = new Event();
    created->flags = flags;
    std::lock_guard<std::mutex> lock(handles_gate);
    events->insert(created);
    *event = created;
    return kSuccess;
}

TOME_EMU_EXPORT int cuEventDestroy_v2(void* handle)
{
    TOME_EMU_CHECK(Ready(true, "cuEventDestroy"));
    std::lock_guard<std::mutex> lock(handles_gate);
    if (events->erase(static_cast<Event*>(handle)) == 0)
        return Report(Fail(kInvalidHandle, Format("event %p does not exist", handle)));
    // Queued timestamp ops may still refer to the event; they hold it through shared state, see cuEventRecord.
    return kSuccess;
}

TOME_EMU_EXPORT int cuEventRecord(void* event_handle, void* stream_handle)
{
    TOME_EMU_CHECK(Ready(true, "cuEventRecord"));
    Status status;
    Event* event = EventOf(event_handle, &status);
    TOME_EMU_CHECK(status);
    auto stream = StreamOf(stream_handle, &status);
    TOME_EMU_CHECK(status);
    const uint64_t generation = ++event->generation;
    Op op;
    op.what = "cuEventRecord";
    op.run = [event, generation] {
        std::lock_guard<std::mutex> lock(handles_gate);
        if (events->count(event) != 0 && event->generation == generation)
            event->time_ms = NowMilliseconds();
        return Status{};
    };
    const bool capturing = StreamSet::Get().CaptureStatus(stream) != 0;
    uint64_t sequence = 0;
    TOME_EMU_CHECK(StreamSet::Get().Enqueue(stream, std::move(op), &sequence));
    event->stream = stream;
    event->sequence = sequence;
    event->captured = capturing;
    event->clock = capturing ? Clock{} : Ordering::Get().StreamClock(stream->id());
    return kSuccess;
}

TOME_EMU_EXPORT int cuEventSynchronize(void* handle)
{
    TOME_EMU_CHECK(Ready(true, "cuEventSynchronize"));
    Status status;
    Event* event = EventOf(handle, &status);
    TOME_EMU_CHECK(status);
    if (event->captured)
        return Report(Fail(kCapturedEvent, "the event was last recorded in a stream capture"));
    if (event->stream == nullptr)
        return kSuccess;
    event->stream->Drain(event->sequence);
    Ordering::Get().HostJoins(event->clock);
    return Report(event->stream->TakeError());
}

// The emulated device finishes work only when someone waits for it, so a query finishes it.
TOME_EMU_EXPORT int cuEventQuery(void* handle) { return cuEventSynchronize(handle); }

TOME_EMU_EXPORT int cuEventElapsedTime(float* milliseconds, void* start_handle, void* end_handle)
{
    TOME_EMU_CHECK(Ready(true, "cuEventElapsedTime"));
    Status status;
    Event* start = EventOf(start_handle, &status);
    TOME_EMU_CHECK(status);
    Event* end = EventOf(end_handle, &status);
    TOME_EMU_CHECK(status);
    if ((start->flags & 2u) || (end->flags & 2u))
        return Report(Fail(kInvalidHandle, "an event created with CU_EVENT_DISABLE_TIMING has no time"));
    if (start->stream == nullptr || end->stream == nullptr)
        return Report(Fail(kInvalidHandle, "an event that was never recorded has no time"));
    if (!start->stream->Done(start->sequence) || !end->stream->Done(end->sequence))
        return Report(Fail(kNotReady, "the events have not completed (synchronize the end event first)"));
    *milliseconds = (float)(end->time_ms - start->time_ms);
    return kSuccess;
}

TOME_EMU_EXPORT int cuModuleLoadData(void** module, const void* image)
{
    TOME_EMU_CHECK(Ready(true, "cuModuleLoadData"));
    return Report(LoadModule(image, module));
}

TOME_EMU_EXPORT int cuModuleUnload(void* module)
{
    TOME_EMU_CHECK(Ready(true, "cuModuleUnload"));
    return Report(UnloadModule(module));
}

TOME_EMU_EXPORT int cuModuleGetFunction(void** function, void* module, const char* name)
{
    TOME_EMU_CHECK(Ready(true, "cuModuleGetFunction"));
    if (function == nullptr || name == nullptr)
        return Report(Fail(kInvalidValue, "null function or name"));
    return Report(GetFunction(module, name, function));
}

// CUfunction_attribute (cuda.h): 0 MAX_THREADS_PER_BLOCK, 1 SHARED_SIZE_BYTES, 2 CONST_SIZE_BYTES,
// 3 LOCAL_SIZE_BYTES, 4 NUM_REGS, 5 PTX_VERSION, 6 BINARY_VERSION, 7 CACHE_MODE_CA,
// 8 MAX_DYNAMIC_SHARED_SIZE_BYTES, 9 PREFERRED_SHARED_MEMORY_CARVEOUT.
TOME_EMU_EXPORT int cuFuncGetAttribute(int* value, int attribute, void* handle)
{
    TOME_EMU_CHECK(Ready(true, "cuFuncGetAttribute"));
    Status status;
    Function* f = ResolveFunction(handle, &status);
    TOME_EMU_CHECK(status);
    switch (attribute) {
    case 0: *value = f->MaxThreadsPerBlock(); break;
    case 1: *value = (int)f->info->static_shared; break;
    case 2: *value = 0; break;
    case 3: *value = (int)f->info->local_bytes; break;
    case 4: *value = f->info->registers; break;
    case 5: case 6: *value = 90; break;
    case 7: *value = 0; break;
    case 8: *value = f->max_dynamic_shared; break;
    case 9: *value = f->carveout; break;
    default: return Report(Fail(kInvalidValue, Format("%d is not a CUfunction_attribute", attribute)));
    }
    return kSuccess;
}

TOME_EMU_EXPORT int cuFuncSetAttribute(void* handle, int attribute, int value)
{
    TOME_EMU_CHECK(Ready(true, "cuFuncSetAttribute"));
    Status status;
    Function* f = ResolveFunction(handle, &status);
    TOME_EMU_CHECK(status);
    if (attribute == 8) {
        if (value < 0 || (size_t)value + f->info->static_shared > (size_t)kMaxSharedPerBlockOptin)
            return Report(Fail(kInvalidValue, Format("%s: %d bytes of dynamic shared memory with %zu static exceed the device's %d", f->entry->name,
                                                     value, f->info->static_shared, kMaxSharedPerBlockOptin)));
        f->max_dynamic_shared = value;
        return kSuccess;
    }
    if (attribute == 9 && value >= -1 && value <= 100) {
        f->carveout = value;
        return kSuccess;
    }
    return Report(Fail(kInvalidValue, Format("function attribute %d cannot be set to %d", attribute, value)));
}

TOME_EMU_EXPORT int cuLaunchKernel(void* handle, unsigned int gx, unsigned int gy, unsigned int gz, unsigned int bx, unsigned int by,
                                   unsigned int bz, unsigned int shared_bytes, void* stream_handle, void** params, void** extra)
{
    TOME_EMU_CHECK(Ready(true, "cuLaunchKernel"));
    Status status;
    Function* f = ResolveFunction(handle, &status);
    TOME_EMU_CHECK(status);
    auto stream = StreamOf(stream_handle, &status);
    TOME_EMU_CHECK(status);
    return Report(Launch(f, Dim3{gx, gy, gz}, Dim3{bx, by, bz}, shared_bytes, stream, params, extra));
}

TOME_EMU_EXPORT int cuStreamBeginCapture_v2(void* handle, int mode)
{
    TOME_EMU_CHECK(Ready(true, "cuStreamBeginCapture"));
    Status status;
    auto stream = StreamOf(handle, &status);
    TOME_EMU_CHECK(status);
    return Report(StreamSet::Get().BeginCapture(stream, mode));
}

TOME_EMU_EXPORT int cuStreamEndCapture(void* handle, void** graph)
{
    TOME_EMU_CHECK(Ready(true, "cuStreamEndCapture"));
    Status status;
    auto stream = StreamOf(handle, &status);
    TOME_EMU_CHECK(status);
    *graph = nullptr;
    auto captured = std::make_unique<Graph>();
    TOME_EMU_CHECK(StreamSet::Get().EndCapture(stream, &captured->ops));
    std::lock_guard<std::mutex> lock(handles_gate);
    graphs->insert(captured.get());
    *graph = captured.release();
    return kSuccess;
}

TOME_EMU_EXPORT int cuGraphInstantiateWithFlags(void** exec, void* graph, unsigned long long flags)
{
    TOME_EMU_CHECK(Ready(true, "cuGraphInstantiateWithFlags"));
    if (!Live(graphs, graph))
        return Report(Fail(kInvalidHandle, Format("graph %p does not exist", graph)));
    if (flags != 0)
        return Report(Fail(kNotSupported, Format("graph instantiation flags 0x%llx are not emulated", flags)));
    auto* instance = new GraphExec{std::make_shared<const std::vector<Op>>(static_cast<Graph*>(graph)->ops)};
    std::lock_guard<std::mutex> lock(handles_gate);
    graph_execs->insert(instance);
    *exec = instance;
    return kSuccess;
}

// A replay is one op on the stream that runs the captured work in its captured order.
TOME_EMU_EXPORT int cuGraphLaunch(void* exec, void* stream_handle)
{
    TOME_EMU_CHECK(Ready(true, "cuGraphLaunch"));
    if (!Live(graph_execs, exec))
        return Report(Fail(kInvalidHandle, Format("graph exec %p does not exist", exec)));
    Status status;
    auto stream = StreamOf(stream_handle, &status);
    TOME_EMU_CHECK(status);
    auto ops = static_cast<GraphExec*>(exec)->ops;
    Op op;
    op.what = Format("graph launch (%zu captured operations)", ops->size());
    for (const auto& captured : *ops)
        op.accesses.insert(op.accesses.end(), captured.accesses.begin(), captured.accesses.end());
    op.run = [ops] {
        for (const auto& captured : *ops)
            if (Status failed = captured.run(); !failed.ok())
                return failed;
        return Status{};
    };
    return Report(StreamSet::Get().Enqueue(stream, std::move(op)));
}

TOME_EMU_EXPORT int cuGraphExecDestroy(void* exec)
{
    TOME_EMU_CHECK(Ready(true, "cuGraphExecDestroy"));
    std::lock_guard<std::mutex> lock(handles_gate);
    if (graph_execs->erase(static_cast<GraphExec*>(exec)) == 0)
        return Report(Fail(kInvalidHandle, Format("graph exec %p does not exist", exec)));
    delete static_cast<GraphExec*>(exec);   // queued replays hold the ops themselves
    return kSuccess;
}

TOME_EMU_EXPORT int cuGraphDestroy(void* graph)
{
    TOME_EMU_CHECK(Ready(true, "cuGraphDestroy"));
    std::lock_guard<std::mutex> lock(handles_gate);
    if (graphs->erase(static_cast<Graph*>(graph)) == 0)
        return Report(Fail(kInvalidHandle, Format("graph %p does not exist", graph)));
    delete static_cast<Graph*>(graph);
    return kSuccess;
}
