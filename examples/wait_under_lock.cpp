// SPDX-License-Identifier: MIT
// S7: a submission path waits on a fence while holding a lock that the completion path needs
// before it can signal that fence.
//
// - complete_job() is the completion handler: inside its signalling section (the code that must
//   run for the job's fence to signal) it takes the device lock to update the ring's state,
//   then signals. This records fence_signalling -> device->lock.
// - submit_job() holds the device lock while it waits for the previous job to finish, which
//   records device->lock -> fence_signalling.
// If the previous job had not finished yet, the submitter would sleep holding device->lock, and
// the completion handler, which needs device->lock before it can signal, would never get it: a
// deadlock that no two-lock cycle shows. In this run the previous job has already completed, so
// nothing blocks; fencedep reports the dependency anyway, as lockdep does, because the wait
// could have blocked.
// The fix: wait before taking the device lock, or take no lock that a waiter may hold inside
// the signalling section.
//
// Run: FENCEDEP=1 ./wait_under_lock
#include <cstdio>
#include <mutex>
#include <thread>

#include <fencedep/fencedep.h>

namespace {

struct gpu_job final : fencedep::fence {
    using fence::fence;
    const char* driver_name() const noexcept override { return "gpu"; }
    const char* timeline_name() const noexcept override { return "gfx"; }
};

struct device {
    fencedep::mutex lock{"device->lock"};
    std::uint64_t context = fencedep::fence::allocate_contexts(1);
    std::uint64_t completed = 0;
};

[[gnu::noinline]] void complete_job(device& dev, fencedep::fence& job) {
    fencedep::signalling_section section;
    {
        std::lock_guard<fencedep::mutex> guard(dev.lock);
        dev.completed = job.seqno();
    }
    job.signal();
}

[[gnu::noinline]] void submit_job(device& dev, fencedep::fence& previous) {
    std::lock_guard<fencedep::mutex> guard(dev.lock);
    previous.wait();  // throttle: one job in flight
}

}  // namespace

int main() {
    device dev;
    auto job1 = fencedep::make_fence<gpu_job>(dev.context, 1);

    // The completion worker finishes job 1 first, so that the wait below returns at once.
    std::thread worker([&] { complete_job(dev, *job1); });
    worker.join();

    submit_job(dev, *job1);  // job 2 waits for job 1 under the device lock
    std::printf("completed up to seqno %llu\n", static_cast<unsigned long long>(dev.completed));
    return 0;
}
