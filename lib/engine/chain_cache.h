// SPDX-License-Identifier: MIT
// The chain cache: the set of lock sequences already validated, readable without any lock.
#pragma once

#include <sys/mman.h>

#include <atomic>
#include <bit>
#include <cstdint>

#include <fencedep/lockdep.h>

namespace fencedep::detail {

// What the chain cache knows of a chain. A validated chain whose last lock is not known to
// follow every lock held below it (see "recording rule" in dependencies.cpp) is cached as
// uncovered; the fast path tells the two apart from the entry its one probe finds.
enum class chain_state : unsigned char { unknown, uncovered, covered };

// Chain keys (chain_key_mix) have their two low bits set: bit 0 so that no key is the cache's
// empty mark, bit 1 so that an entry can carry the chain's coverage (clear: uncovered).
inline constexpr std::uint64_t chain_key_low_bits = 3;
inline constexpr std::uint64_t chain_uncovered_bit = 2;

// An insert-only open-addressed set of 64-bit chain keys, each with its coverage. lookup() is
// lock-free and is the whole cost of an acquisition whose sequence of held classes was seen
// before; insert() and clear() are called under the engine's lock. A reader racing with clear()
// can only miss (every slot it reads holds a key that was inserted, or 0), and a miss takes the
// slow path, which waits for the engine lock: so forget() and bless_order() clear it while
// threads lock.
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
        shift_ = static_cast<unsigned>(64 - std::countr_zero(slots));
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

    // Keys are products (chain_key_mix), whose high bits depend on every bit of what was mixed:
    // the home slot is taken from them. An entry differs from its key at most in the coverage
    // bit, and an empty slot (0) differs from every key in bit 0.
    FENCEDEP_ALWAYS_INLINE chain_state lookup(std::uint64_t key) const noexcept {
        for (std::uint64_t slot = key >> shift_;; slot = (slot + 1) & mask_) {
            const std::uint64_t stored = slots_[slot].load(std::memory_order_acquire);
            const std::uint64_t difference = stored ^ key;
            if (difference <= chain_uncovered_bit)
                return difference == 0 ? chain_state::covered : chain_state::uncovered;
            if (stored == 0)
                return chain_state::unknown;
        }
    }

    // Returns false if the cache is full (the key is not stored).
    bool insert(std::uint64_t key, bool covered) {
        if (count_ == capacity_)
            return false;
        for (std::uint64_t slot = key >> shift_;; slot = (slot + 1) & mask_) {
            const std::uint64_t stored = slots_[slot].load(std::memory_order_relaxed);
            if ((stored ^ key) <= chain_uncovered_bit)
                return true;
            if (stored == 0) {
                slots_[slot].store(covered ? key : key & ~chain_uncovered_bit, std::memory_order_release);
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
    unsigned shift_ = 64;
    std::uint32_t capacity_ = 0;
    std::uint32_t count_ = 0;
};

// The key of the chain `previous` followed by `held` (a held_word). One multiply: this runs on
// every acquisition. The product's high bits, which the cache indexes by, depend on every bit
// of both; the two low bits are the cache's (chain_key_low_bits).
inline std::uint64_t chain_key_mix(std::uint64_t previous, std::uint64_t held) noexcept {
    return ((previous ^ held) * 0x9e3779b97f4a7c15ull) | chain_key_low_bits;
}

}  // namespace fencedep::detail
