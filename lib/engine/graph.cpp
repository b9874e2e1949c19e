// SPDX-License-Identifier: MIT
// The class-level dependency graph: fixed-capacity edge tables and a shortest-path search.
//
// Breadth-first search is what lockdep uses too: it finds the shortest path, which is what a
// splat should show, and with one visit mark per class it never needs a queue larger than the
// class table, so unlike lockdep's fixed 4096-slot queue it cannot overflow.
#include "engine/graph.h"

#include <algorithm>
#include <bit>
#include <new>

namespace fencedep::detail {

namespace {
std::uint64_t mix(std::uint32_t from, std::uint32_t to) {
    std::uint64_t x = (std::uint64_t{from} << 32) | to;
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    return x;
}
}  // namespace

bool graph::init(std::uint32_t max_classes, std::uint32_t max_edges) {
    const std::uint64_t slots = std::bit_ceil(std::uint64_t{max_edges} * 2);
    const std::uint64_t states = 2 * (std::uint64_t{max_classes} + 1);
    edges_.reset(new (std::nothrow) edge[max_edges]);
    first_out_.reset(new (std::nothrow) std::uint32_t[max_classes + 1]);
    edge_index_.reset(new (std::nothrow) std::uint32_t[slots]);
    visit_.reset(new (std::nothrow) std::uint32_t[states]());
    parent_edge_.reset(new (std::nothrow) std::uint32_t[states]);
    parent_state_.reset(new (std::nothrow) std::uint32_t[states]);
    queue_.reset(new (std::nothrow) std::uint32_t[states]);
    if (!edges_ || !first_out_ || !edge_index_ || !visit_ || !parent_edge_ || !parent_state_ || !queue_)
        return false;
    max_classes_ = max_classes;
    max_edges_ = max_edges;
    index_mask_ = slots - 1;
    clear();
    return true;
}

void graph::clear() {
    edge_count_ = 0;
    std::fill_n(first_out_.get(), max_classes_ + 1, none);
    std::fill_n(edge_index_.get(), index_mask_ + 1, 0u);
}

std::uint64_t graph::slot_of(std::uint32_t from, std::uint32_t to) const {
    std::uint64_t slot = mix(from, to) & index_mask_;
    for (;;) {
        const std::uint32_t stored = edge_index_[slot];
        if (stored == 0)
            return slot;
        const edge& e = edges_[stored - 1];
        if (e.from == from && e.to == to)
            return slot;
        slot = (slot + 1) & index_mask_;
    }
}

std::uint32_t graph::find_edge(std::uint32_t from, std::uint32_t to) const {
    const std::uint32_t stored = edge_index_[slot_of(from, to)];
    return stored == 0 ? none : stored - 1;
}

std::uint32_t graph::add_edge(std::uint32_t from, std::uint32_t to, std::uint32_t payload, std::uint8_t deps) {
    if (edge_count_ == max_edges_)
        return none;
    const std::uint32_t index = edge_count_++;
    edges_[index] = edge{from, to, first_out_[from], payload, deps};
    first_out_[from] = index;
    edge_index_[slot_of(from, to)] = index + 1;
    return index;
}

// The kept edges are moved down in index order and relinked oldest first, as add_edge() linked
// them, so each forward list keeps its newest-first order.
void graph::remove_edges_if(const std::function<bool(const edge&)>& drop) {
    std::uint32_t kept = 0;
    for (std::uint32_t i = 0; i < edge_count_; ++i)
        if (!drop(edges_[i]))
            edges_[kept++] = edges_[i];
    clear();
    for (std::uint32_t i = 0; i < kept; ++i) {
        const edge e = edges_[i];
        add_edge(e.from, e.to, e.payload, e.deps);
    }
}

// The rule of strong paths (lockdep.md §1.7): a lock entered as a recursive reader blocks no
// other reader, so a path that arrives at it with -(?R)-> may only leave it with an -(E?)-> edge
// (one taken while it was held exclusively, which was a different acquisition, so the path does
// not pass through that reader at all). The search runs over (class, arrival) states; a class
// reached non-recursively may leave by any edge, so it makes its recursive state redundant.
// Returns the state that matched `to`, or none.
std::uint32_t graph::search(std::uint32_t from, std::uint32_t to, bool from_recursive, bool to_any) {
    if (++generation_ == 0) {
        // The marks wrapped: clear them once so that stale marks cannot look current.
        std::fill_n(visit_.get(), 2 * (std::uint64_t{max_classes_} + 1), 0u);
        generation_ = 1;
    }
    std::uint32_t head = 0;
    std::uint32_t tail = 0;
    const std::uint32_t root = 2 * from + (from_recursive ? 1 : 0);
    visit_[root] = generation_;
    queue_[tail++] = root;
    while (head != tail) {
        const std::uint32_t state = queue_[head++];
        const std::uint32_t node = state / 2;
        const bool arrived_recursive = state & 1;
        for (std::uint32_t e = first_out_[node]; e != none; e = edges_[e].next_out) {
            std::uint8_t usable = edges_[e].deps;
            if (arrived_recursive)
                usable &= dep_en | dep_er;
            if (!usable)
                continue;
            const std::uint32_t next = edges_[e].to;
            const bool recursive = !(usable & (dep_en | dep_sn));
            const std::uint32_t next_state = 2 * next + (recursive ? 1 : 0);
            if (visit_[next_state] == generation_ || (recursive && visit_[2 * next] == generation_))
                continue;
            visit_[next_state] = generation_;
            parent_edge_[next_state] = e;
            parent_state_[next_state] = state;
            if (next == to && (to_any || !recursive))
                return next_state;
            queue_[tail++] = next_state;
        }
    }
    return none;
}

bool graph::find_path(std::uint32_t from, std::uint32_t to, bool from_recursive, bool to_any,
                      std::vector<step>& path) {
    path.clear();
    if (from == to)
        return false;
    std::uint32_t state = search(from, to, from_recursive, to_any);
    if (state == none)
        return false;
    const std::uint32_t root = 2 * from + (from_recursive ? 1 : 0);
    for (; state != root; state = parent_state_[state]) {
        const std::uint32_t e = parent_edge_[state];
        std::uint8_t usable = edges_[e].deps;
        if (parent_state_[state] & 1)
            usable &= dep_en | dep_er;
        // The kind the path uses: a non-recursive arrival where the state says so.
        const std::uint8_t wanted = (state & 1) ? (dep_er | dep_sr) : (dep_en | dep_sn);
        const std::uint8_t kinds = usable & wanted;
        path.push_back({e, static_cast<std::uint8_t>(kinds & -kinds)});
    }
    std::reverse(path.begin(), path.end());
    return true;
}

}  // namespace fencedep::detail
