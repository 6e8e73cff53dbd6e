// pool.cpp: a fixed set of worker threads sharing a queue of jobs; each job is `count` independent items.
#include "pool.h"

#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <deque>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "block.h"

namespace tome_emu {

namespace {

struct Job {
    size_t count = 0;
    std::atomic<size_t> next{0};
    size_t done = 0;   // guarded by the pool's mutex
    const std::function<void(size_t, BlockRunner&)>* task = nullptr;
    std::condition_variable finished;
};

// Never destroyed: the workers wait on them for the life of the process (destroying a condition variable
// with waiters blocks the exiting thread).
std::mutex& gate = *new std::mutex();
std::condition_variable& work_available = *new std::condition_variable();
std::deque<std::shared_ptr<Job>>* jobs = new std::deque<std::shared_ptr<Job>>();

void WorkerLoop()
{
    PrepareWorkerThread();
    BlockRunner runner;
    std::unique_lock<std::mutex> lock(gate);
    for (;;) {
        work_available.wait(lock, [] { return !jobs->empty(); });
        std::shared_ptr<Job> job = jobs->front();
        const size_t index = job->next.fetch_add(1);
        if (index >= job->count) {
            // Every item is taken; the last ones may still run elsewhere.
            if (!jobs->empty() && jobs->front() == job)
                jobs->pop_front();
            continue;
        }
        lock.unlock();
        (*job->task)(index, runner);
        lock.lock();
        if (++job->done == job->count)
            job->finished.notify_all();
    }
}

}  // namespace

WorkerPool& WorkerPool::Get()
{
    static WorkerPool* pool = new WorkerPool();   // workers live as long as the process
    return *pool;
}

WorkerPool::WorkerPool()
{
    threads_ = (int)std::thread::hardware_concurrency();
    if (const char* text = std::getenv("TOME_EMU_THREADS"); text != nullptr && std::atoi(text) > 0)
        threads_ = std::atoi(text);
    if (threads_ < 1)
        threads_ = 1;
    InstallFaultHandler();
    for (int i = 0; i < threads_; ++i)
        std::thread(WorkerLoop).detach();
}

void WorkerPool::Run(size_t count, const std::function<void(size_t, BlockRunner&)>& task)
{
    if (count == 0)
        return;
    auto job = std::make_shared<Job>();
    job->count = count;
    job->task = &task;
    std::unique_lock<std::mutex> lock(gate);
    jobs->push_back(job);
    work_available.notify_all();
    job->finished.wait(lock, [&] { return job->done == job->count; });
}

}  // namespace tome_emu
