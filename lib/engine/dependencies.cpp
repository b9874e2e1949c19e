// SPDX-License-Identifier: MIT
// Dependencies and cycles: what one acquisition records in the class graph, and when it is a
// "possible circular locking dependency" or "possible recursive locking".
#include <algorithm>
#include <bit>

#include <fmt/format.h>

#include "engine/internal.h"

namespace fencedep::detail {

namespace {
// Room for fencedep's own frames above the user's, which the renderer trims (a fence operation
// nested in containers can be a dozen frames deep).
constexpr unsigned trimmed_frames_allowance = 24;

// The outermost `depth` context frames of the thread, copied out of its stack. A frame named on
// demand is named here, the first time its names are needed (lockdep.h).
context_record copy_frames(const thread_state& ts, unsigned depth) {
    context_record record;
    for (unsigned i = 0; i < depth; ++i) {
        context_frame f = *ts.frames[i];
        if (f.name)
            f.name(f);
        record.frames.push_back({f.op, f.kind ? f.kind : "", f.driver ? f.driver : "", f.timeline ? f.timeline : "",
                                 f.context, f.seqno, f.file ? f.file : "", f.line});
    }
    return record;
}
}  // namespace

stack_id event::current_stack() {
    if (!stack_)
        stack_ = capture_stack(current_options().stack_depth + trimmed_frames_allowance);
    return stack_;
}

bool event::first_report(std::span<const std::uint64_t> identity) {
    return e_.reported.insert(hash_words(identity)).second;
}

// The whole stack of operations, outermost first, so that a reader sees the composition (the
// chain that enabled the array that added a callback to the leaf); frames past the stored ones
// are marked as cut.
context_record event::current_context() const {
    const unsigned stored = std::min(ts_.frame_depth, max_context_frames);
    context_record record = copy_frames(ts_, stored);
    record.cut = ts_.frame_depth - stored;
    return record;
}

lock_ref event::ref(const held_lock& h) const {
    const lock_class& c = e_.classes[h.class_id];
    lock_ref r;
    if (h.instance) {
        r = named_ref(*h.instance, c.name, c.base, h.ip);
    } else {
        r.name = c.name;
        r.ip = h.ip;
    }
    // A slot shared under a nest_lock stands for several locks of its class.
    if (h.references > 1)
        r.label += fmt::format("{}{} locks of this class, under one nest lock", r.label.empty() ? "" : "; ", h.references);
    r.kind = h.kind;
    r.stack = h.site_stack;
    r.outer_ip = h.outer_ip;
    // The frames the lock was taken under, if they are still the ones pushed: the serial of the
    // innermost one tells a frame pushed later at the same depth apart.
    const unsigned depth = h.frames.depth;
    if (depth > 0 && depth <= std::min(ts_.frame_depth, max_context_frames) &&
        ts_.frame_serials[depth] == h.frames.serial)
        r.context = copy_frames(ts_, depth);
    return r;
}

lock_ref event::acquiring(std::uint32_t class_id, lock_kind kind, const lock_map& instance, const void* ip) {
    const lock_class& c = e_.classes[class_id];
    lock_ref r = named_ref(instance, c.name, c.base, ip);
    r.kind = kind;
    r.stack = current_stack();
    r.context = current_context();
    return r;
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
    set_gate(false);
    auto& r = reports_.add(report_kind::table_exhausted, ts_);
    r.title = fmt::format("BUG: {} too low!", option);
    r.lines.push_back(fmt::format("the {} table is full: {} of {} entries in use", table, capacity, capacity));
    r.lines.push_back(fmt::format("raise it with FENCEDEP_OPTIONS={}={}", option, std::uint64_t{capacity} * 2));
    r.lines.push_back("turning off the locking correctness validator.");
    r.stack = current_stack();
    snapshot_held(r);
}

// Rule: two instances of one class nested are reported as recursive locking, as in lockdep: the
// validator reasons about classes. Most such reports in code that was not written for lockdep
// are two locks that were never meant to share a class (members built by one constructor, locks
// made at one line), so the report says which case it is and how to split them.
void event::explain_recursion(pending_report& r, const lock_class& c) const {
    if (r.held.instance == r.subject.instance) {
        r.lines.push_back(fmt::format("the held lock is this very instance ({}): the thread would wait for itself",
                                      fmt::ptr(r.subject.instance)));
        return;
    }
    const auto instance = [](const lock_ref& l) {
        return l.label.empty() ? fmt::format("{}", fmt::ptr(l.instance)) : fmt::format("{} \"{}\"", fmt::ptr(l.instance), l.label);
    };
    if (c.site.empty()) {
        r.lines.push_back(fmt::format("the two are different instances, {} and {}, of one class: they share the lock_class_key of {}",
                                      instance(r.held), instance(r.subject), c.base));
        r.lines.push_back("if they are different locks, give them different keys; if one is taken inside the other by "
                          "design, take the inner one with lock_nested(1)");
        return;
    }
    r.lines.push_back(fmt::format("the two are different instances, {} and {}, of one class: both were built at {}",
                                  instance(r.held), instance(r.subject), c.site));
    r.lines.push_back("if they are different locks, give them different string-literal names or lock_class_keys; if "
                      "one is taken inside the other by design, take the inner one with lock_nested(1)");
}

// Rule: a dependency prev -> next that would close a strong cycle is reported, once per distinct
// cycle, and never added, so that the graph has no strong cycle (the shortest cycle is what the
// splat shows).
//
// Rule (read/write, lockdep.md §1.7): the search looks for a strong path from next back to prev.
// It starts as a recursive reader's when next is taken as one (next may then not be left as a
// shared holder), and it closes at prev whatever arrives when prev is held exclusively, but only
// with a non-recursive arrival when prev is held shared: a recursive reader is never blocked by
// a reader. So two recursive readers taken in opposite orders around a lock are no cycle, while
// the same with a non-recursive reader or a writer on either side is one.
//
// The graph's order (graph.h) says when no path next -> prev can exist, plain or strong, and
// the search is skipped; it keeps the search only for dependencies against the order that a
// path may close, so the splat still shows the shortest cycle.
//
// A dependency of a kind an edge already has needs no search: a cycle through it would have been
// found when the last edge of that cycle was added. A same-class "dependency" is a read
// recursion the held-stack rule allowed; it adds nothing the search could use.
event::dependency event::add_dependency(const held_lock& prev, std::uint32_t next, lock_kind kind,
                                        const lock_map* instance, const void* ip) {
    if (prev.class_id == next)
        return dependency::recorded;
    // A blessed order is neither recorded nor searched; refusing it leaves `next` uncovered, so
    // the locks held below `prev` still record their edges to it.
    if (blessed(e_, prev.class_id, next))
        return dependency::refused;
    graph& g = e_.dependencies;
    const unsigned bit = dep_bit(prev.kind, kind);
    const auto dep = static_cast<std::uint8_t>(1u << bit);
    const std::uint32_t existing = g.find_edge(prev.class_id, next);
    if (existing != graph::none && (g.at(existing).deps & dep))
        return dependency::recorded;
    std::vector<graph::step> path;
    if (g.may_close_cycle(prev.class_id, next) &&
        g.find_path(next, prev.class_id, kind == lock_kind::recursive_read, prev.kind == lock_kind::write, path)) {
        // Report each distinct cycle once: identify it by its classes, rotated to start at the
        // smallest id, so the same cycle closed from any of its edges is one report.
        std::vector<std::uint64_t> cycle{prev.class_id};
        for (const graph::step& step : path)
            cycle.push_back(g.at(step.edge).from);
        std::rotate(cycle.begin(), std::min_element(cycle.begin(), cycle.end()), cycle.end());
        cycle.insert(cycle.begin(), 0xc1c1e);
        if (!first_report(cycle))
            return dependency::refused;
        e_.reported_cycles.emplace(hash_words(cycle), std::vector<std::uint32_t>(cycle.begin() + 1, cycle.end()));
        auto& r = reports_.add(report_kind::circular_dependency, ts_);
        r.subject = acquiring(next, kind, *instance, ip);
        r.held = ref(prev);
        // path: next = c0 -> c1 -> ... -> ck = prev. Printed from #k (prev) down to #0 (next);
        // link i shows the stack of the dependency that reached c_i, of the kind the cycle uses.
        for (std::size_t i = path.size(); i > 0; --i) {
            const graph::step& step = path[i - 1];
            const auto& edge = g.at(step.edge);
            const edge_record::dependency& rec =
                e_.edge_records[edge.payload].by_kind[static_cast<unsigned>(std::countr_zero(step.dep))];
            r.chain.push_back({e_.classes[edge.to].name, rec.to_kind, rec.stack,
                               rec.context == graph::none ? context_record{} : e_.contexts[rec.context]});
        }
        r.chain.push_back({e_.classes[next].name, kind, current_stack(), current_context()});
        r.parent = e_.classes[g.at(path.back().edge).from].name;
        r.parent_kind = path.back().dep & (graph::dep_sn | graph::dep_sr) ? lock_kind::read : lock_kind::write;
        r.stack = current_stack();
        snapshot_held(r);
        return dependency::refused;
    }
    std::uint32_t context = graph::none;
    if (ts_.frame_depth > 0) {
        context = static_cast<std::uint32_t>(e_.contexts.size());
        e_.contexts.push_back(current_context());
    }
    std::uint32_t payload;
    if (existing != graph::none) {
        g.add_deps(existing, dep);
        payload = g.at(existing).payload;
    } else {
        payload = static_cast<std::uint32_t>(e_.edge_records.size());
        if (g.add_edge(prev.class_id, next, payload, dep) == graph::none) {
            if (context != graph::none)
                e_.contexts.pop_back();
            report_table_full("dependency", g.max_edges(), "max_edges");
            return dependency::full;
        }
        e_.edge_records.emplace_back();
    }
    e_.edge_records[payload].by_kind[bit] = {current_stack(), context, kind};
    return dependency::recorded;
}

// The recording rule.
//
// Every lock held below `next` (in its segment) must precede `next` in the graph: that is what
// lets a later acquisition in the other order find the cycle. Like lockdep, fencedep records the
// edge from the nearest held lock only and relies on transitivity for the locks below it: they
// precede the nearest one already. That holds only while the nearest one is *covered*, i.e.
// every lock below it was known to precede it when it was taken. A held lock is not covered when
// it is a trylock (no edge leads into a trylock), when it was a recursive acquisition (it records
// nothing), or when one of its own edges was refused because it closed a cycle.
//
// lockdep stops at the first report, so it never sees an uncovered lock other than a trylock.
// fencedep goes on validating, so the walk goes on down the held stack past every lock that is
// not covered, recording an edge from each, until it has recorded one from a covered lock (or
// reached the bottom of the segment). `next` itself is covered unless an edge was refused on
// the way, or it is taken as a recursive reader: a path that arrives at a recursive reader can
// never leave it while it is held shared (the strong-path rule above), so the locks below it
// reach nothing through it. Its coverage depends only on the sequence of held classes (the graph only grows, and
// an edge refused once stays refused while the graph is acyclic), so it is cached with the
// chain (chain_cache: the entry's coverage bit).
//
// Rule (recursion, lockdep's check_deadlock): taking a class this thread already holds is
// "possible recursive locking", except a recursive read of a class held for reading, which no
// reader blocks. A non-recursive reader may wait behind a writer that waits for the reader
// already held, so for it a second read of its class is a self-deadlock.
//
// Rule (nest_lock, lockdep.md §1.9): a lock of a held class taken under a nest_lock this thread
// holds is no recursion, and records nothing (lockdep's check_deadlock returns 2): the nest_lock
// orders every such nesting.
bool event::validate(std::uint32_t class_id, const lock_map::acquisition& how, const lock_map* instance,
                     std::uint64_t chain_key, unsigned base) {
    // Another thread may have validated this chain while we waited for the lock.
    if (const chain_state known = hot.chains.lookup(chain_key); known != chain_state::unknown)
        return known == chain_state::covered;
    const lock_kind kind = how.kind;
    const void* ip = how.ip;
    bool covered = kind != lock_kind::recursive_read;
    const auto same_class = [&](const held_lock& h) {
        return h.class_id == class_id && !(kind == lock_kind::recursive_read && h.kind != lock_kind::write);
    };
    if (const held_lock* h = std::find_if(ts_.held.get(), ts_.held.get() + ts_.depth, same_class);
        h != ts_.held.get() + ts_.depth && how.nest_lock && find_held(ts_, *how.nest_lock) >= 0) {
        covered = false;
    } else if (h != ts_.held.get() + ts_.depth) {
        // A recursive acquisition records nothing, as in lockdep: its only news is the report.
        covered = false;
        if (first_report({0x5ec, class_id})) {
            auto& r = reports_.add(report_kind::recursive_locking, ts_);
            r.subject = acquiring(class_id, kind, *instance, ip);
            r.held = ref(*h);
            explain_recursion(r, e_.classes[class_id]);
            r.stack = current_stack();
            snapshot_held(r);
        }
    } else {
        for (unsigned i = ts_.depth; i > base; --i) {
            const held_lock& below = ts_.held[i - 1];
            const dependency d = add_dependency(below, class_id, kind, instance, ip);
            if (d == dependency::full)
                return false;
            if (d == dependency::refused)
                covered = false;
            else if (below.covered)
                break;
        }
    }
    if (!hot.chains.insert(chain_key, covered))
        report_table_full("lock chain", hot.chains.capacity(), "max_chains");
    return covered;
}

}  // namespace fencedep::detail
