// SPDX-License-Identifier: MIT
// fence: the instrumented userspace model of the kernel's dma_fence, its callbacks and references.
#pragma once

#include <fencedep/language.h>
#ifdef FENCEDEP_CXX20

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <type_traits>
#include <utility>

#include <fencedep/lockdep.h>
#include <fencedep/mutex.h>

namespace fencedep {

class fence;
class fence_callback;

namespace detail {
// A deferred work item (the kernel's irq_work), embedded in the fence that queues it; see
// "Deferred work" at fence. `run` is called once per queueing, with no fence lock held.
struct deferred_work {
    deferred_work* next = nullptr;
    void (*run)(deferred_work& work) noexcept = nullptr;
    fence* owner = nullptr;
};
}  // namespace detail

// The clock of signal timestamps: monotonic, as the kernel's ktime.
using fence_clock = std::chrono::steady_clock;

// A fence callback. It runs with the signalled fence's lock held, possibly on another thread,
// so it must not block, must not take that fence's lock again, and must not throw.
using fence_callback_fn = void (*)(fence& signaled, fence_callback& callback) noexcept;

// ---------------------------------------------------------------------------------------------
// fence_callback
//
// The intrusive callback node of the kernel's dma_fence_cb. The caller owns the node (usually as
// a base of its own struct, reached back with static_cast) and keeps it alive until the callback
// has run or has been removed. A node is on at most one fence at a time; adding and running a
// callback never allocates.
//
// Example:
//   struct done : fencedep::fence_callback { std::atomic<bool> seen{false}; };
//   done cb;
//   f->add_callback(cb, [](fencedep::fence&, fencedep::fence_callback& c) noexcept {
//       static_cast<done&>(c).seen = true;
//   });
// ---------------------------------------------------------------------------------------------
class fence_callback {
public:
    fence_callback() noexcept = default;
    fence_callback(const fence_callback&) = delete;
    fence_callback& operator=(const fence_callback&) = delete;

private:
    friend class fence;
    fence_callback* next_ = this;  // circular list; a node pointing at itself is not on a fence
    fence_callback* prev_ = this;
    fence_callback_fn func_ = nullptr;
};

// ---------------------------------------------------------------------------------------------
// fence_ref
//
// An owning handle to one reference of a fence (the kernel's dma_fence_get/put, as a smart
// pointer). Copying takes a reference, destruction drops it; the final drop releases the fence.
// fence_ref<fence_array> converts to fence_ref<fence>.
// ---------------------------------------------------------------------------------------------
template <class T = fence>
class fence_ref {
public:
    constexpr fence_ref() noexcept = default;
    constexpr fence_ref(std::nullptr_t) noexcept {}
    // Takes a new reference on `f`.
    explicit fence_ref(T& f) noexcept : ptr_(&f) { ptr_->get(); }
    fence_ref(const fence_ref& other) noexcept : ptr_(other.ptr_) {
        if (ptr_)
            ptr_->get();
    }
    fence_ref(fence_ref&& other) noexcept : ptr_(std::exchange(other.ptr_, nullptr)) {}
    template <class U>
        requires std::is_convertible_v<U*, T*>
    fence_ref(const fence_ref<U>& other) noexcept : ptr_(other.get()) {
        if (ptr_)
            ptr_->get();
    }
    template <class U>
        requires std::is_convertible_v<U*, T*>
    fence_ref(fence_ref<U>&& other) noexcept : ptr_(other.detach()) {}
    ~fence_ref() { reset(); }

    fence_ref& operator=(fence_ref other) noexcept {
        std::swap(ptr_, other.ptr_);
        return *this;
    }

    // Wraps a reference the caller already owns (a fresh fence starts with one).
    static fence_ref adopt(T* f) noexcept {
        fence_ref r;
        r.ptr_ = f;
        return r;
    }

    // Gives up ownership of the reference without dropping it.
    [[nodiscard]] T* detach() noexcept { return std::exchange(ptr_, nullptr); }

    // Drops the reference (if any).
    void reset() noexcept {
        if (T* f = std::exchange(ptr_, nullptr))
            f->put();
    }

    T* get() const noexcept { return ptr_; }
    T& operator*() const noexcept { return *ptr_; }
    T* operator->() const noexcept { return ptr_; }
    explicit operator bool() const noexcept { return ptr_ != nullptr; }

    template <class U>
    bool operator==(const fence_ref<U>& other) const noexcept {
        return ptr_ == other.get();
    }
    bool operator==(std::nullptr_t) const noexcept { return ptr_ == nullptr; }

private:
    T* ptr_ = nullptr;
};

// Allocates a T (a fence type) with new and returns the handle to its first reference.
// Throws what new or T's constructor throws.
template <class T, class... Args>
fence_ref<T> make_fence(Args&&... args) {
    return fence_ref<T>::adopt(new T(std::forward<Args>(args)...));
}

// Whether a fence's seqno comparisons use all 64 bits (the kernel's SEQNO64) or the 32-bit
// wrap-around rule.
enum class seqno_width : std::uint8_t { bits32, bits64 };

// The class of a fence's own lock, when the fence does not share a driver's lock: a display name
// and the key that is the class's identity.
struct fence_lock_class {
    const char* name;
    lock_class_key& key;
};

// What a fence is, for container rules and context lines.
enum class fence_kind : std::uint8_t { leaf, array, chain };

// ---------------------------------------------------------------------------------------------
// fence
//
// The kernel's struct dma_fence with the classic (v5.9-v7.0) locking contract, instrumented: its
// lock is a fencedep::spinlock, and each operation pushes a context frame (lockdep.h) naming the
// operation and the fence, so that dependencies recorded inside it can be explained in a splat.
// A driver derives from fence and overrides the ops (virtual functions below); the fence
// family (fence_array, fence_chain) is built the same way.
//
// State machine (flags are only ever set; "signaled" is a one-way latch):
//
//   state       | entered by                                  | add_callback() | callbacks
//   ------------+---------------------------------------------+----------------+----------------
//   unsignaled  | construction                                | 0, queued      | pending
//   enabled     | the first add_callback(), enable_sw_        | 0, queued      | pending
//               | signaling() or wait: the enable_signaling() |                |
//               | op ran (once) and armed the driver          |                |
//   signaled    | signal*(); enable_signaling() returning     | -ENOENT, never | each ran once,
//               | false; signaled() returning true in         | called         | in the order
//               | is_signaled*() or get_status*(); release    |                | added, under
//               | with callbacks pending                      |                | the fence lock
//
// set_error() may only be used before the fence signals; get_status() is 0 while unsignaled,
// then 1, or the error.
//
// Locks: a fence's lock is either a spinlock supplied by the driver (shared by many fences, as a
// timeline's lock is in the kernel; its class is the driver's) or the fence's own lock, whose
// class is the fence_lock_class given at construction; fences constructed without one share the
// class "fence->lock". Each call below says which locks it takes.
//
// Enable-signaling mode (option enable_signaling, lib/config): `locked` (the default, classic
// contract) calls enable_signaling() with the fence's lock held; `unlocked` (the June 2026 RFC)
// calls it with no fence lock held. Nothing else changes between the modes.
//
// Deferred work (the kernel's irq_work): containers never signal from inside a child's callback,
// where the child's lock is held; they queue deferred work instead. The queue is per thread. It
// is drained on the thread that queued it when that thread's outermost fence operation returns
// (every call below that takes the fence's lock, except the `_locked` ones, is one), when a
// fence_lock_guard it holds is released, by flush_deferred(), before a wait sleeps, and at
// thread exit. Each item runs under a deferred_work context frame with no fence lock held, and
// items queued while draining are run by the same loop, so a long chain of containers signals
// iteratively, without recursion, and deterministically: when signal() returns, every container
// it completed has signaled. If you hold locks of your own across a fence operation, deferred
// work may run under them; the validator treats it as a context of its own, as lockdep treats
// irq_work, so no dependency from your locks into it is recorded (see context_scope).
//
// Release: the final put() runs release() with no lock held. A release that drops further
// references (containers do) does not recurse: fences reaching zero while a release is running
// on the thread are queued and released by the outermost put(), one after the other, so nesting
// of any depth releases in constant stack space.
//
// Reports: each lock a call takes is validated as a spinlock acquisition (lock_map); the fence
// layer itself reports only container rule violations (fence_array.h, fence_chain.h). Misuse the
// kernel only warns about is documented per call and not reported. Callers must hold a reference
// to a fence across every call on it (as in the kernel); otherwise the behaviour is undefined.
//
// Thread safety: every call may be made from any thread, concurrently with any other call on
// the same fence, except where a call says "Requires: the fence's lock is held".
//
// Example:
//   struct ring_fence : fencedep::fence {
//       using fence::fence;
//       const char* driver_name() const noexcept override { return "ring"; }
//       const char* timeline_name() const noexcept override { return "gfx"; }
//   };
//   fencedep::spinlock ring_lock{"ring->fence_lock"};
//   auto f = fencedep::make_fence<ring_fence>(ring_lock, fencedep::fence::allocate_contexts(1), 1);
//   f->signal();
// ---------------------------------------------------------------------------------------------
class FENCEDEP_API fence {
public:
    // Error sentinel of fence_array before it decides its error; never visible through
    // get_status().
    static constexpr int pending_error = 1;

    // A fence on `lock`, a driver's lock that may be shared by many fences and must outlive
    // this one.
    fence(spinlock& lock, std::uint64_t context, std::uint64_t seqno,
          seqno_width width = seqno_width::bits32) noexcept;
    // A fence with its own lock of class "fence->lock", shared by every fence built this way.
    fence(std::uint64_t context, std::uint64_t seqno,
          seqno_width width = seqno_width::bits32) noexcept;
    // A fence with its own lock of class `lock_class` (e.g. one key per timeline or per ops).
    fence(fence_lock_class lock_class, std::uint64_t context, std::uint64_t seqno,
          seqno_width width = seqno_width::bits32) noexcept;
    virtual ~fence();
    fence(const fence&) = delete;
    fence& operator=(const fence&) = delete;

    // --- names: what every driver overrides ---------------------------------------------------

    // Names for context lines and diagnostics. The strings must stay valid until release()
    // has returned. fencedep asks for them only when it needs them (a new dependency recorded
    // inside an operation on this fence, or a report), on the thread running the operation and
    // possibly with its engine lock held: return a name, without blocking or taking a lock.
    virtual const char* driver_name() const noexcept = 0;
    virtual const char* timeline_name() const noexcept = 0;

    // --- identity ---------------------------------------------------------------------------

    // Returns the first of `n` fresh, consecutive contexts (starting at 1; context 0 belongs to
    // the stub fence). Throws std::invalid_argument if n is 0.
    static std::uint64_t allocate_contexts(unsigned n);

    std::uint64_t context() const noexcept { return context_; }
    std::uint64_t seqno() const noexcept { return seqno_; }
    fence_kind kind() const noexcept { return kind_; }
    bool is_container() const noexcept { return kind_ != fence_kind::leaf; }
    // "fence", "fence_array" or "fence_chain": the kind as context lines print it.
    const char* kind_name() const noexcept;

    // The kernel's "is later" rule for two seqnos of this fence's context: plain `a > b` with
    // 64-bit seqnos, else the signed difference of the low 32 bits is positive (wrap-around).
    bool seqno_is_later(std::uint64_t a, std::uint64_t b) const noexcept;
    // Whether `a` is later than `b` on their common context; false if the contexts differ.
    static bool is_later(const fence& a, const fence& b) noexcept;

    // The lock that protects this fence (the driver's, or the fence's own).
    spinlock& lock() const noexcept { return *lock_; }

    // --- references -------------------------------------------------------------------------

    // Takes a reference. Prefer fence_ref.
    void get() noexcept { refcount_.fetch_add(1, std::memory_order_relaxed); }
    // Drops a reference; the last one releases the fence. If callbacks are still pending on an
    // unsignaled fence (a reference-counting bug), the fence is first signaled with error
    // -EDEADLK under its lock, as the kernel does, so that nobody waits forever. Runs release()
    // under a release context frame.
    void put() noexcept;

    // --- callbacks --------------------------------------------------------------------------

    // Adds `callback` to run `func` when the fence signals. Returns 0 when added, -ENOENT if the
    // fence is already signaled (the callback is then never called), -EINVAL if func is null.
    // Takes the fence's lock and, the first time, enables signaling (in locked mode, nested
    // inside that lock). Context frame: add_callback (and enable_signaling around the op).
    int add_callback(fence_callback& callback, fence_callback_fn func) noexcept;
    // Removes `callback` if it is still pending. Returns true if it was removed, false if it
    // already ran or was never added. Takes the fence's lock; as in the kernel, this is
    // deadlock-prone and meant for recovery paths. Context frame: remove_callback.
    bool remove_callback(fence_callback& callback) noexcept;

    // --- signalling -------------------------------------------------------------------------

    // Signals the fence with the current time as timestamp, and runs every pending callback, in
    // the order added, with the fence's lock held (context frames signal, signal_callback).
    // Returns true if this call signaled the fence, false if it was already signaled.
    // Takes the fence's lock.
    bool signal() noexcept;
    // As signal(), with the given timestamp.
    bool signal_timestamp(fence_clock::time_point timestamp) noexcept;
    // As signal(), for a caller that already holds the fence's lock (e.g. a fence_lock_guard).
    // Requires: the fence's lock is held by the calling thread.
    bool signal_locked() noexcept;

    // Sets the error the fence will signal with: a negative errno (e.g. -EIO, -ECANCELED,
    // -ETIME). Ignored after the fence signaled or for values outside [-4095, -1] (the kernel
    // warns). Takes no lock.
    void set_error(int error) noexcept;
    // Returns 0 while unsignaled, 1 once signaled without error, or the negative error.
    // Takes the fence's lock; may signal the fence through the signaled() op (context frame
    // query).
    int get_status() noexcept;
    // As get_status(). Requires: the fence's lock is held by the calling thread.
    int get_status_locked() noexcept;
    // The error the fence signaled or will signal with; 0 if none (yet).
    int error() const noexcept;
    // Whether the signaled flag is set: no op is called, no lock taken.
    bool test_signaled_flag() const noexcept;
    // Returns true if the fence is signaled. If not yet, asks the signaled() op (context frame
    // query) and, if that says done, signals the fence (taking its lock) first. Never enables
    // signaling, so a fence that was never enabled may never report signaled.
    bool is_signaled() noexcept;
    // As is_signaled(), signalling with signal_locked(). Requires: the fence's lock is held.
    bool is_signaled_locked() noexcept;
    // The signal timestamp. Requires: the fence is signaled (otherwise returns now()).
    fence_clock::time_point timestamp() const noexcept;

    // Enables signaling: the first call runs the enable_signaling() op (see there for the lock).
    // Takes the fence's lock in locked mode. Context frame: enable_signaling.
    void enable_sw_signaling() noexcept;

    // --- waiting ----------------------------------------------------------------------------

    // Blocks until the fence signals. Enables signaling first (taking the fence's lock), then
    // takes the lock again to queue a wake-up callback at the head of the list, and sleeps with
    // no lock held. Before sleeping, runs the calling thread's deferred work, so that a thread
    // never waits for work queued on itself. Context frame: wait. Requires: no fence lock held.
    void wait() noexcept;
    // As wait(), for at most `timeout`. Returns true if the fence is signaled (a zero timeout
    // only polls), false on timeout. A negative timeout counts as zero, and
    // std::chrono::nanoseconds::max() waits forever.
    bool wait_timeout(std::chrono::nanoseconds timeout) noexcept;
    // Waits until any of `fences` signals, for at most `timeout`. Returns the index of the first
    // signaled fence in `fences`, or nothing on timeout (the timeout as for wait_timeout(); zero
    // polls with is_signaled()). Takes each fence's lock in turn, never
    // two at once (context frame wait around each), to add a wake-up callback. Allocates one
    // callback per fence (the kernel does too); throws std::bad_alloc if that fails.
    static std::optional<std::size_t> wait_any(std::span<fence* const> fences,
                                               std::chrono::nanoseconds timeout);

protected:
    // --- ops: what a driver may override (called by the core only) ------------------------

    // Arms the driver to signal the fence later; called at most once, by the first
    // add_callback(), enable_sw_signaling() or wait, never after the fence signaled. Returns
    // true when armed; false means "already done", and the core then signals the fence (with
    // the error, if the op set one). Called with the fence's lock held in enable_signaling=locked
    // mode and without it in unlocked mode. The default arms nothing and returns true: the
    // creator signals the fence.
    virtual bool enable_signaling() noexcept { return true; }
    // A peek: true if the work is done, even though nobody signaled the fence yet. Once true,
    // it must stay true. Called by is_signaled() without the lock and by is_signaled_locked()
    // and get_status() with it. The default says false.
    virtual bool signaled() noexcept { return false; }
    // Frees the fence once its last reference is gone; called with no lock held. The default
    // deletes it (fences made with make_fence()).
    virtual void release() noexcept { delete this; }

    // Whether signaling has been enabled (the enable_signaling() op was or is being called).
    bool signaling_enabled() const noexcept;

private:
    friend class fence_lock_guard;
    friend class fence_array;
    friend class fence_chain;

    // For the containers: their own lock of their kind's class.
    fence(fence_kind kind, fence_lock_class lock_class, std::uint64_t context,
          std::uint64_t seqno, seqno_width width) noexcept;
    // For fence_array: its error starts at pending_error and is decided by compare-and-swap.
    std::atomic<int>& error_slot() noexcept { return error_; }

    enum flag : std::uint32_t {
        flag_signaled = 1u << 0,
        flag_timestamp = 1u << 1,
        flag_enable_signal = 1u << 2,
        flag_seqno64 = 1u << 3,
    };

    // The enable step: calls the enable_signaling() op the first time, signals the fence if it
    // says "done", and returns false if the fence is (now) signaled. `lock_held`: the caller
    // holds the fence's lock (locked mode) or not (unlocked mode). `push_frame` is false when the
    // caller (enable_sw_signaling) has pushed the enable_signaling frame already.
    bool enable_step(bool lock_held, bool push_frame) noexcept;
    bool signal_timestamp_locked(fence_clock::time_point timestamp) noexcept;
    // get_status_locked(), which is_signaled_locked() shares (status 0 is "unsignaled").
    // `push_frame` is false when the caller (get_status) has pushed the query frame already.
    int status_locked(bool push_frame) noexcept;
    void release_now() noexcept;

    spinlock* lock_;
    union {
        spinlock own_lock_;  // constructed only when lock_ == &own_lock_
    };
    std::atomic<std::uint32_t> refcount_{1};
    std::atomic<std::uint32_t> flags_{0};
    std::atomic<int> error_{0};
    fence_kind kind_;
    std::uint64_t context_;
    std::uint64_t seqno_;
    fence_callback callbacks_;  // list head; its func_ is unused
    fence_clock::time_point timestamp_{};
    fence* next_release_ = nullptr;  // link in the thread's pending-release list
};

// ---------------------------------------------------------------------------------------------
// fence_lock_guard
//
// Holds a fence's lock (the kernel's dma_fence_lock_irqsave) as a fence operation: deferred work
// queued while it is held (by signal_locked(), say) runs when the outermost guard is released.
// Use it, rather than locking fence::lock() directly, around the `_locked` calls.
// ---------------------------------------------------------------------------------------------
class FENCEDEP_API fence_lock_guard {
public:
    explicit fence_lock_guard(fence& f) noexcept;
    ~fence_lock_guard();
    fence_lock_guard(const fence_lock_guard&) = delete;
    fence_lock_guard& operator=(const fence_lock_guard&) = delete;

private:
    fence& fence_;
};

// Runs the calling thread's pending deferred work now. For threads that hold a fence's lock
// directly (not through fence_lock_guard) around `_locked` calls: call it after unlocking.
// Does nothing when called from inside a fence operation. Requires: no fence lock held.
FENCEDEP_API void flush_deferred() noexcept;

// The global stub fence: already signaled, context 0, seqno 0 (the kernel's dma_fence_get_stub).
FENCEDEP_API fence_ref<> stub_fence() noexcept;
// A new fence, already signaled with `timestamp`, on context 0 with seqno 0 like the global stub
// (dma_fence_allocate_private_stub).
// Throws std::bad_alloc.
FENCEDEP_API fence_ref<> make_private_stub(fence_clock::time_point timestamp);

}  // namespace fencedep

#endif  // FENCEDEP_CXX20
