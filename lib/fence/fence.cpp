// SPDX-License-Identifier: MIT
// fence: references, callbacks, signalling, waiting, and the thread's deferred-work queue.
#include <cerrno>
#include <memory>
#include <new>
#include <semaphore>
#include <stdexcept>

#include <fencedep/fence.h>
#include <fencedep/signalling.h>

#include "fence/operation.h"

namespace fencedep {

namespace {

// Per-thread state. Trivially constructible and destructible, so reaching it costs no TLS guard
// on the hot path; draining at thread exit is registered separately (exit_drain). Initial-exec,
// as the engine's own: one load from the thread pointer instead of a __tls_get_addr call on
// every fence operation.
struct thread_fence_state {
    unsigned depth;          // nesting of fence operations on this thread
    bool draining;           // the deferred queue is being run (further ends must not recurse)
    detail::deferred_work* head;
    detail::deferred_work* tail;
    bool releasing;          // a final put() is running release() on this thread
    fence* release_head;     // fences whose release waits for the running one to finish
};
[[gnu::tls_model("initial-exec")]] constinit thread_local thread_fence_state tls{};

void drain() noexcept {
    thread_fence_state& s = tls;
    if (s.draining)
        return;
    s.draining = true;
    while (detail::deferred_work* work = s.head) {
        s.head = work->next;
        if (!s.head)
            s.tail = nullptr;
        work->next = nullptr;
        work->run(*work);
    }
    s.draining = false;
}

void enter_operation() noexcept { ++tls.depth; }

void leave_operation() noexcept {
    thread_fence_state& s = tls;
    if (--s.depth == 0 && s.head)
        drain();
}

// Work queued by a thread that never runs another fence operation (it held a fence's lock
// directly around a `_locked` call, then exited) must still run, or containers never signal.
struct exit_drain {
    ~exit_drain() { drain(); }
};
thread_local exit_drain exit_drainer;

// The default lock class for fences constructed without a lock or a class.
lock_class_key default_fence_key;
lock_class_key stub_key;

// Context 0 and seqno 0, as the kernel's stubs: context 0 is never allocated to a timeline.
class stub final : public fence {
public:
    stub() noexcept : fence(fence_lock_class{"fence_stub->lock", stub_key}, 0, 0) {}
    const char* driver_name() const noexcept override { return "stub"; }
    const char* timeline_name() const noexcept override { return "stub"; }
};

constexpr int max_errno = 4095;

}  // namespace

namespace detail {

void name_fence(context_frame& frame) noexcept {
    const fence& f = *static_cast<const fence*>(frame.subject);
    frame.kind = f.kind_name();
    frame.driver = f.driver_name();
    frame.timeline = f.timeline_name();
    frame.context = f.context();
    frame.seqno = f.seqno();
}

operation_scope::operation_scope() noexcept { enter_operation(); }

operation_scope::~operation_scope() { leave_operation(); }

void queue_deferred(deferred_work& work) noexcept {
    thread_fence_state& s = tls;
    if (!s.head)
        (void)&exit_drainer;  // first use on this thread registers the exit drain
    work.next = nullptr;
    if (s.tail)
        s.tail->next = &work;
    else
        s.head = &work;
    s.tail = &work;
}

void run_deferred_before_blocking() noexcept {
    if (tls.depth == 1)
        drain();
}

}  // namespace detail

void flush_deferred() noexcept {
    if (tls.depth == 0)
        drain();
}

// --- construction --------------------------------------------------------------------------

fence::fence(fence_kind kind, fence_lock_class lock_class, std::uint64_t context,
             std::uint64_t seqno, seqno_width width) noexcept
    : flags_(width == seqno_width::bits64 ? std::uint32_t{flag_seqno64} : 0u),
      kind_(kind),
      context_(context),
      seqno_(seqno) {
    lock_ = new (&own_lock_) spinlock(lock_class.name, lock_class.key);
}

fence::fence(spinlock& lock, std::uint64_t context, std::uint64_t seqno, seqno_width width) noexcept
    : lock_(&lock),
      flags_(width == seqno_width::bits64 ? std::uint32_t{flag_seqno64} : 0u),
      kind_(fence_kind::leaf),
      context_(context),
      seqno_(seqno) {}

fence::fence(std::uint64_t context, std::uint64_t seqno, seqno_width width) noexcept
    : fence(fence_kind::leaf, fence_lock_class{"fence->lock", default_fence_key}, context, seqno,
            width) {}

fence::fence(fence_lock_class lock_class, std::uint64_t context, std::uint64_t seqno,
             seqno_width width) noexcept
    : fence(fence_kind::leaf, lock_class, context, seqno, width) {}

fence::~fence() {
    if (lock_ == &own_lock_)
        own_lock_.~spinlock();
}

std::uint64_t fence::allocate_contexts(unsigned n) {
    static std::atomic<std::uint64_t> next_context{1};
    if (n == 0)
        throw std::invalid_argument("fencedep::fence::allocate_contexts: n must be at least 1");
    return next_context.fetch_add(n, std::memory_order_relaxed);
}

const char* fence::kind_name() const noexcept {
    switch (kind_) {
    case fence_kind::array:
        return "fence_array";
    case fence_kind::chain:
        return "fence_chain";
    case fence_kind::leaf:
        break;
    }
    return "fence";
}

bool fence::seqno_is_later(std::uint64_t a, std::uint64_t b) const noexcept {
    if (flags_.load(std::memory_order_relaxed) & flag_seqno64)
        return a > b;
    return static_cast<std::int32_t>(static_cast<std::uint32_t>(a) - static_cast<std::uint32_t>(b)) > 0;
}

bool fence::is_later(const fence& a, const fence& b) noexcept {
    return a.context_ == b.context_ && a.seqno_is_later(a.seqno_, b.seqno_);
}

bool fence::signaling_enabled() const noexcept {
    return flags_.load(std::memory_order_acquire) & flag_enable_signal;
}

// --- references ----------------------------------------------------------------------------

void fence::put() noexcept {
    if (refcount_.fetch_sub(1, std::memory_order_acq_rel) != 1)
        return;
    thread_fence_state& s = tls;
    if (s.releasing) {
        // A release is running further up this thread's stack (a container dropping its
        // children): queue this one instead of recursing, so depth stays constant.
        next_release_ = s.release_head;
        s.release_head = this;
        return;
    }
    s.releasing = true;
    release_now();
    while (fence* f = s.release_head) {
        s.release_head = f->next_release_;
        f->release_now();
    }
    s.releasing = false;
}

void fence::release_now() noexcept {
    // Nobody else holds a reference, so the list can be read without the lock.
    if (!test_signaled_flag() && callbacks_.next_ != &callbacks_) {
        error_.store(-EDEADLK, std::memory_order_relaxed);
        signal();
    }
    // Named now: release() destroys the fence while its frame is pushed.
    detail::frame_scope frame(fence_op::release, *this, detail::name_now);
    release();
}

// --- enable signaling ----------------------------------------------------------------------

bool fence::enable_step(bool lock_held, bool push_frame) noexcept {
    const std::uint32_t old = flags_.fetch_or(flag_enable_signal, std::memory_order_acq_rel);
    if (old & flag_signaled)
        return false;
    if (old & flag_enable_signal)
        return true;
    bool armed;
    {
        std::optional<detail::frame_scope> frame;
        if (push_frame)
            frame.emplace(fence_op::enable_signaling, *this);
        armed = enable_signaling();
    }
    if (armed)
        return true;
    if (lock_held)
        signal_locked();
    else
        signal();
    return false;
}

void fence::enable_sw_signaling() noexcept {
    detail::operation_scope operation;
    detail::frame_scope frame(fence_op::enable_signaling, *this);
    if (detail::enable_signaling_unlocked()) {
        enable_step(false, false);
        return;
    }
    lock_->lock();
    enable_step(true, false);
    lock_->unlock();
}

// --- callbacks -----------------------------------------------------------------------------

int fence::add_callback(fence_callback& callback, fence_callback_fn func) noexcept {
    if (!func)
        return -EINVAL;
    if (test_signaled_flag()) {
        callback.next_ = callback.prev_ = &callback;
        return -ENOENT;
    }
    detail::operation_scope operation;
    detail::frame_scope frame(fence_op::add_callback, *this);
    const bool unlocked = detail::enable_signaling_unlocked();
    if (unlocked)
        enable_step(false, true);
    lock_->lock();
    const bool armed = unlocked ? !test_signaled_flag() : enable_step(true, true);
    if (armed) {
        callback.func_ = func;
        callback.prev_ = callbacks_.prev_;
        callback.next_ = &callbacks_;
        callbacks_.prev_->next_ = &callback;
        callbacks_.prev_ = &callback;
    } else {
        callback.next_ = callback.prev_ = &callback;
    }
    lock_->unlock();
    return armed ? 0 : -ENOENT;
}

bool fence::remove_callback(fence_callback& callback) noexcept {
    detail::operation_scope operation;
    detail::frame_scope frame(fence_op::remove_callback, *this);
    lock_->lock();
    const bool linked = callback.next_ != &callback;
    if (linked) {
        callback.next_->prev_ = callback.prev_;
        callback.prev_->next_ = callback.next_;
        callback.next_ = callback.prev_ = &callback;
    }
    lock_->unlock();
    return linked;
}

// --- signalling ----------------------------------------------------------------------------

bool fence::signal_timestamp_locked(fence_clock::time_point timestamp) noexcept {
    if (flags_.fetch_or(flag_signaled, std::memory_order_acq_rel) & flag_signaled)
        return false;
    // Detach the list first: a callback may add or remove callbacks on other fences, and this
    // fence's list is dead from here on.
    fence_callback pending;
    if (callbacks_.next_ != &callbacks_) {
        pending.next_ = callbacks_.next_;
        pending.prev_ = callbacks_.prev_;
        pending.next_->prev_ = &pending;
        pending.prev_->next_ = &pending;
        callbacks_.next_ = callbacks_.prev_ = &callbacks_;
    }
    timestamp_ = timestamp;
    flags_.fetch_or(flag_timestamp, std::memory_order_release);
    if (pending.next_ == &pending)
        return true;
    detail::frame_scope frame(fence_op::signal_callback, *this);
    while (pending.next_ != &pending) {
        fence_callback* cb = pending.next_;
        pending.next_ = cb->next_;
        cb->next_->prev_ = &pending;
        cb->next_ = cb->prev_ = cb;
        cb->func_(*this, *cb);
    }
    return true;
}

// The kernel's dma_fence_signal() is a signalling section of its own; the timestamp and
// `_locked` variants are not (their callers are expected to be in one already).
bool fence::signal() noexcept {
    const bool cookie = !enabled() || detail::begin_signalling(nullptr, 0);
    const bool signaled_now = signal_timestamp(fence_clock::now());
    end_signalling(cookie);
    return signaled_now;
}

bool fence::signal_timestamp(fence_clock::time_point timestamp) noexcept {
    detail::operation_scope operation;
    detail::frame_scope frame(fence_op::signal, *this);
    lock_->lock();
    const bool signaled_now = signal_timestamp_locked(timestamp);
    lock_->unlock();
    return signaled_now;
}

bool fence::signal_locked() noexcept {
    detail::frame_scope frame(fence_op::signal, *this);
    return signal_timestamp_locked(fence_clock::now());
}

void fence::set_error(int error) noexcept {
    if (error < -max_errno || error >= 0 || test_signaled_flag())
        return;
    error_.store(error, std::memory_order_relaxed);
}

int fence::error() const noexcept {
    const int e = error_.load(std::memory_order_acquire);
    return e < 0 ? e : 0;
}

bool fence::test_signaled_flag() const noexcept {
    return flags_.load(std::memory_order_acquire) & flag_signaled;
}

bool fence::is_signaled() noexcept {
    if (test_signaled_flag())
        return true;
    detail::operation_scope operation;
    detail::frame_scope frame(fence_op::query, *this);
    if (!signaled())
        return false;
    signal();
    return true;
}

int fence::status_locked(bool push_frame) noexcept {
    if (!test_signaled_flag()) {
        std::optional<detail::frame_scope> frame;
        if (push_frame)
            frame.emplace(fence_op::query, *this);
        if (!signaled())
            return 0;
        signal_locked();
    }
    const int e = error();
    return e < 0 ? e : 1;
}

bool fence::is_signaled_locked() noexcept { return status_locked(true) != 0; }

int fence::get_status_locked() noexcept { return status_locked(true); }

int fence::get_status() noexcept {
    detail::operation_scope operation;
    // One frame for the whole call: it must already name the query when the lock is taken.
    detail::frame_scope frame(fence_op::query, *this);
    lock_->lock();
    const int status = status_locked(false);
    lock_->unlock();
    return status;
}

fence_clock::time_point fence::timestamp() const noexcept {
    if (!test_signaled_flag())
        return fence_clock::now();
    // The flag is set a moment before the timestamp is stored; the window is a few stores.
    while (!(flags_.load(std::memory_order_acquire) & flag_timestamp)) {
#if defined(__x86_64__) || defined(__i386__)
        __builtin_ia32_pause();
#endif
    }
    return timestamp_;
}

// --- waiting -------------------------------------------------------------------------------

namespace {

// Wakes one waiter. The semaphore is released under the signalled fence's lock, and the waiter
// takes that lock again before the semaphore goes out of scope, so it never dies under a
// running callback.
template <class Semaphore>
struct wake_callback : fence_callback {
    Semaphore* semaphore = nullptr;
    static void wake(fence&, fence_callback& cb) noexcept {
        static_cast<wake_callback&>(cb).semaphore->release();
    }
};

template <class Semaphore>
bool acquire_for(Semaphore& semaphore, std::chrono::nanoseconds timeout) {
    if (timeout == std::chrono::nanoseconds::max()) {
        semaphore.acquire();
        return true;
    }
    return semaphore.try_acquire_for(timeout);
}

}  // namespace

bool fence::wait_timeout(std::chrono::nanoseconds timeout) noexcept {
    if (timeout < std::chrono::nanoseconds::zero())
        timeout = std::chrono::nanoseconds::zero();
    detail::operation_scope operation;
    detail::frame_scope frame(fence_op::wait, *this);
    // Whether or not this call will block, the wait is a dependency (signalling.h).
    might_wait_on_fence();
    enable_sw_signaling();

    std::binary_semaphore woken{0};
    wake_callback<std::binary_semaphore> waiter;
    waiter.semaphore = &woken;
    lock_->lock();
    if (test_signaled_flag()) {
        lock_->unlock();
        return true;
    }
    if (timeout == std::chrono::nanoseconds::zero()) {
        lock_->unlock();
        return false;
    }
    // At the head, as the kernel's default wait does: waking the waiter goes before the
    // (possibly slow) callbacks added earlier.
    waiter.func_ = &wake_callback<std::binary_semaphore>::wake;
    waiter.next_ = callbacks_.next_;
    waiter.prev_ = &callbacks_;
    callbacks_.next_->prev_ = &waiter;
    callbacks_.next_ = &waiter;
    lock_->unlock();

    detail::run_deferred_before_blocking();
    acquire_for(woken, timeout);

    lock_->lock();
    const bool done = test_signaled_flag();
    if (waiter.next_ != &waiter) {
        waiter.next_->prev_ = waiter.prev_;
        waiter.prev_->next_ = waiter.next_;
    }
    lock_->unlock();
    return done;
}

void fence::wait() noexcept { wait_timeout(std::chrono::nanoseconds::max()); }

std::optional<std::size_t> fence::wait_any(std::span<fence* const> fences,
                                           std::chrono::nanoseconds timeout) {
    if (!fences.empty()) {
        // Whether or not this call will block, the wait is a dependency (signalling.h); one is
        // enough, named after the first fence.
        const detail::frame_scope frame(fence_op::wait, *fences.front());
        might_wait_on_fence();
    }
    if (timeout <= std::chrono::nanoseconds::zero()) {
        for (std::size_t i = 0; i < fences.size(); ++i)
            if (fences[i]->is_signaled())
                return i;
        return std::nullopt;
    }
    using semaphore = std::counting_semaphore<>;
    auto waiters = std::make_unique<wake_callback<semaphore>[]>(fences.size());
    semaphore woken{0};
    detail::operation_scope operation;
    std::optional<std::size_t> found;
    std::size_t added = 0;
    for (; added < fences.size(); ++added) {
        detail::frame_scope frame(fence_op::wait, *fences[added]);
        waiters[added].semaphore = &woken;
        if (fences[added]->add_callback(waiters[added], &wake_callback<semaphore>::wake) != 0) {
            found = added;
            break;
        }
    }
    if (!found) {
        detail::run_deferred_before_blocking();
        acquire_for(woken, timeout);
        for (std::size_t i = 0; i < added && !found; ++i)
            if (fences[i]->test_signaled_flag())
                found = i;
    }
    // Taking each lock also waits out a wake-up still running under it.
    for (std::size_t i = 0; i < added; ++i)
        fences[i]->remove_callback(waiters[i]);
    return found;
}

// --- fence_lock_guard ----------------------------------------------------------------------

fence_lock_guard::fence_lock_guard(fence& f) noexcept : fence_(f) {
    enter_operation();
    fence_.lock_->lock();
}

fence_lock_guard::~fence_lock_guard() {
    fence_.lock_->unlock();
    leave_operation();
}

// --- stubs ---------------------------------------------------------------------------------

fence_ref<> stub_fence() noexcept {
    // Never freed: fences may hold it until the very end of the process.
    static fence* const the_stub = [] {
        fence* f = new stub();
        f->signal();
        return f;
    }();
    return fence_ref<>(*the_stub);
}

fence_ref<> make_private_stub(fence_clock::time_point timestamp) {
    auto f = make_fence<stub>();
    f->signal_timestamp(timestamp);
    return f;
}

}  // namespace fencedep
