// SPDX-License-Identifier: MIT
// S7d: memory allocation in a signalling path.
//
// complete_job() runs in a signalling section and allocates a retirement record. An allocation
// may reclaim memory, and reclaim may wait on fences (a shrinker evicting a buffer waits for the
// GPU to be done with it), perhaps on the very fence this section has to signal. The allocation
// is marked with a reclaim_scope, as the kernel marks GFP_KERNEL allocations, and fencedep
// records at start-up that reclaim may wait on fences; so the allocation inside the section
// closes fence_signalling -> reclaim -> fence_signalling, and fencedep reports it the first time
// it happens, though no thread waited in this run.
// The fix, as in the kernel's fence_array/fence_chain allocation split: allocate before the
// section begins (prepare_job() below does it right), and only fill in the record inside.
//
// Run: FENCEDEP=1 ./alloc_in_signalling
#include <cstdio>
#include <memory>
#include <vector>

#include <fencedep/fencedep.h>

namespace {

struct gpu_job final : fencedep::fence {
    using fence::fence;
    const char* driver_name() const noexcept override { return "gpu"; }
    const char* timeline_name() const noexcept override { return "gfx"; }
};

struct retired {
    std::uint64_t seqno = 0;
};

// An allocation that may reclaim memory: the program's own allocator wrapper, where the one
// reclaim_scope line belongs.
template <typename T>
std::unique_ptr<T> allocate() {
    fencedep::reclaim_scope may_reclaim;
    return std::make_unique<T>();
}

// Right: the record is allocated before the job's fence is published.
[[gnu::noinline]] std::unique_ptr<retired> prepare_job() { return allocate<retired>(); }

// Wrong: the completion handler allocates inside its signalling section.
[[gnu::noinline]] void complete_job(fencedep::fence& job, std::vector<std::unique_ptr<retired>>& log) {
    fencedep::signalling_section section;
    auto record = allocate<retired>();
    record->seqno = job.seqno();
    log.push_back(std::move(record));
    job.signal();
}

}  // namespace

int main() {
    const auto context = fencedep::fence::allocate_contexts(1);
    std::vector<std::unique_ptr<retired>> log;
    log.reserve(2);

    log.push_back(prepare_job());  // fine: no section yet
    auto job = fencedep::make_fence<gpu_job>(context, 1);
    complete_job(*job, log);
    std::printf("retired %zu record(s)\n", log.size());
    return 0;
}
