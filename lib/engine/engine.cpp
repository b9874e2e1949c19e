// SPDX-License-Identifier: MIT
// The validator: lock classes, held-lock stacks, the chain cache, dependency recording and the
// checks that turn them into reports.
//
// Flow of one blocking acquisition (ARCHITECTURE.md, "hot path"): resolve the class from the
// key's lock-free cache; mix it into the thread's chain key; if the chain cache holds the new
// key, push the held lock and return. Otherwise take the engine lock, check for recursion,
// record edges from the nearest held locks (past trylocks, as lockdep does), search for a path
// that an edge would close into a cycle, insert the chain, and deliver any report after the
// lock is dropped. All of that runs before the real lock blocks.
#include "engine/engine.h"

#include <pthread.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include <fmt/format.h>

#include "engine/chain_cache.h"
#include "engine/graph.h"
#include "engine/thread_state.h"
#include "report/pending.h"

namespace fencedep {

namespace detail {

std::atomic<bool> gate{false};

// The only code that touches lock_map's private members.
struct engine_access {
    static lock_class_key* key(const lock_map& map) { return map.key_.load(std::memory_order_acquire); }
    static void set_key(lock_map& map, lock_class_key* key) {
        map.key_.store(key, std::memory_order_release);
    }
    static const char* site_file(const lock_map& map) { return map.site_file_; }
    static unsigned site_line(const lock_map& map) { return map.site_line_; }
    static unsigned site_column(const lock_map& map) { return map.site_column_; }
    static const char* name(const lock_map& map) { return map.name_; }
    // A lock_map built with an explicit key records no construction site (line 0).
    static bool keyed_by_site(const lock_map& map) { return map.site_line_ != 0; }
};

namespace {

// Mixed into the chain key where a deferred_work segment starts; never a class id.
constexpr std::uint32_t segment_marker = 0xffffffffu;

// The innermost context frames kept with each edge: enough for "enabling signaling on X,
// adding a callback to Y" plus the operation around it.
constexpr unsigned frames_kept_per_edge = 3;

struct lock_class {
    const lock_class_key* key;
    unsigned subclass;
    std::string base;       // the name the lock was given
    std::uint32_t version;  // 1 for the first key with this base name, 2 for the next, ...
    std::string name;       // as printed: base, then #version (if > 1) and /subclass (if > 0)
};

// Where and under which fence context an edge was first recorded.
struct edge_record {
    stack_id stack;
    std::uint32_t context;  // index into engine_state::contexts, or graph::none
};

struct engine_state {
    std::mutex mutex;  // a plain std::mutex: the engine's own locks are never instrumented
    bool ready = false;          // tables allocated for the current options
    bool stepped_aside = false;  // a table filled up; validation stays off until reset()
    bool exit_handler = false;

    std::unique_ptr<lock_class[]> classes;  // index = class id; 0 unused
    std::uint32_t class_count = 0;
    std::unordered_map<std::string, std::uint32_t> name_versions;
    graph dependencies;
    std::vector<edge_record> edge_records;
    std::vector<context_record> contexts;
    std::unordered_set<std::uint64_t> reported;  // hashes of reports already made
    // Keys of construction sites ("file:line:column"), kept across reset() because locks built
    // before it still point at them.
    std::unordered_map<std::string, std::unique_ptr<lock_class_key>> sites;
};

// What the hot path reads, in a constant-initialized global so that reaching it costs no
// initialization check. Written under the engine lock.
struct hot_state {
    // Bumped by reset() so every key's cached class id becomes stale at once.
    std::uint32_t generation = 1;
    // Bumped by enable(true) so threads drop held stacks recorded before validation was off.
    std::atomic<std::uint64_t> epoch{1};
    chain_cache chains;
};
constinit hot_state hot;

engine_state& engine() {
    // Never destroyed: other threads may still lock while the process exits.
    static engine_state* state = new engine_state;
    return *state;
}

std::string thread_label(const thread_state& ts) {
    char name[32] = "?";
    pthread_getname_np(pthread_self(), name, sizeof name);
    return fmt::format("{}/{}", name, ts.tid);
}

std::string_view basename(std::string_view path) {
    const auto slash = path.rfind('/');
    return slash == std::string_view::npos ? path : path.substr(slash + 1);
}

// Folds the words in order, each 32-bit half in turn, so that different reports (kind, classes,
// sites) get different identities in the set of reports already made.
std::uint64_t hash_words(std::span<const std::uint64_t> words) {
    std::uint64_t h = 0x243f6a8885a308d3ull;
    for (std::uint64_t w : words)
        h = chain_key_mix(chain_key_mix(h, static_cast<std::uint32_t>(w)), static_cast<std::uint32_t>(w >> 32));
    return h;
}

// A lock is named by the name it was given; failing that, like the kernel, by its key's symbol
// (e.g. "ring_lock_key"), or for construction-site classes by the site ("abba.cpp:12").
std::string instance_name(const lock_map& map) {
    if (const char* name = engine_access::name(map))
        return name;
    if (const lock_class_key* key = engine_access::key(map); key && !engine_access::keyed_by_site(map)) {
        // symbolize() takes return addresses and looks up the byte before; a key is data.
        const frame symbol = symbolize(reinterpret_cast<std::uintptr_t>(key) + 1);
        if (!symbol.function.empty())
            return symbol.function;
        return fmt::format("key@{}", fmt::ptr(key));
    }
    return fmt::format("{}:{}", basename(engine_access::site_file(map)), engine_access::site_line(map));
}

lock_class_key* site_key(engine_state& e, const lock_map& map) {
    // The name is part of the identity: C++ evaluates the site of a lock built by a default
    // member initializer at the enclosing constructor, so `mutex a{"a"}; mutex b{"b"};` in one
    // struct share a site, yet are two locks in the kernel's sense (two init calls).
    const char* name = engine_access::name(map);
    auto& slot = e.sites[fmt::format("{}:{}:{}:{}", engine_access::site_file(map), engine_access::site_line(map),
                                     engine_access::site_column(map), name ? name : "")];
    if (!slot)
        slot = std::make_unique<lock_class_key>();
    return slot.get();
}

bool allocate_tables(engine_state& e) {
    const options& o = current_options();
    e.classes.reset(new (std::nothrow) lock_class[o.max_classes + 1]);
    e.ready = e.classes && e.dependencies.init(o.max_classes, o.max_edges) && hot.chains.init(o.max_chains);
    if (!e.ready) {
        static const char message[] = "fencedep: cannot allocate the validator's tables; validation is off\n";
        [[maybe_unused]] auto written = write(STDERR_FILENO, message, sizeof message - 1);
    }
    return e.ready;
}

void clear_tables(engine_state& e) {
    ++hot.generation;
    for (std::uint32_t id = 1; id <= e.class_count; ++id)
        e.classes[id] = lock_class{};
    e.class_count = 0;
    e.name_versions.clear();
    e.dependencies.clear();
    e.edge_records.clear();
    e.contexts.clear();
    hot.chains.clear();
    e.reported.clear();
    e.stepped_aside = false;
}

// Everything a single event may need to report, delivered after the engine lock is dropped.
class report_queue {
public:
    pending_report& add(report_kind kind, const thread_state& ts) {
        auto& r = reports_.emplace_back();
        r.kind = kind;
        r.thread = thread_label(ts);
        return r;
    }
    ~report_queue() {
        for (auto& r : reports_)
            deliver(std::move(r));
    }

private:
    std::vector<pending_report> reports_;
};

// One acquisition, release or check, under the engine lock.
class event {
public:
    event(engine_state& e, thread_state& ts, report_queue& reports) : e_(e), ts_(ts), reports_(reports) {}

    std::uint32_t register_class(lock_map& map, lock_class_key* key, unsigned subclass);
    void validate(std::uint32_t class_id, const lock_map* instance, const void* ip, std::uint64_t chain_key);
    void report_table_full(const char* table, std::uint32_t capacity, const char* option);
    void snapshot_held(pending_report& r) const;
    lock_ref ref(const held_lock& h) const {
        return {e_.classes[h.class_id].name, h.instance, h.ip, h.site_stack};
    }
    stack_id current_stack(unsigned skip = 0);
    // Whether a report identified by `identity` (a kind tag, then what makes it distinct) is
    // new; it is remembered either way.
    bool first_report(std::span<const std::uint64_t> identity) {
        return e_.reported.insert(hash_words(identity)).second;
    }
    bool first_report(std::initializer_list<std::uint64_t> identity) {
        return first_report(std::span(identity.begin(), identity.size()));
    }
    context_record current_context() const;

private:
    bool add_dependency(const held_lock& prev, std::uint32_t next, const lock_map* instance, const void* ip);

    engine_state& e_;
    thread_state& ts_;
    report_queue& reports_;
    stack_id stack_ = 0;
};

// Room for fencedep's own frames above the user's, which the renderer trims (a fence operation
// nested in containers can be a dozen frames deep).
constexpr unsigned trimmed_frames_allowance = 24;

stack_id event::current_stack(unsigned skip) {
    if (!stack_)
        stack_ = capture_stack(current_options().stack_depth + trimmed_frames_allowance, skip);
    return stack_;
}

context_record event::current_context() const {
    context_record record;
    const unsigned stored = std::min(ts_.frame_depth, max_context_frames);
    const unsigned first = stored > frames_kept_per_edge ? stored - frames_kept_per_edge : 0;
    for (unsigned i = first; i < stored; ++i) {
        const context_frame& f = *ts_.frames[i];
        record.push_back({f.op, f.kind ? f.kind : "", f.driver ? f.driver : "", f.timeline ? f.timeline : "",
                          f.context, f.seqno});
    }
    return record;
}

void event::snapshot_held(pending_report& r) const {
    for (unsigned i = 0; i < ts_.depth; ++i)
        r.held_locks.push_back(ref(ts_.held[i]));
    r.context = current_context();
}

void event::report_table_full(const char* table, std::uint32_t capacity, const char* option) {
    // One report, then validation steps aside for good (until reset()): the kernel does the same,
    // and going on with a partial graph would miss cycles silently.
    e_.stepped_aside = true;
    gate.store(false, std::memory_order_relaxed);
    auto& r = reports_.add(report_kind::table_exhausted, ts_);
    r.title = fmt::format("BUG: {} too low!", option);
    r.lines.push_back(fmt::format("the {} table is full: {} of {} entries in use", table, capacity, capacity));
    r.lines.push_back(fmt::format("raise it with FENCEDEP_OPTIONS={}={}", option, std::uint64_t{capacity} * 2));
    r.lines.push_back("turning off the locking correctness validator.");
    r.stack = current_stack();
    snapshot_held(r);
}

std::uint32_t event::register_class(lock_map& map, lock_class_key* key, unsigned subclass) {
    const std::uint64_t cached = key->cached_class[subclass].load(std::memory_order_acquire);
    if ((cached >> 32) == hot.generation)
        return static_cast<std::uint32_t>(cached);
    const options& o = current_options();
    if (e_.class_count == o.max_classes) {
        report_table_full("lock class", o.max_classes, "max_classes");
        return 0;
    }
    // Subclasses of one key share its name and version, as in lockdep ("name#2/1").
    const lock_class* sibling = nullptr;
    for (const auto& other : key->cached_class) {
        const std::uint64_t c = other.load(std::memory_order_relaxed);
        if ((c >> 32) == hot.generation) {
            sibling = &e_.classes[static_cast<std::uint32_t>(c)];
            break;
        }
    }
    std::string base = sibling ? sibling->base : instance_name(map);
    const std::uint32_t version = sibling ? sibling->version : ++e_.name_versions[base];
    std::string name = base;
    if (version > 1)
        name += fmt::format("#{}", version);
    if (subclass != 0)
        name += fmt::format("/{}", subclass);
    const std::uint32_t id = ++e_.class_count;
    e_.classes[id] = lock_class{key, subclass, std::move(base), version, std::move(name)};
    key->cached_class[subclass].store((std::uint64_t{hot.generation} << 32) | id, std::memory_order_release);
    return id;
}

bool event::add_dependency(const held_lock& prev, std::uint32_t next, const lock_map* instance, const void* ip) {
    graph& g = e_.dependencies;
    if (g.find_edge(prev.class_id, next) != graph::none)
        return true;
    std::vector<std::uint32_t> path;
    if (g.find_path(next, prev.class_id, path)) {
        // Report each distinct cycle once: identify it by its classes, rotated to start at the
        // smallest id, so the same cycle closed from any of its edges is one report.
        std::vector<std::uint64_t> cycle{prev.class_id};
        for (std::uint32_t edge : path)
            cycle.push_back(g.at(edge).from);
        std::rotate(cycle.begin(), std::min_element(cycle.begin(), cycle.end()), cycle.end());
        cycle.insert(cycle.begin(), 0xc1c1e);
        if (!first_report(cycle))
            return false;
        auto& r = reports_.add(report_kind::circular_dependency, ts_);
        r.subject = {e_.classes[next].name, instance, ip, current_stack()};
        r.held = ref(prev);
        // path: next = c0 -> c1 -> ... -> ck = prev. Printed from #k (prev) down to #0 (next);
        // link i shows the stack of the edge that reached c_i.
        for (std::size_t i = path.size(); i > 0; --i) {
            const auto& edge = g.at(path[i - 1]);
            const edge_record& rec = e_.edge_records[edge.payload];
            r.chain.push_back({e_.classes[edge.to].name, rec.stack,
                               rec.context == graph::none ? context_record{} : e_.contexts[rec.context]});
        }
        r.chain.push_back({e_.classes[next].name, current_stack(), current_context()});
        r.parent = e_.classes[g.at(path.back()).from].name;
        r.stack = current_stack();
        snapshot_held(r);
        return false;
    }
    std::uint32_t context = graph::none;
    if (ts_.frame_depth > 0) {
        context = static_cast<std::uint32_t>(e_.contexts.size());
        e_.contexts.push_back(current_context());
    }
    const auto payload = static_cast<std::uint32_t>(e_.edge_records.size());
    if (g.add_edge(prev.class_id, next, payload) == graph::none) {
        if (context != graph::none)
            e_.contexts.pop_back();
        report_table_full("dependency", g.max_edges(), "max_edges");
        return false;
    }
    e_.edge_records.push_back({current_stack(), context});
    return true;
}

void event::validate(std::uint32_t class_id, const lock_map* instance, const void* ip, std::uint64_t chain_key) {
    if (hot.chains.contains(chain_key))
        return;  // another thread validated this chain while we waited for the lock
    for (unsigned i = 0; i < ts_.depth; ++i) {
        const held_lock& h = ts_.held[i];
        if (h.class_id != class_id)
            continue;
        if (first_report({0x5ec, class_id})) {
            auto& r = reports_.add(report_kind::recursive_locking, ts_);
            r.subject = {e_.classes[class_id].name, instance, ip, current_stack()};
            r.held = ref(h);
            r.stack = current_stack();
            snapshot_held(r);
        }
        hot.chains.insert(chain_key);
        return;
    }
    // Edges from the nearest held lock, and past it while the held locks are trylocks: a trylock
    // recorded no edge into itself, so the locks below it are not yet known to precede `next`.
    for (unsigned i = ts_.depth; i > ts_.segment_base; --i) {
        const held_lock& h = ts_.held[i - 1];
        if (!add_dependency(h, class_id, instance, ip))
            break;
        if (!h.trylock)
            break;
    }
    if (!e_.stepped_aside && !hot.chains.insert(chain_key))
        report_table_full("lock chain", hot.chains.capacity(), "max_chains");
}

// Brings the thread's state up to the current epoch: after enable(true) the locks it recorded
// while validation was off (or before) are not known to be held any more.
void sync_epoch(thread_state& ts) {
    const std::uint64_t epoch = hot.epoch.load(std::memory_order_acquire);
    if (ts.epoch == epoch)
        return;
    ts.epoch = epoch;
    ts.depth = 0;
    ts.untracked = 0;
    ts.depth_reported = false;
    ts.chain_key = initial_chain_key;
    ts.segment_base = 0;
    ts.segment_depth = 0;
    const unsigned capacity = current_options().max_lock_depth;
    if (ts.capacity != capacity) {
        ts.held.reset(new (std::nothrow) held_lock[capacity]);
        ts.capacity = ts.held ? capacity : 0;
    }
}

// The frame of every event that may leave the hot path: raises the re-entry guard and brings the
// thread's state up to date. `ts` is null when the event must be ignored (validation off, a
// re-entered call, no state). Reports queued in `reports` are delivered when the scope ends,
// after any engine lock taken inside it is released, with the guard still raised.
class event_scope {
    std::optional<reentry_guard> guard_;  // declared first: destroyed after the reports go out

public:
    event_scope() noexcept {
        if (!gate.load(std::memory_order_relaxed) || reentry_guard::raised())
            return;
        guard_.emplace();
        ts = current_thread_state();
        if (ts)
            sync_epoch(*ts);
    }
    event_scope(const event_scope&) = delete;
    event_scope& operator=(const event_scope&) = delete;

    thread_state* ts = nullptr;
    report_queue reports;
};

// The hot path: an acquisition whose chain was validated before. It needs no lock, allocates
// nothing and cannot report, so it also needs no re-entry guard. Returns false to send the
// acquisition to the slow path, which redoes every step.
bool fast_acquire(lock_map& map, unsigned subclass, bool trylock, const void* ip) noexcept {
    thread_state* ts = this_thread_state;
    if (!ts || ts->epoch != hot.epoch.load(std::memory_order_acquire) || ts->depth == ts->capacity ||
        subclass > lock_map::max_subclass)
        return false;
    const lock_class_key* key = engine_access::key(map);
    if (!key)
        return false;
    // Reading the generation unlocked is safe: reset() requires that no thread is in fencedep.
    const std::uint64_t cached = key->cached_class[subclass].load(std::memory_order_acquire);
    if ((cached >> 32) != hot.generation)
        return false;
    const auto class_id = static_cast<std::uint32_t>(cached);
    const std::uint64_t chain_key = chain_key_mix(ts->chain_key, class_id);
    if (!trylock && !hot.chains.contains(chain_key))
        return false;
    ts->held[ts->depth++] = held_lock{class_id, trylock, &map, ip, ts->chain_key, 0};
    ts->chain_key = chain_key;
    return true;
}

void acquire_event(lock_map& map, unsigned subclass, bool trylock, const void* ip) {
    if (reentry_guard::raised() || fast_acquire(map, subclass, trylock, ip))
        return;
    event_scope scope;
    thread_state* ts = scope.ts;
    if (!ts)
        return;
    engine_state& e = engine();
    std::lock_guard<std::mutex> lock(e.mutex);
    if (!e.ready || e.stepped_aside)
        return;
    // One event for the whole slow path, so that every report and edge shares one stack capture.
    event ev(e, *ts, scope.reports);
    if (subclass > lock_map::max_subclass) {
        if (ev.first_report({0x5ab, reinterpret_cast<std::uintptr_t>(&map), subclass})) {
            auto& r = scope.reports.add(report_kind::invalid_subclass, *ts);
            r.title = fmt::format("BUG: looking up invalid subclass: {}", subclass);
            r.subject = {instance_name(map), &map, ip};
            r.lines.push_back(fmt::format("looking up invalid subclass: {} (subclasses are 0 to {})", subclass,
                                          lock_map::max_subclass));
            r.lines.push_back("the acquisition is recorded as subclass 0");
            r.stack = ev.current_stack();
        }
        subclass = 0;
    }
    lock_class_key* key = engine_access::key(map);
    if (!key) {
        key = site_key(e, map);
        engine_access::set_key(map, key);
    }
    const std::uint32_t class_id = ev.register_class(map, key, subclass);
    if (!class_id)
        return;
    if (ts->depth == ts->capacity) {
        ++ts->untracked;
        if (!ts->depth_reported) {
            ts->depth_reported = true;
            auto& r = scope.reports.add(report_kind::lock_depth_exceeded, *ts);
            r.title = "BUG: max_lock_depth too low!";
            r.subject = {e.classes[class_id].name, &map, ip};
            r.lines.push_back(fmt::format("depth: {}  max: {}!", ts->depth + 1, ts->capacity));
            r.lines.push_back(fmt::format("raise it with FENCEDEP_OPTIONS=max_lock_depth={}", ts->capacity * 2));
            r.lines.push_back("locks past the limit are not validated");
            r.stack = ev.current_stack();
            ev.snapshot_held(r);
        }
        return;
    }
    const std::uint64_t chain_key = chain_key_mix(ts->chain_key, class_id);
    stack_id site_stack = 0;
    if (!trylock && !hot.chains.contains(chain_key)) {
        ev.validate(class_id, &map, ip, chain_key);
        site_stack = ev.current_stack();
    }
    ts->held[ts->depth++] = held_lock{class_id, trylock, &map, ip, ts->chain_key, site_stack};
    ts->chain_key = chain_key;
}

// Finds `map` in the held stack, from the top. Returns the depth index or -1.
int find_held(const thread_state& ts, const lock_map& map) {
    for (unsigned i = ts.depth; i > 0; --i)
        if (ts.held[i - 1].instance == &map)
            return static_cast<int>(i - 1);
    return -1;
}

// Removes entry `index` and re-validates the entries above it, as lockdep does: the remaining
// sequence is a chain of its own, and may be new.
void remove_held(engine_state& e, thread_state& ts, unsigned index, report_queue& reports) {
    const unsigned old_depth = ts.depth;
    // A lock from an enclosing segment released inside deferred work: the segments above it
    // start one entry lower.
    if (index < ts.segment_base)
        --ts.segment_base;
    for (unsigned i = 0; i < ts.segment_depth && i < max_context_frames; ++i)
        if (index < ts.segments[i].base)
            --ts.segments[i].base;
    ts.chain_key = ts.held[index].prev_chain_key;
    ts.depth = index;
    for (unsigned i = index + 1; i < old_depth; ++i) {
        held_lock h = ts.held[i];
        const std::uint64_t chain_key = chain_key_mix(ts.chain_key, h.class_id);
        if (!h.trylock && !hot.chains.contains(chain_key)) {
            std::lock_guard<std::mutex> lock(e.mutex);
            if (!e.stepped_aside)
                event(e, ts, reports).validate(h.class_id, h.instance, h.ip, chain_key);
        }
        h.prev_chain_key = ts.chain_key;
        ts.held[ts.depth++] = h;
        ts.chain_key = chain_key;
    }
}

// The hot path of a release: the lock is the top of the held stack.
bool fast_release(const lock_map& map) noexcept {
    thread_state* ts = this_thread_state;
    if (!ts || ts->epoch != hot.epoch.load(std::memory_order_acquire) || ts->depth == 0)
        return false;
    const held_lock& top = ts->held[ts->depth - 1];
    if (top.instance != &map)
        return false;
    ts->chain_key = top.prev_chain_key;
    if (--ts->depth == 0)
        ts->depth_reported = false;
    return true;
}

void release_event(lock_map& map, const void* ip) {
    if (reentry_guard::raised() || fast_release(map))
        return;
    event_scope scope;
    thread_state* ts = scope.ts;
    if (!ts)
        return;
    auto& reports = scope.reports;
    engine_state& e = engine();
    const int index = find_held(*ts, map);
    if (index >= 0) {
        remove_held(e, *ts, static_cast<unsigned>(index), reports);
        if (ts->depth == 0)
            ts->depth_reported = false;
        return;
    }
    if (ts->untracked > 0) {
        --ts->untracked;
        return;
    }
    std::lock_guard<std::mutex> lock(e.mutex);
    event ev(e, *ts, reports);
    if (!ev.first_report({0xbad, reinterpret_cast<std::uintptr_t>(engine_access::key(map)),
                          reinterpret_cast<std::uintptr_t>(ip)}))
        return;
    auto& r = reports.add(report_kind::bad_unlock_balance, *ts);
    r.subject = {instance_name(map), &map, ip};
    r.stack = ev.current_stack();
    ev.snapshot_held(r);
}

void destroy_event(lock_map& map) {
    event_scope scope;
    thread_state* ts = scope.ts;
    if (!ts)
        return;
    const int index = find_held(*ts, map);
    if (index < 0)
        return;
    auto& reports = scope.reports;
    engine_state& e = engine();
    {
        std::lock_guard<std::mutex> lock(e.mutex);
        event ev(e, *ts, reports);
        auto& r = reports.add(report_kind::held_lock_freed, *ts);
        r.subject = ev.ref(ts->held[index]);
        r.lines.push_back(fmt::format("{} is freeing memory {}-{}, with a lock still held there!", r.thread,
                                      fmt::ptr(&map), fmt::ptr(reinterpret_cast<const char*>(&map) + sizeof map - 1)));
        r.stack = ev.current_stack();
        ev.snapshot_held(r);
    }
    // Forget the entry so that the stack stays usable; the memory is going away.
    remove_held(e, *ts, static_cast<unsigned>(index), reports);
}

}  // namespace

void on_thread_exit(thread_state& ts) noexcept {
    engine_state& e = engine();
    if (!gate.load(std::memory_order_relaxed) || ts.epoch != hot.epoch.load(std::memory_order_acquire) ||
        ts.depth == 0)
        return;
    report_queue reports;
    std::lock_guard<std::mutex> lock(e.mutex);
    event ev(e, ts, reports);
    auto& r = reports.add(report_kind::lock_held_at_thread_exit, ts);
    r.title = fmt::format("WARNING: {} still has locks held!", r.thread);
    r.stack = ev.current_stack();
    ev.snapshot_held(r);
    ts.depth = 0;
}

void report_container_nesting(const std::string& what, const std::string& advice) {
    const container_rules_mode mode = current_options().container_rules;
    if (mode == container_rules_mode::off)
        return;
    event_scope scope;
    thread_state* ts = scope.ts;
    if (!ts)
        return;
    engine_state& e = engine();
    std::lock_guard<std::mutex> lock(e.mutex);
    event ev(e, *ts, scope.reports);
    const stack_id stack = ev.current_stack();
    if (!ev.first_report({0xc0a7, stack, std::hash<std::string>{}(what)}))
        return;
    auto& r = scope.reports.add(report_kind::fence_container_nesting, *ts);
    r.is_splat = mode == container_rules_mode::error;
    r.lines = {what, advice};
    r.stack = stack;
    ev.snapshot_held(r);
}

unsigned held_lock_count() noexcept {
    const event_scope scope;
    return scope.ts ? scope.ts->depth : 0;
}

void reconfigure(const options& opts) {
    engine_state& e = engine();
    const bool was_on = gate.load(std::memory_order_relaxed);
    gate.store(false, std::memory_order_relaxed);
    {
        std::lock_guard<std::mutex> lock(e.mutex);
        current_options() = opts;
        allocate_tables(e);
        clear_tables(e);
        hot.epoch.fetch_add(1, std::memory_order_release);
    }
    reset_splat_count();
    if (was_on || opts.enabled)
        enable(true);
}

namespace {
// fork() copies only the calling thread: a lock another thread held at that moment would stay
// held for ever in the child, and the child's next slow path would hang. So every internal lock
// is taken before fork() and released after it, in both processes. The order is the one the
// slow paths nest them in: engine, then stack depot, then symbolizer; the handler slot's lock is
// never held with another.
void before_fork() {
    engine().mutex.lock();
    hold_stack_locks(true);
    hold_handler_lock(true);
}

void after_fork() {
    hold_handler_lock(false);
    hold_stack_locks(false);
    engine().mutex.unlock();
}

[[gnu::constructor]] void start_up() {
    pthread_atfork(before_fork, after_fork, after_fork);
    load_options();
    if (current_options().enabled)
        enable(true);
}
}  // namespace

}  // namespace detail

using namespace detail;

void enable(bool on) {
    engine_state& e = engine();
    if (!on) {
        gate.store(false, std::memory_order_relaxed);
        return;
    }
    {
        std::lock_guard<std::mutex> lock(e.mutex);
        if (!e.ready && !allocate_tables(e))
            return;
        if (!e.exit_handler) {
            e.exit_handler = true;
            open_log();
        }
        if (e.stepped_aside)
            return;  // a full table turned validation off; only reset() brings it back
        // Only a switch from off forgets the held stacks: while validation stayed on they are
        // exact, and dropping them would turn the next unlocks into bad-unlock reports.
        if (!gate.load(std::memory_order_relaxed))
            hot.epoch.fetch_add(1, std::memory_order_release);
    }
    gate.store(true, std::memory_order_relaxed);
}

void reset() {
    engine_state& e = engine();
    {
        std::lock_guard<std::mutex> lock(e.mutex);
        if (e.ready)
            clear_tables(e);
    }
    reset_splat_count();
}

context_scope::context_scope(const context_frame& frame) noexcept : state_(not_pushed) {
    const event_scope scope;
    thread_state* ts = scope.ts;
    if (!ts)
        return;
    if (ts->frame_depth < max_context_frames)
        ts->frames[ts->frame_depth] = &frame;
    ++ts->frame_depth;
    state_ = pushed;
    if (frame.op == fence_op::deferred_work && ts->segment_depth < max_context_frames) {
        ts->segments[ts->segment_depth++] = {ts->segment_base, ts->chain_key};
        ts->segment_base = ts->depth;
        // The key goes on from the enclosing one, marked: a chain in the segment is then cached
        // per enclosing held stack, so recursion across the boundary is still checked, and it
        // never matches a chain of the enclosing segment.
        ts->chain_key = chain_key_mix(ts->chain_key, segment_marker);
        state_ = pushed_segment;
    }
}

context_scope::~context_scope() {
    if (state_ == not_pushed)
        return;
    reentry_guard guard;
    thread_state* ts = current_thread_state();
    if (!ts)
        return;
    --ts->frame_depth;
    // After enable(true) reset the thread's stacks, there is no segment left to close.
    if (state_ == pushed_segment && ts->segment_depth > 0) {
        const auto& saved = ts->segments[--ts->segment_depth];
        ts->segment_base = saved.base;
        ts->chain_key = saved.chain_key;
    }
}

lock_map::lock_map(const char* name, const char* file, unsigned line, unsigned column) noexcept
    : name_(name), key_(nullptr), site_file_(file), site_line_(line), site_column_(column) {}

lock_map::lock_map(const char* name, lock_class_key& key) noexcept
    : name_(name), key_(&key), site_file_(""), site_line_(0), site_column_(0) {}

lock_map::~lock_map() {
    if (enabled())
        destroy_event(*this);
}

void lock_map::acquire(unsigned subclass) noexcept {
    if (enabled())
        acquire_event(*this, subclass, false, __builtin_return_address(0));
}

void lock_map::try_acquire(unsigned subclass) noexcept {
    if (enabled())
        acquire_event(*this, subclass, true, __builtin_return_address(0));
}

void lock_map::release() noexcept {
    if (enabled())
        release_event(*this, __builtin_return_address(0));
}

void lock_map::acquire(const acquisition& how) noexcept {
    if (enabled())
        acquire_event(*this, how.subclass, how.trylock, how.ip ? how.ip : __builtin_return_address(0));
}

void lock_map::release(const void* ip) noexcept {
    if (enabled())
        release_event(*this, ip ? ip : __builtin_return_address(0));
}

bool lock_map::held_by_this_thread() const noexcept {
    const event_scope scope;
    return scope.ts && find_held(*scope.ts, *this) >= 0;
}

}  // namespace fencedep
