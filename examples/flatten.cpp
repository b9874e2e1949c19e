// SPDX-License-Identifier: MIT
// array_chain_cycle.cpp, fixed: the chain is flattened with unwrap_merge() before going into an array.
//
// unwrap_merge() turns any mix of fences, arrays and chains into one flat fence: the single
// unsignaled leaf, or a fence_array of leaves (one per context, the latest). Enabling that array
// only ever takes fence_array->lock -> leaf locks, so the fence_array -> fence_chain edge of
// array_chain_cycle.cpp, and with it the cycle and the container warning, are gone. Putting an
// array into a chain (path 1) stays legal: it is the timeline-point case the kernel supports.
//
// Run: FENCEDEP=1 ./flatten       (prints no splat)
#include <cstdio>

#include <fencedep/fencedep.h>

namespace {

struct gpu_job final : fencedep::fence {
    using fence::fence;
    const char* driver_name() const noexcept override { return "gpu"; }
    const char* timeline_name() const noexcept override { return "gfx"; }
};

fencedep::spinlock ring_lock{"gpu ring->fence_lock"};
const std::uint64_t ring_context = fencedep::fence::allocate_contexts(1);
const std::uint64_t copy_context = fencedep::fence::allocate_contexts(1);

fencedep::fence_ref<> submit_job(std::uint64_t context, std::uint64_t seqno) {
    return fencedep::make_fence<gpu_job>(ring_lock, context, seqno);
}

[[gnu::noinline]] fencedep::fence_ref<> publish_merged_point(fencedep::fence_ref<> a,
                                                             fencedep::fence_ref<> b) {
    auto point = fencedep::fence_chain::create(nullptr, fencedep::unwrap_merge({a.get(), b.get()}), 1);
    point->enable_sw_signaling();
    return point;
}

// The fix: flatten the timeline point and the job into one array of leaves.
[[gnu::noinline]] fencedep::fence_ref<> wait_for_all(fencedep::fence_ref<> point,
                                                     fencedep::fence_ref<> job) {
    auto all = fencedep::unwrap_merge({point.get(), job.get()});
    all->enable_sw_signaling();
    return all;
}

}  // namespace

int main() {
    auto merged = publish_merged_point(submit_job(ring_context, 1), submit_job(copy_context, 1));

    auto other_point = fencedep::fence_chain::create(nullptr, submit_job(ring_context, 2), 1);
    auto all = wait_for_all(other_point, submit_job(copy_context, 2));

    for (auto* head : {merged.get(), all.get()})
        for (fencedep::fence& job : fencedep::unwrap(*head))
            job.signal();
    std::printf("merged point signaled: %s, all signaled: %s\n",
                merged->is_signaled() ? "yes" : "no", all->is_signaled() ? "yes" : "no");
    return 0;
}
