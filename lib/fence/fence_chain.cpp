// SPDX-License-Identifier: MIT
// fence_chain: the seqno contract, one callback hopping backward, walk with collection, find_seqno.
#include <algorithm>
#include <cerrno>
#include <mutex>
#include <stdexcept>

#include <fmt/format.h>

#include <fencedep/fence_chain.h>

#include "engine/engine.h"
#include "fence/operation.h"

namespace fencedep {

namespace {
lock_class_key chain_lock_key;
}  // namespace

fence_chain::fence_chain(fence_ref<> prev, fence_ref<> contained, std::uint64_t context,
                         std::uint64_t seqno, std::uint64_t prev_seqno) noexcept
    : fence(fence_kind::chain, fence_lock_class{"fence_chain->lock", chain_lock_key}, context,
            seqno, seqno_width::bits64),
      prev_(prev.detach()),
      prev_seqno_(prev_seqno),
      contained_(std::move(contained)) {
    callback_.chain = this;
    work_.run = &fence_chain::run_deferred;
    work_.owner = this;
}

fence_chain::~fence_chain() {
    // Nobody walks a node being destroyed; releasing prev here does not recurse (fence.h).
    if (prev_)
        prev_->put();
}

fence_ref<fence_chain> fence_chain::create(fence_ref<> prev, fence_ref<> contained,
                                           std::uint64_t seqno) {
    if (!contained)
        throw std::invalid_argument("fencedep::fence_chain::create: null contained fence");
    std::uint64_t context;
    std::uint64_t prev_seqno = 0;
    fence_chain* prev_chain = prev ? from(*prev) : nullptr;
    if (prev_chain && prev_chain->seqno_is_later(seqno, prev_chain->seqno())) {
        context = prev_chain->context();
        prev_seqno = prev_chain->seqno();
    } else {
        context = allocate_contexts(1);
        if (prev_chain)
            seqno = std::max(prev_chain->seqno(), seqno);
    }
    const bool nested = contained->kind() == fence_kind::chain;
    auto node = fence_ref<fence_chain>::adopt(
        new fence_chain(std::move(prev), std::move(contained), context, seqno, prev_seqno));
    if (nested) {
        const fence& inner = node->contained();
        detail::report_container_nesting(
            __builtin_return_address(0), "fence_chain", "fence_chain",
            fmt::format("fence_chain ctx {} seqno {} was given fence_chain ctx {} seqno {} as "
                        "its contained fence",
                        node->context(), node->seqno(), inner.context(), inner.seqno()),
            "chains may only be linked through prev; to combine chains, flatten them with "
            "fencedep::unwrap_merge() (fencedep/fence_unwrap.h) and put the resulting array in "
            "the chain");
    }
    return node;
}

fence_chain* fence_chain::from(fence& f) noexcept {
    return f.kind() == fence_kind::chain ? static_cast<fence_chain*>(&f) : nullptr;
}

fence& fence_chain::contained_of(fence& f) noexcept {
    fence_chain* chain = from(f);
    return chain ? chain->contained() : f;
}

fence_ref<> fence_chain::prev() const noexcept {
    std::lock_guard<detail::raw_spinlock> guard(prev_lock_);
    return prev_ ? fence_ref<>(*prev_) : fence_ref<>();
}

void fence_chain::replace_prev(fence* expected, fence_ref<> replacement) noexcept {
    fence* old = nullptr;
    {
        std::lock_guard<detail::raw_spinlock> guard(prev_lock_);
        if (prev_ == expected) {
            old = prev_;
            prev_ = replacement.detach();
        }
    }
    // Dropped outside prev_lock_: a put may release fences. If another walker swapped first,
    // `replacement` still holds its reference and drops it here.
    if (old)
        old->put();
}

fence_ref<> fence_chain::walk(fence_ref<> node) noexcept {
    fence_chain* chain = node ? from(*node) : nullptr;
    if (!chain)
        return nullptr;
    fence_ref<> prev;
    while ((prev = chain->prev())) {
        fence_ref<> replacement;
        if (fence_chain* prev_chain = from(*prev)) {
            if (!prev_chain->contained().is_signaled())
                break;
            replacement = prev_chain->prev();
        } else if (!prev->is_signaled()) {
            break;
        }
        chain->replace_prev(prev.get(), std::move(replacement));
    }
    return prev;
}

int fence_chain::find_seqno(fence_ref<>& node, std::uint64_t seqno) noexcept {
    if (seqno == 0)
        return 0;
    fence_chain* chain = node ? from(*node) : nullptr;
    if (!chain || chain->seqno() < seqno)
        return -EINVAL;
    const std::uint64_t context = chain->context();
    fence_ref<> point = std::move(node);
    for (; point; point = walk(std::move(point))) {
        fence_chain* current = from(*point);
        if (!current || current->context() != context || current->prev_seqno() < seqno)
            break;
    }
    node = std::move(point);
    return 0;
}

bool fence_chain::enable_signaling() noexcept {
    get();  // owned by the armed callback, then by the deferred work
    for (fence_ref<> point(*this); point; point = walk(std::move(point))) {
        fence& f = contained_of(*point);
        f.get();  // dropped by the callback
        if (f.add_callback(callback_, &fence_chain::on_contained_signaled) == 0)
            return true;
        f.put();
    }
    put();  // never the last: whoever enables or re-arms the node holds a reference
    return false;
}

void fence_chain::on_contained_signaled(fence& contained, fence_callback& callback) noexcept {
    fence_chain& chain = *static_cast<chain_callback&>(callback).chain;
    // Re-arming here would take the next fence's lock under this one's and recurse once per
    // point; defer it (the kernel's irq_work), handing over the node's reference.
    detail::queue_deferred(chain.work_);
    contained.put();  // the signaller holds its own reference
}

void fence_chain::run_deferred(detail::deferred_work& work) noexcept {
    fence_chain& chain = static_cast<fence_chain&>(*work.owner);
    {
        detail::frame_scope frame(fence_op::deferred_work, chain);
        bool armed;
        {
            // Re-armed without the node's lock in both modes, as the kernel up to v7.0 does.
            detail::frame_scope enabling(fence_op::enable_signaling, chain);
            armed = chain.enable_signaling();
        }
        if (!armed)
            chain.signal();
    }
    chain.put();
}

bool fence_chain::signaled() noexcept {
    for (fence_ref<> point(*this); point; point = walk(std::move(point)))
        if (!contained_of(*point).is_signaled())
            return false;
    return true;
}

}  // namespace fencedep
