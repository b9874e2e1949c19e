// SPDX-License-Identifier: MIT
// The driver both test binaries of the split suite exercise: one ring, one timeline of jobs.
#pragma once

#include <fencedep/fencedep.h>

namespace split_suite {

struct gpu_job final : fencedep::fence {
    using fence::fence;
    const char* driver_name() const noexcept override { return "gpu"; }
    const char* timeline_name() const noexcept override { return "gfx"; }
};

inline fencedep::spinlock ring_lock{"gpu ring->fence_lock"};

inline fencedep::fence_ref<> submit_job(std::uint64_t seqno) {
    static const std::uint64_t context = fencedep::fence::allocate_contexts(1);
    return fencedep::make_fence<gpu_job>(ring_lock, context, seqno);
}

// Completes every job under `head`, so that each test ends with nothing pending.
inline void complete(fencedep::fence& head) {
    for (fencedep::fence& job : fencedep::unwrap(head))
        job.signal();
}

}  // namespace split_suite
