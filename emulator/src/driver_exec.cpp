// driver_exec.cpp: streams, events, modules, launches and graphs (libcuda.so.1 entry points).
#include <cstring>
#include <memory>
#include <mutex>

#include "driver.h"
#include "handles.h"
#include "module.h"
#include "stream.h"

using namespace tome_emu;

namespace {

struct Graph {
    std::vector<Op> ops;
};
struct GraphExec {
    std::shared_ptr<const std::vector<Op>> ops;
};

HandleSet<Event> events;
HandleSet<Graph> graphs;
HandleSet<GraphExec> graph_execs;

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
    std::shared_ptr<Stream> stream;
    TOME_EMU_CHECK(StreamSet::Get().Find(handle, &stream));
    if (stream->legacy())
        TOME_EMU_CHECK(StreamSet::Get().CheckNotCapturing("cuStreamSynchronize(legacy stream)"));
    return Report(StreamSet::Get().Synchronize(stream));
}

TOME_EMU_EXPORT int cuStreamWaitEvent(void* handle, void* event_handle, unsigned int flags)
{
    TOME_EMU_CHECK(Ready(true, "cuStreamWaitEvent"));
    std::shared_ptr<Stream> stream;
    TOME_EMU_CHECK(StreamSet::Get().Find(handle, &stream));
    Event* event = nullptr;
    TOME_EMU_CHECK(events.Find(event_handle, &event, "event"));
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
    std::shared_ptr<Stream> stream;
    TOME_EMU_CHECK(StreamSet::Get().Find(handle, &stream));
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
    *event = events.Add(created);
    return kSuccess;
}

TOME_EMU_EXPORT int cuEventDestroy_v2(void* handle)
{
    TOME_EMU_CHECK(Ready(true, "cuEventDestroy"));
    return Report(events.Destroy(handle, "event"));   // a queued stamp keeps only the event's EventTime
}

TOME_EMU_EXPORT int cuEventRecord(void* event_handle, void* stream_handle)
{
    TOME_EMU_CHECK(Ready(true, "cuEventRecord"));
    Event* event = nullptr;
    TOME_EMU_CHECK(events.Find(event_handle, &event, "event"));
    std::shared_ptr<Stream> stream;
    TOME_EMU_CHECK(StreamSet::Get().Find(stream_handle, &stream));
    std::shared_ptr<EventTime> time = event->time;
    uint64_t generation;
    {
        std::lock_guard<std::mutex> lock(time->gate);
        generation = ++time->generation;
    }
    Op op;
    op.what = "cuEventRecord";
    op.run = [time, generation] {
        std::lock_guard<std::mutex> lock(time->gate);
        if (time->generation == generation)
            time->ms = NowMilliseconds();
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
    Event* event = nullptr;
    TOME_EMU_CHECK(events.Find(handle, &event, "event"));
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
    Event *start = nullptr, *end = nullptr;
    TOME_EMU_CHECK(events.Find(start_handle, &start, "event"));
    TOME_EMU_CHECK(events.Find(end_handle, &end, "event"));
    if ((start->flags & 2u) || (end->flags & 2u))
        return Report(Fail(kInvalidHandle, "an event created with CU_EVENT_DISABLE_TIMING has no time"));
    if (start->stream == nullptr || end->stream == nullptr)
        return Report(Fail(kInvalidHandle, "an event that was never recorded has no time"));
    if (!start->stream->Done(start->sequence) || !end->stream->Done(end->sequence))
        return Report(Fail(kNotReady, "the events have not completed (synchronize the end event first)"));
    std::scoped_lock lock(start->time->gate, end->time->gate);
    *milliseconds = (float)(end->time->ms - start->time->ms);
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
    std::shared_ptr<Stream> stream;
    TOME_EMU_CHECK(StreamSet::Get().Find(stream_handle, &stream));
    return Report(Launch(f, Dim3{gx, gy, gz}, Dim3{bx, by, bz}, shared_bytes, stream, params, extra));
}

TOME_EMU_EXPORT int cuStreamBeginCapture_v2(void* handle, int mode)
{
    TOME_EMU_CHECK(Ready(true, "cuStreamBeginCapture"));
    std::shared_ptr<Stream> stream;
    TOME_EMU_CHECK(StreamSet::Get().Find(handle, &stream));
    return Report(StreamSet::Get().BeginCapture(stream, mode));
}

TOME_EMU_EXPORT int cuStreamEndCapture(void* handle, void** graph)
{
    TOME_EMU_CHECK(Ready(true, "cuStreamEndCapture"));
    std::shared_ptr<Stream> stream;
    TOME_EMU_CHECK(StreamSet::Get().Find(handle, &stream));
    *graph = nullptr;
    auto captured = std::make_unique<Graph>();
    TOME_EMU_CHECK(StreamSet::Get().EndCapture(stream, &captured->ops));
    *graph = graphs.Add(captured.release());
    return kSuccess;
}

TOME_EMU_EXPORT int cuGraphInstantiateWithFlags(void** exec, void* graph, unsigned long long flags)
{
    TOME_EMU_CHECK(Ready(true, "cuGraphInstantiateWithFlags"));
    Graph* captured = nullptr;
    TOME_EMU_CHECK(graphs.Find(graph, &captured, "graph"));
    if (flags != 0)
        return Report(Fail(kNotSupported, Format("graph instantiation flags 0x%llx are not emulated", flags)));
    *exec = graph_execs.Add(new GraphExec{std::make_shared<const std::vector<Op>>(captured->ops)});
    return kSuccess;
}

// A replay is one op on the stream that runs the captured work in its captured order.
TOME_EMU_EXPORT int cuGraphLaunch(void* exec, void* stream_handle)
{
    TOME_EMU_CHECK(Ready(true, "cuGraphLaunch"));
    GraphExec* instance = nullptr;
    TOME_EMU_CHECK(graph_execs.Find(exec, &instance, "graph exec"));
    std::shared_ptr<Stream> stream;
    TOME_EMU_CHECK(StreamSet::Get().Find(stream_handle, &stream));
    auto ops = instance->ops;
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
    return Report(graph_execs.Destroy(exec, "graph exec"));   // queued replays hold the ops themselves
}

TOME_EMU_EXPORT int cuGraphDestroy(void* graph)
{
    TOME_EMU_CHECK(Ready(true, "cuGraphDestroy"));
    return Report(graphs.Destroy(graph, "graph"));
}
