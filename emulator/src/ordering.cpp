// ordering.cpp: vector clocks over streams and host threads, and the per-allocation access history.
#include "ordering.h"

#include <mutex>
#include <unordered_map>

#include "memory.h"

namespace tome_emu {

namespace {

struct Touch {
    uint32_t stream = 0;
    uint64_t tick = 0;
    std::string what;
};

struct History {
    Touch write;                // tick 0: never written through the API since it was allocated
    std::vector<Touch> reads;   // since the last write, at most one per stream
    size_t size = 0;
};

std::mutex gate;
uint32_t next_stream = 1;
std::unordered_map<uint32_t, Clock>* stream_clocks = new std::unordered_map<uint32_t, Clock>();
std::unordered_map<uint32_t, std::string>* stream_names = new std::unordered_map<uint32_t, std::string>();
std::unordered_map<uintptr_t, History>* histories = new std::unordered_map<uintptr_t, History>();
thread_local Clock host_clock;

void Join(Clock& into, const Clock& from)
{
    for (const auto& [stream, tick] : from) {
        uint64_t& mine = into[stream];
        if (tick > mine)
            mine = tick;
    }
}

bool Before(const Touch& touch, const Clock& clock)
{
    if (touch.tick == 0)
        return true;
    auto it = clock.find(touch.stream);
    return it != clock.end() && it->second >= touch.tick;
}

std::string StreamName(uint32_t stream)
{
    auto it = stream_names->find(stream);
    return it == stream_names->end() ? "a destroyed stream" : it->second;
}

}  // namespace

Ordering& Ordering::Get()
{
    static Ordering* ordering = new Ordering();
    return *ordering;
}

uint32_t Ordering::NewStream(const std::string& name)
{
    std::lock_guard<std::mutex> lock(gate);
    const uint32_t id = next_stream++;
    (*stream_names)[id] = name;
    return id;
}

Status Ordering::Order(uint32_t stream, const std::vector<Clock>& waits, const std::vector<Access>& accesses, const std::string& what,
                       Clock* clock)
{
    std::lock_guard<std::mutex> lock(gate);
    Clock& latest = (*stream_clocks)[stream];
    Clock mine = latest;
    Join(mine, host_clock);
    for (const auto& wait : waits)
        Join(mine, wait);
    const uint64_t tick = ++mine[stream];
    latest = mine;
    *clock = mine;

    Status race;
    for (const auto& access : accesses) {
        if (access.pointer == 0)
            continue;
        const uintptr_t base = Memory::Get().BaseOf(access.pointer);
        if (base == 0)
            continue;
        History& history = (*histories)[base];
        const Touch now{stream, tick, what};
        auto conflict = [&](const Touch& earlier, const char* earlier_verb) {
            if (!race.ok() || Before(earlier, mine))
                return;
            race = Fail(kLaunchFailed,
                        Format("unordered access to device memory: %s on %s %s the allocation at 0x%llx, which %s on %s %s, with no event "
                               "or synchronization between them (work on a non-blocking stream does not wait for the legacy default "
                               "stream; record an event and wait for it, or synchronize first)",
                               what.c_str(), StreamName(stream).c_str(), access.write ? "writes" : "reads", (unsigned long long)base,
                               earlier.what.c_str(), StreamName(earlier.stream).c_str(), earlier_verb));
        };
        conflict(history.write, "wrote");
        if (access.write)
            for (const auto& read : history.reads)
                conflict(read, "read");
        if (access.write) {
            history.write = now;
            history.reads.clear();
        } else {
            bool found = false;
            for (auto& read : history.reads)
                if (read.stream == stream) {
                    read = now;
                    found = true;
                }
            if (!found)
                history.reads.push_back(now);
        }
    }
    return race;
}

Clock Ordering::StreamClock(uint32_t stream)
{
    std::lock_guard<std::mutex> lock(gate);
    return (*stream_clocks)[stream];
}

void Ordering::HostJoins(const Clock& clock)
{
    std::lock_guard<std::mutex> lock(gate);
    Join(host_clock, clock);
}

void Ordering::Forget(uintptr_t base)
{
    std::lock_guard<std::mutex> lock(gate);
    histories->erase(base);
}

}  // namespace tome_emu
