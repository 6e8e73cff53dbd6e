// ordering.h: which work happens before which, and reporting device memory that two unordered pieces of
// work touch (a race between streams, or between a stream and an asynchronous copy or fill).
//
// Vector clocks: every queued op gets a clock that covers its stream's earlier work, the events it was told
// to wait for, the legacy/blocking-stream implicit waits, and what the queuing host thread has
// synchronized with (a host thread that waited for a stream, an event or the context knows that work is
// done). Each device allocation remembers its last writer and the readers since; an op whose access is not
// ordered after a conflicting one fails with both named. Checked when work is queued, in program order, so
// the report does not depend on when the lazily executed work happens to run.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "status.h"

namespace tome_emu {

using Clock = std::map<uint32_t, uint64_t>;

// A device address an op reads or writes (any address inside the allocation).
struct Access {
    uintptr_t pointer = 0;
    bool write = false;
};

class Ordering {
public:
    static Ordering& Get();

    uint32_t NewStream(const std::string& name);
    // Orders an op of stream `stream` (see above) and checks its accesses; `clock` gets the op's clock.
    Status Order(uint32_t stream, const std::vector<Clock>& waits, const std::vector<Access>& accesses, const std::string& what,
                 Clock* clock);
    Clock StreamClock(uint32_t stream);
    // The calling host thread has waited for everything `clock` covers.
    void HostJoins(const Clock& clock);
    void HostJoinsStream(uint32_t stream) { HostJoins(StreamClock(stream)); }
    // An allocation was freed (its addresses are never reused).
    void Forget(uintptr_t base);
};

}  // namespace tome_emu
