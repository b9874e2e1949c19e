// SPDX-License-Identifier: MIT
// Flagship: an array fed into a chain in one place, a chain fed into an array in another.
//
// Two innocent-looking code paths, on different fences, that never deadlock in this run:
//   - publish_merged_point() puts a fence_array (the merge of two jobs) on a timeline as a
//     fence_chain point, and enables it: fence_chain->lock, then fence_array->lock.
//   - wait_for_any() builds a fence_array over a timeline point (a fence_chain) and another
//     job, and enables it: fence_array->lock, then fence_chain->lock.
// Lock classes are per type, so the validator sees fence_chain->lock and fence_array->lock
// taken in both orders and reports a possible circular locking dependency, with one stack and
// one context line per composition site. The second path also breaks the container rules (a
// chain inside an array), which is reported on its own as a warning.
//
// Run: FENCEDEP=1 ./array_chain_cycle        (without FENCEDEP=1 it prints nothing)
// The fix is in flatten.cpp.
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

fencedep::fence_ref<> submit_job(std::uint64_t seqno) {
    return fencedep::make_fence<gpu_job>(ring_lock, ring_context, seqno);
}

// Path 1: a syncobj-style timeline whose next point is "both of these jobs".
[[gnu::noinline]] fencedep::fence_ref<> publish_merged_point(fencedep::fence_ref<> a,
                                                             fencedep::fence_ref<> b) {
    auto both = fencedep::fence_array::create({a, b}, fencedep::fence::allocate_contexts(1), 1);
    auto point = fencedep::fence_chain::create(nullptr, both, 1);
    point->enable_sw_signaling();
    return point;
}

// Path 2, elsewhere and later: "wait until either the timeline point or this job is done".
[[gnu::noinline]] fencedep::fence_ref<> wait_for_any(fencedep::fence_ref<> point,
                                                     fencedep::fence_ref<> job) {
    auto any = fencedep::fence_array::create({point, job}, fencedep::fence::allocate_contexts(1),
                                             1, /*signal_on_any=*/true);
    any->enable_sw_signaling();
    return any;
}

}  // namespace

int main() {
    auto job1 = submit_job(1), job2 = submit_job(2), job3 = submit_job(3), job4 = submit_job(4);
    auto merged = publish_merged_point(job1, job2);

    auto other_point = fencedep::fence_chain::create(nullptr, job3, 1);
    auto any = wait_for_any(other_point, job4);

    // Everything completes: there is no deadlock in this run, only the ordering hazard. The jobs
    // signal themselves, as the GPU would: unwrapping `any` yields the chain point, not job 3
    // inside it, and a chain signalled in place of its job leaves the job holding the chain.
    for (auto* job : {job1.get(), job2.get(), job3.get(), job4.get()})
        job->signal();
    std::printf("merged point signaled: %s, any signaled: %s\n",
                merged->is_signaled() ? "yes" : "no", any->is_signaled() ? "yes" : "no");
    return 0;
}
