// SPDX-License-Identifier: MIT
// The chain cache: the set of lock sequences already validated, readable without any lock.
#pragma once

#include <sys/mman.h>

#include <atomic>
#include <bit>
#include <cstdint>

namespace fencedep::detail {

// An insert-only open-addressed set of 64-bit chain keys. contains() is lock-free and is the
// whole cost of an acquisition whose sequence of held classes was seen before; insert() and
// clear() are called under the engine's lock. A reader racing with clear() can only miss (every
// slot it reads holds a key that was inserted, or 0), and a miss takes the slow path, which
// waits for the engine lock: so forget() and bless_order() clear it while threads lock.
// Key 0 marks an empty slot; chain keys have their top bit set (chain_key_mix), so none is 0.
// Trivially destructible on purpose: the table is never freed while the process lives (only
// replaced by init(), which requires no concurrent reader), so a thread still taking locks
// while exit() runs the static destructors never reads freed memory.
class chain_cache {
public:
    bool init(std::uint32_t capacity) {
        const std::uint64_t slots = std::bit_ceil(std::uint64_t{capacity} * 2);
        // Anonymous memory reads as zeros (empty slots) and takes room only where keys land, so
        // a big max_chains costs nothing until chains fill it.
        void* table = mmap(nullptr, slots * sizeof(std::uint64_t), PROT_READ | PROT_WRITE,
                           MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (table == MAP_FAILED)
            return false;
        if (slots_)
            munmap(slots_, (mask_ + 1) * sizeof(std::uint64_t));
        slots_ = static_cast<std::atomic<std::uint64_t>*>(table);
        mask_ = slots - 1;
        capacity_ = capacity;
        count_ = 0;
        return true;
    }

    // Gives the pages back: they read as zeros again, so reset() costs a system call rather
    // than a pass over the whole table.
    void clear() {
        if (count_ != 0)
            madvise(slots_, (mask_ + 1) * sizeof(std::uint64_t), MADV_DONTNEED);
        count_ = 0;
    }

    bool contains(std::uint64_t key) const noexcept {
        for (std::uint64_t slot = key & mask_;; slot = (slot + 1) & mask_) {
            const std::uint64_t stored = slots_[slot].load(std::memory_order_acquire);
            if (stored == key)
                return true;
            if (stored == 0)
                return false;
        }
    }

    // Returns false if the cache is full (the key is not stored).
    bool insert(std::uint64_t key) {
        if (count_ == capacity_)
            return false;
        for (std::uint64_t slot = key & mask_;; slot = (slot + 1) & mask_) {
            const std::uint64_t stored = slots_[slot].load(std::memory_order_relaxed);
            if (stored == key)
                return true;
            if (stored == 0) {
                slots_[slot].store(key, std::memory_order_release);
                ++count_;
                return true;
            }
        }
    }

    std::uint32_t capacity() const { return capacity_; }
    // Chains cached so far. Requires the engine lock (the writers hold it).
    std::uint32_t size() const { return count_; }

private:
    std::atomic<std::uint64_t>* slots_ = nullptr;
    std::uint64_t mask_ = 0;
    std::uint32_t capacity_ = 0;
    std::uint32_t count_ = 0;
};

// The key of the chain `previous` followed by `class_id`. One multiply and a fold: this runs on
// every acquisition, and it spreads keys well enough for the cache to index by their low bits.
// The top bit is always set, so that no key is the cache's empty mark (the cache indexes by the
// low bits, which keep all their spread).
inline constexpr std::uint64_t chain_key_top_bit = std::uint64_t{1} << 63;
inline std::uint64_t chain_key_mix(std::uint64_t previous, std::uint32_t class_id) noexcept {
    const std::uint64_t x = (previous ^ class_id) * 0x9e3779b97f4a7c15ull;
    return (x ^ (x >> 29)) | chain_key_top_bit;
}

}  // namespace fencedep::detail
