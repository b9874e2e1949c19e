// SPDX-License-Identifier: MIT
// The validator's event API: lock classes, pseudo-locks, context frames and the global switch.
#pragma once

#include <fencedep/language.h>
#ifdef FENCEDEP_CXX20

#include <atomic>
#include <cstdint>
#include <optional>
#include <source_location>

#include <fencedep/report.h>

#if defined(__GNUC__)
#define FENCEDEP_API __attribute__((visibility("default")))
#define FENCEDEP_ALWAYS_INLINE [[gnu::always_inline]] inline
#else
#define FENCEDEP_API
#define FENCEDEP_ALWAYS_INLINE inline
#endif
// The engine's hooks, called on every lock and unlock while validation is on: with g++, through
// the GOT rather than a PLT stub, one jump less per call (clang has no such attribute).
#if defined(__GNUC__) && !defined(__clang__)
#define FENCEDEP_HOOK [[gnu::noplt]]
#else
#define FENCEDEP_HOOK
#endif

namespace fencedep {

// Where a lock was constructed: std::source_location where the standard library provides it.
// clang before 15 cannot build libstdc++'s, so there the same facts come from the builtins that
// both compilers have had for years. Only inline code sees this type; the library's entry points
// take the plain file, line and column, so one libfencedep serves code built by either compiler.
#if defined(__cpp_lib_source_location)
using source_location = std::source_location;
#else
class source_location {
public:
    static constexpr source_location current(const char* file = __builtin_FILE(),
                                             const char* function = __builtin_FUNCTION(),
                                             unsigned line = __builtin_LINE(),
                                             unsigned column = __builtin_COLUMN()) noexcept {
        source_location site;
        site.file_ = file;
        site.function_ = function;
        site.line_ = line;
        site.column_ = column;
        return site;
    }
    constexpr source_location() noexcept = default;
    constexpr const char* file_name() const noexcept { return file_; }
    constexpr const char* function_name() const noexcept { return function_; }
    constexpr unsigned line() const noexcept { return line_; }
    constexpr unsigned column() const noexcept { return column_; }

private:
    const char* file_ = "";
    const char* function_ = "";
    unsigned line_ = 0;
    unsigned column_ = 0;
};
#endif

// ---------------------------------------------------------------------------------------------
// lock_class_key
//
// The identity of a lock class, as in the kernel: the key's *address* is the class, and each of
// the 8 subclasses (0-7) of one key is a class of its own. A key must outlive every lock that uses
// it, so define keys with static storage duration:
//
//   static fencedep::lock_class_key ring_lock_key;
//   fencedep::spinlock lock{"ring->lock", ring_lock_key};
//
// The members are the engine's lock-free cache of the class ids; they are not part of the API.
// ---------------------------------------------------------------------------------------------
struct lock_class_key {
    static constexpr unsigned subclasses = 8;
    // Per subclass: (engine generation << 32) | class id; 0 means "not registered yet".
    std::atomic<std::uint64_t> cached_class[subclasses] = {};
};

namespace detail {
struct engine_access;
// How a context frame was pushed (context_scope).
enum class frame_pushed : unsigned char { no, plain, segment };
// The gate: one relaxed load per hook when fencedep is off. Written by enable() and by the
// engine when it steps aside (full tables, internal failure).
FENCEDEP_API extern std::atomic<bool> gate;
}  // namespace detail

// Returns whether validation is on. Costs one relaxed load of the gate byte: on x86-64 a compare
// with memory, which the caller's branch uses directly (a relaxed atomic load would be a load and
// a test, one instruction more on every hook of every lock while fencedep is off). The asm is
// volatile so that, like the atomic load, it is never merged with another or hoisted out of a loop.
FENCEDEP_ALWAYS_INLINE bool enabled() noexcept {
#if defined(__x86_64__) && defined(__GCC_ASM_FLAG_OUTPUTS__)
    bool on;
    asm volatile("cmpb $0, %1" : "=@ccne"(on) : "m"(detail::gate));
    return on;
#else
    return detail::gate.load(std::memory_order_relaxed);
#endif
}

// Switches validation on or off in code, as FENCEDEP=1 does from the environment.
// Switching on from off starts every thread from an empty held-lock stack at its next acquisition
// (locks taken while off are not known to the validator, so releasing one later is a bad unlock,
// as in lockdep; until then, the lock on top of its old stack is still matched by its release);
// enable(true) while on changes nothing. Classes, edges and reports seen so far are kept (see
// reset()). After a table filled up, only reset() followed by enable(true) switches it back on.
// Options come from FENCEDEP_OPTIONS, read once at start-up.
// Takes the engine lock. Reports nothing.
FENCEDEP_API void enable(bool on);

// Forgets every class, edge, chain and already-reported cycle, and sets splat_count() to 0, so that
// a test can run each case from a fresh state, as the kernel's locking selftests do.
// Requires: no fencedep lock is held by any thread, and no other thread is inside a fencedep call.
// Stack traces already interned are kept (they are never freed). Takes the engine lock.
FENCEDEP_API void reset();

// Writes the graph learned so far to `path` as a JSON graph dump ("fencedep-graph/1", see the
// README, "Graph dumps"): every class (name, key symbol, construction site), every edge with the
// symbolized stack and fence context of the first acquisition of each kind that recorded it, and
// this run's program, pid and time. fencedep-graph merges, draws and counts such dumps. The
// graph_path option writes one at exit.
// The file is written beside `path` and renamed over it, so that a reader never sees half a dump.
// Returns true if it was written. Otherwise returns false with one line naming the path and the
// reason in `*error`, or, if `error` is null, on stderr.
// Takes the engine lock only to copy the graph; symbolizes and writes after releasing it. Reports
// nothing.
FENCEDEP_API bool dump_graph(const char* path, std::string* error = nullptr);

// ---------------------------------------------------------------------------------------------
// Context frames
//
// While a fence operation runs, its thread carries a frame naming the operation and the fence.
// Each dependency edge recorded under frames keeps a copy of them, so that a splat can say which
// composition of fences created the edge, not only show a stack. Frames are pushed and popped by
// the fence layer; users' own primitives may push them too.
// Pushing a frame costs a few stores into thread-local memory, and the engine keeps only a
// pointer to it: the frame is read, and copied, only when the engine records a new edge or
// builds a report. So the frame and its strings must stay valid while it is pushed.
// ---------------------------------------------------------------------------------------------
enum class fence_op : std::uint8_t {
    enable_signaling,  // the fence's enable_signaling op (classic contract: under its own lock)
    add_callback,      // adding a callback to the fence (takes its lock, may enable signaling)
    signal,            // signalling the fence (takes its lock, runs callbacks under it)
    signal_callback,   // a callback registered on the fence runs (under the fence's lock)
    release,           // the fence's final reference is dropped
    wait,              // waiting for the fence
    deferred_work,     // deferred work queued by the fence runs (no fence lock held)
    query,             // is_signaled / get_status on the fence
    remove_callback,   // removing a callback from the fence (takes its lock)
    signalling,        // a fence signalling section (signalling.h); no fence: `file`/`line`
                       // name where it began
    priming,           // fencedep recording the kernel's fence rules at start-up (signalling.h)
};

// A frame names its fence in one of two ways:
//   - by value: `kind`, `driver`, `timeline`, `context` and `seqno` (or `file` and `line`), as
//       a user's frame does: {fence_op::signal, "my_fence", "ring", "gfx", ctx, seqno};
//   - on demand: `name` set, the fields above left empty. Each time the engine copies the frame
//       (a new edge, a report), it copies it to a fresh context_frame and calls `name` on the
//       copy, which fills the names from `subject` (the object the frame is about). The fence
//       layer names its frames so, since a fence's names are virtual calls into its ops, which
//       every operation would otherwise pay for. `name` runs on the thread that pushed the
//       frame, while the frame is pushed, with fencedep's engine lock held: `subject` must be
//       alive, and `name` must not block or take locks.
struct context_frame {
    fence_op op;
    const char* kind = nullptr;      // "fence", "fence_array", "fence_chain", or a user's type name
    const char* driver = nullptr;    // driver name of the fence
    const char* timeline = nullptr;  // timeline name of the fence
    std::uint64_t context = 0;
    std::uint64_t seqno = 0;
    const char* file = nullptr;  // for frames that name a place rather than a fence
    unsigned line = 0;
    void (*name)(context_frame& copy) noexcept = nullptr;  // null: the names are the fields
    const void* subject = nullptr;                          // what `name` names
};

// RAII: pushes `frame` on the calling thread's context stack for the scope's duration.
// When fencedep is off it does nothing beyond the gate load. Frames deeper than the engine's
// context stack (16) are counted but not stored, so pops stay balanced.
// A deferred_work frame also starts a new lock segment, as the kernel's irq_work runs in a
// context of its own: locks taken inside it get no dependency edges from locks the thread held
// before the frame (they are still checked for recursion, which is a real self-deadlock on one
// thread). Locks taken inside the frame must be released inside it.
class FENCEDEP_API context_scope {
public:
    explicit context_scope(const context_frame& frame) noexcept;
    ~context_scope();
    context_scope(const context_scope&) = delete;
    context_scope& operator=(const context_scope&) = delete;

private:
    detail::frame_pushed state_;
};

// ---------------------------------------------------------------------------------------------
// code_site and data_site: construction sites for shims that see no source_location, such as
// the pthread preload.
//
// code_site: the class of a code address, a return address into the code that initialized the
// lock, named after the user's frame there ("file.c:LINE in function") by the symbolizer.
// data_site: the class of a data address, as the kernel's static locks have: a statically
// initialized lock's own address is its class, named by the symbol there ("config_lock").
// forget_data_site() ends that identity when the lock is destroyed, so that another lock built
// later at the same address (reused memory) does not inherit its dependencies.
// ---------------------------------------------------------------------------------------------
struct code_site {
    const void* address;  // a return address: the call that initialized the lock
    // The object the lock_map stands for (the pthread_mutex_t, say), whose address reports
    // print as the lock's instead of the lock_map's own; null: the lock_map's.
    const void* instance = nullptr;
};
struct data_site {
    const void* address;  // the lock's own address, which reports print as the lock's
};

// Ends the class identity of data_site{address}: lock_maps made with it from now on get a new
// class. The old class stays in the graph (its dependencies were real for the lock that had
// it), but no new lock joins it. Takes the class table's lock (not the engine lock). Each
// forgotten address that is reused costs one class, as in lockdep before a key is zapped.
FENCEDEP_API void forget_data_site(const void* address) noexcept;

// ---------------------------------------------------------------------------------------------
// lock_kind: how an acquisition holds its lock (lockdep's `read` argument).
//
// The kind decides what can block what (lockdep.md §1.7): a writer blocks everyone; a
// non-recursive reader can wait behind a *waiting* writer, so against other readers it behaves
// like a lock; a recursive reader never waits for a waiting writer, so readers never block it.
// Hence two recursive readers in opposite orders are no deadlock, while the same inversion with a
// non-recursive reader or a writer on either side is one.
// ---------------------------------------------------------------------------------------------
enum class lock_kind : std::uint8_t {
    write = 0,           // exclusive: mutex, spinlock, the write side of a reader/writer lock
    read = 1,            // shared, non-recursive: std::shared_mutex's readers, the kernel's rwsem
    recursive_read = 2,  // shared, recursive: a reader-preferring rwlock's readers (glibc's default
                         // pthread_rwlock_t, the kernel's rwlock_t in interrupt context)
};

// ---------------------------------------------------------------------------------------------
// Declared orders
//
// bless_order(a, b) declares that the classes of the keys `a` and `b` (every subclass of each)
// may be taken in either order, as FreeBSD WITNESS's blessed list does: the program knows why
// the two never deadlock (a lock above both serializes them, say). From then on:
//   - taking one while holding the other records no dependency between them and is never a
//     circular_dependency, in either order;
//   - so no cycle through the pair is reported: a cycle needs an edge a->b or b->a, and the
//     graph has neither (an edge between them learned before the call is dropped, with the
//     chain cache);
//   - every other lock held at the time is still ordered before the one taken (the walk down
//     the held stack goes past the blessed lock, as past a trylock), so C held, then a, then b
//     still records C->b, and a later b then C is reported.
// Recursive locking is unaffected. Blessings are kept across reset(), as keys are; blessing a
// pair twice, or a key with itself, changes nothing.
// Requires: no thread holds a lock of either class (call it at start-up). Takes the engine lock.
// Reports nothing.
FENCEDEP_API void bless_order(const lock_class_key& a, const lock_class_key& b);

class lock_map;

// Forgets what was learned about the class of `lock` (every subclass of its key or construction
// site), as absl's Mutex::ForgetDeadlockInfo() does for one mutex: every dependency edge into or
// out of it is dropped, and so is every cached chain (the cache cannot tell which chains hold
// the class: each one is validated again on its next acquisition, once). Afterwards the old
// order is not remembered, so taking the two locks in the opposite order is no splat; the edges
// between other classes stay. For a lock whose order changes by design, such as an object moved
// from one owner to another. The circular dependencies reported through the class are
// forgotten too: one that the program builds again (the moved object misused by its new owner)
// is reported again, once. The class itself and its name are kept, and so are cycles between
// other classes, and reports of the other kinds, which no learned order decides (recursive
// locking, bad unlock balance, a held lock freed or held at thread exit, an invalid subclass, a
// missing nest lock, container nesting): those are still made once per distinct case. A lock
// whose class was never taken forgets nothing.
// Requires: no thread holds a lock of the class. Takes the class table's lock, then the engine
// lock. Reports nothing.
FENCEDEP_API void forget(const lock_map& lock);
// The same for any fencedep lock type (the ones with a map()).
template <class Lock>
    requires requires(const Lock& l) { l.map(); }
void forget(const Lock& lock) {
    forget(lock.map());
}

// ---------------------------------------------------------------------------------------------
// lock_map: a pseudo-lock, the engine's one entry point.
//
// Every instrumented primitive, fencedep's own locks, the fence layer, the pthread preload and
// users' own primitives report to the validator through a lock_map. A lock_map may also model
// something that is not a lock at all, such as a wait or a "this work item runs" section, so
// that waits become dependencies.
//
// Classes. A lock_map's class is, in this order:
//   - its lock_class_key, when one is given (the key's address is the class);
//   - else its construction site: the source_location where it was built (all lock_maps built
//     at one place share a class, as with the kernel's per-init-site keys). A site inside the
//     standard library (a lock built by std::make_unique, emplace_back or optional::emplace
//     has the site of a line in <bits/...>) is no site: the class is that of the first frame
//     on the constructing stack that is the user's. That costs one symbolization per distinct
//     site, then a table lookup per lock built there while fencedep is on (plus a stack walk
//     where the library's functions were not inlined, as at -O0); a lock built there while
//     fencedep was off takes the class of the first user frame where it is first taken.
//   - a code_site or data_site is a construction site given as an address (above).
// A name counts in a construction-site class only when it is a compile-time constant (it lies
// in the read-only image of the program or a library, as a string literal does): C++ gives
// every lock built by a default member initializer the site of the enclosing constructor, so
// `fencedep::mutex a{"dev.a"}; fencedep::mutex b{"dev.b"};` are two classes, while locks built
// at one line with names made at run time ("conn-17", "conn-18") share the site's class and
// keep their own names as labels in reports.
// Class names, as reports print them: the literal name if one counts; else the key's symbol for
// a keyed lock ("ring_lock_key"); else the site and its function ("db.cc:42 in DB::DB").
//
// Checks, on each call, when fencedep is on:
//   acquire():     recursive locking (the class is already held by this thread), circular
//                  dependency (a path from the new class back to a held class exists), and
//                  held-lock stack overflow. Validation happens before the caller blocks.
//   acquire_read(), acquire_recursive_read(): the same, for a reader (lock_kind). Following
//                  lockdep, only cycles that can deadlock are reported: a cycle is one when no
//                  lock on it is entered as a recursive reader and left while held shared
//                  (a "strong" cycle, lockdep.md §1.7). Taking a class already held is
//                  recursive locking, except a recursive read of a class this thread holds for
//                  reading.
//   try_*():       nothing is validated (a trylock cannot block); the lock is pushed on the
//                  held stack and later acquisitions record edges out of it.
//   release():     bad unlock balance (the lock is not held by this thread). Releasing a lock
//                  that is not on top of the stack is legal.
//   destructor:    held lock freed (this thread still holds the lock).
// Thread safety: all calls may run concurrently on different threads. A hit in the chain cache
// (a sequence of classes already validated) takes no global lock and allocates nothing; a miss
// takes the engine's internal lock, which is never instrumented.
// ---------------------------------------------------------------------------------------------
class FENCEDEP_API lock_map {
public:
    static constexpr unsigned max_subclass = lock_class_key::subclasses - 1;

    // `name` (may be null) must stay valid for the lock_map's lifetime, as a string literal
    // does: it is read when the class is first registered, not at construction.
    explicit lock_map(const char* name = nullptr, source_location site = source_location::current()) noexcept
        : lock_map(name, site.file_name(), site.function_name(), site.line(), site.column()) {}
    lock_map(const char* name, lock_class_key& key) noexcept;
    lock_map(const char* name, code_site site) noexcept;
    lock_map(const char* name, data_site site) noexcept;
    ~lock_map();
    lock_map(const lock_map&) = delete;
    lock_map& operator=(const lock_map&) = delete;

    // Records a blocking acquisition of the lock's class `subclass` (0-7). A subclass above 7 is
    // reported (invalid_subclass) and the acquisition is recorded as subclass 0.
    // `outer_ip` is left null: it then stands for the return address of the function this call
    // is inlined into, which names the user's frame in "at:" when that function is a wrapper (a
    // lock function inlined into std::lock_guard, say) that has returned by the time of a
    // report. It is read only when validation is on.
    // These calls are inline: when fencedep is off they cost the gate's load and a branch.
    FENCEDEP_ALWAYS_INLINE void acquire(unsigned subclass = 0,
                                        const void* outer_ip = nullptr) noexcept {
        if (enabled())
            acquire_here<lock_kind::write, false>(subclass, outer_ip);
    }
    // Records a successful trylock.
    FENCEDEP_ALWAYS_INLINE void try_acquire(unsigned subclass = 0,
                                            const void* outer_ip = nullptr) noexcept {
        if (enabled())
            acquire_here<lock_kind::write, true>(subclass, outer_ip);
    }
    // The same for readers: lock_kind::read (acquire_read) and lock_kind::recursive_read.
    FENCEDEP_ALWAYS_INLINE void acquire_read(unsigned subclass = 0,
                                             const void* outer_ip = nullptr) noexcept {
        if (enabled())
            acquire_here<lock_kind::read, false>(subclass, outer_ip);
    }
    FENCEDEP_ALWAYS_INLINE void acquire_recursive_read(unsigned subclass = 0,
                                                       const void* outer_ip = nullptr) noexcept {
        if (enabled())
            acquire_here<lock_kind::recursive_read, false>(subclass, outer_ip);
    }
    FENCEDEP_ALWAYS_INLINE void try_acquire_read(unsigned subclass = 0,
                                                 const void* outer_ip = nullptr) noexcept {
        if (enabled())
            acquire_here<lock_kind::read, true>(subclass, outer_ip);
    }
    FENCEDEP_ALWAYS_INLINE void try_acquire_recursive_read(unsigned subclass = 0,
                                                           const void* outer_ip = nullptr) noexcept {
        if (enabled())
            acquire_here<lock_kind::recursive_read, true>(subclass, outer_ip);
    }
    // Records the release of the lock by this thread, whatever its kind.
    FENCEDEP_ALWAYS_INLINE void release() noexcept {
        if (enabled())
            on_release();
    }

    // The engine's view of one acquisition. `ip` is the acquire site printed as "at:"; null
    // means "the caller of this function".
    //
    // `nest_lock` (lockdep's nest_lock, the kernel's mutex_lock_nest_lock): a lock that
    // serializes every thread that takes several locks of this class at once, such as a
    // wound/wait acquire context. While this thread holds it, taking another lock of a class
    // already held is no recursive locking, and consecutive locks of one class share one slot
    // of the held stack (so a thread may hold thousands of them). Taking a lock with a
    // nest_lock this thread does not hold is reported (nest_lock_not_held) and the acquisition
    // is then recorded without it.
    struct acquisition {
        unsigned subclass = 0;
        bool trylock = false;
        lock_kind kind = lock_kind::write;
        const void* ip = nullptr;
        const void* outer_ip = nullptr;  // the return address of the function `ip` lies in
        const lock_map* nest_lock = nullptr;
    };
    FENCEDEP_ALWAYS_INLINE void acquire(const acquisition& how) noexcept {
        if (!enabled())
            return;
        if (how.nest_lock)
            on_acquire(how);
        else if (how.trylock)
            acquire_as<true>(how);
        else
            acquire_as<false>(how);
    }
    // `ip` as acquisition::ip: the release site, null for the caller.
    FENCEDEP_ALWAYS_INLINE void release(const void* ip) noexcept {
        if (enabled())
            on_release(ip);
    }

    // Returns whether the calling thread holds this lock (or, in a slot shared under a
    // nest_lock, a lock of its class). False when fencedep is off.
    bool held_by_this_thread() const noexcept;
    // Returns how the calling thread holds this lock, if it does (as held_by_this_thread()).
    std::optional<lock_kind> held_kind() const noexcept;

    const char* name() const noexcept { return name_; }

private:
    lock_map(const char* name, const char* file, const char* function, unsigned line, unsigned column) noexcept;

    // The engine's entry points behind the inline calls above, for validation on. One per kind
    // of acquisition without a nest_lock, so that the engine's fast path has the kind as a
    // constant and the call passes only registers. They require subclass <= max_subclass (the
    // inline callers send any other to the general entry, which reports it), so that the fast
    // path need not test it where it is a constant. on_acquire_here and on_release() take their
    // return address, which is the acquire (or release) site, as `ip`; the others take it as an
    // argument, where null stands for the return address.
    template <lock_kind Kind, bool Trylock>
    FENCEDEP_HOOK void on_acquire_here(unsigned subclass, const void* outer_ip) noexcept;
    template <lock_kind Kind, bool Trylock>
    FENCEDEP_HOOK void on_acquire(unsigned subclass, const void* ip, const void* outer_ip) noexcept;
    // By value: a reference would make every caller build the acquisition in memory.
    FENCEDEP_HOOK void on_acquire(acquisition how) noexcept;
    FENCEDEP_HOOK void on_release() noexcept;
    FENCEDEP_HOOK void on_release(const void* ip) noexcept;
    template <lock_kind Kind, bool Trylock>
    FENCEDEP_ALWAYS_INLINE void acquire_here(unsigned subclass, const void* outer_ip) noexcept {
        // Always inlined, like its callers: this is the return address of their caller's frame.
        if (!outer_ip)
            outer_ip = __builtin_return_address(0);
        if (subclass > max_subclass) [[unlikely]]
            on_acquire(acquisition{subclass, Trylock, Kind, nullptr, outer_ip, nullptr});
        else
            on_acquire_here<Kind, Trylock>(subclass, outer_ip);
    }
    // acquire(how) without a nest_lock: how.kind is a constant wherever a lock type calls it, so
    // this folds to one call.
    template <bool Trylock>
    FENCEDEP_ALWAYS_INLINE void acquire_as(const acquisition& how) noexcept {
        if (how.subclass > max_subclass) [[unlikely]] {
            on_acquire(how);
            return;
        }
        switch (how.kind) {
        case lock_kind::write:
            on_acquire<lock_kind::write, Trylock>(how.subclass, how.ip, how.outer_ip);
            break;
        case lock_kind::read:
            on_acquire<lock_kind::read, Trylock>(how.subclass, how.ip, how.outer_ip);
            break;
        case lock_kind::recursive_read:
            on_acquire<lock_kind::recursive_read, Trylock>(how.subclass, how.ip, how.outer_ip);
            break;
        }
    }

    friend struct detail::engine_access;
    const char* name_;
    std::atomic<lock_class_key*> key_;  // null: resolved from the site on first use (or, for a
                                        // site seen before, at construction)
    // The construction site: a source location (file non-null; with an address, the user's
    // frame of a site inside the standard library), or an address alone (code_site, data_site),
    // or none (an explicit key).
    const char* site_file_;
    union {
        const char* site_function_;  // with site_file_
        const void* instance_;       // with code_site or data_site: the address reports print
    };
    const void* site_address_;
    unsigned site_line_;
    unsigned site_column_;
    bool site_is_data_;
};

}  // namespace fencedep

#endif  // FENCEDEP_CXX20
