// SPDX-License-Identifier: MIT
// What the engine's files share: the engine state behind its lock, the hot state read without
// it, and the event that one slow-path entry builds. Not seen outside lib/engine.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <mutex>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include <fencedep/lockdep.h>

#include "config/options.h"
#include "engine/chain_cache.h"
#include "engine/graph.h"
#include "engine/thread_state.h"
#include "report/pending.h"

namespace fencedep::detail {

// The only code that touches lock_map's private members.
struct engine_access {
    static lock_class_key* key(const lock_map& map) { return map.key_.load(std::memory_order_acquire); }
    static void set_key(lock_map& map, lock_class_key* key) { map.key_.store(key, std::memory_order_release); }
    static const char* site_file(const lock_map& map) { return map.site_file_; }
    static const char* site_function(const lock_map& map) { return map.site_file_ ? map.site_function_ : nullptr; }
    // The address reports print for the lock: the object a shim's lock_map stands for, if given.
    static const void* shown_address(const lock_map& map) {
        return !map.site_file_ && map.instance_ ? map.instance_ : &map;
    }
    static const void* site_address(const lock_map& map) { return map.site_address_; }
    static bool site_is_data(const lock_map& map) { return map.site_is_data_; }
    static unsigned site_line(const lock_map& map) { return map.site_line_; }
    static unsigned site_column(const lock_map& map) { return map.site_column_; }
    static const char* name(const lock_map& map) { return map.name_; }
    // A lock_map built with an explicit key records no construction site.
    static bool keyed_by_site(const lock_map& map) { return map.site_file_ || map.site_address_; }
};

// The class of a lock (classes.cpp has the rules), worked out before the engine lock is taken:
// identify() may walk the stack and symbolize, which takes the loader's lock, and a thread inside
// dlopen() holds that while a library constructor takes fencedep locks.
struct class_identity {
    std::string site;       // identity of the construction site; empty for a keyed lock
    std::string name;       // the class's name: the literal name, the key's symbol, or site_name
    std::string site_name;  // "db.cc:42 in DB::DB"; empty for a keyed lock
};
class_identity identify(const lock_map& map);

// For lock_map's constructor, given its source location, its name as passed, and its caller:
//   - `address`: the code address of the user's frame when `file` is inside the standard library
//     (the constructor's `caller`, or else found by walking the stack), else null;
//   - `key`: the site's key if the site was seen before, else null (found at first use).
// A site seen before costs a lookup without a lock or an allocation (and, for a file of the
// user's, no look at the file name), so that a new instance's first acquisition is a keyed lock's.
struct construction_site {
    lock_class_key* key;
    const void* address;
};
construction_site find_construction_site(const char* file, unsigned line, unsigned column,
                                         const char* name, const void* caller);

// The user's call among the return addresses of the calling thread's stack: `return_address`
// when the code there is the user's, else the first return address that is, else
// `return_address`. Requires the re-entry guard.
const void* user_return_address(const void* return_address);

// "ns::Type::function" out of a demangled or source_location function name: no return type, no
// parameters, so that a class name stays short.
std::string short_function_name(std::string_view function);

struct lock_class {
    const lock_class_key* key;
    unsigned subclass;
    std::string base;       // the name the lock was given
    std::uint32_t version;  // 1 for the first key with this base name, 2 for the next, ...
    std::string name;       // as printed: base, then #version (if > 1) and /subclass (if > 0)
    std::string site;       // a construction-site class's site ("db.cc:42 in DB::DB"); else empty
};

// Where and under which fence context each kind of an edge was first recorded (graph::dep_*,
// numbered by dep_bit), so that a splat shows the acquisition of the kind its cycle uses.
struct edge_record {
    struct dependency {
        stack_id stack = 0;
        std::uint32_t context = 0;  // index into engine_state::contexts, or graph::none
        lock_kind to_kind = lock_kind::write;  // how the edge's `to` was taken
    };
    dependency by_kind[graph::dep_kinds];
};

// The bit number of the dependency kind of `prev` held as `held`, then `next` taken as `taken`.
inline unsigned dep_bit(lock_kind held, lock_kind taken) noexcept {
    return (held == lock_kind::write ? 0u : 2u) + (taken == lock_kind::recursive_read ? 1u : 0u);
}

struct engine_state {
    std::mutex mutex;  // a plain std::mutex: the engine's own locks are never instrumented
    bool ready = false;          // tables allocated for the current options
    bool stepped_aside = false;  // a table filled up; validation stays off until reset()
    bool log_open = false;       // the log named by log_path was opened (once per process)

    // Index = class id; 0 unused. Grows with registrations and never shrinks: reset() empties the
    // entries, so an id read before a reset() names an empty class rather than one past the end.
    std::vector<lock_class> classes = std::vector<lock_class>(1);
    std::uint32_t class_count = 0;
    std::unordered_map<std::string, std::uint32_t> name_versions;
    graph dependencies;
    std::vector<edge_record> edge_records;
    std::vector<context_record> contexts;
    std::unordered_set<std::uint64_t> reported;  // hashes of reports already made
    // The classes of each circular dependency in `reported`, by its hash: forget() drops the
    // cycles through a class it forgets, so that the cycle, learned again, is reported again.
    std::unordered_map<std::uint64_t, std::vector<std::uint32_t>> reported_cycles;
    // Pairs of keys whose order is blessed (bless_order), each as (lower address, higher). Kept
    // across reset(), like the keys: they declare the program's design, not what a run learned.
    std::set<std::pair<const lock_class_key*, const lock_class_key*>> blessed;
    void (*primer)() noexcept = nullptr;        // see set_primer()
    std::uint32_t primed_generation = 0;        // the hot.generation the primer last ran for
};

// Never destroyed: other threads may still lock while the process exits.
engine_state& engine();

// Every write of the gate goes through set_gate: it stores the gate, then calls the listener an
// interposer set (shim::on_gate_change), on the writing thread.
void set_gate(bool on) noexcept;
extern std::atomic<void (*)() noexcept> gate_listener;

// Whether the order between the classes `a` and `b` (either way) is blessed. Requires the engine
// lock.
bool blessed(const engine_state& e, std::uint32_t a, std::uint32_t b);

// Finds `map` in the thread's held stack, from the top: its own slot, or a slot shared by locks
// of its class under a nest_lock. Returns the depth index or -1. Allocates nothing.
int find_held(const thread_state& ts, const lock_map& map) noexcept;

// What the hot path reads, in a constant-initialized global so that reaching it costs no
// initialization check. Written under the engine lock. Trivially destructible, so that nothing
// the hot path touches is torn down by exit() while other threads still take locks.
struct hot_state {
    // Bumped by reset() so every key's cached class id becomes stale at once.
    std::uint32_t generation = 1;
    // Bumped by enable(true) so threads drop held stacks recorded before validation was off.
    std::atomic<std::uint64_t> epoch{1};
    // Set once the max_lock_depth report is made: from then on, acquisitions past a thread's
    // limit are only counted, on the fast path.
    std::atomic<bool> depth_reported{false};
    chain_cache chains;
};
extern constinit hot_state hot;

// The chain key a thread's held stack starts from in `epoch`. enable(true) after validation was
// off starts an epoch and empties the chain cache: a thread that has not yet caught up (its
// held stack may hold locks released while validation was off) computes keys from the old
// epoch's start, which no cached chain has, so its next acquisition takes the slow path and
// catches up there. The fast path needs no look at the epoch.
inline std::uint64_t initial_chain_key(std::uint64_t epoch) noexcept {
    return chain_key_mix(~std::uint64_t{0}, epoch);
}

// Mixed into the chain key where a deferred_work segment starts; never a held word (their upper
// half, the generation, is never 0).
inline constexpr std::uint64_t segment_marker = 0xffffffffu;

// A class as a key's cache holds it (lock_class_key::cached_class): the engine generation above
// the class id.
inline std::uint64_t class_word(std::uint32_t class_id) noexcept {
    return std::uint64_t{hot.generation} << 32 | class_id;
}

// What a held lock adds to the chain key: its class word, its kind and whether it was taken
// under a nest_lock, so that a chain validated for a reader does not stand for the same classes
// taken by a writer, nor one whose recursion a nest_lock excused for one without (class ids stay
// below 2^22, options.cpp). The generation is part of it, so that a key's cached class from
// before a reset() gives a chain key no cached chain has: the fast path mixes the cached word
// as it finds it, and a stale one sends it to the slow path without a test of its own.
inline std::uint64_t held_word(std::uint64_t cached_class, lock_kind kind, bool nested) noexcept {
    return cached_class ^ (std::uint64_t{static_cast<std::uint32_t>(kind)} << 30 | (nested ? 1u << 29 : 0u));
}
// By value: the fast path keeps the acquisition in registers.
inline std::uint64_t held_word(std::uint32_t class_id, lock_map::acquisition how) noexcept {
    return held_word(class_word(class_id), how.kind, how.nest_lock != nullptr);
}
inline std::uint64_t held_word(const held_lock& h) noexcept {
    return held_word(class_word(h.class_id), h.kind, h.nest_lock != nullptr);
}

// Everything a single event may need to report, delivered after the engine lock is dropped.
class report_queue {
public:
    pending_report& add(report_kind kind, const thread_state& ts);
    ~report_queue();

private:
    std::vector<pending_report> reports_;
};

// One acquisition, release or check, under the engine lock.
class event {
public:
    event(engine_state& e, thread_state& ts, report_queue& reports) : e_(e), ts_(ts), reports_(reports) {}

    // Registers (or finds) the class of `key`/`subclass`. `name` is the lock's display name,
    // worked out before the engine lock was taken (naming may symbolize). Returns 0 when the
    // class table is full (reported; validation steps aside).
    std::uint32_t register_class(lock_class_key* key, unsigned subclass, const class_identity& id);
    // Validates the acquisition of `class_id` on top of the thread's held stack (the locks below
    // `base` belong to enclosing segments and record no edges to it). Inserts the chain and
    // returns whether the new lock is covered (see the recording rule in dependencies.cpp).
    bool validate(std::uint32_t class_id, const lock_map::acquisition& how, const lock_map* instance,
                  std::uint64_t chain_key, unsigned base);
    void report_table_full(const char* table, std::uint32_t capacity, const char* option);
    void snapshot_held(pending_report& r) const;
    lock_ref ref(const held_lock& h) const;
    // The lock of class `class_id` being acquired now as `kind`, with the current stack and
    // context.
    lock_ref acquiring(std::uint32_t class_id, lock_kind kind, const lock_map& instance, const void* ip);
    stack_id current_stack();
    // Whether a report identified by `identity` (a kind tag, then what makes it distinct) is
    // new; it is remembered either way.
    bool first_report(std::span<const std::uint64_t> identity);
    bool first_report(std::initializer_list<std::uint64_t> identity) {
        return first_report(std::span(identity.begin(), identity.size()));
    }
    context_record current_context() const;

private:
    enum class dependency { recorded, refused, full };
    void explain_recursion(pending_report& r, const lock_class& c) const;
    dependency add_dependency(const held_lock& prev, std::uint32_t next, lock_kind kind, const lock_map* instance,
                              const void* ip);

    engine_state& e_;
    thread_state& ts_;
    report_queue& reports_;
    stack_id stack_ = 0;
};

// The frame of every event that may leave the hot path: raises the re-entry guard and brings the
// thread's state up to date. `ts` is null when the event must be ignored (validation off, a
// re-entered call, no state). Reports queued in `reports` are delivered when the scope ends,
// after any engine lock taken inside it is released, with the guard still raised.
class event_scope {
    // Declared first: destroyed after the reports go out, so the errno it restores is the last.
    std::optional<reentry_guard> guard_;

public:
    event_scope() noexcept;
    event_scope(const event_scope&) = delete;
    event_scope& operator=(const event_scope&) = delete;

    thread_state* ts = nullptr;
    report_queue reports;
};

// "name/tid" of the thread, as reports print it.
std::string thread_label(const thread_state& ts);

// Folds the words in order into a report identity.
std::uint64_t hash_words(std::span<const std::uint64_t> words);

// A report's line for `map` under the class name `name` (`base` without its suffixes). The
// lock's own name goes beside it where the class goes by another (a name made at run time, or a
// keyed class first named by another lock), so that a report tells instances of one class apart.
inline lock_ref named_ref(const lock_map& map, std::string name, std::string_view base, const void* ip) {
    const char* own = engine_access::name(map);
    lock_ref r;
    r.name = std::move(name);
    if (own && base != own)
        r.label = own;
    r.instance = engine_access::shown_address(map);
    r.ip = ip;
    return r;
}

// The key of a construction-site lock. Without `identity`: the key of a site seen before, or
// null (then identify() and call again with it, which creates the key). Keys are kept across
// reset(), since locks built before it still point at them. Takes the site table's lock, not the
// engine's.
lock_class_key* site_key(const lock_map& map, const class_identity* identity);


// The class id in a key's cached class word, or 0 if that word is from another generation.
inline std::uint32_t current_class(std::uint64_t cached) noexcept {
    return (cached >> 32) == hot.generation ? static_cast<std::uint32_t>(cached) : 0;
}

// Whether the class of `key`/`subclass` is registered in the current generation.
inline std::uint32_t cached_class(const lock_class_key& key, unsigned subclass) noexcept {
    return current_class(key.cached_class[subclass].load(std::memory_order_acquire));
}

// Whether the thread's held stack belongs to the current epoch (see initial_chain_key).
inline bool current_epoch(const thread_state& ts) noexcept {
    return ts.epoch == hot.epoch.load(std::memory_order_acquire);
}

}  // namespace fencedep::detail
