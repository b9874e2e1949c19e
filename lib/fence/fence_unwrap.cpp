// SPDX-License-Identifier: MIT
// unwrap and unwrap_merge: leaf iteration over chain -> array -> leaf, and flattening with dedup.
#include <algorithm>
#include <vector>

#include <fencedep/fence_array.h>
#include <fencedep/fence_chain.h>
#include <fencedep/fence_unwrap.h>

namespace fencedep {

unwrap_iterator::unwrap_iterator(fence& head) noexcept : point_(head) { enter_point(); }

void unwrap_iterator::enter_point() noexcept {
    array_ = &fence_chain::contained_of(*point_);
    index_ = 0;
    fence_array* array = fence_array::from(*array_);
    current_ = array ? array->fences()[0].get() : array_;
}

unwrap_iterator& unwrap_iterator::operator++() noexcept {
    if (fence_array* array = fence_array::from(*array_); array && ++index_ < array->fences().size()) {
        current_ = array->fences()[index_].get();
        return *this;
    }
    point_ = fence_chain::walk(std::move(point_));
    if (point_)
        enter_point();
    else
        current_ = nullptr;
    return *this;
}

namespace {

// Sorts by context, the latest seqno of each context first, and keeps that one per context.
void dedup(std::vector<fence_ref<>>& fences) {
    std::sort(fences.begin(), fences.end(), [](const fence_ref<>& a, const fence_ref<>& b) {
        if (a->context() != b->context())
            return a->context() < b->context();
        return fence::is_later(*a, *b);
    });
    fences.erase(std::unique(fences.begin(), fences.end(),
                             [](const fence_ref<>& a, const fence_ref<>& b) {
                                 return a->context() == b->context();
                             }),
                 fences.end());
}

}  // namespace

fence_ref<> unwrap_merge(std::span<fence* const> fences) {
    fence_clock::time_point latest{};
    std::vector<fence_ref<>> pending;
    for (fence* input : fences) {
        for (fence& leaf : unwrap(*input)) {
            if (!leaf.is_signaled())
                pending.emplace_back(leaf);
            else
                latest = std::max(latest, leaf.timestamp());
        }
    }
    if (pending.empty())
        return make_private_stub(latest);
    dedup(pending);
    if (pending.size() == 1)
        return std::move(pending.front());
    return fence_array::create(std::move(pending), fence::allocate_contexts(1), 1);
}

}  // namespace fencedep
