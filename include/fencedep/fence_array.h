// SPDX-License-Identifier: MIT
// fence_array: a fence that signals when all (or any) of its child fences have signaled.
#pragma once

#include <fencedep/language.h>
#ifdef FENCEDEP_CXX20

#include <atomic>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include <fencedep/fence.h>

namespace fencedep {

// ---------------------------------------------------------------------------------------------
// fence_array
//
// The kernel's dma_fence_array. It owns one reference to each child and signals once every
// child has signaled (or, with signal_on_any, once one has). Its error is the first child error
// that enabling or a child's callback sees before it signals. An array that was never enabled and
// is found signaled by get_status() or is_signaled() signals without error, as in the kernel,
// whose signaled op only counts the signaled children.
//
// Locks: every array has its own lock, and all arrays share one class, "fence_array->lock".
//   - Enabling signaling (first add_callback, enable_sw_signaling, wait) adds a callback on each
//     child in order; in enable_signaling=locked mode that happens under the array's lock, so
//     each child's lock (and, the first time, the child's own enable_signaling) nests inside it:
//     edges fence_array->lock -> child class, under the context frames "enabling signaling on
//     fence_array ..., adding a callback to <child> ...". In unlocked mode no array lock is held.
//   - A child's callback runs under the child's lock and only counts down; the last one queues
//     deferred work (fence.h), which signals the array with no child lock held. So signalling
//     never records child class -> fence_array->lock.
//   - get_status() and is_signaled() on an array that was never enabled ask each child
//     is_signaled(), which may signal the child (taking its lock) under the array's lock.
//
// Container rules: an array whose child is itself a container (an array or a chain) is
// reported as fence_container_nesting (option container_rules; warn by default), as the kernel
// warns: operations on nested containers recurse and take two container locks at once.
// Flatten the children with unwrap_merge() (fence_unwrap.h) instead.
//
// Example:
//   auto a = fencedep::fence_array::create({f1, f2}, fencedep::fence::allocate_contexts(1), 1);
//   a->enable_sw_signaling();
//   f1->signal();
//   f2->signal();  // a signals when this call returns
// ---------------------------------------------------------------------------------------------
class FENCEDEP_API fence_array final : public fence {
public:
    // Creates an array over `fences`, taking over their references, on `context` and `seqno`
    // (32-bit seqno rule). With `signal_on_any`, the array signals when the first child does.
    // Reports fence_container_nesting for each child that is a container.
    // Throws std::invalid_argument if `fences` is empty or holds a null handle, std::bad_alloc
    // if allocation fails.
    static fence_ref<fence_array> create(std::vector<fence_ref<>> fences, std::uint64_t context,
                                         std::uint64_t seqno, bool signal_on_any = false);

    // Returns `f` as an array, or null if it is not one.
    static fence_array* from(fence& f) noexcept;

    std::span<const fence_ref<>> fences() const noexcept { return fences_; }
    bool signal_on_any() const noexcept { return signal_on_any_; }

    const char* driver_name() const noexcept override { return "fence_array"; }
    const char* timeline_name() const noexcept override { return "unbound"; }

protected:
    bool enable_signaling() noexcept override;
    bool signaled() noexcept override;

private:
    struct child_callback : fence_callback {
        fence_array* array = nullptr;
    };

    fence_array(std::vector<fence_ref<>> fences, std::uint64_t context, std::uint64_t seqno,
                bool signal_on_any);
    static void on_child_signaled(fence& child, fence_callback& callback) noexcept;
    static void run_deferred(detail::deferred_work& work) noexcept;
    void note_error(int error) noexcept;
    void decide_no_error() noexcept;

    std::vector<fence_ref<>> fences_;
    std::unique_ptr<child_callback[]> callbacks_;
    std::atomic<int> num_pending_;
    bool signal_on_any_;
    detail::deferred_work work_;
};

}  // namespace fencedep

#endif  // FENCEDEP_CXX20
