// SPDX-License-Identifier: MIT
// Stack capture (the walk is unwind.cpp's), and the stack depot that keeps each distinct
// trace once.
#include <algorithm>
#include <array>
#include <atomic>
#include <bit>
#include <cstddef>
#include <cstdlib>
#include <limits>
#include <mutex>

#include "stack/modules.h"
#include "stack/never_destroyed.h"
#include "stack/stack.h"
#include "stack/unwind.h"

namespace fencedep::detail {
namespace {

// The most frames a trace keeps (the bound of the stack_depth option).
constexpr unsigned max_trace_frames = 256;
// Room in the walk for the frames above capture_stack's caller (capture_stack's own and the
// walk's), and one to spare should a compiler ever put a frame between the two.
constexpr unsigned capture_slack = 3;

// Traces are copied into chunks of this size; a trace never spans two chunks. 64 KiB holds ~250
// traces of 32 frames, so a typical run needs a handful of allocations.
constexpr std::size_t chunk_bytes = 64 * 1024;

struct trace_entry {
    const std::uintptr_t* addresses;
    std::uint32_t size;
    stack_id next;  // the next trace in the same hash bucket, 0 at the end of the chain
    std::uint64_t hash;
    const module_table* modules;  // the objects loaded when the trace was captured
};

std::uint64_t hash_trace(std::span<const std::uintptr_t> addresses) noexcept {
    std::uint64_t hash = 0x9e3779b97f4a7c15u ^ addresses.size();
    for (const std::uintptr_t address : addresses) {
        hash ^= address;
        hash *= 0xff51afd7ed558ccdu;
        hash ^= hash >> 32;
    }
    return hash;
}

// The same addresses are the same trace only if they lie in the same loads of the same objects: a
// library unloaded and another loaded in its place reuse the addresses for other code.
bool same_code(std::span<const std::uintptr_t> addresses, const module_table& a,
               const module_table& b) noexcept {
    return &a == &b || std::all_of(addresses.begin(), addresses.end(), [&](std::uintptr_t address) {
               return a.find(address - 1) == b.find(address - 1);
           });
}

// Interning happens under a plain mutex: it is on the validator's slow path only, and a fencedep
// lock here would validate the validator. Reading a trace back takes no lock, because neither
// entries nor traces ever move: entries live in segments that double in size (segment k holds
// ids [2^k, 2^(k+1))), so growing never copies what readers may be looking at.
class depot {
public:
    // Held across fork() (hold_stack_locks).
    std::mutex& interning_lock() { return mutex_; }

    stack_id intern(std::span<const std::uintptr_t> addresses, const module_table& modules) {
        if (addresses.empty() || addresses.size() > std::numeric_limits<std::uint32_t>::max())
            return 0;
        const std::uint64_t hash = hash_trace(addresses);
        const std::lock_guard lock(mutex_);
        if (buckets_ == nullptr && !rehash(initial_buckets))
            return 0;
        for (stack_id id = buckets_[hash & bucket_mask_]; id != 0;) {
            const trace_entry& entry = entry_of(id);
            if (entry.hash == hash && std::equal(addresses.begin(), addresses.end(),
                                                 entry.addresses, entry.addresses + entry.size) &&
                same_code(addresses, *entry.modules, modules))
                return id;
            id = entry.next;
        }

        const stack_id last = last_id_.load(std::memory_order_relaxed);
        if (last == std::numeric_limits<stack_id>::max())
            return 0;
        const stack_id id = last + 1;
        trace_entry* const segment = segment_for(id);
        if (segment == nullptr)
            return 0;
        std::uintptr_t* const copy = allocate_addresses(addresses.size());
        if (copy == nullptr)
            return 0;
        std::copy(addresses.begin(), addresses.end(), copy);
        stack_id& head = buckets_[hash & bucket_mask_];
        segment[id - segment_base(id)] =
            trace_entry{copy, static_cast<std::uint32_t>(addresses.size()), head, hash, &modules};
        head = id;
        // Publishes the entry to readers that check ids against last_id_.
        last_id_.store(id, std::memory_order_release);
        // Keeps chains short; if the bigger table cannot be had, the old one still works.
        if (id > bucket_mask_)
            rehash((bucket_mask_ + 1) * 2);
        return id;
    }

    std::span<const std::uintptr_t> addresses(stack_id id) const noexcept {
        if (id == 0 || id > last_id_.load(std::memory_order_acquire))
            return {};
        const trace_entry& entry = entry_of(id);
        return {entry.addresses, entry.size};
    }

    const module_table* modules(stack_id id) const noexcept {
        if (id == 0 || id > last_id_.load(std::memory_order_acquire))
            return nullptr;
        return entry_of(id).modules;
    }

private:
    static constexpr std::size_t initial_buckets = 1024;
    static constexpr unsigned segment_count = std::numeric_limits<stack_id>::digits;

    static unsigned segment_index(stack_id id) noexcept {
        return static_cast<unsigned>(std::bit_width(id)) - 1;
    }
    static stack_id segment_base(stack_id id) noexcept { return stack_id{1} << segment_index(id); }

    trace_entry& entry_of(stack_id id) const noexcept {
        return segments_[segment_index(id)].load(std::memory_order_acquire)[id - segment_base(id)];
    }

    trace_entry* segment_for(stack_id id) noexcept {
        std::atomic<trace_entry*>& slot = segments_[segment_index(id)];
        trace_entry* segment = slot.load(std::memory_order_relaxed);
        if (segment == nullptr) {
            segment =
                static_cast<trace_entry*>(std::malloc(sizeof(trace_entry) * segment_base(id)));
            slot.store(segment, std::memory_order_release);
        }
        return segment;
    }

    std::uintptr_t* allocate_addresses(std::size_t count) noexcept {
        const std::size_t bytes = count * sizeof(std::uintptr_t);
        if (bytes > chunk_free_) {
            // Each chunk starts with a pointer to the previous one, so that all of them stay
            // reachable from this object (LeakSanitizer counts them as live, not leaked).
            const std::size_t size = std::max(chunk_bytes, sizeof(void*) + bytes);
            auto* const chunk = static_cast<std::byte*>(std::malloc(size));
            if (chunk == nullptr)
                return nullptr;
            *reinterpret_cast<void**>(chunk) = newest_chunk_;
            newest_chunk_ = chunk;
            chunk_cursor_ = chunk + sizeof(void*);
            chunk_free_ = size - sizeof(void*);
        }
        auto* const result = reinterpret_cast<std::uintptr_t*>(chunk_cursor_);
        chunk_cursor_ += bytes;
        chunk_free_ -= bytes;
        return result;
    }

    bool rehash(std::size_t bucket_count) noexcept {
        auto* const buckets = static_cast<stack_id*>(std::calloc(bucket_count, sizeof(stack_id)));
        if (buckets == nullptr)
            return false;
        const std::size_t mask = bucket_count - 1;
        const stack_id last = last_id_.load(std::memory_order_relaxed);
        for (stack_id id = 1; id != 0 && id <= last; ++id) {
            // `next` is never read by lock-free readers, so relinking races with none of them.
            trace_entry& entry = entry_of(id);
            stack_id& head = buckets[entry.hash & mask];
            entry.next = head;
            head = id;
        }
        std::free(buckets_);
        buckets_ = buckets;
        bucket_mask_ = mask;
        return true;
    }

    std::mutex mutex_;
    std::atomic<trace_entry*> segments_[segment_count] = {};
    std::atomic<stack_id> last_id_{0};
    stack_id* buckets_ = nullptr;  // heads of the hash chains, indexed by hash & bucket_mask_
    std::size_t bucket_mask_ = 0;
    std::byte* newest_chunk_ = nullptr;
    std::byte* chunk_cursor_ = nullptr;
    std::size_t chunk_free_ = 0;
};

constinit never_destroyed<depot> the_depot;

}  // namespace

// noinline, so that this function has a frame of its own whose return address names the caller:
// the trace starts right there, whatever frames the walk itself reports above it.
[[gnu::noinline]] stack_id capture_stack(unsigned max_frames, unsigned skip) {
    // Before the walk: the cached unwind rules it uses are for the objects loaded now.
    const module_table& modules = current_modules();
    std::array<std::uintptr_t, max_trace_frames + capture_slack> walked;
    // Walk no further than the trace will keep.
    const std::size_t wanted =
        std::min<std::size_t>(max_frames, max_trace_frames) + skip + capture_slack;
    const auto frames = std::span(walked).first(
        walk_stack(std::span(walked).first(std::min(wanted, walked.size())), modules.subs));
    if (frames.empty())
        return 0;

    const auto caller = std::find(frames.begin(), frames.end(),
                                  reinterpret_cast<std::uintptr_t>(__builtin_return_address(0)));
    // The caller's return address is always among the frames unless the unwinder lost track of
    // the stack; then keep everything, and symbolize_stack's trimming hides our own frames.
    const std::size_t first =
        (caller == frames.end() ? 0 : static_cast<std::size_t>(caller - frames.begin())) + skip;
    if (first >= frames.size())
        return 0;
    const std::size_t count =
        std::min<std::size_t>({frames.size() - first, max_frames, max_trace_frames});
    return the_depot.value.intern(frames.subspan(first, count), modules);
}

stack_id intern_stack(std::span<const std::uintptr_t> addresses) {
    return the_depot.value.intern(addresses, current_modules());
}

std::span<const std::uintptr_t> stack_addresses(stack_id id) {
    return the_depot.value.addresses(id);
}

const module_table* stack_modules(stack_id id) {
    return the_depot.value.modules(id);
}

void hold_stack_locks(bool held) noexcept {
    if (held) {
        the_depot.value.interning_lock().lock();
        hold_module_lock(true);
        hold_symbolizer_lock(true);
    } else {
        hold_symbolizer_lock(false);
        hold_module_lock(false);
        the_depot.value.interning_lock().unlock();
    }
}

}  // namespace fencedep::detail
