// SPDX-License-Identifier: MIT
// The preload's per-lock state: a lock_map per pthread lock, found by the lock's address.
#pragma once

#include <pthread.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <new>

#include <fencedep/lockdep.h>

namespace fencedep::preload {

enum class lock_kind : std::uint8_t { mutex, rwlock, spinlock };

// What the preload knows of one live lock. The memory of a lock_state is never returned (states
// are recycled), so a thread that read a stale pointer reads a state, never unmapped memory.
struct lock_state {
    // The stamp written into the lock object (see stamp_of below), or 0 for a lock with no
    // room for one: the state's incarnation and its address's table slot. A lock whose memory
    // was built anew (a std::mutex in reused memory) no longer holds it, and gets a new state.
    std::atomic<std::uint64_t> stamp{0};
    lock_kind kind = lock_kind::mutex;
    bool by_address = false;  // its class is its address (data_site): forgotten when it goes
    // A recursive mutex's owner and how many times it took the mutex again: only the outermost
    // lock and unlock reach the lock_map, as in lockdep. Written only by the owner.
    std::atomic<pthread_t> owner{0};
    unsigned relocks = 0;
    lock_state* next_free = nullptr;
    alignas(lock_map) unsigned char storage[sizeof(lock_map)];

    lock_map& map() noexcept { return *std::launder(reinterpret_cast<lock_map*>(storage)); }
};

// --- The hot path, inline: a probe of the table and a stamp compare. ---------------------------

// glibc's mutex kind bits (its pthreadP.h): a robust mutex links itself into a list through
// __list, and a process-shared one is stamped by other processes too.
inline constexpr int robust_mutex_bit = 16;
inline constexpr int shared_mutex_bit = 128;

using stamp_word = std::uintptr_t __attribute__((may_alias));

// Where the lock object keeps its stamp (why: locks.cpp), or null if it has no room for one.
inline stamp_word* stamp_of(const void* object, lock_kind kind) noexcept {
    void* writable = const_cast<void*>(object);
    switch (kind) {
    case lock_kind::mutex: {
        auto* mutex = static_cast<pthread_mutex_t*>(writable);
        if (__atomic_load_n(&mutex->__data.__kind, __ATOMIC_RELAXED) & (robust_mutex_bit | shared_mutex_bit))
            return nullptr;
        return reinterpret_cast<stamp_word*>(&mutex->__data.__list.__next);
    }
    case lock_kind::rwlock: {
#if defined(__x86_64__) && !defined(__ILP32__)
        auto* rwlock = static_cast<pthread_rwlock_t*>(writable);
        if (__atomic_load_n(&rwlock->__data.__shared, __ATOMIC_RELAXED) != 0)
            return nullptr;
        return reinterpret_cast<stamp_word*>(&rwlock->__data.__pad2);
#else
        return nullptr;
#endif
    }
    case lock_kind::spinlock:
        return nullptr;
    }
    return nullptr;
}

inline std::uint64_t read_stamp(const stamp_word* stamp) noexcept {
    return stamp ? __atomic_load_n(stamp, __ATOMIC_RELAXED) : 0;
}

// Plain words accessed atomically, so that the zero pages of a fresh mapping are a valid table.
struct slot {
    std::uintptr_t address;
    lock_state* state;
};

inline constexpr unsigned table_bits = 20;
inline constexpr std::size_t table_size = std::size_t{1} << table_bits;
// Past this many addresses, new ones are refused, so that every probe still ends at a free slot.
inline constexpr std::size_t table_limit = table_size / 4 * 3;

[[gnu::visibility("hidden")]] extern std::atomic<slot*> table;

inline std::size_t home_of(std::uintptr_t address) noexcept {
    return static_cast<std::size_t>(((address >> 3) * 0x9e3779b97f4a7c15ull) >> (64 - table_bits));
}

inline slot* find_slot(std::uintptr_t address) noexcept {
    slot* const slots = table.load(std::memory_order_acquire);
    if (!slots)
        return nullptr;
    for (std::size_t i = home_of(address);; i = (i + 1) & (table_size - 1)) {
        const std::uintptr_t key = __atomic_load_n(&slots[i].address, __ATOMIC_ACQUIRE);
        if (key == address)
            return &slots[i];
        if (key == 0)
            return nullptr;
    }
}

// The live state of the lock at `object`, or null. A lock with a stamp names its own table slot
// in it (see make_stamp), so that the common lookup is one slot and two compares; a lock with no
// room for a stamp is looked up by a probe of the table.
inline lock_state* find_lock(const void* object, lock_kind kind) noexcept {
    const auto address = reinterpret_cast<std::uintptr_t>(object);
    const slot* place;
    std::uint64_t expected = 0;
    if (const stamp_word* stamp = stamp_of(object, kind)) {
        expected = __atomic_load_n(stamp, __ATOMIC_RELAXED);
        slot* const slots = table.load(std::memory_order_acquire);
        if (!slots || expected == 0)
            return nullptr;
        place = &slots[expected & (table_size - 1)];
        if (__atomic_load_n(&place->address, __ATOMIC_ACQUIRE) != address)
            return nullptr;
    } else if (!(place = find_slot(address))) {
        return nullptr;
    }
    lock_state* state = __atomic_load_n(&place->state, __ATOMIC_ACQUIRE);
    if (!state || state->kind != kind || state->stamp.load(std::memory_order_relaxed) != expected)
        return nullptr;
    return state;
}

// --- The slow paths, once per lock. ------------------------------------------------------------

// A new state for a lock seen for the first time (or whose memory was built anew), whose class
// follows from where the lock lives and from `call_site`, the return address of the lock call
// (see the README, "Programs you cannot rebuild"); a live one if another thread made it first.
// Null when the thread is inside fencedep or the table is full: the call then passes through
// unvalidated.
lock_state* new_lock(const void* object, lock_kind kind, const void* call_site) noexcept;

// A lock initialized by a call from `call_site`: a new state replaces any old one at that address
// (the memory was reused without a destroy).
void lock_initialized(const void* object, lock_kind kind, const void* call_site) noexcept;

// A lock destroyed: its state goes, and with it its address's identity.
void lock_destroyed(const void* object) noexcept;

}  // namespace fencedep::preload
