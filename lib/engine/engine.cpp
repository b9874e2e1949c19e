// SPDX-License-Identifier: MIT
// The engine's state and switches: tables, enable/reset, fork and start-up, and the checks that
// are not acquisitions (thread exit, fence container nesting). Acquisitions and releases are in
// held.cpp, dependencies and cycles in dependencies.cpp, classes in classes.cpp.
#include "engine/engine.h"

#include <pthread.h>
#include <unistd.h>

#include <fmt/format.h>

#include "engine/internal.h"
#include "report/suppressions.h"

namespace fencedep {

namespace detail {

std::atomic<bool> gate{false};
constinit hot_state hot;

std::atomic<void (*)() noexcept> gate_listener{nullptr};

void set_gate(bool on) noexcept {
    gate.store(on, std::memory_order_relaxed);
    if (auto* listener = gate_listener.load(std::memory_order_acquire))
        listener();
}

engine_state& engine() {
    static engine_state* state = new engine_state;
    return *state;
}

std::string thread_label(const thread_state& ts) {
    char name[32] = "?";
    pthread_getname_np(pthread_self(), name, sizeof name);
    return fmt::format("{}/{}", name, ts.tid);
}

// Folds the words in order, each 32-bit half in turn, so that different reports (kind, classes,
// sites) get different identities in the set of reports already made.
std::uint64_t hash_words(std::span<const std::uint64_t> words) {
    std::uint64_t h = 0x243f6a8885a308d3ull;
    for (std::uint64_t w : words) {
        h = (h ^ w) * 0x9e3779b97f4a7c15ull;
        h ^= h >> 29;
    }
    return h;
}

pending_report& report_queue::add(report_kind kind, const thread_state& ts) {
    auto& r = reports_.emplace_back();
    r.kind = kind;
    r.thread = thread_label(ts);
    return r;
}

report_queue::~report_queue() {
    for (auto& r : reports_)
        deliver(std::move(r));
}

namespace {

bool allocate_tables(engine_state& e) {
    const options& o = current_options();
    e.dependencies.init(o.max_classes, o.max_edges);
    e.ready = hot.chains.init(o.max_chains);
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
    hot.depth_reported.store(false, std::memory_order_relaxed);
    e.reported.clear();
    e.reported_cycles.clear();
    e.stepped_aside = false;
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
    ts.chain_key = initial_chain_key(epoch);
    ts.segment_base = 0;
    ts.segment_depth = 0;
    const unsigned capacity = current_options().max_lock_depth;
    if (ts.capacity != capacity) {
        ts.held.reset(new (std::nothrow) held_lock[capacity]);
        ts.capacity = ts.held ? capacity : 0;
    }
}

}  // namespace

event_scope::event_scope() noexcept {
    if (!gate.load(std::memory_order_relaxed) || reentry_guard::raised())
        return;
    guard_.emplace();
    ts = current_thread_state();
    if (ts)
        sync_epoch(*ts);
}

void on_thread_exit(thread_state& ts) noexcept {
    engine_state& e = engine();
    if (!gate.load(std::memory_order_relaxed) || !current_epoch(ts) ||
        ts.depth == 0)
        return;
    report_queue reports;
    std::lock_guard<std::mutex> lock(e.mutex);
    event ev(e, ts, reports);
    // Once per set of held locks and their acquire sites: a pool whose threads all exit holding
    // the same lock made one mistake.
    std::vector<std::uint64_t> identity{0xe817};
    for (unsigned i = 0; i < ts.depth; ++i) {
        identity.push_back(ts.held[i].class_id);
        identity.push_back(reinterpret_cast<std::uintptr_t>(ts.held[i].ip));
    }
    if (!ev.first_report(identity)) {
        ts.depth = 0;
        return;
    }
    auto& r = reports.add(report_kind::lock_held_at_thread_exit, ts);
    r.title = fmt::format("WARNING: {} still has locks held!", r.thread);
    r.stack = ev.current_stack();
    ev.snapshot_held(r);
    ts.depth = 0;
}

void report_container_nesting(const void* call_site, std::string_view container_kind, std::string_view child_kind,
                              const std::string& what, const std::string& advice) {
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
    // One warning per call site and pair of container classes: the fences differ on every
    // call, and a loop over fresh fences is one mistake, not one per fence.
    const std::hash<std::string_view> hash;
    if (!ev.first_report({0xc0a7, reinterpret_cast<std::uintptr_t>(call_site), hash(container_kind), hash(child_kind)}))
        return;
    auto& r = scope.reports.add(report_kind::fence_container_nesting, *ts);
    r.is_splat = mode == container_rules_mode::error;
    r.lines = {what, advice};
    r.stack = ev.current_stack();
    ev.snapshot_held(r);
}

unsigned held_lock_count() noexcept {
    const event_scope scope;
    return scope.ts ? scope.ts->depth : 0;
}

namespace {
// Runs the primer once per graph, outside the engine lock and the re-entry guard, since what it
// records are ordinary acquisitions.
void prime() {
    engine_state& e = engine();
    void (*primer)() noexcept = nullptr;
    {
        const reentry_guard guard;
        std::lock_guard<std::mutex> lock(e.mutex);
        if (!gate.load(std::memory_order_relaxed) || !e.primer || e.primed_generation == hot.generation)
            return;
        e.primed_generation = hot.generation;
        primer = e.primer;
    }
    primer();
}
}  // namespace

void set_primer(void (*primer)() noexcept) {
    {
        const reentry_guard guard;
        std::lock_guard<std::mutex> lock(engine().mutex);
        engine().primer = primer;
    }
    prime();
}

void reconfigure(const options& opts) {
    const reentry_guard guard;
    engine_state& e = engine();
    const bool was_on = gate.load(std::memory_order_relaxed);
    set_gate(false);
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
// never held with another. The re-entry guard stays raised from the first of them to the last
// release, so that a pthread interposer passes them through as fencedep's own.
void before_fork() {
    reentry_guard::raise();
    engine().mutex.lock();
    hold_stack_locks(true);
    hold_handler_lock(true);
}

void after_fork() {
    hold_handler_lock(false);
    hold_stack_locks(false);
    engine().mutex.unlock();
    reentry_guard::lower();
}

[[gnu::constructor]] void start_up() {
    pthread_atfork(before_fork, after_fork, after_fork);
    load_options();
    load_suppressions();
    if (current_options().enabled)
        enable(true);
}
}  // namespace

}  // namespace detail

using namespace detail;

// enable() and reset() raise the re-entry guard while they hold the engine lock: a signal handler
// that takes a fencedep lock on this thread then passes through instead of waiting for a lock
// its own thread holds.
void enable(bool on) {
    {
        const reentry_guard guard;
        engine_state& e = engine();
        if (!on) {
            set_gate(false);
            return;
        }
        std::lock_guard<std::mutex> lock(e.mutex);
        if (!e.ready && !allocate_tables(e))
            return;
        if (!e.log_open) {
            e.log_open = true;
            open_log();
        }
        if (e.stepped_aside)
            return;  // a full table turned validation off; only reset() brings it back
        // Only a switch from off forgets the held stacks: while validation stayed on they are
        // exact, and dropping them would turn the next unlocks into bad-unlock reports.
        if (!gate.load(std::memory_order_relaxed)) {
            hot.epoch.fetch_add(1, std::memory_order_release);
            hot.chains.clear();  // see initial_chain_key
        }
        set_gate(true);
    }
    prime();
}

void reset() {
    {
        const reentry_guard guard;
        engine_state& e = engine();
        std::lock_guard<std::mutex> lock(e.mutex);
        if (e.ready)
            clear_tables(e);
    }
    reset_splat_count();
    prime();
}

}  // namespace fencedep
