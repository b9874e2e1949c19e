// SPDX-License-Identifier: MIT
// unwrap and unwrap_merge: iterate the leaves of arrays and chains, and flatten fences into one.
#pragma once

#include <fencedep/language.h>
#ifdef FENCEDEP_CXX20

#include <cstddef>
#include <initializer_list>
#include <iterator>
#include <span>

#include <fencedep/fence.h>

namespace fencedep {

// ---------------------------------------------------------------------------------------------
// unwrap
//
// The kernel's dma_fence_unwrap_for_each: iterates the leaf fences of `head`. A plain fence
// yields itself; an array yields its children; a chain yields, newest point first, each point's
// contained fence (or that array's children), then a trailing non-chain prev. That is the only
// nesting the container rules allow (chain -> array -> leaf); deeper containers are yielded as
// they are. The yielded fences are not referenced (the containers keep them alive) and signaled
// leaves are not filtered, but walking the chain collects points already signaled (fence_chain).
// The iterator holds a reference to the current chain point, so leaving early leaks nothing.
// Takes the locks that is_signaled() on contained fences may take (fence_chain::walk).
//
// Example:
//   for (fencedep::fence& leaf : fencedep::unwrap(*timeline_point))
//       leaf.enable_sw_signaling();
// ---------------------------------------------------------------------------------------------
class FENCEDEP_API unwrap_iterator {
public:
    using value_type = fence;
    using difference_type = std::ptrdiff_t;
    unwrap_iterator() noexcept = default;
    explicit unwrap_iterator(fence& head) noexcept;
    fence& operator*() const noexcept { return *current_; }
    fence* operator->() const noexcept { return current_; }
    unwrap_iterator& operator++() noexcept;
    void operator++(int) noexcept { ++*this; }
    bool operator==(std::default_sentinel_t) const noexcept { return current_ == nullptr; }

private:
    void enter_point() noexcept;
    fence_ref<> point_;        // the current chain point (or the head)
    fence* array_ = nullptr;   // its contained fence, maybe an array
    std::size_t index_ = 0;    // within array_
    fence* current_ = nullptr;
};

struct unwrap_range {
    fence* head;
    unwrap_iterator begin() const noexcept { return unwrap_iterator(*head); }
    std::default_sentinel_t end() const noexcept { return {}; }
};

inline unwrap_range unwrap(fence& head) noexcept { return unwrap_range{&head}; }

// ---------------------------------------------------------------------------------------------
// unwrap_merge
//
// The kernel's dma_fence_unwrap_merge: one fence that signals when all of `fences` have, always
// flat (never a container in a container), and the approved way to combine containers.
// Unwraps every input, drops the leaves already signaled, and keeps for each context only the
// latest seqno. Returns:
//   - when nothing is left unsignaled, a new stub fence already signaled with the latest
//     timestamp among the inputs (make_private_stub);
//   - when one fence is left, that fence itself (a new reference);
//   - otherwise a new fence_array (fresh context, seqno 1, signal when all) over the remaining
//     leaves, sorted by context.
// Takes no container lock and does not enable signaling: it records no container edges. Its
// is_signaled() calls may signal leaves, taking their locks.
// Throws std::bad_alloc if allocation fails.
//
// Example:
//   auto all = fencedep::unwrap_merge({array.get(), chain.get()});
// ---------------------------------------------------------------------------------------------
FENCEDEP_API fence_ref<> unwrap_merge(std::span<fence* const> fences);
inline fence_ref<> unwrap_merge(std::initializer_list<fence*> fences) {
    return unwrap_merge(std::span<fence* const>(fences.begin(), fences.size()));
}

}  // namespace fencedep

#endif  // FENCEDEP_CXX20
