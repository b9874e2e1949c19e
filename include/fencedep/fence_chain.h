// SPDX-License-Identifier: MIT
// fence_chain: a node of a timeline of fences (the kernel's dma_fence_chain), walk and find_seqno.
#pragma once

#include <fencedep/language.h>
#ifdef FENCEDEP_CXX20

#include <cstddef>
#include <cstdint>
#include <iterator>

#include <fencedep/fence.h>

namespace fencedep {

// ---------------------------------------------------------------------------------------------
// fence_chain
//
// The kernel's dma_fence_chain: a timeline point. A node holds a contained fence, a seqno and a
// link to the previous point (`prev`, a chain node or any fence). A node signals once its own
// contained fence and those of every older node (and a trailing non-chain prev) have signaled.
//
// Seqno contract (create): if prev is a chain and `seqno` is later than prev's (64-bit), the node
// continues prev's timeline: same context, and prev_seqno() = prev's seqno, so the node covers
// the points (prev_seqno, seqno]. Otherwise it starts a new context, and if prev is a chain the
// seqno is raised to at least prev's.
//
// Locks: every node has its own lock, and all nodes share one class, "fence_chain->lock".
//   - Enabling signaling on a node arms exactly one callback: on the newest unsignaled
//     contained fence, walking backward from the node. In enable_signaling=locked mode the first
//     arming runs under the node's lock (edge fence_chain->lock -> class of that contained fence,
//     which may be a fence_array, whose children's locks then nest as well). The lock of an older
//     node is never taken, so linking chains through prev records no chain -> chain edge.
//   - The callback runs under the contained fence's lock and only queues deferred work
//     (fence.h). The work re-arms on the next older unsignaled fence, or signals the node, with
//     no lock held (as the kernel up to v7.0 does), so the callback hops backward iteratively.
//   - Walking (walk, find_seqno, is_signaled) calls is_signaled() on contained fences, which may
//     signal them, taking their locks.
//
// Garbage collection: walk() unlinks nodes whose contained fence has signaled from the node's
// prev, so timelines stay short. Release is iterative (fence.h), so a uniquely owned chain of
// any length is freed in constant stack space.
//
// Container rules: a contained fence that is itself a chain is reported as
// fence_container_nesting (chains may only be linked through prev; enabling would take one
// chain lock inside another). A contained fence_array is legal (a merged timeline point).
//
// Example:
//   auto p1 = fencedep::fence_chain::create(nullptr, job1, 1);
//   auto p2 = fencedep::fence_chain::create(p1, job2, 2);   // same timeline as p1
//   fencedep::fence_ref<> point = p2;
//   fencedep::fence_chain::find_seqno(point, 1);            // point is now p1 (or null)
// ---------------------------------------------------------------------------------------------
class FENCEDEP_API fence_chain final : public fence {
public:
    // Creates a node over `contained` after `prev` (may be null), taking over both references.
    // Reports fence_container_nesting if `contained` is a chain.
    // Throws std::invalid_argument if `contained` is null, std::bad_alloc on allocation failure.
    static fence_ref<fence_chain> create(fence_ref<> prev, fence_ref<> contained,
                                         std::uint64_t seqno);

    // Returns `f` as a chain node, or null if it is not one.
    static fence_chain* from(fence& f) noexcept;
    // The contained fence of `f` if it is a chain node, else `f` itself.
    static fence& contained_of(fence& f) noexcept;

    fence& contained() const noexcept { return *contained_; }
    // The link to the previous point, referenced (null at the end of the chain).
    fence_ref<> prev() const noexcept;
    // The seqno of prev when this node continued its timeline, else 0. Kept after prev is
    // collected, for find_seqno.
    std::uint64_t prev_seqno() const noexcept { return prev_seqno_; }

    // Consumes the reference `node` and returns the next older point that is not known to be
    // signaled (referenced), or null. Unlinks signaled points from `node` on the way (the
    // compare-and-swap lets concurrent walkers collect the same chain). A non-chain `node` has
    // no next point. May signal contained fences (is_signaled), taking their locks.
    static fence_ref<> walk(fence_ref<> node) noexcept;

    // Moves `node` back to the point whose signalling implies `seqno` on its timeline: the
    // oldest node of the same context with prev_seqno() < seqno, or null if everything up to
    // `seqno` has signaled and been collected. Seqno 0 leaves `node` alone. Returns 0, or
    // -EINVAL (node unchanged) if `node` is not a chain or `seqno` lies in its future.
    static int find_seqno(fence_ref<>& node, std::uint64_t seqno) noexcept;

    // Iterates a chain from `head` backward with walk() (each step may collect signaled
    // points). The iterator holds a reference to the current point, so leaving the loop early
    // leaks nothing.
    class iterator {
    public:
        using value_type = fence;
        using difference_type = std::ptrdiff_t;
        iterator() noexcept = default;
        explicit iterator(fence_ref<> node) noexcept : node_(std::move(node)) {}
        fence& operator*() const noexcept { return *node_; }
        fence* operator->() const noexcept { return node_.get(); }
        iterator& operator++() noexcept {
            node_ = walk(std::move(node_));
            return *this;
        }
        void operator++(int) noexcept { ++*this; }
        bool operator==(std::default_sentinel_t) const noexcept { return !node_; }

    private:
        fence_ref<> node_;
    };
    struct range {
        fence_ref<> head;
        iterator begin() noexcept { return iterator(std::move(head)); }
        std::default_sentinel_t end() const noexcept { return {}; }
    };
    static range nodes(fence& head) noexcept { return range{fence_ref<>(head)}; }

    const char* driver_name() const noexcept override { return "fence_chain"; }
    const char* timeline_name() const noexcept override { return "unbound"; }

    ~fence_chain() override;

protected:
    bool enable_signaling() noexcept override;
    bool signaled() noexcept override;

private:
    struct chain_callback : fence_callback {
        fence_chain* chain = nullptr;
    };

    fence_chain(fence_ref<> prev, fence_ref<> contained, std::uint64_t context,
                std::uint64_t seqno, std::uint64_t prev_seqno) noexcept;
    static void on_contained_signaled(fence& contained, fence_callback& callback) noexcept;
    static void run_deferred(detail::deferred_work& work) noexcept;
    void replace_prev(fence* expected, fence_ref<> replacement) noexcept;

    // Guards prev_ against concurrent walkers (the kernel uses RCU): held only to read and take
    // a reference, or to swap the pointer, never across another call. Not a validated lock.
    mutable detail::raw_spinlock prev_lock_;
    fence* prev_;  // owns one reference
    std::uint64_t prev_seqno_;
    fence_ref<> contained_;
    chain_callback callback_;
    detail::deferred_work work_;
};

}  // namespace fencedep

#endif  // FENCEDEP_CXX20
