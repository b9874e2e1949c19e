// SPDX-License-Identifier: MIT
#pragma once

#include <array>
#include <atomic>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <type_traits>

namespace fencedep::detail {

// A fixed-size cache from keys to values that threads share without a lock: direct-mapped, two
// slots per hash, each slot a sequence lock (odd while a writer fills it). A reader never waits:
// a slot being written, or rewritten while read, is a miss. A writer that finds its slot busy
// leaves the value uncached. Entries are never removed, only replaced by a later insert into the
// same slot, so a key must say everything the value depends on.
// Key and Value are trivially copyable, whole 64-bit words without padding; the all-zero Key is
// never looked up (it marks an empty slot). constinit-able, so it works before main.
template <class Key, class Value, unsigned Bits>
class word_cache {
    static_assert(std::is_trivially_copyable_v<Key> && std::is_trivially_copyable_v<Value>);
    static_assert(sizeof(Key) % 8 == 0 && sizeof(Value) % 8 == 0);
    static_assert(std::has_unique_object_representations_v<Key>, "a Key with padding");
    static constexpr std::size_t key_words = sizeof(Key) / 8;
    static constexpr std::size_t value_words = sizeof(Value) / 8;
    using key_bits = std::array<std::uint64_t, key_words>;
    using value_bits = std::array<std::uint64_t, value_words>;

    struct slot {
        std::atomic<std::uint32_t> sequence{0};
        std::array<std::atomic<std::uint64_t>, key_words> key{};
        std::array<std::atomic<std::uint64_t>, value_words> value{};
    };

public:
    // `hash` is the key's hash (any 64-bit mix of it); both calls must be given the same one.
    bool find(const Key& key, std::uint64_t hash, Value& value) const noexcept {
        const std::size_t index = index_of(hash);
        return read(slots_[index], std::bit_cast<key_bits>(key), value) ||
               read(slots_[index ^ 1], std::bit_cast<key_bits>(key), value);
    }

    void insert(const Key& key, std::uint64_t hash, const Value& value) noexcept {
        const std::size_t index = index_of(hash);
        // An empty slot of the two if there is one; else the hash picks, so that two keys that
        // keep meeting in one pair of slots both get a turn.
        slot& first = slots_[index];
        slot& second = slots_[index ^ 1];
        slot& target = first.sequence.load(std::memory_order_relaxed) == 0   ? first
                       : second.sequence.load(std::memory_order_relaxed) == 0 ? second
                       : ((hash >> 32) & 1) != 0                               ? second
                                                                               : first;
        write(target, std::bit_cast<key_bits>(key), std::bit_cast<value_bits>(value));
    }

private:
    static std::size_t index_of(std::uint64_t hash) noexcept {
        return static_cast<std::size_t>((hash * 0x9e3779b97f4a7c15u) >> (64 - Bits));
    }

    static bool read(const slot& s, const key_bits& key, Value& value) noexcept {
        const std::uint32_t sequence = s.sequence.load(std::memory_order_acquire);
        if (sequence == 0 || (sequence & 1) != 0)
            return false;
        bool match = true;
        for (std::size_t i = 0; i < key_words; ++i)
            match &= s.key[i].load(std::memory_order_relaxed) == key[i];
        value_bits bits;
        for (std::size_t i = 0; i < value_words; ++i)
            bits[i] = s.value[i].load(std::memory_order_relaxed);
        std::atomic_thread_fence(std::memory_order_acquire);
        if (!match || s.sequence.load(std::memory_order_relaxed) != sequence)
            return false;
        value = std::bit_cast<Value>(bits);
        return true;
    }

    static void write(slot& s, const key_bits& key, const value_bits& value) noexcept {
        std::uint32_t sequence = s.sequence.load(std::memory_order_relaxed);
        if ((sequence & 1) != 0 ||
            !s.sequence.compare_exchange_strong(sequence, sequence + 1, std::memory_order_acquire))
            return;
        std::atomic_thread_fence(std::memory_order_release);
        for (std::size_t i = 0; i < key_words; ++i)
            s.key[i].store(key[i], std::memory_order_relaxed);
        for (std::size_t i = 0; i < value_words; ++i)
            s.value[i].store(value[i], std::memory_order_relaxed);
        // Never back to 0, which marks a slot never written.
        s.sequence.store(sequence + 2 == 0 ? 2 : sequence + 2, std::memory_order_release);
    }

    std::array<slot, std::size_t{1} << Bits> slots_{};
};

}  // namespace fencedep::detail
