// SPDX-License-Identifier: MIT
// The preload's per-lock state: a lock_map per pthread lock, found by the lock's address.
#pragma once

#include <pthread.h>

#include <atomic>
#include <cstdint>
#include <new>

#include <fencedep/lockdep.h>

namespace fencedep::preload {

enum class lock_kind : std::uint8_t { mutex, rwlock, spinlock };

// What the preload knows of one live lock. The memory of a lock_state is never returned (states
// are recycled), so a thread that read a stale pointer reads a state, never unmapped memory.
struct lock_state {
    // The incarnation written into the lock object (see stamp_word in locks.cpp), or 0 for a lock
    // with no room for one. A lock whose memory was built anew (a std::mutex in reused memory)
    // no longer holds it, and gets a new state.
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

// The live state of the lock at `object`, or null: the hot path (a probe, a stamp compare).
lock_state* find_lock(const void* object, lock_kind kind) noexcept;

// find_lock, or, for a lock seen for the first time (or whose memory was built anew), a new state
// whose class follows from where the lock lives and from `call_site`, the return address of the
// lock call (see the README, "Programs you cannot rebuild"). Null when the thread is inside
// fencedep or the table is full: the call then passes through unvalidated.
lock_state* lock_for(const void* object, lock_kind kind, const void* call_site) noexcept;

// A lock initialized by a call from `call_site`: a new state replaces any old one at that address
// (the memory was reused without a destroy).
void lock_initialized(const void* object, lock_kind kind, const void* call_site) noexcept;

// A lock destroyed: its state goes, and with it its address's identity.
void lock_destroyed(const void* object) noexcept;

}  // namespace fencedep::preload
