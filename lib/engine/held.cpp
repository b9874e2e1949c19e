// SPDX-License-Identifier: MIT
// The held-lock stack: acquisitions and releases (the hot path and the slow path behind it),
// lock segments for deferred work, and the lock_map entry points.
//
// Flow of one blocking acquisition (ARCHITECTURE.md, "hot path"): resolve the class from the
// key's lock-free cache; mix it into the thread's chain key; if the chain cache holds the new
// key, push the held lock and return. Otherwise take the engine lock, validate the acquisition
// (dependencies.cpp), and deliver any report after the lock is dropped. All of that runs before
// the real lock blocks.
#include <algorithm>

#include <fmt/format.h>

#include "engine/frames.h"
#include "engine/internal.h"

namespace fencedep {

namespace detail {

int find_held(const thread_state& ts, const lock_map& map) noexcept {
    const lock_class_key* key = engine_access::key(map);
    for (unsigned i = ts.depth; i > 0; --i) {
        const held_lock& h = ts.held[i - 1];
        if (h.instance == &map || (h.references && key && h.key == key))
            return static_cast<int>(i - 1);
    }
    return -1;
}

namespace {

using acquisition = lock_map::acquisition;

void push_held(thread_state& ts, std::uint32_t class_id, acquisition how, bool covered, const lock_map& map,
               std::uint64_t chain_key, stack_id site_stack) noexcept {
    ts.held[ts.depth++] = held_lock{&map,     how.ip,         how.outer_ip,  ts.chain_key, class_id, how.kind,
                                    how.trylock, covered,     ts.frames_mark, how.nest_lock, nullptr,  0,
                                    site_stack};
    ts.chain_key = chain_key;
}

// Rule (nest_lock, lockdep.md §1.9): a lock taken under a nest_lock the thread holds, when the
// top of the held stack is a lock of the same class taken under the same nest_lock, joins that
// slot instead of taking one of its own. The nest_lock serializes every thread that takes
// several of them, so their order among themselves cannot deadlock, and a thread may hold
// thousands of them (a wound/wait context locking every buffer of a job).
bool join_shared_slot(thread_state& ts, std::uint32_t class_id, acquisition how) noexcept {
    if (!how.nest_lock || ts.depth == 0)
        return false;
    held_lock& top = ts.held[ts.depth - 1];
    if (top.class_id != class_id || top.nest_lock != how.nest_lock)
        return false;
    if (!top.references) {
        // The slot now stands for every lock of the key under the nest_lock (find_held).
        top.key = engine_access::key(*top.instance);
        top.references = 1;
    }
    ++top.references;
    return true;
}

// Where segment `d` of the thread's saved segments starts (the held index of its first lock).
unsigned segment_start(const thread_state& ts, unsigned d) {
    return d + 1 < ts.segment_depth ? ts.segments[d + 1].base : ts.segment_base;
}

// The base of the segment that held index `slot` belongs to.
unsigned segment_base_at(const thread_state& ts, unsigned slot) {
    unsigned base = 0;
    for (unsigned d = 0; d < ts.segment_depth; ++d)
        if (segment_start(ts, d) <= slot)
            base = segment_start(ts, d);
    return base;
}

// Recomputes every chain key of the thread from its held classes and segment starts: after a
// lock below the top is released, each key above it (and each saved segment's start key) must
// stop counting it, or a chain cached by this thread would stand for another thread's chain.
void rekey(thread_state& ts) noexcept {
    std::uint64_t key = initial_chain_key(ts.epoch);
    unsigned d = 0;
    for (unsigned slot = 0;; ++slot) {
        for (; d < ts.segment_depth && segment_start(ts, d) <= slot; ++d) {
            ts.segments[d].chain_key = key;
            key = chain_key_mix(key, segment_marker);
        }
        if (slot == ts.depth)
            break;
        ts.held[slot].prev_chain_key = key;
        key = chain_key_mix(key, held_word(ts.held[slot]));
    }
    ts.chain_key = key;
}

// The hot path: an acquisition whose chain was validated before. It needs no lock, allocates
// nothing and cannot report, so it also needs no re-entry guard (hot_thread_state is null while
// the guard is raised). Returns false to send the acquisition to the slow path, which redoes
// every step.
// A blocking acquisition checks neither the engine generation nor the thread's epoch: both are
// part of the chain key (held_word, initial_chain_key), so a stale class or held stack finds
// no cached chain. A trylock or a nest_lock acquisition looks at the class before any probe,
// and checks both.
// `check_subclass`: false where the caller checked it (lockdep.h).
FENCEDEP_ALWAYS_INLINE bool fast_acquire(lock_map& map, acquisition how, bool check_subclass) noexcept {
    thread_state* ts = hot_thread_state;
    const lock_class_key* key = engine_access::key(map);
    if (!ts || !key || (check_subclass && how.subclass > lock_map::max_subclass))
        return false;
    const std::uint64_t cached = key->cached_class[how.subclass].load(std::memory_order_acquire);
    const auto class_id = static_cast<std::uint32_t>(cached);
    if ((how.trylock || how.nest_lock) && (!current_epoch(*ts) || !current_class(cached)))
        return false;
    if (how.nest_lock) {
        if (find_held(*ts, *how.nest_lock) < 0)
            return false;  // reported on the slow path
        if (join_shared_slot(*ts, class_id, how))
            return true;
    }
    if (ts->depth == ts->capacity) [[unlikely]] {
        // Past max_lock_depth: reported once per process, then only counted, so that a program
        // that nests too deep pays for it once and not on every round.
        if (!hot.depth_reported.load(std::memory_order_relaxed) || !current_epoch(*ts))
            return false;
        ++ts->untracked;
        return true;
    }
    const std::uint64_t chain_key =
        chain_key_mix(ts->chain_key, held_word(cached, how.kind, how.nest_lock != nullptr));
    bool covered = false;
    if (!how.trylock) {
        const chain_state known = hot.chains.lookup(chain_key);
        if (known == chain_state::unknown)
            return false;
        covered = known == chain_state::covered;
    }
    push_held(*ts, class_id, how, covered, map, chain_key, 0);
    return true;
}

void report_depth_exceeded(thread_state& ts, report_queue& reports, const lock_map& map, const void* ip) {
    std::string name = identify(map).name;
    engine_state& e = engine();
    std::lock_guard<std::mutex> lock(e.mutex);
    if (!e.ready || e.stepped_aside || hot.depth_reported.exchange(true, std::memory_order_relaxed))
        return;
    event ev(e, ts, reports);
    auto& r = reports.add(report_kind::lock_depth_exceeded, ts);
    r.title = "BUG: max_lock_depth too low!";
    r.subject = named_ref(map, name, name, ip);
    r.lines.push_back(fmt::format("depth: {}  max: {}!", ts.depth + 1, ts.capacity));
    r.lines.push_back(fmt::format("raise it with FENCEDEP_OPTIONS=max_lock_depth={}", std::max(ts.capacity * 2, 1u)));
    r.lines.push_back("locks past the limit are not validated; this is reported once");
    r.stack = ev.current_stack();
    ev.snapshot_held(r);
}

void find_site_key(lock_map& map) noexcept {
    const reentry_guard guard;
    if (lock_class_key* key = site_key(map, nullptr))
        engine_access::set_key(map, key);
}

// The slow path takes the acquisition as scalars, in registers, so that the fast path reaches it
// by a tail call and needs no stack frame of its own.
constexpr unsigned slow_kind_mask = 0xffu;
constexpr unsigned slow_trylock = 0x100u;
inline unsigned slow_flags(acquisition how) noexcept {
    return static_cast<unsigned>(how.kind) | (how.trylock ? slow_trylock : 0u);
}

// Everything the fast path leaves: a new chain, a new class, a report. Out of line, so that the
// fast path's caller keeps a frame as small as the fast path needs.
[[gnu::noinline]] void acquire_slow(lock_map& map, unsigned subclass, unsigned flags, const void* ip,
                                    const void* outer_ip, const lock_map* nest_lock) {
    acquisition how{subclass, (flags & slow_trylock) != 0, static_cast<lock_kind>(flags & slow_kind_mask), ip, outer_ip,
                    nest_lock};
    // A new instance of a site seen before finds its key by one lookup, and then, its chain being
    // known, takes the fast path like any other lock.
    if (!engine_access::key(map) && !reentry_guard::raised()) {
        find_site_key(map);
        if (fast_acquire(map, how, true))
            return;
    }
    event_scope scope;
    thread_state* ts = scope.ts;
    if (!ts)
        return;
    const unsigned asked_subclass = how.subclass;
    const bool bad_subclass = how.subclass > lock_map::max_subclass;
    if (bad_subclass)
        how.subclass = 0;
    // Identifying may symbolize, which must not happen under the engine lock (classes.cpp); it
    // is needed only for a class seen for the first time, or for a report.
    lock_class_key* key = engine_access::key(map);
    class_identity identity;
    if (!key || !cached_class(*key, how.subclass) || bad_subclass)
        identity = identify(map);
    if (!key) {
        key = site_key(map, &identity);
        engine_access::set_key(map, key);
    }
    const bool nest_missing = how.nest_lock && find_held(*ts, *how.nest_lock) < 0;
    // Named before the engine lock is taken: naming may symbolize.
    std::string nest_name = nest_missing ? identify(*how.nest_lock).name : std::string();
    engine_state& e = engine();
    {
        std::lock_guard<std::mutex> lock(e.mutex);
        if (!e.ready || e.stepped_aside)
            return;
        // One event for the whole slow path, so that every report and edge shares one stack capture.
        event ev(e, *ts, scope.reports);
        // Once per class and bad subclass, not per instance: fresh objects repeat one mistake.
        if (bad_subclass && ev.first_report({0x5ab, reinterpret_cast<std::uintptr_t>(key), asked_subclass})) {
            auto& r = scope.reports.add(report_kind::invalid_subclass, *ts);
            r.title = fmt::format("BUG: looking up invalid subclass: {}", asked_subclass);
            r.subject = named_ref(map, identity.name, identity.name, how.ip);
            r.lines.push_back(fmt::format("looking up invalid subclass: {} (subclasses are 0 to {})", asked_subclass,
                                          lock_map::max_subclass));
            r.lines.push_back("the acquisition is recorded as subclass 0");
            r.stack = ev.current_stack();
        }
        const std::uint32_t class_id = ev.register_class(key, how.subclass, identity);
        if (!class_id)
            return;
        if (nest_missing) {
            // Once per class and nest lock class: the kernel's "Nested lock was not taken".
            if (ev.first_report({0x7e57, class_id, reinterpret_cast<std::uintptr_t>(engine_access::key(*how.nest_lock))})) {
                auto& r = scope.reports.add(report_kind::nest_lock_not_held, *ts);
                r.subject = ev.acquiring(class_id, how.kind, map, how.ip);
                r.lines.push_back(std::move(nest_name));
                r.stack = ev.current_stack();
                ev.snapshot_held(r);
            }
            how.nest_lock = nullptr;
        }
        if (join_shared_slot(*ts, class_id, how))
            return;
        if (ts->depth < ts->capacity) {
            const std::uint64_t chain_key = chain_key_mix(ts->chain_key, held_word(class_id, how));
            stack_id site_stack = 0;
            bool covered = false;
            if (!how.trylock) {
                covered = ev.validate(class_id, how, &map, chain_key, ts->segment_base);
                site_stack = ev.current_stack();
            }
            push_held(*ts, class_id, how, covered, map, chain_key, site_stack);
            return;
        }
    }
    ++ts->untracked;
    report_depth_exceeded(*ts, scope.reports, map, how.ip);
}

// The slow path of one kind of acquisition, reached from its hook by a tail call that passes the
// hook's own arguments, so that the fast path's registers need no saving.
template <lock_kind Kind, bool Trylock>
[[gnu::noinline]] void acquire_missed(lock_map& map, unsigned subclass, const void* ip, const void* outer_ip) noexcept {
    acquire_slow(map, subclass, slow_flags({subclass, Trylock, Kind}), ip, outer_ip, nullptr);
}

// Removes entry `index` and re-validates the entries above it, as lockdep does: the remaining
// sequence is a chain of its own, and may be new.
void remove_held(thread_state& ts, unsigned index, report_queue& reports) {
    for (unsigned i = index + 1; i < ts.depth; ++i)
        ts.held[i - 1] = ts.held[i];
    --ts.depth;
    // Segments that started above the removed entry now start one entry lower.
    if (index < ts.segment_base)
        --ts.segment_base;
    for (unsigned d = 0; d < ts.segment_depth; ++d)
        if (index < ts.segments[d].base)
            --ts.segments[d].base;
    rekey(ts);
    const unsigned depth = ts.depth;
    engine_state& e = engine();
    std::unique_lock<std::mutex> lock(e.mutex, std::defer_lock);
    for (unsigned i = index; i < depth; ++i) {
        held_lock& h = ts.held[i];
        if (h.trylock)
            continue;
        const std::uint64_t chain_key = chain_key_mix(h.prev_chain_key, held_word(h));
        if (const chain_state known = hot.chains.lookup(chain_key); known != chain_state::unknown) {
            h.covered = known == chain_state::covered;
            continue;
        }
        if (!lock.owns_lock())
            lock.lock();
        if (e.stepped_aside)
            break;
        // Validated against the locks below it only, as when it was taken.
        ts.depth = i;
        acquisition how;
        how.kind = h.kind;
        how.ip = h.ip;
        how.nest_lock = h.nest_lock;
        h.covered = event(e, ts, reports).validate(h.class_id, how, h.instance, chain_key, segment_base_at(ts, i));
        ts.depth = depth;
    }
}

// The hot path of a release: the lock is the top of the held stack, inside the current segment
// (a lock held around deferred work and released inside it moves the segment: slow path).
// A thread whose held stack is from an epoch before the current one releases from that stack:
// the lock on top was taken and is released, and the thread catches up on its next slow path.
FENCEDEP_ALWAYS_INLINE bool fast_release(const lock_map& map) noexcept {
    thread_state* ts = hot_thread_state;
    if (!ts || ts->depth <= ts->segment_base)
        return false;
    const held_lock& top = ts->held[ts->depth - 1];
    if (top.instance != &map || top.references)
        return false;
    ts->chain_key = top.prev_chain_key;
    --ts->depth;
    return true;
}

// Releases `map` from held slot `index`: one lock leaves a shared slot (lockdep's references),
// the last one takes the slot with it.
void release_held(thread_state& ts, unsigned index, const lock_map& map, report_queue& reports) {
    held_lock& h = ts.held[index];
    if (h.references) {
        if (h.instance == &map)
            h.instance = nullptr;
        if (--h.references)
            return;
    }
    remove_held(ts, index, reports);
}

[[gnu::noinline]] void release_slow(lock_map& map, const void* ip) {
    event_scope scope;
    thread_state* ts = scope.ts;
    if (!ts)
        return;
    auto& reports = scope.reports;
    const int index = find_held(*ts, map);
    if (index >= 0) {
        release_held(*ts, static_cast<unsigned>(index), map, reports);
        return;
    }
    if (ts->untracked > 0) {
        --ts->untracked;
        return;
    }
    // Once per lock and release site. A repeat is only looked up, and allocates nothing: a loop
    // that repeats the mistake must not keep the allocator busy (an allocator lock held by this
    // thread when another forks is a hang in the child under allocators without fork handlers).
    const lock_class_key* key = engine_access::key(map);
    const std::uint64_t identity[] = {0xbad, reinterpret_cast<std::uintptr_t>(key), reinterpret_cast<std::uintptr_t>(ip)};
    engine_state& e = engine();
    {
        std::lock_guard<std::mutex> lock(e.mutex);
        if (e.reported.contains(hash_words(identity)))
            return;
    }
    // The lock's class name if it has one, else its own name, worked out before the engine lock
    // because naming may symbolize.
    const std::uint32_t class_id = key ? cached_class(*key, 0) : 0;
    std::string name = class_id ? std::string() : identify(map).name;
    std::lock_guard<std::mutex> lock(e.mutex);
    event ev(e, *ts, reports);
    if (!ev.first_report(identity))
        return;
    auto& r = reports.add(report_kind::bad_unlock_balance, *ts);
    r.subject = class_id ? named_ref(map, e.classes[class_id].name, e.classes[class_id].base, ip)
                         : named_ref(map, name, name, ip);
    r.stack = ev.current_stack();
    ev.snapshot_held(r);
}

void report_freed(thread_state& ts, unsigned index, report_queue& reports, const lock_map& map) {
    engine_state& e = engine();
    std::lock_guard<std::mutex> lock(e.mutex);
    event ev(e, ts, reports);
    // Once per class and acquire site: a loop that frees held locks repeats one mistake.
    const held_lock& h = ts.held[index];
    if (!ev.first_report({0xf7ee, h.class_id, reinterpret_cast<std::uintptr_t>(h.ip)}))
        return;
    auto& r = reports.add(report_kind::held_lock_freed, ts);
    r.subject = ev.ref(h);
    r.lines.push_back(fmt::format("{} is freeing memory {}-{}, with a lock still held there!", r.thread,
                                  fmt::ptr(&map), fmt::ptr(reinterpret_cast<const char*>(&map) + sizeof map - 1)));
    r.stack = ev.current_stack();
    ev.snapshot_held(r);
}

void destroy_event(lock_map& map) {
    event_scope scope;
    thread_state* ts = scope.ts;
    if (!ts)
        return;
    // Only a slot that still names this very lock: a shared slot's other locks are matched by
    // class, and this one may have been released from it already.
    const int index = find_held(*ts, map);
    if (index < 0 || ts->held[index].instance != &map)
        return;
    report_freed(*ts, static_cast<unsigned>(index), scope.reports, map);
    // Forget the lock so that the stack stays usable; the memory is going away.
    release_held(*ts, static_cast<unsigned>(index), map, scope.reports);
}

}  // namespace
}  // namespace detail

using namespace detail;

namespace detail {
namespace {
// A deferred_work frame begins a lock segment; returns whether it did.
bool begin_segment(thread_state& ts) noexcept {
    if (ts.segment_depth >= max_context_frames)
        return false;
    ts.segments[ts.segment_depth++] = {ts.segment_base, ts.chain_key};
    ts.segment_base = ts.depth;
    // The key goes on from the enclosing one, marked: a chain in the segment is then cached per
    // enclosing held stack, so recursion across the boundary is still checked, and it never
    // matches a chain of the enclosing segment.
    ts.chain_key = chain_key_mix(ts.chain_key, segment_marker);
    return true;
}
}  // namespace

// The first push of a thread (or after enable(true)) takes an event, which creates the state or
// brings it up to date.
frame_pushed push_frame_slow(const context_frame& frame) noexcept {
    thread_state* ts;
    {
        const event_scope scope;
        ts = scope.ts;
    }
    if (!ts)
        return frame_pushed::no;
    store_frame(*ts, frame);
    return frame.op == fence_op::deferred_work && begin_segment(*ts) ? frame_pushed::segment : frame_pushed::plain;
}

void end_segment(thread_state& ts) noexcept {
    // After enable(true) reset the thread's stacks, there is no segment left to close.
    if (ts.segment_depth == 0)
        return;
    const unsigned base = ts.segment_base;
    const auto& saved = ts.segments[--ts.segment_depth];
    ts.segment_base = saved.base;
    // Locks taken in the segment should be gone; if some are still held, they join the
    // enclosing segment and the keys are worked out again.
    if (ts.depth == base)
        ts.chain_key = saved.chain_key;
    else
        rekey(ts);
}
}  // namespace detail

context_scope::context_scope(const context_frame& frame) noexcept
    : state_(enabled() ? push_frame(frame) : frame_pushed::no) {}

context_scope::~context_scope() { pop_frame(state_); }

lock_map::lock_map(const char* name, const char* file, const char* function, unsigned line, unsigned column) noexcept
    : name_(name),
      key_(nullptr),
      site_file_(file),
      site_function_(function),
      site_address_(nullptr),
      site_line_(line),
      site_column_(column),
      site_is_data_(false) {
    if (!enabled())
        return;
    const construction_site site = find_construction_site(file, line, column, name, __builtin_return_address(0));
    key_.store(site.key, std::memory_order_relaxed);
    site_address_ = site.address;
}

lock_map::lock_map(const char* name, lock_class_key& key) noexcept
    : name_(name), key_(&key), site_file_(nullptr), site_function_(nullptr), site_address_(nullptr), site_line_(0),
      site_column_(0), site_is_data_(false) {}

lock_map::lock_map(const char* name, code_site site) noexcept
    : name_(name), key_(nullptr), site_file_(nullptr), instance_(site.instance), site_address_(site.address),
      site_line_(0), site_column_(0), site_is_data_(false) {}

lock_map::lock_map(const char* name, data_site site) noexcept
    : name_(name), key_(nullptr), site_file_(nullptr), instance_(site.address), site_address_(site.address),
      site_line_(0), site_column_(0), site_is_data_(true) {}

lock_map::~lock_map() {
    if (enabled())
        destroy_event(*this);
}

namespace detail {
namespace {
// The template entries' common body. Their callers checked the subclass (lockdep.h).
template <lock_kind Kind, bool Trylock>
FENCEDEP_ALWAYS_INLINE void acquire_entry(lock_map& map, unsigned subclass, const void* ip, const void* outer_ip) noexcept {
    if (!fast_acquire(map, {subclass, Trylock, Kind, ip, outer_ip, nullptr}, false)) [[unlikely]]
        acquire_missed<Kind, Trylock>(map, subclass, ip, outer_ip);
}
}  // namespace
}  // namespace detail

template <lock_kind Kind, bool Trylock>
void lock_map::on_acquire_here(unsigned subclass, const void* outer_ip) noexcept {
    acquire_entry<Kind, Trylock>(*this, subclass, __builtin_return_address(0), outer_ip);
}

template <lock_kind Kind, bool Trylock>
void lock_map::on_acquire(unsigned subclass, const void* ip, const void* outer_ip) noexcept {
    acquire_entry<Kind, Trylock>(*this, subclass, ip ? ip : __builtin_return_address(0), outer_ip);
}
// FENCEDEP_API again: clang gives a template's instances the visibility of their arguments, and
// lock_kind has none of its own, so they would stay inside the library.
#define FENCEDEP_ACQUIRE_ENTRIES(kind, trylock)                                                                         \
    template FENCEDEP_API void lock_map::on_acquire_here<lock_kind::kind, trylock>(unsigned, const void*) noexcept; \
    template FENCEDEP_API void lock_map::on_acquire<lock_kind::kind, trylock>(unsigned, const void*, const void*) noexcept;
FENCEDEP_ACQUIRE_ENTRIES(write, false)
FENCEDEP_ACQUIRE_ENTRIES(write, true)
FENCEDEP_ACQUIRE_ENTRIES(read, false)
FENCEDEP_ACQUIRE_ENTRIES(read, true)
FENCEDEP_ACQUIRE_ENTRIES(recursive_read, false)
FENCEDEP_ACQUIRE_ENTRIES(recursive_read, true)
#undef FENCEDEP_ACQUIRE_ENTRIES

void lock_map::on_acquire(acquisition how) noexcept {
    if (!how.ip)
        how.ip = __builtin_return_address(0);
    if (!fast_acquire(*this, how, true)) [[unlikely]]
        acquire_slow(*this, how.subclass, slow_flags(how), how.ip, how.outer_ip, how.nest_lock);
}

void lock_map::on_release() noexcept {
    if (!fast_release(*this)) [[unlikely]]
        release_slow(*this, __builtin_return_address(0));
}

void lock_map::on_release(const void* ip) noexcept {
    if (!fast_release(*this)) [[unlikely]]
        release_slow(*this, ip ? ip : __builtin_return_address(0));
}

bool lock_map::held_by_this_thread() const noexcept { return held_kind().has_value(); }

// A read of the thread's own held stack, which allocates nothing and reports nothing, so it
// needs no event_scope: every fence signal() asks it (signalling.h).
std::optional<lock_kind> lock_map::held_kind() const noexcept {
    const thread_state* ts = hot_thread_state;
    if (!enabled() || !ts || !current_epoch(*ts))
        return std::nullopt;
    const int index = find_held(*ts, *this);
    return index < 0 ? std::nullopt : std::optional(ts->held[index].kind);
}

}  // namespace fencedep
