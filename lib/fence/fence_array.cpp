// SPDX-License-Identifier: MIT
// fence_array: enabling (callbacks on every child), deferred signalling, first error wins.
#include <cerrno>
#include <stdexcept>
#include <string>

#include <fmt/format.h>

#include <fencedep/fence_array.h>

#include "engine/engine.h"
#include "fence/operation.h"

namespace fencedep {

namespace {
lock_class_key array_lock_key;
}  // namespace

fence_array::fence_array(std::vector<fence_ref<>> fences, std::uint64_t context,
                         std::uint64_t seqno, bool signal_on_any)
    : fence(fence_kind::array, fence_lock_class{"fence_array->lock", array_lock_key}, context,
            seqno, seqno_width::bits32),
      fences_(std::move(fences)),
      callbacks_(std::make_unique<child_callback[]>(fences_.size())),
      num_pending_(signal_on_any ? 1 : static_cast<int>(fences_.size())),
      signal_on_any_(signal_on_any) {
    error_slot().store(pending_error, std::memory_order_relaxed);
    work_.run = &fence_array::run_deferred;
    work_.owner = this;
    for (std::size_t i = 0; i < fences_.size(); ++i)
        callbacks_[i].array = this;
}

fence_ref<fence_array> fence_array::create(std::vector<fence_ref<>> fences,
                                           std::uint64_t context, std::uint64_t seqno,
                                           bool signal_on_any) {
    if (fences.empty())
        throw std::invalid_argument("fencedep::fence_array::create: no fences");
    for (const fence_ref<>& f : fences)
        if (!f)
            throw std::invalid_argument("fencedep::fence_array::create: null fence");
    auto array = fence_ref<fence_array>::adopt(
        new fence_array(std::move(fences), context, seqno, signal_on_any));
    for (std::size_t i = 0; i < array->fences_.size(); ++i) {
        const fence& child = *array->fences_[i];
        if (!child.is_container())
            continue;
        detail::report_container_nesting(
            __builtin_return_address(0), "fence_array", child.kind_name(),
            fmt::format("fence_array ctx {} seqno {} was given {} ctx {} seqno {} as child {}",
                        array->context(), array->seqno(), child.kind_name(), child.context(),
                        child.seqno(), i),
            "a container inside an array nests container locks and recurses on every "
            "operation; flatten the children first with fencedep::unwrap_merge() "
            "(fencedep/fence_unwrap.h), which returns a flat fence_array of the leaves");
    }
    return array;
}

fence_array* fence_array::from(fence& f) noexcept {
    return f.kind() == fence_kind::array ? static_cast<fence_array*>(&f) : nullptr;
}

void fence_array::note_error(int error) noexcept {
    int expected = pending_error;
    if (error < 0)
        error_slot().compare_exchange_strong(expected, error, std::memory_order_acq_rel);
}

void fence_array::decide_no_error() noexcept {
    int expected = pending_error;
    error_slot().compare_exchange_strong(expected, 0, std::memory_order_acq_rel);
}

bool fence_array::enable_signaling() noexcept {
    for (std::size_t i = 0; i < fences_.size(); ++i) {
        // Each armed callback owns a reference to the array, dropped when it runs.
        get();
        fence& child = *fences_[i];
        if (child.add_callback(callbacks_[i], &fence_array::on_child_signaled) == 0)
            continue;
        note_error(child.error());
        put();  // never the last: whoever enables the array holds a reference
        if (num_pending_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
            decide_no_error();
            return false;
        }
    }
    return true;
}

void fence_array::on_child_signaled(fence& child, fence_callback& callback) noexcept {
    fence_array& array = *static_cast<child_callback&>(callback).array;
    array.note_error(child.error());
    // Signalling the array here would take its lock under the child's: an edge opposite to the
    // enable path's, and recursion when containers nest. Defer it, handing over this reference.
    if (array.num_pending_.fetch_sub(1, std::memory_order_acq_rel) == 1)
        detail::queue_deferred(array.work_);
    else
        array.put();
}

void fence_array::run_deferred(detail::deferred_work& work) noexcept {
    fence_array& array = static_cast<fence_array&>(*work.owner);
    {
        detail::frame_scope frame(fence_op::deferred_work, array);
        array.decide_no_error();
        array.signal();
    }
    array.put();
}

bool fence_array::signaled() noexcept {
    int pending = num_pending_.load(std::memory_order_acquire);
    if (!signaling_enabled()) {
        // Nobody counts down for an array that was never enabled: count the children now. Their
        // errors are not taken, as in the kernel: only enabling and the callbacks record them.
        for (const fence_ref<>& child : fences_) {
            if (pending <= 0)
                break;
            if (child->is_signaled())
                --pending;
        }
    }
    if (pending > 0)
        return false;
    decide_no_error();
    return true;
}

}  // namespace fencedep
