// pool.h: the host threads that execute the emulated device's work: thread blocks and GEMM tiles.
#pragma once
#include <cstddef>
#include <functional>

namespace tome_emu {

class BlockRunner;

// TOME_EMU_THREADS worker threads (default: one per core), each with its own block runner.
class WorkerPool {
public:
    static WorkerPool& Get();

    // Calls task(i, runner) for every i < count on the workers and returns when all have finished.
    void Run(size_t count, const std::function<void(size_t index, BlockRunner& runner)>& task);

    int Threads() const { return threads_; }

private:
    WorkerPool();
    int threads_ = 1;
};

}  // namespace tome_emu
