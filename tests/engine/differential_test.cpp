// SPDX-License-Identifier: MIT
// Differential test: fencedep's verdicts against a naive model of lockdep's semantics, over random
// sequences of lock, trylock, nested lock and out-of-order unlock, by writers, readers and
// recursive readers, on one or several threads.
//
// Kinds (lockdep.md §1.7). An acquisition takes its lock as a writer (W), a non-recursive reader
// (r) or a recursive reader (R). A dependency prev -> next is Exclusive or Shared by how prev is
// held (W, or r/R) and Non-recursive or Recursive by how next is taken (W/r, or R): EN, ER, SN,
// SR. A path is strong when it never arrives at a lock by -(?R)-> and leaves it by -(S?)->: a
// recursive reader waits for no reader, so a lock held shared does not block it. A cycle can
// deadlock iff it is strong.
//
// The model does not share the engine's shortcuts. A blocking acquisition of class n while n is
// held is recursion: a self-deadlock that adds nothing, unless it is a recursive read and every
// held entry of n is a read (no reader blocks a recursive reader), which is allowed and then
// validated as any other acquisition, without a dependency of n on itself. An acquisition records
// a dependency h->n, with its kinds, from EVERY held lock h, trylocks included, rather than from
// the nearest one and relying on transitivity. An out-of-order release re-takes the locks above
// the released one, each validated again. The model keeps two graphs:
//   full: every dependency the program showed. Its strong cycles are real deadlocks.
//   core: the same dependencies minus those that closed a strong cycle when they appeared.
//         fencedep reports a closing dependency and does not add it, so core is the graph a
//         correct engine holds (its strong reachability, not its edge list: the engine stores
//         fewer, transitively implied, edges). core has no strong cycle.
// An acquisition of n under held set H conflicts when core has a strong path from n to some h in
// H that closes a strong cycle with h->n: it may not leave n by -(S?)-> if n is taken as R, and
// must arrive at h by -(?N)-> unless h is held as W. Those h are its conflicts. Paths are searched
// over (class, arrival) states, where a class reached by -(?R)-> only is a state of its own that
// may leave by -(E?)-> only. That finds walks rather than simple paths, but in a graph without a
// strong cycle the two agree. Cut a strong closed walk through h->n at two visits of a class into
// two closed walks, one arriving as the first visit did and leaving as the second did, the other
// the other way round. One of them is strong at the cut: if the first visit arrives by -(?R)->,
// it leaves by -(E?)->, and the second closed walk leaves so; otherwise the first one arrives by
// -(?N)->. The strong one is not the one without h->n, so the walk shrinks to a simple strong
// cycle through h->n.
// Checks, on every operation:
//   (1) each circular report is a strong cycle of the full graph: every printed link is a
//       dependency the program showed, with the kind printed ({write}, {read}, {recursive read}:
//       how the link's lock was taken) and a held kind that makes the cycle strong, and the cycle
//       is simple;
//   (2) each conflicting acquisition is reported then, or an earlier report already named a cycle
//       holding n and one of its conflicts (each distinct cycle is reported once);
//   (3) each circular report belongs to an acquisition of this operation that closes a strong
//       cycle of the full graph (the printed acquired class and kind are n's, the printed held
//       class and kind are those of a held entry n reaches by a strong path);
//   (4) in particular no circular report comes at an acquisition that closes only cycles that are
//       not strong (two recursive readers taken in opposite orders must stay silent);
//   (R) recursive_locking comes exactly at the first forbidden recursion of each class;
//   (X) no other report kind appears (the runs stay within fencedep's tables and depth).
// Cycles of the full graph that need a refused dependency are counted but not required: fencedep
// does not add a refused dependency, and the report of that one already names the root cause.
//
// Threads take turns in an order drawn from the run's seed, under a plain std::mutex, so the model
// sees the engine's order and a printed seed replays a multi-threaded run exactly.
//
// Environment: FENCEDEP_DIFFERENTIAL_OPS (total operations, default 10^6, 3*10^5 under ASan; the
// long benchmark sets 10^8), FENCEDEP_DIFFERENTIAL_SEED (master seed), FENCEDEP_DIFFERENTIAL_RUN (replay the
// one run with this seed, as printed by a failure), FENCEDEP_DIFFERENTIAL_VERBOSE=1 (a line per
// run), FENCEDEP_DIFFERENTIAL_KEEP_GOING=1 (check on after failures, to count every failing
// check). Run it with FENCEDEP_OPTIONS=symbolize=0, as meson does.
#include <algorithm>
#include <array>
#include <bit>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "capture.h"

namespace {

using u64 = std::uint64_t;
using fencedep::lock_kind;

constexpr lock_kind all_kinds[] = {lock_kind::write, lock_kind::read, lock_kind::recursive_read};
constexpr bool recursive(lock_kind kind) { return kind == lock_kind::recursive_read; }

// How the generator may take a lock.
enum class lock_type : std::uint8_t {
    mutex,   // writers only
    shared,  // writers and non-recursive readers, as std::shared_mutex
    rwlock,  // writers and recursive readers, as a reader-preferring pthread_rwlock_t
};

// The kinds of a dependency prev -> next, one bit per (held kind of prev, taken kind of next):
// nine rather than lockdep's four (EN, ER, SN, SR), so that a printed "{read}" is told from
// "{write}".
std::uint16_t kind_bit(lock_kind held, lock_kind taken) {
    return static_cast<std::uint16_t>(1u << (3 * static_cast<unsigned>(held) + static_cast<unsigned>(taken)));
}

// The kinds a step of a strong path may use: those taken as `taken`, and held exclusively when
// the path arrived at prev as a recursive reader.
std::uint16_t step_kinds(lock_kind taken, bool arrived_recursive) {
    std::uint16_t mask = kind_bit(lock_kind::write, taken);
    if (!arrived_recursive)
        mask |= kind_bit(lock_kind::read, taken) | kind_bit(lock_kind::recursive_read, taken);
    return mask;
}

// The kind as reports print it.
const char* kind_mark(lock_kind kind) {
    switch (kind) {
    case lock_kind::write: return "{write}";
    case lock_kind::read: return "{read}";
    case lock_kind::recursive_read: return "{recursive read}";
    }
    return "{?}";
}

#if defined(__SANITIZE_ADDRESS__)
constexpr bool sanitized = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
constexpr bool sanitized = true;
#else
constexpr bool sanitized = false;
#endif
#else
constexpr bool sanitized = false;
#endif

constexpr u64 default_master_seed = 0xd1ff'5eed'2024'0001ull;
// ASan makes each operation about seven times dearer; CI runs that build too, within a minute.
constexpr u64 default_total_ops = sanitized ? 300'000 : 1'000'000;

// The engine's default tables (lib/config/options.cpp): a run ends before the model could fill
// them, because a full table makes fencedep step aside and every later check would be vacuous.
// The model's counts are upper bounds of the engine's: every engine edge is a full-graph edge,
// and every chain the engine caches is a distinct held sequence the model saw validated.
constexpr std::size_t edge_limit = 30'000;   // max_edges 32768
constexpr std::size_t chain_limit = 60'000;  // max_chains 65536
// max_lock_depth is 48; a deeper stack would leave locks unvalidated.
constexpr unsigned depth_limit = 44;
constexpr unsigned subclasses_used = 4;  // 0-3 of the 8

u64 splitmix(u64& state) {
    u64 z = (state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

struct rng {
    u64 state;
    u64 next() { return splitmix(state); }
    unsigned below(unsigned n) { return static_cast<unsigned>(next() % n); }
    bool per_mille(unsigned p) { return below(1000) < p; }
};

std::optional<u64> env_number(const char* name) {
    const char* text = std::getenv(name);
    if (!text || !*text)
        return std::nullopt;
    char* end = nullptr;
    const u64 value = std::strtoull(text, &end, 0);
    if (*end != '\0') {
        std::fprintf(stderr, "differential: %s=%s is not a number\n", name, text);
        std::exit(2);
    }
    return value;
}

// n rows of n bits.
class bit_matrix {
public:
    void init(std::size_t n) {
        words_ = (n + 63) / 64;
        bits_.assign(n * words_, 0);
        n_ = n;
    }
    bool test(std::size_t r, std::size_t c) const { return (bits_[r * words_ + c / 64] >> (c % 64)) & 1; }
    void set(std::size_t r, std::size_t c) { bits_[r * words_ + c / 64] |= u64{1} << (c % 64); }
    void or_row(std::size_t into, std::size_t from) {
        // Through local pointers: bits_'s words could alias words_ (both unsigned long), which
        // would keep the compiler from vectorizing the loop.
        u64* out = bits_.data() + into * words_;
        const u64* in = bits_.data() + from * words_;
        for (std::size_t w = 0, n = words_; w < n; ++w)
            out[w] |= in[w];
    }
    std::size_t size() const { return n_; }

private:
    std::vector<u64> bits_;
    std::size_t words_ = 0;
    std::size_t n_ = 0;
};

// Edges plus their transitive closure, updated on each insertion: a query is one bit, which is
// what lets the model test every held lock of every acquisition at 10^6 operations.
class digraph {
public:
    void init(std::size_t n) {
        adj_.init(n);
        reach_.init(n);
        rows_ = 0;
    }
    // A path of one edge or more.
    bool reaches(unsigned u, unsigned v) const { return reach_.test(u, v); }

    // Adds an edge from each of `from` to `v`. One acquisition's dependencies all lead to the
    // acquired lock, so the closure is updated once for all of them. The rows to update are found
    // by testing each row's bits for the new edges' sources: keeping the transposed closure to
    // list them cost more, in the runs with thousands of classes, than the test saves.
    void add(std::span<const unsigned> from, unsigned v) {
        std::vector<unsigned>& fresh = scratch_;
        fresh.clear();
        for (unsigned u : from) {
            if (adj_.test(u, v))
                continue;
            adj_.set(u, v);
            rows_ = std::max({rows_, u + 1, v + 1});
            if (!reach_.test(u, v))
                fresh.push_back(u);
        }
        if (fresh.empty())
            return;
        // Everything that reaches a fresh u (and u) now reaches everything v reaches (and v). A
        // row that already holds v holds all of v's row (the closure is transitive) and is left
        // alone. If v reaches a fresh u, v's own row is updated too, gaining only v, which the
        // rows updated before it got with v anyway.
        for (unsigned x = 0; x < rows_; ++x) {
            if (reach_.test(x, v) ||
                std::ranges::none_of(fresh, [&](unsigned u) { return x == u || reach_.test(x, u); }))
                continue;
            reach_.or_row(x, v);
            reach_.set(x, v);
        }
    }

    // A shortest path u ->...-> v, for failure messages.
    std::vector<unsigned> path(unsigned u, unsigned v) const {
        const std::size_t n = adj_.size();
        std::vector<int> parent(n, -1);
        std::vector<unsigned> queue{u};
        parent[u] = static_cast<int>(u);
        for (std::size_t i = 0; i < queue.size(); ++i) {
            const unsigned x = queue[i];
            for (unsigned y = 0; y < n; ++y) {
                if (!adj_.test(x, y))
                    continue;
                if (y == v) {
                    std::vector<unsigned> out{v};
                    for (unsigned z = x; z != u; z = static_cast<unsigned>(parent[z]))
                        out.push_back(z);
                    out.push_back(u);
                    std::reverse(out.begin(), out.end());
                    return out;
                }
                if (parent[y] < 0) {
                    parent[y] = static_cast<int>(x);
                    queue.push_back(y);
                }
            }
        }
        return {};
    }

private:
    bit_matrix adj_;
    bit_matrix reach_;
    // Nodes from rows_ on have no edge yet, so reach nothing: the dense class ids are given in
    // order of first use, and a run uses its many keys a window at a time.
    unsigned rows_ = 0;
    std::vector<unsigned> scratch_;
};

// A held lock as a dependency sees it.
struct held_class {
    unsigned cls;
    lock_kind kind;
    bool operator==(const held_class&) const = default;
};

// Dependencies with their kinds, and strong reachability. Each class c is two states of
// `states_`: 2c, reached by a non-recursive arrival (or the start of a path), and 2c+1, reached
// by a recursive reader's. A dependency u -> v joins 2u to v's state for its taken kind, and 2u+1
// too when u was held exclusively, so the paths of states are the strong walks.
class dependency_graph {
public:
    void init(std::size_t classes) {
        classes_ = classes;
        kinds_.assign(classes * classes, 0);
        pairs_ = 0;
        states_.init(2 * classes);
    }
    // Class pairs with a dependency, as the engine counts its edges.
    std::size_t pairs() const { return pairs_; }
    std::uint16_t kinds(unsigned from, unsigned to) const { return kinds_[from * classes_ + to]; }

    // Adds the dependencies of `to`, taken as `taken`, on each held lock of `prevs`; calls
    // fresh(prev) for each that is new.
    template <class F>
    void add(std::span<const held_class> prevs, unsigned to, lock_kind taken, F&& fresh) {
        sources_.clear();
        for (const held_class& prev : prevs) {
            std::uint16_t& kinds = kinds_[prev.cls * classes_ + to];
            const std::uint16_t bit = kind_bit(prev.kind, taken);
            if (kinds & bit)
                continue;
            pairs_ += kinds == 0;
            kinds |= bit;
            fresh(prev);
            sources_.push_back(2 * prev.cls);
            if (prev.kind == lock_kind::write)
                sources_.push_back(2 * prev.cls + 1);
        }
        states_.add(sources_, state(to, taken));
    }

    // Whether prev -> next, next taken as `taken` while prev is held as `held`, closes a strong
    // cycle.
    bool closes(unsigned next, lock_kind taken, unsigned prev, lock_kind held) const {
        const unsigned start = state(next, taken);
        return states_.reaches(start, 2 * prev) || (held == lock_kind::write && states_.reaches(start, 2 * prev + 1));
    }

    // For failure messages: the states of a strong path that closes, as closes() says.
    std::vector<unsigned> closing_path(unsigned next, lock_kind taken, unsigned prev, lock_kind held) const {
        std::vector<unsigned> path = states_.path(state(next, taken), 2 * prev);
        if (path.empty() && held == lock_kind::write)
            path = states_.path(state(next, taken), 2 * prev + 1);
        return path;
    }

private:
    static unsigned state(unsigned cls, lock_kind taken) { return 2 * cls + (recursive(taken) ? 1 : 0); }

    std::size_t classes_ = 0;
    std::vector<std::uint16_t> kinds_;  // from * classes + to -> kind_bit()s
    std::size_t pairs_ = 0;
    digraph states_;
    std::vector<unsigned> sources_;
};

// Everything about a run follows from its seed, so a printed seed replays it exactly. Threads
// take turns in an order drawn from the same seed, so multi-threaded runs replay too.
struct run_config {
    u64 seed;
    unsigned keys;           // lock_class_keys (N)
    unsigned nested_keys;    // the first keys also take subclasses 1-3
    unsigned threads;
    unsigned ops;            // budget; a run also ends when a table would come near its limit
    unsigned window;         // a thread picks most classes from a window of this many keys...
    unsigned ordered_pm;     // ...or, this often, the keys just after its top lock (a mostly
                             // consistent order, so that cycles are fewer and longer)
    unsigned max_depth;      // releases get likelier as the held stack nears this
    unsigned trylock_pm;
    unsigned recursion_pm;   // re-take a held class
    unsigned out_of_order_pm;
    unsigned shared_pm;      // a key is a lock_type::shared this often...
    unsigned rwlock_pm;      // ...an rwlock this often, else a mutex
    unsigned read_pm;        // an acquisition of a shared or rwlock key is a read this often
};

run_config config_for(u64 seed) {
    rng r{seed};
    run_config c{};
    c.seed = seed;
    // Log-uniform from 3 to 2000 keys: small runs repeat chains and close many cycles, big ones
    // exercise a sparse graph with long paths.
    const double u = static_cast<double>(r.below(1'000'001)) / 1e6;
    c.keys = std::clamp(static_cast<unsigned>(3.0 * std::pow(2000.0 / 3.0, u)), 3u, 2000u);
    if (r.below(16) == 0)
        c.keys = 2000;  // the largest size, more often than log-uniform would give it
    c.nested_keys = std::min(c.keys, 1 + r.below(8));
    static constexpr unsigned thread_choices[] = {1, 1, 1, 1, 2, 3, 4, 4};
    c.threads = thread_choices[r.below(8)];
    c.ops = 5'000 + r.below(40'000);
    static constexpr unsigned windows[] = {3, 4, 6, 8, 12, 16, 32, 64};
    c.window = std::min(c.keys, windows[r.below(8)]);
    static constexpr unsigned ordered[] = {0, 0, 300, 600, 900, 980};
    c.ordered_pm = ordered[r.below(6)];
    static constexpr unsigned depths[] = {2, 3, 3, 4, 4, 5, 6, 8, 10, 16, depth_limit};
    c.max_depth = depths[r.below(11)];
    c.trylock_pm = 50 + r.below(250);
    c.recursion_pm = r.below(40);
    c.out_of_order_pm = r.below(400);
    // Some runs have no reader at all, as before readers existed; the others mix the two reader
    // kinds with writers and mutexes, or have one kind only, so that read-read inversions,
    // readers and writers of one lock, and cycles of recursive readers all come up.
    static constexpr std::array<std::array<unsigned, 2>, 8> mixes = {
        {{0, 0}, {0, 0}, {250, 250}, {400, 400}, {700, 0}, {0, 700}, {1000, 0}, {0, 1000}}};
    const auto& mix = mixes[r.below(8)];
    c.shared_pm = mix[0];
    c.rwlock_pm = mix[1];
    static constexpr unsigned reads[] = {250, 500, 750, 900};
    c.read_pm = reads[r.below(4)];
    return c;
}

struct held_entry {
    unsigned key;
    unsigned subclass;
    unsigned cls;  // the model's dense class id
    bool trylock;
    lock_kind kind;
};

enum class op_kind : std::uint8_t { acquire, trylock, release };

// The last operations of a run, for the reproduction printed on a failure.
struct trace_entry {
    unsigned index;
    unsigned thread;
    op_kind op;
    unsigned key;
    unsigned subclass;
    lock_kind kind;     // acquire, trylock: how the lock is taken
    unsigned position;  // release: held index released
};

struct stats {
    u64 ops = 0;
    u64 acquisitions = 0;
    u64 trylocks = 0;
    u64 releases = 0;
    u64 out_of_order_releases = 0;
    u64 revalidations = 0;
    u64 conflicts = 0;             // acquisitions that close a core cycle
    u64 conflicts_reported = 0;    // ... reported at the acquisition
    u64 conflicts_known = 0;       // ... covered by an earlier report
    u64 conflicts_on_threads = 0;  // ... in runs with more than one thread
    u64 conflicts_revalidated = 0; // ... found while an out-of-order release re-took locks
    u64 full_only_cycles = 0;      // acquisitions closing a full-graph cycle through a refused edge
    u64 full_only_unnamed = 0;     // ... where no report so far named the class and a held one
    u64 recursions = 0;
    u64 reads = 0;                 // blocking acquisitions as a non-recursive reader
    u64 recursive_reads = 0;       // ... as a recursive reader
    u64 read_recursions = 0;       // ... of a class held for reading (allowed)
    u64 weak_cycles = 0;           // acquisitions closing full-graph cycles, none of them strong
    u64 circular_reports = 0;
    u64 reader_reports = 0;        // circular reports with a reader on the cycle
    u64 recursive_reader_cycles = 0;  // ... of three classes or more, with a recursive reader
    u64 recursive_reports = 0;
    u64 runs = 0;
    u64 threaded_runs = 0;
    u64 failed_runs = 0;
    u64 max_keys = 0;
    // Per check that failed: how many runs, and the earliest operation (counted over all runs).
    struct failure_count {
        u64 runs = 0;
        u64 times = 0;
        u64 first_op = ~u64{0};
    };
    std::map<std::string, failure_count> failures;
    u64 failures_printed = 0;
};

// How a run reacts to a failed check.
struct failure_policy {
    u64 print = 3;            // failures printed in full, over all runs
    bool keep_going = false;  // check on after a failure (later verdicts may only echo it)
};

// A fixed sequence instead of random steps, on one thread: "unlock" releases the topmost held
// entry of the key, as the engine does.
struct scripted_op {
    op_kind op;
    unsigned key;
    lock_kind kind = lock_kind::write;
    unsigned subclass = 0;
};

// What the handler keeps of a report: copying stacks and text would cost more than the check.
struct seen_report {
    fencedep::report_kind kind;
    std::vector<std::string> classes;
    // A circular report's kinds, as its text prints them: each link's, parallel to `classes`,
    // and the held lock's. Empty where the text does not show them.
    std::vector<lock_kind> links;
    std::optional<lock_kind> held;
};

// The kind mark printed right after the first "(class name)" at or past `from`: names are
// "c17" or "c17/2", without parentheses.
std::optional<lock_kind> kind_after(std::string_view text, std::size_t from) {
    const std::size_t close = text.find(')', from);
    if (close == std::string_view::npos)
        return std::nullopt;
    const std::string_view mark = text.substr(close + 1);
    for (lock_kind kind : all_kinds)
        if (mark.starts_with(kind_mark(kind)))
            return kind;
    return std::nullopt;
}

// Reads the kinds of a circular report: the links' "-> #N (name){kind}:" lines, #N (held) first
// as in `classes`, and the lock line under "but task is already holding lock:".
seen_report parse_circular(const fencedep::report& r) {
    seen_report seen{r.kind, r.classes, {}, {}};
    const std::string_view text = r.text;
    for (std::size_t at = text.find("\n-> #"); at != std::string_view::npos; at = text.find("\n-> #", at + 1)) {
        const auto kind = kind_after(text, at);
        if (!kind)
            return seen;  // the check sees fewer kinds than classes and fails
        seen.links.push_back(*kind);
    }
    constexpr std::string_view holding = "but task is already holding lock:\n";
    if (const std::size_t at = text.find(holding); at != std::string_view::npos)
        seen.held = kind_after(text, at + holding.size());
    return seen;
}

// Written by the handler on the thread whose operation reports, read by the same thread after the
// call: operations are serialized, so it only ever holds one operation's reports.
std::mutex sink_mutex;  // plain std::mutex: fencedep never instruments it
std::vector<seen_report> sink;

std::vector<seen_report> drain_sink() {
    std::lock_guard guard(sink_mutex);
    std::vector<seen_report> out;
    out.swap(sink);
    return out;
}

// One acquisition as the model judges it: the blocking acquisitions of an operation and every
// lock an out-of-order release re-takes.
struct validation {
    unsigned cls;
    lock_kind kind;
    bool recursion = false;
    bool expect_recursive_report = false;
    bool recursive_reported = false;
    bool cycle_reported = false;
    bool revalidation = false;
    std::size_t held_begin = 0, held_end = 0;          // into run::validation_held
    std::size_t conflict_begin = 0, conflict_end = 0;  // into run::validation_conflicts
    // Held entries (class and kind) whose dependency on n closes a strong cycle of the full graph.
    std::vector<held_class> full_conflicts;
};

class run {
public:
    run(const run_config& cfg, stats& totals, failure_policy policy, const std::vector<scripted_op>* script = nullptr)
        : cfg_(cfg), totals_(totals), policy_(policy), rng_{cfg.seed ^ 0x0b5e55edull}, script_(script) {
        const unsigned classes = cfg.keys + cfg.nested_keys * (subclasses_used - 1);
        full_.init(classes);
        core_.init(classes);
        plain_.init(classes);
        covered_.init(classes);
        recursion_reported_.assign(classes, false);
        dense_.assign(std::size_t{cfg.keys} * subclasses_used, -1);
        keys_ = std::make_unique<fencedep::lock_class_key[]>(cfg.keys);
        names_.reserve(cfg.keys);
        maps_.reserve(cfg.keys);
        for (unsigned k = 0; k < cfg.keys; ++k) {
            names_.push_back("c" + std::to_string(k));
            maps_.push_back(std::make_unique<fencedep::lock_map>(names_.back().c_str(), keys_[k]));
        }
        types_.reserve(cfg.keys);
        for (unsigned k = 0; k < cfg.keys; ++k) {
            const unsigned roll = rng_.below(1000);
            types_.push_back(roll < cfg.shared_pm                  ? lock_type::shared
                             : roll < cfg.shared_pm + cfg.rwlock_pm ? lock_type::rwlock
                                                                    : lock_type::mutex);
        }
        threads_.resize(cfg.threads);
        for (auto& t : threads_)
            t.window_base = rng_.below(cfg.keys);
    }

    // Returns whether every check held.
    bool execute() {
        fencedep::reset();
        fencedep::enable(true);
        if (cfg_.threads == 1) {
            while (!done_)
                step(0);
            drain(0);
        } else {
            std::vector<std::thread> workers;
            for (unsigned i = 0; i < cfg_.threads; ++i)
                workers.emplace_back([this, i] { worker(i); });
            for (auto& w : workers)
                w.join();
        }
        totals_.ops += ops_;
        ++totals_.runs;
        totals_.threaded_runs += cfg_.threads > 1;
        totals_.max_keys = std::max<u64>(totals_.max_keys, cfg_.keys);
        if (failed_)
            ++totals_.failed_runs;
        return !failed_;
    }

    unsigned ops() const { return ops_; }
    std::size_t edges() const { return full_.pairs(); }
    std::size_t chains() const { return chains_.size(); }

private:
    struct thread_model {
        std::vector<held_entry> held;
        unsigned window_base = 0;
    };

    void worker(unsigned me) {
        std::unique_lock lock(turn_mutex_);
        while (true) {
            turn_changed_.wait(lock, [&] { return done_ || turn_ == me; });
            if (done_)
                break;
            // A burst of operations per turn: fewer hand-offs, and still every interleaving of
            // held stacks the schedule draws.
            for (unsigned n = 1 + rng_.below(64); n > 0 && !done_; --n)
                step(me);
            turn_ = rng_.below(cfg_.threads);
            turn_changed_.notify_all();
        }
        // Each thread empties its own stack (a lock held at thread exit is a report); from the
        // top, so no re-validation depends on which thread drains first.
        drain(me);
        turn_changed_.notify_all();
    }

    void drain(unsigned me) {
        thread_model& t = threads_[me];
        while (!t.held.empty())
            release(me, static_cast<unsigned>(t.held.size() - 1));
    }

    unsigned class_of(unsigned key, unsigned subclass) {
        int& d = dense_[std::size_t{key} * subclasses_used + subclass];
        if (d < 0) {
            d = static_cast<int>(class_key_.size());
            class_key_.push_back(key);
            class_sub_.push_back(subclass);
        }
        return static_cast<unsigned>(d);
    }

    std::string class_name(unsigned cls) const {
        std::string name = "c" + std::to_string(class_key_[cls]);
        if (class_sub_[cls] != 0)
            name += "/" + std::to_string(class_sub_[cls]);
        return name;
    }

    // Maps a printed name ("c17", "c17/2") back to the model's class; nullopt for anything the
    // test never created (a "#2" version would mean two keys shared a name).
    std::optional<unsigned> parse_class(const std::string& name) const {
        if (name.size() < 2 || name[0] != 'c')
            return std::nullopt;
        std::size_t i = 1;
        unsigned key = 0, sub = 0;
        for (; i < name.size() && name[i] >= '0' && name[i] <= '9'; ++i)
            key = key * 10 + static_cast<unsigned>(name[i] - '0');
        if (i == 1 || key >= cfg_.keys)
            return std::nullopt;
        if (i < name.size()) {
            if (name[i] != '/' || i + 2 != name.size() || name[i + 1] < '1' ||
                name[i + 1] >= static_cast<char>('0' + subclasses_used))
                return std::nullopt;
            sub = static_cast<unsigned>(name[i + 1] - '0');
        }
        const int d = dense_[std::size_t{key} * subclasses_used + sub];
        if (d < 0)
            return std::nullopt;
        return static_cast<unsigned>(d);
    }

    unsigned pick_key(const thread_model& t) {
        const unsigned n = cfg_.keys;
        if (!t.held.empty() && rng_.per_mille(cfg_.ordered_pm))
            return (t.held.back().key + 1 + rng_.below(std::max(1u, cfg_.window / 4))) % n;
        if (rng_.per_mille(30))
            return rng_.below(n);
        return (t.window_base + rng_.below(cfg_.window)) % n;
    }

    void step(unsigned me) {
        thread_model& t = threads_[me];
        if (script_) {
            if (ops_ == script_->size()) {
                done_ = true;
                return;
            }
            const scripted_op& op = (*script_)[ops_];
            if (op.op == op_kind::release) {
                const auto it = std::ranges::find_if(t.held, [&](const held_entry& h) { return h.key == op.key; });
                REQUIRE_MESSAGE(it != t.held.end(), "the script unlocks c", op.key, ", which is not held");
                release(me, static_cast<unsigned>(it - t.held.begin()));
            } else {
                acquire(me, op.key, op.subclass, op.kind, op.op == op_kind::trylock);
            }
            return;
        }
        if (ops_ >= cfg_.ops || full_.pairs() >= edge_limit || chains_.size() >= chain_limit) {
            done_ = true;
            return;
        }
        if (rng_.per_mille(15))
            t.window_base = rng_.below(cfg_.keys);
        const auto depth = static_cast<unsigned>(t.held.size());
        const bool must_release = depth >= std::min(cfg_.max_depth, depth_limit);
        if (depth > 0 && (must_release || rng_.below(cfg_.max_depth + 1) < depth)) {
            unsigned position = depth - 1;
            if (depth > 1 && rng_.per_mille(cfg_.out_of_order_pm))
                position = rng_.below(depth - 1);
            release(me, position);
            return;
        }
        unsigned key, sub = 0;
        bool trylock = false;
        if (depth > 0 && rng_.per_mille(cfg_.recursion_pm)) {
            const held_entry& h = t.held[rng_.below(depth)];
            key = h.key;
            sub = h.subclass;
        } else if (depth > 0 && t.held.back().key < cfg_.nested_keys && rng_.per_mille(60) &&
                   t.held.back().subclass + 1 < subclasses_used) {
            // The annotated parent-then-child pattern: the same key one subclass down.
            key = t.held.back().key;
            sub = t.held.back().subclass + 1;
        } else {
            key = pick_key(t);
            if (key < cfg_.nested_keys && rng_.per_mille(250))
                sub = 1 + rng_.below(subclasses_used - 1);
            trylock = rng_.per_mille(cfg_.trylock_pm);
        }
        acquire(me, key, sub, pick_kind(key), trylock);
    }

    // Readers as often as the run says, of the kind the lock has.
    lock_kind pick_kind(unsigned key) {
        const lock_type type = types_[key];
        if (type == lock_type::mutex || !rng_.per_mille(cfg_.read_pm))
            return lock_kind::write;
        return type == lock_type::rwlock ? lock_kind::recursive_read : lock_kind::read;
    }

    void begin_op(unsigned me, op_kind op, unsigned key, unsigned sub, lock_kind kind, unsigned position) {
        before_ = threads_[me].held;
        validations_.clear();
        validation_held_.clear();
        validation_conflicts_.clear();
        trace_[ops_ % trace_.size()] = {ops_, me, op, key, sub, kind, position};
        ++ops_;
    }

    // Each kind through its own entry point, as users call them.
    static void engine_acquire(fencedep::lock_map& map, unsigned sub, lock_kind kind, bool trylock) {
        switch (kind) {
        case lock_kind::write: trylock ? map.try_acquire(sub) : map.acquire(sub); return;
        case lock_kind::read: trylock ? map.try_acquire_read(sub) : map.acquire_read(sub); return;
        case lock_kind::recursive_read:
            trylock ? map.try_acquire_recursive_read(sub) : map.acquire_recursive_read(sub);
            return;
        }
    }

    void acquire(unsigned me, unsigned key, unsigned sub, lock_kind kind, bool trylock) {
        thread_model& t = threads_[me];
        begin_op(me, trylock ? op_kind::trylock : op_kind::acquire, key, sub, kind, 0);
        const unsigned cls = class_of(key, sub);
        if (trylock) {
            ++totals_.trylocks;
        } else {
            ++totals_.acquisitions;
            totals_.reads += kind == lock_kind::read;
            totals_.recursive_reads += recursive(kind);
            model_acquire(me, cls, kind, false);
        }
        engine_acquire(*maps_[key], sub, kind, trylock);
        t.held.push_back({key, sub, cls, trylock, kind});
        check(me);
    }

    // The engine releases the topmost held entry of that lock_map, and every class of a key
    // shares the key's one lock_map, so the model releases the topmost entry of the key.
    void release(unsigned me, unsigned position) {
        thread_model& t = threads_[me];
        const unsigned key = t.held[position].key;
        for (auto i = static_cast<unsigned>(t.held.size()); i-- > position;) {
            if (t.held[i].key == key) {
                position = i;
                break;
            }
        }
        begin_op(me, op_kind::release, key, t.held[position].subclass, t.held[position].kind, position);
        ++totals_.releases;
        // As lockdep does, the locks above the released one are taken again in order, each
        // validated against the ones below it.
        std::vector<held_entry> above(t.held.begin() + position + 1, t.held.end());
        t.held.resize(position);
        if (!above.empty())
            ++totals_.out_of_order_releases;
        for (const held_entry& h : above) {
            if (!h.trylock) {
                ++totals_.revalidations;
                model_acquire(me, h.cls, h.kind, true);
            }
            t.held.push_back(h);
        }
        maps_[key]->release();
        check(me);
    }

    // The model's verdict on a blocking acquisition of `cls` over the thread's current held stack,
    // and the dependencies it adds.
    void model_acquire(unsigned me, unsigned cls, lock_kind kind, bool revalidation) {
        const auto& held = threads_[me].held;
        validation v;
        v.cls = cls;
        v.kind = kind;
        v.revalidation = revalidation;
        v.held_begin = validation_held_.size();
        u64 chain = 0x6a09e667f3bcc908ull;
        for (const held_entry& h : held) {
            validation_held_.push_back(h);
            chain = splitmix(chain) ^ (h.cls * 3 + static_cast<unsigned>(h.kind));
        }
        v.held_end = validation_held_.size();
        chains_.insert(splitmix(chain) ^ (cls * 3 + static_cast<unsigned>(kind)));
        v.conflict_begin = v.conflict_end = validation_conflicts_.size();

        // Same class held: a self-deadlock, not a graph property, so no dependencies; unless a
        // recursive reader takes a class held only for reading, which no reader blocks.
        if (std::ranges::any_of(held, [&](const held_entry& h) {
                return h.cls == cls && !(recursive(kind) && h.kind != lock_kind::write);
            })) {
            v.recursion = true;
            ++totals_.recursions;
            v.expect_recursive_report = !recursion_reported_[cls];
            recursion_reported_[cls] = true;
            validations_.push_back(v);
            return;
        }
        // An allowed read recursion is validated like any acquisition (as lockdep does since
        // v5.10), against the other held classes: n's own entries give no dependency.
        totals_.read_recursions += std::ranges::any_of(held, [&](const held_entry& h) { return h.cls == cls; });
        // Conflicts are all found before any dependency is added (dependencies into n add no
        // path out of it anyway).
        bool plain_cycle = false;
        full_prevs_.clear();
        core_prevs_.clear();
        plain_prevs_.clear();
        for (const held_entry& h : held) {
            if (h.cls == cls)
                continue;
            full_prevs_.push_back({h.cls, h.kind});
            plain_prevs_.push_back(h.cls);
            // Per entry: a class held as a writer and as a reader may close a cycle as one only.
            if (!core_.closes(cls, kind, h.cls, h.kind))
                core_prevs_.push_back({h.cls, h.kind});
            else if (std::find(validation_conflicts_.begin() + static_cast<std::ptrdiff_t>(v.conflict_begin),
                               validation_conflicts_.end(), h.cls) == validation_conflicts_.end())
                validation_conflicts_.push_back(h.cls);
            if (full_.closes(cls, kind, h.cls, h.kind))
                v.full_conflicts.push_back({h.cls, h.kind});
            plain_cycle = plain_cycle || plain_.reaches(cls, h.cls);
        }
        v.conflict_end = validation_conflicts_.size();
        if (v.conflict_end > v.conflict_begin) {
            ++totals_.conflicts;
            totals_.conflicts_on_threads += cfg_.threads > 1;
            totals_.conflicts_revalidated += revalidation;
        } else if (!v.full_conflicts.empty()) {
            ++totals_.full_only_cycles;
            totals_.full_only_unnamed += std::ranges::none_of(v.full_conflicts, [&](const held_class& h) {
                return covered_.test(cls, h.cls);
            });
        } else if (plain_cycle) {
            ++totals_.weak_cycles;
        }
        full_.add(full_prevs_, cls, kind, [](const held_class&) {});
        core_.add(core_prevs_, cls, kind, [&](const held_class& prev) {
            core_edge_op_.emplace(edge_id(prev.cls, cls, kind_bit(prev.kind, kind)), ops_ - 1);
        });
        plain_.add(plain_prevs_, cls);
        validations_.push_back(v);
    }

    // Compares the operation's reports with the model's validations.
    void check(unsigned me) {
        reports_ = drain_sink();
        if (failed_ && !policy_.keep_going)
            return;  // after a divergence the engine's state is not the model's any more
        std::vector<std::vector<unsigned>> cycles;
        for (const seen_report& r : reports_) {
            std::vector<unsigned> ids;
            for (const auto& name : r.classes)
                if (const auto id = parse_class(name))
                    ids.push_back(*id);
            if (ids.size() != r.classes.size()) {
                fail(me, "(X) report names a class the test never created", &r, nullptr);
                continue;
            }
            if (r.kind == fencedep::report_kind::recursive_locking) {
                ++totals_.recursive_reports;
                validation* match = nullptr;
                if (ids.size() == 2 && ids[0] == ids[1])
                    for (auto& v : validations_)
                        if (v.recursion && v.cls == ids[1] && v.expect_recursive_report && !v.recursive_reported) {
                            match = &v;
                            break;
                        }
                if (match)
                    match->recursive_reported = true;
                else
                    fail(me, "(R) recursive_locking the model does not expect here", &r, nullptr);
                continue;
            }
            if (r.kind != fencedep::report_kind::circular_dependency) {
                fail(me, "(X) unexpected report kind", &r, nullptr);
                continue;
            }
            ++totals_.circular_reports;
            if (ids.size() < 2) {
                fail(me, "(1) circular report with fewer than two classes", &r, nullptr);
                continue;
            }
            if (r.links.size() != ids.size() || !r.held) {
                fail(me, "(1) the circular report does not show the kind of each lock on the cycle", &r, nullptr);
                continue;
            }
            // A cycle through a dependency fencedep refused is real too, so the full graph
            // decides. The printed acquisition (#0) and held lock (#N) name n and one of its
            // entries, with their kinds.
            validation* match = nullptr;
            for (auto& v : validations_)
                if (!v.recursion && v.cls == ids.back() && v.kind == r.links.back() &&
                    std::ranges::count(v.full_conflicts, held_class{ids.front(), *r.held}) > 0) {
                    match = &v;
                    break;
                }
            if (!match) {
                if (plain_.reaches(ids.back(), ids.front()))
                    fail(me, "(4) circular report at an acquisition that closes no strong cycle (none can deadlock)",
                         &r, nullptr);
                else
                    fail(me, "(3) circular report at an acquisition the model finds no cycle for", &r, nullptr);
                continue;
            }
            check_links(me, r, ids);
            totals_.reader_reports += *r.held != lock_kind::write ||
                                      std::ranges::any_of(r.links, [](lock_kind k) { return k != lock_kind::write; });
            totals_.recursive_reader_cycles += ids.size() >= 3 && std::ranges::any_of(r.links, recursive);
            match->cycle_reported = true;
            cycles.push_back(std::move(ids));
        }
        for (const auto& v : validations_) {
            if (v.recursion) {
                if (v.expect_recursive_report && !v.recursive_reported)
                    fail(me, "(R) missed recursive_locking (first recursion of this class)", nullptr, &v);
                continue;
            }
            if (v.conflict_begin == v.conflict_end)
                continue;
            if (v.cycle_reported) {
                ++totals_.conflicts_reported;
                continue;
            }
            bool known = false;
            for (std::size_t i = v.conflict_begin; i < v.conflict_end && !known; ++i)
                known = covered_.test(v.cls, validation_conflicts_[i]);
            if (!known) {
                fail(me, "(2) missed cycle: the acquisition closes a cycle no report has named", nullptr, &v);
                continue;
            }
            ++totals_.conflicts_known;
        }
        for (const auto& cycle : cycles)
            for (unsigned a : cycle)
                for (unsigned b : cycle)
                    covered_.set(a, b);
    }

    // Check (1) on a report that names the acquisition's class and kind and a held entry's.
    // Printed held lock first, acquired lock last: each link's lock was taken as printed while
    // the next one was held, and the held lock closes the cycle, held while the last is taken.
    // Where the cycle arrives at a lock as a recursive reader, it must leave it by a dependency
    // taken while that lock was held exclusively.
    void check_links(unsigned me, const seen_report& r, const std::vector<unsigned>& ids) {
        for (std::size_t i = 0; i + 1 < ids.size(); ++i)
            if (!(full_.kinds(ids[i + 1], ids[i]) & step_kinds(r.links[i], recursive(r.links[i + 1])))) {
                fail(me,
                     "(1) a link of the reported cycle is not a dependency the program showed, of a kind that "
                     "makes the cycle strong",
                     &r, nullptr);
                return;
            }
        if (recursive(r.links.front()) && *r.held != lock_kind::write) {
            fail(me, "(1) the reported cycle arrives at the held lock as a recursive reader, and it is held shared", &r,
                 nullptr);
            return;
        }
        std::vector<unsigned> sorted = ids;
        std::ranges::sort(sorted);
        if (std::adjacent_find(sorted.begin(), sorted.end()) != sorted.end())
            fail(me, "(1) the reported cycle is not simple", &r, nullptr);
    }

    // Writers unmarked, to keep the lines short.
    static std::string mark(lock_kind kind) { return kind == lock_kind::write ? "" : kind_mark(kind); }

    std::string describe_held(const std::vector<held_entry>& held) const {
        std::string out;
        for (const auto& h : held) {
            if (!out.empty())
                out += ", ";
            out += class_name(h.cls) + mark(h.kind) + (h.trylock ? "(try)" : "");
        }
        return out.empty() ? "(none)" : out;
    }

    std::string describe_report(const seen_report& r) const {
        std::string out = std::string(engine_test::kind_name(r.kind)) + " [";
        for (std::size_t i = 0; i < r.classes.size(); ++i)
            out += (i ? ", " : "") + r.classes[i] + (i < r.links.size() ? kind_mark(r.links[i]) : "");
        out += "]";
        if (r.held)
            out += std::string(", held as ") + kind_mark(*r.held);
        return out;
    }

    static u64 edge_id(unsigned from, unsigned to, std::uint16_t kind) {
        return (u64{from} << 40) | (u64{to} << 16) | kind;
    }

    // A path of core_'s states, each step with lockdep's letters for the kind it uses and the
    // operation that first showed that dependency, where the engine should have recorded it
    // (replay the run to that operation to see what it did instead).
    std::string describe_path(const std::vector<unsigned>& states) const {
        std::string out = states.empty() ? "" : class_name(states[0] / 2);
        for (std::size_t i = 1; i < states.size(); ++i) {
            const unsigned from = states[i - 1] / 2, to = states[i] / 2;
            std::uint16_t usable = 0;
            for (lock_kind taken : all_kinds)
                if (recursive(taken) == (states[i] % 2 == 1))
                    usable |= step_kinds(taken, states[i - 1] % 2 == 1);
            const auto kind = static_cast<std::uint16_t>(core_.kinds(from, to) & usable);
            const auto bit = static_cast<unsigned>(std::countr_zero(kind));
            const auto op = core_edge_op_.find(edge_id(from, to, static_cast<std::uint16_t>(kind & -kind)));
            out += std::string(" -(") + (bit / 3 == 0 ? "E" : "S") + (bit % 3 == 2 ? "R" : "N") + " #" +
                   (op == core_edge_op_.end() ? std::string("?") : std::to_string(op->second)) + ")-> " +
                   class_name(to);
        }
        return out;
    }

    std::string describe_trace(const trace_entry& e) const {
        const char* op = e.op == op_kind::acquire ? "lock" : e.op == op_kind::trylock ? "trylock" : "unlock";
        std::string name = "c" + std::to_string(e.key) + (e.subclass ? "/" + std::to_string(e.subclass) : "");
        std::string out = "  #" + std::to_string(e.index) + " thread " + std::to_string(e.thread) + ": " + op + " " +
                          name;
        if (e.op == op_kind::release)
            out += " (held index " + std::to_string(e.position) + ")";
        else
            out += mark(e.kind);
        return out;
    }

    void fail(unsigned me, const char* check, const seen_report* r, const validation* v) {
        if (failed_ && !policy_.keep_going)
            return;  // the first failure of a run is the one to read
        failed_ = true;
        done_ = done_ || !policy_.keep_going;
        auto& count = totals_.failures[check];
        count.runs += failed_checks_.insert(check).second;
        ++count.times;
        count.first_op = std::min<u64>(count.first_op, totals_.ops + ops_ - 1);
        if (totals_.failures_printed >= policy_.print)
            return;
        ++totals_.failures_printed;
        std::string out = "differential: FAILED ";
        out += check;
        out += script_ ? "\n  scripted run" : "\n  run seed 0x";
        char seed[32];
        std::snprintf(seed, sizeof seed, "%016llx", static_cast<unsigned long long>(cfg_.seed));
        if (!script_)
            out += seed;
        out += ": " + std::to_string(cfg_.keys) + " keys, " + std::to_string(cfg_.threads) + " thread(s)";
        out += "; operation #" + std::to_string(ops_ - 1) + " of the run, on thread " + std::to_string(me) + "\n";
        out += "  operation: " + describe_trace(trace_[(ops_ - 1) % trace_.size()]).substr(2) + "\n";
        out += "  held before it (bottom to top): " + describe_held(before_) + "\n";
        out += "  held after it: " + describe_held(threads_[me].held) + "\n";
        if (r)
            out += "  report: " + describe_report(*r) + "\n";
        if (v) {
            const std::vector<held_entry> at(validation_held_.begin() + static_cast<std::ptrdiff_t>(v->held_begin),
                                             validation_held_.begin() + static_cast<std::ptrdiff_t>(v->held_end));
            out += "  model: acquiring " + class_name(v->cls) + mark(v->kind) +
                   (v->revalidation ? " (re-taken by the release)" : "") + " with held classes " + describe_held(at) +
                   "\n";
            for (const held_entry& h : at)
                if (!v->recursion && h.cls != v->cls && core_.closes(v->cls, v->kind, h.cls, h.kind))
                    out += "  model: held " + class_name(h.cls) + mark(h.kind) + " closes a strong cycle: " +
                           describe_path(core_.closing_path(v->cls, v->kind, h.cls, h.kind)) +
                           " (#N names the operation that showed the dependency)\n";
        }
        out += "  reports at this operation:" + std::string(reports_.empty() ? " none" : "") + "\n";
        for (const auto& seen : reports_)
            out += "    " + describe_report(seen) + "\n";
        out += "  last operations of the run:\n";
        const unsigned first = ops_ > trace_.size() ? ops_ - static_cast<unsigned>(trace_.size()) : 0;
        for (unsigned i = first; i < ops_; ++i)
            out += describe_trace(trace_[i % trace_.size()]) + "\n";
        if (!script_)
            out += std::string("  replay: FENCEDEP_OPTIONS=symbolize=0 FENCEDEP_DIFFERENTIAL_RUN=0x") + seed +
                   " build/tests/engine/engine_differential -tc='verdicts*'\n";
        std::fputs(out.c_str(), stdout);
        std::fflush(stdout);
    }

    const run_config cfg_;
    stats& totals_;
    const failure_policy policy_;
    rng rng_;
    const std::vector<scripted_op>* script_;

    std::unique_ptr<fencedep::lock_class_key[]> keys_;  // outlives maps_ (declared before it)
    std::vector<std::string> names_;
    std::vector<std::unique_ptr<fencedep::lock_map>> maps_;

    std::vector<int> dense_;  // key * subclasses_used + subclass -> class
    std::vector<unsigned> class_key_, class_sub_;
    std::vector<lock_type> types_;  // per key
    dependency_graph full_, core_;
    digraph plain_;  // full_'s dependencies whatever their kinds: its cycles include harmless ones
    std::unordered_map<u64, unsigned> core_edge_op_;  // edge_id -> operation that first showed it
    bit_matrix covered_;  // (a, b): a report named a cycle holding both
    std::vector<bool> recursion_reported_;
    std::unordered_set<u64> chains_;

    std::vector<thread_model> threads_;
    std::vector<held_entry> before_;
    std::vector<validation> validations_;
    std::vector<seen_report> reports_;  // the operation's
    std::vector<held_class> full_prevs_, core_prevs_;  // model_acquire's, kept for their capacity
    std::vector<unsigned> plain_prevs_;
    std::vector<held_entry> validation_held_;
    std::vector<unsigned> validation_conflicts_;
    std::array<trace_entry, 48> trace_{};

    unsigned ops_ = 0;
    bool done_ = false;
    bool failed_ = false;
    std::unordered_set<std::string> failed_checks_;

    // Turn-taking of the threads: the holder of turn_mutex_ is the only one touching the engine
    // and the model, and the next turn is drawn from the run's seed.
    std::mutex turn_mutex_;
    std::condition_variable turn_changed_;
    unsigned turn_ = 0;
};

// Routes every report to the sink for the scope, so that nothing reaches the default sink (whose
// exit-time splat count would fail the suite), and leaves fencedep off and empty afterwards.
class sink_scope {
public:
    sink_scope()
        : previous_(fencedep::set_report_handler([](const fencedep::report& r) {
              seen_report seen = r.kind == fencedep::report_kind::circular_dependency
                                     ? parse_circular(r)
                                     : seen_report{r.kind, r.classes, {}, {}};
              std::lock_guard guard(sink_mutex);
              sink.push_back(std::move(seen));
          })) {}
    ~sink_scope() {
        fencedep::enable(false);
        fencedep::set_report_handler(std::move(previous_));
        fencedep::reset();
        drain_sink();
    }
    sink_scope(const sink_scope&) = delete;
    sink_scope& operator=(const sink_scope&) = delete;

private:
    fencedep::report_handler previous_;
};

void print_failures(const stats& totals) {
    for (const auto& [check, count] : totals.failures)
        std::printf("differential: %s: %llu time(s) in %llu run(s), first at operation %llu\n", check.c_str(),
                    static_cast<unsigned long long>(count.times), static_cast<unsigned long long>(count.runs),
                    static_cast<unsigned long long>(count.first_op));
}

// Runs a fixed sequence on one thread through the model and its checks.
stats run_script(const std::vector<scripted_op>& script, unsigned keys) {
    stats totals;
    {
        sink_scope reports;
        run_config cfg{};
        cfg.keys = keys;
        cfg.threads = 1;
        cfg.window = keys;
        run(cfg, totals, failure_policy{}, &script).execute();
    }
    print_failures(totals);
    return totals;
}

}  // namespace

TEST_SUITE("engine") {

TEST_CASE("verdicts match a naive model of lockdep's rules over random lock sequences") {
    const u64 total = env_number("FENCEDEP_DIFFERENTIAL_OPS").value_or(default_total_ops);
    const u64 master = env_number("FENCEDEP_DIFFERENTIAL_SEED").value_or(default_master_seed);
    const auto replay = env_number("FENCEDEP_DIFFERENTIAL_RUN");
    const bool verbose = env_number("FENCEDEP_DIFFERENTIAL_VERBOSE").value_or(0) != 0;
    const char* options = std::getenv("FENCEDEP_OPTIONS");
    if (!options || !engine_test::contains(options, "symbolize=0"))
        std::printf("differential: FENCEDEP_OPTIONS=symbolize=0 is not set; symbolizing every report's stacks "
                    "makes this run many times slower\n");
    std::printf("differential: master seed 0x%016llx, %llu operations%s\n", static_cast<unsigned long long>(master),
                static_cast<unsigned long long>(total), replay ? " (replaying one run)" : "");

    stats totals;
    {
        sink_scope reports;
        failure_policy policy;
        policy.keep_going = env_number("FENCEDEP_DIFFERENTIAL_KEEP_GOING").value_or(0) != 0;
        const auto start = std::chrono::steady_clock::now();
        const std::clock_t cpu_start = std::clock();
        u64 seed_state = master;
        while (replay ? totals.runs == 0 : totals.ops < total) {
            const u64 seed = replay ? *replay : splitmix(seed_state);
            const run_config cfg = config_for(seed);
            run current(cfg, totals, policy);
            current.execute();
            if (verbose)
                std::printf("differential: run 0x%016llx: %u keys, %u thread(s), window %u, ordered %u%%o, depth %u: "
                            "%u of %u operations, %zu edges, %zu chains\n",
                            static_cast<unsigned long long>(seed), cfg.keys, cfg.threads, cfg.window, cfg.ordered_pm,
                            cfg.max_depth, current.ops(), cfg.ops, current.edges(), current.chains());
            // Past a few failing runs the rest would only repeat them.
            if (totals.failed_runs >= 10 && !policy.keep_going)
                break;
        }
        const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        const double cpu = static_cast<double>(std::clock() - cpu_start) / CLOCKS_PER_SEC;
        std::printf("differential: %llu operations in %.2f s (%.2f s of CPU): %.0f ops/s (%.0f per CPU second); "
                    "%llu runs (%llu threaded, up to %llu keys), %llu failed\n",
                    static_cast<unsigned long long>(totals.ops), seconds, cpu,
                    static_cast<double>(totals.ops) / seconds, static_cast<double>(totals.ops) / cpu,
                    static_cast<unsigned long long>(totals.runs),
                    static_cast<unsigned long long>(totals.threaded_runs),
                    static_cast<unsigned long long>(totals.max_keys),
                    static_cast<unsigned long long>(totals.failed_runs));
    }
    std::printf("differential: %llu locks, %llu trylocks, %llu unlocks (%llu out of order, %llu re-validations); "
                "%llu cycle-closing acquisitions (%llu reported there, %llu already named, %llu on threads, %llu "
                "re-validated); %llu circular reports; %llu recursions, %llu recursive reports; %llu full-graph "
                "cycles through a refused edge, %llu not named by any report (not required)\n",
                static_cast<unsigned long long>(totals.acquisitions), static_cast<unsigned long long>(totals.trylocks),
                static_cast<unsigned long long>(totals.releases),
                static_cast<unsigned long long>(totals.out_of_order_releases),
                static_cast<unsigned long long>(totals.revalidations), static_cast<unsigned long long>(totals.conflicts),
                static_cast<unsigned long long>(totals.conflicts_reported),
                static_cast<unsigned long long>(totals.conflicts_known),
                static_cast<unsigned long long>(totals.conflicts_on_threads),
                static_cast<unsigned long long>(totals.conflicts_revalidated),
                static_cast<unsigned long long>(totals.circular_reports),
                static_cast<unsigned long long>(totals.recursions),
                static_cast<unsigned long long>(totals.recursive_reports),
                static_cast<unsigned long long>(totals.full_only_cycles),
                static_cast<unsigned long long>(totals.full_only_unnamed));
    std::printf("differential: readers: %llu reads, %llu recursive reads (%llu of a class held for reading); %llu "
                "acquisitions closing only cycles that cannot deadlock (silent); %llu circular reports with a reader, "
                "%llu of three classes or more with a recursive reader\n",
                static_cast<unsigned long long>(totals.reads), static_cast<unsigned long long>(totals.recursive_reads),
                static_cast<unsigned long long>(totals.read_recursions),
                static_cast<unsigned long long>(totals.weak_cycles),
                static_cast<unsigned long long>(totals.reader_reports),
                static_cast<unsigned long long>(totals.recursive_reader_cycles));
    print_failures(totals);
    std::fflush(stdout);

    CHECK(totals.failed_runs == 0);
    // The runs must have exercised what the checks are about, or passing proves nothing.
    if (!replay && totals.failed_runs == 0) {
        CHECK(totals.ops >= total);
        CHECK(totals.conflicts_reported > 0);
        CHECK(totals.conflicts_known > 0);
        CHECK(totals.conflicts_on_threads > 0);
        CHECK(totals.conflicts_revalidated > 0);
        CHECK(totals.recursive_reports > 0);
        CHECK(totals.read_recursions > 0);
        CHECK(totals.weak_cycles > 0);
        CHECK(totals.reader_reports > 0);
        CHECK(totals.recursive_reader_cycles > 0);
        CHECK(totals.threaded_runs > 0);
        CHECK(totals.max_keys >= 1000);
    }
}

// The three ways a refused edge used to lose the dependencies of the locks held below it, as
// fixed sequences through the same model and checks, so that they are caught whatever the seeds.
TEST_CASE("the model's checks catch dependencies lost below a refused or recursive acquisition") {
    constexpr unsigned a = 0, b = 1, c = 2, x = 3;
    constexpr auto lock = op_kind::acquire;
    constexpr auto trylock = op_kind::trylock;
    constexpr auto unlock = op_kind::release;
    std::vector<scripted_op> script;

    SUBCASE("held A, B: taking C closes {B, C}; A->C is still a dependency") {
        script = {{lock, c}, {lock, b}, {unlock, b}, {unlock, c},
                  {lock, a}, {lock, b}, {lock, c}, {unlock, c}, {unlock, b}, {unlock, a},
                  {lock, c}, {lock, a}, {unlock, a}, {unlock, c}};
    }
    SUBCASE("held A, trylock B: taking C closes {B, C}; A->C is still a dependency") {
        script = {{lock, c}, {lock, b}, {unlock, b}, {unlock, c},
                  {lock, a}, {trylock, b}, {lock, c}, {unlock, c}, {unlock, b}, {unlock, a},
                  {lock, c}, {lock, a}, {unlock, a}, {unlock, c}};
    }
    SUBCASE("held X, A, X (recursive): taking B records A->B too") {
        script = {{lock, x}, {lock, a}, {lock, x}, {lock, b}, {unlock, b}, {unlock, x}, {unlock, a}, {unlock, x},
                  {lock, b}, {lock, a}, {unlock, a}, {unlock, b}};
    }

    const stats totals = run_script(script, 4);
    CHECK(totals.failed_runs == 0);
    // Not vacuous: the final lock of A closes a cycle of the model.
    CHECK(totals.conflicts >= 1);
}

// lockdep's read/write selftests (lockdep.md §5.4, §5.5) as fixed sequences through the same model
// and checks: the model must give lockdep's verdict, and fencedep the model's. In the kernel's
// rwlock column a reader is a recursive one (R), in its rwsem column a plain one (r).
TEST_CASE("lockdep's read/write selftests: the model's verdicts are lockdep's, and fencedep's the model's") {
    constexpr unsigned x = 0, y = 1, z = 2;
    constexpr auto W = lock_kind::write;
    constexpr auto r = lock_kind::read;
    constexpr auto R = lock_kind::recursive_read;
    using script = std::vector<scripted_op>;
    const auto lock = [](unsigned key, lock_kind kind) { return scripted_op{op_kind::acquire, key, kind}; };
    const auto unlock = [](unsigned key) { return scripted_op{op_kind::release, key}; };
    // One thread takes a, then b, and releases both: the dependency a -> b.
    const auto nest = [&](unsigned a, lock_kind ka, unsigned b, lock_kind kb) {
        return script{lock(a, ka), lock(b, kb), unlock(b), unlock(a)};
    };
    const auto join = [](std::initializer_list<script> parts) {
        script out;
        for (const script& part : parts)
            out.insert(out.end(), part.begin(), part.end());
        return out;
    };
    // The model's counts: lockdep reports a deadlock as one cycle-closing acquisition or one
    // forbidden recursion; `weak` counts acquisitions that close a cycle that cannot deadlock.
    struct selftest {
        const char* name;
        script ops;
        u64 cycles = 0, recursions = 0, weak = 0;
    };
    std::vector<selftest> cases = {
        {"recursive read-lock, rwlock: RL(X1); RL(X1)", {lock(x, R), lock(x, R), unlock(x), unlock(x)}},
        {"recursive read-lock, rwsem: RSL(X1); RSL(X1)", {lock(x, r), lock(x, r), unlock(x), unlock(x)}, 0, 1},
        {"mixed read-write-lock: RL(X1); WL(X1)", {lock(x, R), lock(x, W), unlock(x), unlock(x)}, 0, 1},
        {"mixed write-read-lock: WL(X1); RL(X1)", {lock(x, W), lock(x, R), unlock(x), unlock(x)}, 0, 1},
        {"mixed read-lock/lock-write ABBA", join({nest(x, R, y, W), nest(y, W, x, W)}), 1},
        {"mixed read-lock/lock-read ABBA, rwlock", join({nest(x, R, y, W), nest(y, W, x, R)}), 0, 0, 1},
        {"mixed read-lock/lock-read ABBA, rwsem", join({nest(x, r, y, W), nest(y, W, x, r)}), 1},
        {"mixed write-lock/lock-write ABBA", join({nest(x, W, y, W), nest(y, W, x, W)}), 1},
        {"chain cached mixed R-L/L-W ABBA", join({nest(x, R, y, W), nest(y, W, x, R), nest(y, W, x, W)}), 1, 0, 1},
    };
    // The three-lock cycles of recursive readers, in every order of their three episodes.
    struct triple {
        const char* name;
        std::array<script, 3> episodes;
        bool deadlock;
    };
    const triple triples[] = {
        {"W1R2/W2R3/W3R1", {nest(x, W, y, R), nest(y, W, z, R), nest(z, W, x, R)}, true},
        {"W1W2/R2R3/W3R1", {nest(x, W, y, W), nest(y, R, z, R), nest(z, W, x, R)}, true},
        {"W1W2/R2R3/R3W1", {nest(x, W, y, W), nest(y, R, z, R), nest(z, R, x, W)}, false},
        {"W1R2/R2R3/W3W1", {nest(x, W, y, R), nest(y, R, z, R), nest(z, W, x, W)}, false},
    };
    for (const auto& [name, episodes, deadlock] : triples) {
        std::array<unsigned, 3> order{0, 1, 2};
        do {
            cases.push_back({name, join({episodes[order[0]], episodes[order[1]], episodes[order[2]]}),
                             deadlock ? 1u : 0u, 0, deadlock ? 0u : 1u});
        } while (std::ranges::next_permutation(order).found);
    }

    for (const selftest& c : cases) {
        INFO(c.name);
        const stats totals = run_script(c.ops, 3);
        CHECK(totals.failed_runs == 0);
        CHECK(totals.conflicts == c.cycles);
        CHECK(totals.recursions == c.recursions);
        CHECK(totals.weak_cycles == c.weak);
    }
}

}  // TEST_SUITE
