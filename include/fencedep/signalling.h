// SPDX-License-Identifier: MIT
// Fence signalling annotations: waits and signalling as dependencies, as the kernel's
// dma_fence_begin_signalling() / __dma_fence_might_wait() make them (dma-fence.md §5).
#pragma once

#include <fencedep/language.h>
#ifdef FENCEDEP_CXX20

#include <fencedep/lockdep.h>

namespace fencedep {

// ---------------------------------------------------------------------------------------------
// The model
//
// A fence deadlock is rarely two locks: it is a thread that waits on a fence while holding
// something the code that would signal that fence needs. fencedep sees it the way the kernel
// does, through one process-wide pseudo-lock, printed as `fence_signalling` in reports:
//   - code that must complete for fences to signal (a completion handler, a scheduler thread,
//     the tail of a submission once its fence is published, every fence callback) runs in a
//     *signalling section*, which holds fence_signalling for reading;
//   - every wait on a fence takes fence_signalling for writing, for a moment.
// So "hold X, wait on a fence" records X -> fence_signalling, "in a section, take X" records
// fence_signalling -> X, and the two together are a circular dependency: the waiter holds X,
// and the signaller needs X before it can signal.
//
// Sections are non-recursive reads recorded as successful trylocks: entering one cannot block,
// so it records no dependency from the locks already held; locks taken inside it do get one.
// fence::signal() and fence::is_signaled() (when it signals) run in a section of their own, so
// fence callbacks do too; signal_locked() and the timestamp variants do not, as in the kernel.
// fence::wait(), wait_timeout() and wait_any() call might_wait_on_fence(), whether or not they
// block: the dependency is real even when this run did not have to wait.
// Waiting inside a section is allowed while no lock taken after the section began is still
// held: the wait drops the section's read hold for the moment it takes the write side, as the
// kernel does.
//
// When fencedep is off, every call here costs the gate load and nothing else.
// ---------------------------------------------------------------------------------------------

// The pseudo-lock's name in reports. The scenario of a report names its acquisitions by what
// they are: `begin_signalling()` for a read, `wait(fence)` for a write.
inline constexpr const char* signalling_lock_name = "fence_signalling";

namespace detail {
// The out-of-line halves of the calls below, entered only when fencedep is on, so that the off
// path is the inline gate load and a branch. `file` null: a section of fencedep's own
// (fence::signal), named by the fence operation's context frame instead.
FENCEDEP_API bool begin_signalling(const char* file, unsigned line) noexcept;
FENCEDEP_API void end_signalling() noexcept;
FENCEDEP_API void might_wait_on_fence() noexcept;
FENCEDEP_API void reclaim_acquire() noexcept;
FENCEDEP_API void reclaim_release() noexcept;
}  // namespace detail

// Begins a signalling section on the calling thread. Returns the cookie to give to
// end_signalling(): true when nothing was recorded (the thread is already in a section, or
// fencedep is off), so that sections nest freely. `site` names the section in reports
// ("inside a signalling section begun at job.cc:42"). Reports nothing itself.
[[nodiscard]] FENCEDEP_ALWAYS_INLINE bool begin_signalling(source_location site = source_location::current()) noexcept {
    return !enabled() || detail::begin_signalling(site.file_name(), site.line());
}

// Ends the section begun by the begin_signalling() call that returned `cookie`. Sections must
// end in the reverse order they began, on the thread that began them.
FENCEDEP_ALWAYS_INLINE void end_signalling(bool cookie) noexcept {
    if (!cookie)
        detail::end_signalling();
}

// Records a possible wait on a fence, as every fence wait does: a write acquisition of
// fence_signalling and its release, with the section's read hold dropped around it if the
// thread is in one. Call it from your own wait primitives, and on paths that only sometimes
// wait. Reports: a circular dependency if the calling thread holds a lock that some signalling
// section takes (or a lock taken inside its own section).
FENCEDEP_ALWAYS_INLINE void might_wait_on_fence() noexcept {
    if (enabled())
        detail::might_wait_on_fence();
}

// RAII form of begin_signalling() / end_signalling().
class signalling_section {
public:
    explicit signalling_section(source_location site = source_location::current()) noexcept
        : cookie_(begin_signalling(site)) {}
    ~signalling_section() { end_signalling(cookie_); }
    signalling_section(const signalling_section&) = delete;
    signalling_section& operator=(const signalling_section&) = delete;

private:
    bool cookie_;
};

// ---------------------------------------------------------------------------------------------
// reclaim_scope: "this code may allocate memory, and allocation may reclaim memory by waiting on
// fences" (the kernel's fs_reclaim_acquire around a GFP_KERNEL allocation).
//
// A write acquisition of the pseudo-lock `reclaim` for the scope's duration. fencedep records at
// start-up that reclaim may wait on fences (below), so a reclaim_scope inside a signalling
// section is a circular dependency: the allocation could wait for the very fence the section
// has to signal. Wrap the allocations of code that runs under a section in one, or better, move
// them before the section begins, as the kernel's fence_array/fence_chain allocation split does.
// ---------------------------------------------------------------------------------------------
// A scope begun while fencedep is off records nothing, at its end either.
class reclaim_scope {
public:
    reclaim_scope() noexcept : armed_(enabled()) {
        if (armed_)
            detail::reclaim_acquire();
    }
    ~reclaim_scope() {
        if (armed_)
            detail::reclaim_release();
    }
    reclaim_scope(const reclaim_scope&) = delete;
    reclaim_scope& operator=(const reclaim_scope&) = delete;

private:
    bool armed_;
};

// ---------------------------------------------------------------------------------------------
// Priming
//
// Like the kernel at boot (dma_resv_lockdep), fencedep records at start-up, and again after
// every reset(), the order that the rules of fences allow:
//     resv_acquire_context -> resv_lock -> reclaim -> fence_signalling (write)
// i.e. a thread may wait on fences while holding reservation locks (resv.h) and while reclaiming
// memory. A signalling section that takes a resv_lock, or allocates in a reclaim_scope, then
// closes a cycle and is reported, even in a run where no thread waited. The links recorded by
// priming say so in their context line ("priming fencedep's fence rules at start-up").
// ---------------------------------------------------------------------------------------------

}  // namespace fencedep

#endif  // FENCEDEP_CXX20
