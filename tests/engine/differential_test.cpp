// SPDX-License-Identifier: MIT
// Differential test: fencedep's verdicts against a naive model of lockdep's semantics, over random
// sequences of lock, trylock, nested lock and out-of-order unlock on one or several threads.
//
// The model does not share the engine's shortcuts. A blocking acquisition of class n while n is
// held is recursion (and adds nothing); otherwise it records a dependency h->n from EVERY held
// lock h, trylocks included, rather than from the nearest one and relying on transitivity. An
// out-of-order release re-takes the locks above the released one, each validated again. It keeps
// two graphs:
//   full: every dependency the program showed. Its cycles are real deadlocks.
//   core: the same dependencies minus those that closed a cycle when they appeared. fencedep
//         reports a closing edge and does not add it, so core is the graph a correct engine holds
//         (its reachability, not its edge list: the engine stores fewer, transitively implied,
//         edges). core stays acyclic.
// An acquisition of n under held set H conflicts when core has a path n ->...-> h for some h in H;
// those h are its conflicts. Checks, on every operation:
//   (1) each circular report is a cycle of the full graph: every printed link is a dependency the
//       program showed, and the cycle is simple;
//   (2) each conflicting acquisition is reported then, or an earlier report already named a cycle
//       holding n and one of its conflicts (each distinct cycle is reported once);
//   (3) each circular report belongs to an acquisition of this operation that closes a cycle of
//       the full graph (the printed acquired class is n, the printed held class is held and n
//       reaches it);
//   (R) recursive_locking comes exactly at the first recursion of each class;
//   (X) no other report kind appears (the runs stay within fencedep's tables and depth).
// Cycles of the full graph that need a refused edge are counted but not required: fencedep does
// not add a refused edge, and the report of that edge already names the root cause.
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
#include <string>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "capture.h"

namespace {

using u64 = std::uint64_t;

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
        for (std::size_t w = 0; w < words_; ++w)
            bits_[into * words_ + w] |= bits_[from * words_ + w];
    }
    std::size_t size() const { return n_; }
    template <class F>
    void for_each(std::size_t r, F&& f) const {
        for (std::size_t w = 0; w < words_; ++w)
            for (u64 bits = bits_[r * words_ + w]; bits; bits &= bits - 1)
                f(w * 64 + static_cast<std::size_t>(std::countr_zero(bits)));
    }

private:
    std::vector<u64> bits_;
    std::size_t words_ = 0;
    std::size_t n_ = 0;
};

// Edges plus their transitive closure, both ways, updated on each insertion: a query is one bit,
// which is what lets the model test every held lock of every acquisition at 10^6 operations.
class digraph {
public:
    void init(std::size_t n) {
        adj_.init(n);
        reach_.init(n);
        reached_by_.init(n);
        edges_ = 0;
    }
    bool has_edge(unsigned u, unsigned v) const { return adj_.test(u, v); }
    // A path of one edge or more.
    bool reaches(unsigned u, unsigned v) const { return reach_.test(u, v); }
    std::size_t edges() const { return edges_; }

    void add(unsigned u, unsigned v) {
        if (adj_.test(u, v))
            return;
        adj_.set(u, v);
        ++edges_;
        if (reach_.test(u, v))
            return;
        // Everything that reaches u (and u) now reaches everything v reaches (and v). A row that
        // already holds v holds all of v's row: the closure is transitive.
        std::vector<unsigned>& sources = scratch_sources_;
        std::vector<unsigned>& targets = scratch_targets_;
        sources.assign(1, u);
        reached_by_.for_each(u, [&](std::size_t x) { sources.push_back(static_cast<unsigned>(x)); });
        targets.assign(1, v);
        reach_.for_each(v, [&](std::size_t y) { targets.push_back(static_cast<unsigned>(y)); });
        for (unsigned x : sources) {
            if (reach_.test(x, v))
                continue;
            reach_.or_row(x, v);
            reach_.set(x, v);
        }
        for (unsigned y : targets) {
            if (reached_by_.test(y, u))
                continue;
            reached_by_.or_row(y, u);
            reached_by_.set(y, u);
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
    bit_matrix reached_by_;  // the transpose of reach_
    std::size_t edges_ = 0;
    std::vector<unsigned> scratch_sources_, scratch_targets_;
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
    return c;
}

struct held_entry {
    unsigned key;
    unsigned subclass;
    unsigned cls;  // the model's dense class id
    bool trylock;
};

enum class op_kind : std::uint8_t { acquire, trylock, release };

// The last operations of a run, for the reproduction printed on a failure.
struct trace_entry {
    unsigned index;
    unsigned thread;
    op_kind kind;
    unsigned key;
    unsigned subclass;
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
    u64 circular_reports = 0;
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
    op_kind kind;
    unsigned key;
    unsigned subclass = 0;
};

// What the handler keeps of a report: copying stacks and text would cost more than the check.
struct seen_report {
    fencedep::report_kind kind;
    std::vector<std::string> classes;
};

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
    bool recursion = false;
    bool expect_recursive_report = false;
    bool recursive_reported = false;
    bool cycle_reported = false;
    bool revalidation = false;
    std::size_t held_begin = 0, held_end = 0;          // into run::validation_held
    std::size_t conflict_begin = 0, conflict_end = 0;  // into run::validation_conflicts
    std::vector<unsigned> full_conflicts;              // held classes n reaches in the full graph
};

class run {
public:
    run(const run_config& cfg, stats& totals, failure_policy policy, const std::vector<scripted_op>* script = nullptr)
        : cfg_(cfg), totals_(totals), policy_(policy), rng_{cfg.seed ^ 0x0b5e55edull}, script_(script) {
        const unsigned classes = cfg.keys + cfg.nested_keys * (subclasses_used - 1);
        full_.init(classes);
        core_.init(classes);
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
    std::size_t edges() const { return full_.edges(); }
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
            if (op.kind == op_kind::release) {
                const auto it = std::ranges::find_if(t.held, [&](const held_entry& h) { return h.key == op.key; });
                REQUIRE_MESSAGE(it != t.held.end(), "the script unlocks c", op.key, ", which is not held");
                release(me, static_cast<unsigned>(it - t.held.begin()));
            } else {
                acquire(me, op.key, op.subclass, op.kind == op_kind::trylock);
            }
            return;
        }
        if (ops_ >= cfg_.ops || full_.edges() >= edge_limit || chains_.size() >= chain_limit) {
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
        acquire(me, key, sub, trylock);
    }

    void begin_op(unsigned me, op_kind kind, unsigned key, unsigned sub, unsigned position) {
        before_ = threads_[me].held;
        validations_.clear();
        validation_held_.clear();
        validation_conflicts_.clear();
        trace_[ops_ % trace_.size()] = {ops_, me, kind, key, sub, position};
        ++ops_;
    }

    void acquire(unsigned me, unsigned key, unsigned sub, bool trylock) {
        thread_model& t = threads_[me];
        begin_op(me, trylock ? op_kind::trylock : op_kind::acquire, key, sub, 0);
        const unsigned cls = class_of(key, sub);
        if (trylock) {
            ++totals_.trylocks;
            maps_[key]->try_acquire(sub);
        } else {
            ++totals_.acquisitions;
            model_acquire(me, cls, false);
            maps_[key]->acquire(sub);
        }
        t.held.push_back({key, sub, cls, trylock});
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
        begin_op(me, op_kind::release, key, t.held[position].subclass, position);
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
                model_acquire(me, h.cls, true);
            }
            t.held.push_back(h);
        }
        maps_[key]->release();
        check(me);
    }

    // The model's verdict on a blocking acquisition of `cls` over the thread's current held stack,
    // and the dependencies it adds.
    void model_acquire(unsigned me, unsigned cls, bool revalidation) {
        const auto& held = threads_[me].held;
        validation v;
        v.cls = cls;
        v.revalidation = revalidation;
        v.held_begin = validation_held_.size();
        u64 chain = 0x6a09e667f3bcc908ull;
        for (const held_entry& h : held) {
            validation_held_.push_back(h.cls);
            chain = splitmix(chain) ^ h.cls;
        }
        v.held_end = validation_held_.size();
        chains_.insert(splitmix(chain) ^ cls);
        v.conflict_begin = v.conflict_end = validation_conflicts_.size();

        if (std::ranges::any_of(held, [&](const held_entry& h) { return h.cls == cls; })) {
            // Same class held: a self-deadlock, not a graph property; no dependencies.
            v.recursion = true;
            ++totals_.recursions;
            v.expect_recursive_report = !recursion_reported_[cls];
            recursion_reported_[cls] = true;
            validations_.push_back(v);
            return;
        }
        for (const held_entry& h : held) {
            if (core_.reaches(cls, h.cls) &&
                std::find(validation_conflicts_.begin() + static_cast<std::ptrdiff_t>(v.conflict_begin),
                          validation_conflicts_.end(), h.cls) == validation_conflicts_.end())
                validation_conflicts_.push_back(h.cls);
            if (full_.reaches(cls, h.cls))
                v.full_conflicts.push_back(h.cls);
        }
        const bool full_cycle = !v.full_conflicts.empty();
        v.conflict_end = validation_conflicts_.size();
        if (v.conflict_end > v.conflict_begin) {
            ++totals_.conflicts;
            totals_.conflicts_on_threads += cfg_.threads > 1;
            totals_.conflicts_revalidated += revalidation;
        } else if (full_cycle) {
            ++totals_.full_only_cycles;
            totals_.full_only_unnamed += std::ranges::none_of(v.full_conflicts, [&](unsigned h) {
                return covered_.test(cls, h);
            });
        }
        // Conflicts were all found before any edge was added: an edge into `cls` adds no path
        // out of it, so the order of the held locks does not matter.
        for (const held_entry& h : held) {
            full_.add(h.cls, cls);
            if (!is_conflict(v, h.cls) && !core_.has_edge(h.cls, cls)) {
                core_.add(h.cls, cls);
                core_edge_op_.emplace(edge_id(h.cls, cls), ops_ - 1);
            }
        }
        validations_.push_back(v);
    }

    bool is_conflict(const validation& v, unsigned cls) const {
        return std::find(validation_conflicts_.begin() + static_cast<std::ptrdiff_t>(v.conflict_begin),
                         validation_conflicts_.begin() + static_cast<std::ptrdiff_t>(v.conflict_end),
                         cls) != validation_conflicts_.begin() + static_cast<std::ptrdiff_t>(v.conflict_end);
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
            // Printed held lock first, acquired lock last: each link was taken while the next
            // one was held, and the held lock closes the cycle, held while the last is taken.
            for (std::size_t i = 0; i + 1 < ids.size(); ++i)
                if (!full_.has_edge(ids[i + 1], ids[i])) {
                    fail(me, "(1) a link of the reported cycle is not a dependency the program showed", &r, nullptr);
                    break;
                }
            std::vector<unsigned> sorted = ids;
            std::ranges::sort(sorted);
            if (std::adjacent_find(sorted.begin(), sorted.end()) != sorted.end())
                fail(me, "(1) the reported cycle is not simple", &r, nullptr);
            // A cycle through an edge fencedep refused is real too, so the full graph decides.
            validation* match = nullptr;
            for (auto& v : validations_)
                if (!v.recursion && v.cls == ids.back() && std::ranges::count(v.full_conflicts, ids.front()) > 0) {
                    match = &v;
                    break;
                }
            if (!match) {
                fail(me, "(3) circular report at an acquisition the model finds no cycle for", &r, nullptr);
                continue;
            }
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

    std::string describe_held(const std::vector<held_entry>& held) const {
        std::string out;
        for (const auto& h : held) {
            if (!out.empty())
                out += ", ";
            out += class_name(h.cls) + (h.trylock ? "(try)" : "");
        }
        return out.empty() ? "(none)" : out;
    }

    static u64 edge_id(unsigned from, unsigned to) { return (u64{from} << 32) | to; }

    // With the operation that first showed each dependency, where the engine should have recorded
    // it (replay the run to that operation to see what it did instead).
    std::string describe_path(const std::vector<unsigned>& path) const {
        std::string out = path.empty() ? "" : class_name(path[0]);
        for (std::size_t i = 1; i < path.size(); ++i) {
            const auto op = core_edge_op_.find(edge_id(path[i - 1], path[i]));
            out += " -#" + (op == core_edge_op_.end() ? std::string("?") : std::to_string(op->second)) + "-> " +
                   class_name(path[i]);
        }
        return out;
    }

    std::string describe_trace(const trace_entry& e) const {
        const char* kind = e.kind == op_kind::acquire ? "lock" : e.kind == op_kind::trylock ? "trylock" : "unlock";
        std::string name = "c" + std::to_string(e.key) + (e.subclass ? "/" + std::to_string(e.subclass) : "");
        std::string out = "  #" + std::to_string(e.index) + " thread " + std::to_string(e.thread) + ": " + kind +
                          " " + name;
        if (e.kind == op_kind::release)
            out += " (held index " + std::to_string(e.position) + ")";
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
            out += std::string("  report: ") + engine_test::kind_name(r->kind) + " [" + engine_test::joined(r->classes) +
                   "]\n";
        if (v) {
            std::vector<held_entry> at;
            for (std::size_t i = v->held_begin; i < v->held_end; ++i)
                at.push_back({class_key_[validation_held_[i]], class_sub_[validation_held_[i]], validation_held_[i], false});
            out += "  model: acquiring " + class_name(v->cls) + (v->revalidation ? " (re-taken by the release)" : "") +
                   " with held classes " + describe_held(at) + "\n";
            for (std::size_t i = v->conflict_begin; i < v->conflict_end; ++i) {
                const unsigned h = validation_conflicts_[i];
                out += "  model: held " + class_name(h) + " is reachable: " + describe_path(core_.path(v->cls, h)) +
                       " (-#N-> names the operation that showed the dependency)\n";
            }
        }
        out += "  reports at this operation:" + std::string(reports_.empty() ? " none" : "") + "\n";
        for (const auto& seen : reports_)
            out += std::string("    ") + engine_test::kind_name(seen.kind) + " [" + engine_test::joined(seen.classes) +
                   "]\n";
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
    digraph full_, core_;
    std::unordered_map<u64, unsigned> core_edge_op_;  // edge_id -> operation that first showed it
    bit_matrix covered_;  // (a, b): a report named a cycle holding both
    std::vector<bool> recursion_reported_;
    std::unordered_set<u64> chains_;

    std::vector<thread_model> threads_;
    std::vector<held_entry> before_;
    std::vector<validation> validations_;
    std::vector<seen_report> reports_;  // the operation's
    std::vector<unsigned> validation_held_, validation_conflicts_;
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
              std::lock_guard guard(sink_mutex);
              sink.push_back({r.kind, r.classes});
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

    stats totals;
    {
        sink_scope reports;
        run_config cfg{};
        cfg.keys = 4;
        cfg.threads = 1;
        cfg.window = 4;
        run(cfg, totals, failure_policy{}, &script).execute();
    }
    print_failures(totals);
    CHECK(totals.failed_runs == 0);
    // Not vacuous: the final lock of A closes a cycle of the model.
    CHECK(totals.conflicts >= 1);
}

}  // TEST_SUITE
