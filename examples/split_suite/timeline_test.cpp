// SPDX-License-Identifier: MIT
// Split suite, binary 1: the timeline tests. A syncobj-style timeline whose next point is "both
// of these jobs": a fence_array put into a fence_chain, and enabled (fence_chain->lock, then
// fence_array->lock). Clean on its own: this binary never takes the two in the other order.
//
// Run with a dump per process, then merge with the other binary's (README, "Graph dumps"):
//   FENCEDEP=1 FENCEDEP_OPTIONS=graph_path=timeline.%p.json ./split_timeline_test
#include <cstdio>

#include "gpu_job.h"

namespace {

[[gnu::noinline]] fencedep::fence_ref<> publish_merged_point(fencedep::fence_ref<> a, fencedep::fence_ref<> b) {
    auto both = fencedep::fence_array::create({a, b}, fencedep::fence::allocate_contexts(1), 1);
    auto point = fencedep::fence_chain::create(nullptr, both, 1);
    point->enable_sw_signaling();
    return point;
}

}  // namespace

int main() {
    auto point = publish_merged_point(split_suite::submit_job(1), split_suite::submit_job(2));
    split_suite::complete(*point);
    std::printf("timeline test: point signaled: %s\n", point->is_signaled() ? "yes" : "no");
    return point->is_signaled() ? 0 : 1;
}
