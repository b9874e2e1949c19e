// SPDX-License-Identifier: MIT
// resv_lock and resv_acquire_context: a wait-die wound/wait mutex, validated with the context as
// nest_lock (resv.h).
#include <atomic>
#include <cerrno>

#include <fencedep/resv.h>

namespace fencedep {

namespace {
lock_class_key context_key;
lock_class_key resv_key;
std::atomic<std::uint64_t> next_ticket{1};
}  // namespace

resv_acquire_context::resv_acquire_context() noexcept
    : map_("resv_acquire_context", context_key), ticket_(next_ticket.fetch_add(1, std::memory_order_relaxed)) {
    map_.acquire();
}

resv_acquire_context::~resv_acquire_context() { map_.release(); }

resv_lock::resv_lock() noexcept : map_("resv_lock", resv_key) {}

// Takes the real lock. Wait-die: a context that holds other locks and finds this one held by an
// older context backs off instead of waiting (the older one may be waiting for one of its
// locks); an older context, or one that holds nothing, waits.
int resv_lock::take(resv_acquire_context* ctx, bool may_back_off) noexcept {
    std::unique_lock<std::mutex> state(state_lock_);
    for (;;) {
        if (!locked_) {
            locked_ = true;
            owner_ = ctx;
            if (ctx)
                ++ctx->acquired_;
            return 0;
        }
        if (may_back_off && ctx && ctx->acquired_ > 0 && owner_ && owner_->ticket_ < ctx->ticket_)
            return -EDEADLK;
        released_.wait(state);
    }
}

int resv_lock::lock(resv_acquire_context& ctx) noexcept {
    {
        const std::lock_guard<std::mutex> state(state_lock_);
        if (locked_ && owner_ == &ctx)
            return -EALREADY;
    }
    lock_map::acquisition how;
    how.nest_lock = &ctx.map_;
    how.ip = __builtin_return_address(0);
    map_.acquire(how);
    const int result = take(&ctx, true);
    if (result != 0)
        map_.release();
    return result;
}

void resv_lock::lock_slow(resv_acquire_context& ctx) noexcept {
    lock_map::acquisition how;
    how.nest_lock = &ctx.map_;
    how.ip = __builtin_return_address(0);
    map_.acquire(how);
    take(&ctx, false);
}

void resv_lock::lock() noexcept {
    map_.acquire();
    take(nullptr, false);
}

bool resv_lock::try_lock() noexcept {
    {
        const std::lock_guard<std::mutex> state(state_lock_);
        if (locked_)
            return false;
        locked_ = true;
        owner_ = nullptr;
    }
    map_.try_acquire();
    return true;
}

void resv_lock::unlock() noexcept {
    map_.release();
    {
        const std::lock_guard<std::mutex> state(state_lock_);
        if (owner_)
            --owner_->acquired_;
        locked_ = false;
        owner_ = nullptr;
    }
    released_.notify_all();
}

void resv_lock::lock_all(std::span<resv_lock* const> locks, resv_acquire_context& ctx) noexcept {
    resv_lock* contended = nullptr;
    for (;;) {
        if (contended)
            contended->lock_slow(ctx);
        resv_lock* failed = nullptr;
        for (resv_lock* l : locks)
            if (l != contended && l->lock(ctx) == -EDEADLK) {
                failed = l;
                break;
            }
        if (!failed)
            return;
        // Back off: give up everything this context holds, then wait for the contended lock
        // first, so that the older context can finish.
        for (resv_lock* l : locks) {
            if (l == failed)
                break;
            if (l != contended)
                l->unlock();
        }
        if (contended)
            contended->unlock();
        contended = failed;
    }
}

}  // namespace fencedep
