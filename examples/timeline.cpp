// SPDX-License-Identifier: MIT
// A correct timeline: fence_chain points linked through prev, each enabled, signalled out of order.
//
// This is how drm_syncobj timelines use chains, and what the kernel's chain selftests do: every
// point is enabled as it is added, and the jobs complete in any order. Enabling a point takes
// only that point's lock and its job's lock (never an older point's), and completions hop
// backward through deferred work with no lock held, so FENCEDEP=1 prints no splat.
//
// Run: FENCEDEP=1 ./timeline
#include <cstdio>
#include <vector>

#include <fencedep/fencedep.h>

namespace {

struct gpu_job final : fencedep::fence {
    using fence::fence;
    const char* driver_name() const noexcept override { return "gpu"; }
    const char* timeline_name() const noexcept override { return "gfx"; }
};

}  // namespace

int main() {
    fencedep::spinlock ring_lock{"ring->fence_lock"};
    const std::uint64_t ring = fencedep::fence::allocate_contexts(1);

    std::vector<fencedep::fence_ref<>> jobs;
    std::vector<fencedep::fence_ref<>> points;
    fencedep::fence_ref<> tail;
    for (std::uint64_t point = 1; point <= 8; ++point) {
        jobs.push_back(fencedep::make_fence<gpu_job>(ring_lock, ring, point));
        tail = fencedep::fence_chain::create(tail, jobs.back(), point);
        tail->enable_sw_signaling();
        points.push_back(tail);
    }

    // Which point must a waiter for point 3 wait on?
    fencedep::fence_ref<> waiter = tail;
    fencedep::fence_chain::find_seqno(waiter, 3);
    std::printf("point 3 is covered by the point with seqno %llu\n",
                static_cast<unsigned long long>(waiter->seqno()));

    // Completion in reverse order: no point signals before all older jobs are done.
    for (auto it = jobs.rbegin(); it != jobs.rend(); ++it)
        (*it)->signal();
    for (const auto& p : points)
        std::printf("point %llu: %s\n", static_cast<unsigned long long>(p->seqno()),
                    p->is_signaled() ? "signaled" : "pending");
    return 0;
}
