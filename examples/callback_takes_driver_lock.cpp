// SPDX-License-Identifier: MIT
// S6: a fence callback takes a driver lock that another path holds while signalling fences.
//
// - retire_on_completion() registers a callback that takes the device lock to retire the job.
//   Callbacks run with the signalled fence's lock held, so this records ring->fence_lock ->
//   device->lock.
// - reset_ring() holds the device lock and signals the ring's outstanding fences (hang
//   recovery), recording device->lock -> ring->fence_lock.
// If a completion interrupt and a reset ever overlap, each side waits for the other's lock: a
// real ABBA deadlock. With FENCEDEP=1 the splat shows both sites; its context lines say that
// the first edge was recorded while running a signal callback of a 'gfx' fence.
// The fix: have the callback only queue the retirement (a flag, a work item) and take the
// device lock later, with no fence lock held.
//
// Run: FENCEDEP=1 ./callback_takes_driver_lock
#include <cerrno>
#include <cstdio>
#include <mutex>

#include <fencedep/fencedep.h>

namespace {

struct gpu_job final : fencedep::fence {
    using fence::fence;
    const char* driver_name() const noexcept override { return "gpu"; }
    const char* timeline_name() const noexcept override { return "gfx"; }
};

struct device {
    fencedep::mutex lock{"device->lock"};
    fencedep::spinlock ring_lock{"ring->fence_lock"};
    std::uint64_t context = fencedep::fence::allocate_contexts(1);
    int retired = 0;
};

struct retire_callback : fencedep::fence_callback {
    device* dev = nullptr;
    static void run(fencedep::fence&, fencedep::fence_callback& cb) noexcept {
        device& dev = *static_cast<retire_callback&>(cb).dev;
        std::lock_guard<fencedep::mutex> guard(dev.lock);  // under ring->fence_lock
        ++dev.retired;
    }
};

[[gnu::noinline]] void retire_on_completion(device& dev, fencedep::fence& job, retire_callback& cb) {
    cb.dev = &dev;
    job.add_callback(cb, retire_callback::run);
}

[[gnu::noinline]] void reset_ring(device& dev, fencedep::fence& stuck) {
    std::lock_guard<fencedep::mutex> guard(dev.lock);
    stuck.set_error(-ECANCELED);
    stuck.signal();  // takes ring->fence_lock under device->lock
}

}  // namespace

int main() {
    device dev;
    auto job1 = fencedep::make_fence<gpu_job>(dev.ring_lock, dev.context, 1);
    auto job2 = fencedep::make_fence<gpu_job>(dev.ring_lock, dev.context, 2);

    retire_callback cb;
    retire_on_completion(dev, *job1, cb);
    job1->signal();  // the completion interrupt: the callback takes device->lock

    reset_ring(dev, *job2);  // later, a reset
    std::printf("retired %d job(s); job 2 status %d\n", dev.retired, job2->get_status());
    return 0;
}
