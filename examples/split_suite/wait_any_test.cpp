// SPDX-License-Identifier: MIT
// Split suite, binary 2: the wait-for-any tests. A fence_array over a timeline point and a job:
// a fence_chain put into a fence_array, and enabled (fence_array->lock, then
// fence_chain->lock). Clean on its own as far as lock order goes (its container warning, a chain
// inside an array, is off here: container_rules=off), and so is binary 1; merged, their graphs
// close the array/chain cycle that examples/array_chain_cycle shows in one process.
//
//   FENCEDEP=1 FENCEDEP_OPTIONS=graph_path=wait_any.%p.json:container_rules=off ./split_wait_any_test
#include <cstdio>

#include "gpu_job.h"

namespace {

[[gnu::noinline]] fencedep::fence_ref<> wait_for_any(fencedep::fence_ref<> point, fencedep::fence_ref<> job) {
    auto any = fencedep::fence_array::create({point, job}, fencedep::fence::allocate_contexts(1), 1,
                                             /*signal_on_any=*/true);
    any->enable_sw_signaling();
    return any;
}

}  // namespace

int main() {
    auto job3 = split_suite::submit_job(3);
    auto job4 = split_suite::submit_job(4);
    auto point = fencedep::fence_chain::create(nullptr, job3, 1);
    auto any = wait_for_any(point, job4);
    // The jobs themselves signal: unwrapping an array yields the chain point inside it, not the
    // job it contains (as the kernel's dma_fence_unwrap), and a chain signalled in place of its
    // job leaves the job's callback holding the chain.
    job3->signal();
    job4->signal();
    std::printf("wait-any test: any signaled: %s\n", any->is_signaled() ? "yes" : "no");
    return any->is_signaled() ? 0 : 1;
}
