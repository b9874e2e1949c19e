// SPDX-License-Identifier: MIT
// The preload's lock table: from a pthread lock's address to its lock_state.
//
// Lookups take no lock: an open-addressing table of (address, state) pairs, probed linearly.
// An address, once it has a slot, keeps it for the life of the process (a destroyed lock's slot
// is reused by the next lock at that address), so a probe never meets a removed key, and the
// table only fills with distinct lock addresses. Creating, replacing and removing states is
// serialized by one spinlock: that happens once per lock, never on the lock/unlock path.
//
// A std::mutex has no init or destroy call: one built in reused memory looks to glibc like the
// lock that lived there before. So each state writes a stamp into the lock object, in a field
// that glibc leaves alone for that kind of lock and that every initializer zeroes; a lock whose
// stamp differs from its state's is a new lock and gets a new state (and, for a class by
// address, a new class).
#include "preload/locks.h"

#include <sched.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>

#include <fencedep/shim.h>

namespace fencedep::preload {

std::atomic<slot*> table{nullptr};

namespace {

std::size_t table_used = 0;
std::uint64_t next_stamp = 1;
lock_state* free_states = nullptr;
std::atomic<bool> creation_busy{false};

// The creation lock, taken through raw atomics: a pthread lock here would come back to the
// interposer.
void take_creation() noexcept {
    while (creation_busy.exchange(true, std::memory_order_acquire))
        sched_yield();
}

void drop_creation() noexcept {
    creation_busy.store(false, std::memory_order_release);
}

class creation_lock {
public:
    creation_lock() noexcept { take_creation(); }
    ~creation_lock() { drop_creation(); }
    creation_lock(const creation_lock&) = delete;
    creation_lock& operator=(const creation_lock&) = delete;
};

void* map_zeroed(std::size_t bytes) noexcept {
    void* memory = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    return memory == MAP_FAILED ? nullptr : memory;
}

// The slot of `address`, claimed if it has none. Requires the creation lock.
slot* claim_slot(std::uintptr_t address) noexcept {
    if (!table.load(std::memory_order_relaxed)) {
        // Pages are touched as slots are used: a program with few locks costs a few pages.
        auto* slots = static_cast<slot*>(map_zeroed(table_size * sizeof(slot)));
        if (!slots)
            return nullptr;
        table.store(slots, std::memory_order_release);
    }
    if (slot* found = find_slot(address))
        return found;
    if (table_used == table_limit) {
        static std::atomic<bool> said{false};
        if (!said.exchange(true)) {
            char message[160];
            const int length = std::snprintf(message, sizeof message,
                                             "fencedep-run: the lock table is full (%zu lock addresses); locks at "
                                             "addresses not seen before are not validated\n",
                                             table_limit);
            [[maybe_unused]] const auto written = write(STDERR_FILENO, message, static_cast<std::size_t>(length));
        }
        return nullptr;
    }
    slot* const slots = table.load(std::memory_order_relaxed);
    std::size_t i = home_of(address);
    while (slots[i].address != 0)
        i = (i + 1) & (table_size - 1);
    ++table_used;
    __atomic_store_n(&slots[i].address, address, __ATOMIC_RELEASE);
    return &slots[i];
}

// Requires the creation lock. States come from mappings that are never unmapped.
lock_state* new_state() noexcept {
    if (!free_states) {
        constexpr std::size_t batch = 256;
        auto* states = static_cast<lock_state*>(map_zeroed(batch * sizeof(lock_state)));
        if (!states)
            return nullptr;
        for (std::size_t i = 0; i < batch; ++i) {
            lock_state* state = new (&states[i]) lock_state;
            state->next_free = free_states;
            free_states = state;
        }
    }
    lock_state* state = free_states;
    free_states = state->next_free;
    return state;
}

// Destroys a state's lock_map (a held lock freed is reported there) and recycles the state.
void retire(lock_state* state) noexcept {
    state->map().~lock_map();
    const creation_lock lock;
    state->next_free = free_states;
    free_states = state;
}

// Unpublishes the slot's state, if any, and ends its address's identity. Requires the creation
// lock; the caller retires what it returns once the lock is dropped.
lock_state* take_state(slot& place, const void* object) noexcept {
    lock_state* old = __atomic_exchange_n(&place.state, nullptr, __ATOMIC_ACQ_REL);
    if (old && old->by_address)
        forget_data_site(object);
    return old;
}

// Makes and publishes a new state for the lock at `object`, replacing any old one. With
// `keep_live`, a live state found there (another thread got there first) is returned instead.
lock_state* create(const void* object, lock_kind kind, const void* call_site, bool initialized,
                   bool keep_live) noexcept {
    if (shim::inside_validator())
        return nullptr;
    // Where the lock lives and who took it decide its class; working that out may symbolize and
    // walk the stack, so it happens before the creation lock is taken.
    const bool by_address = shim::preload_classes() == shim::class_rule::address ||
                            (!initialized && shim::static_storage(object));
    const void* site = by_address ? nullptr : shim::user_call_site(call_site);
    const auto address = reinterpret_cast<std::uintptr_t>(object);
    stamp_word* const stamp = stamp_of(object, kind);
    lock_state* fresh = nullptr;
    lock_state* old = nullptr;
    {
        const creation_lock lock;
        slot* place = claim_slot(address);
        if (!place)
            return nullptr;
        lock_state* current = __atomic_load_n(&place->state, __ATOMIC_ACQUIRE);
        if (keep_live && current && current->kind == kind &&
            current->stamp.load(std::memory_order_relaxed) == read_stamp(stamp))
            return current;
        old = take_state(*place, object);
        fresh = new_state();
        if (fresh) {
            fresh->kind = kind;
            fresh->by_address = by_address;
            fresh->owner.store(0, std::memory_order_relaxed);
            fresh->relocks = 0;
            if (by_address)
                new (fresh->storage) lock_map(nullptr, data_site{object});
            else
                new (fresh->storage) lock_map(nullptr, code_site{site, object});
            // The incarnation, unique for the life of the process, above the slot's index: a lock
            // finds its slot from its stamp alone (find_lock), and no other incarnation's stamp
            // matches.
            const std::uint64_t stamped =
                stamp ? next_stamp++ << table_bits | static_cast<std::uint64_t>(place - table.load(std::memory_order_relaxed)) : 0;
            if (stamp)
                __atomic_store_n(stamp, stamped, __ATOMIC_RELAXED);
            fresh->stamp.store(stamped, std::memory_order_relaxed);
            __atomic_store_n(&place->state, fresh, __ATOMIC_RELEASE);
        }
    }
    if (old)
        retire(old);
    return fresh;
}

// A thread that forks while another creates a state must not leave the child with the lock taken.
[[gnu::constructor]] void hold_creation_across_fork() {
    pthread_atfork(take_creation, drop_creation, drop_creation);
}

}  // namespace

lock_state* new_lock(const void* object, lock_kind kind, const void* call_site) noexcept {
    return create(object, kind, call_site, false, true);
}

void lock_initialized(const void* object, lock_kind kind, const void* call_site) noexcept {
    create(object, kind, call_site, true, false);
}

void lock_destroyed(const void* object) noexcept {
    lock_state* old = nullptr;
    {
        const creation_lock lock;
        if (slot* place = find_slot(reinterpret_cast<std::uintptr_t>(object)))
            old = take_state(*place, object);
    }
    if (old)
        retire(old);
}

}  // namespace fencedep::preload
