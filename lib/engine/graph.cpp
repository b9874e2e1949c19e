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
    edges_.reset(new (std::nothrow) edge[max_edges]);
    first_out_.reset(new (std::nothrow) std::uint32_t[max_classes + 1]);
    edge_index_.reset(new (std::nothrow) std::uint32_t[slots]);
    visit_.reset(new (std::nothrow) std::uint32_t[max_classes + 1]());
    parent_edge_.reset(new (std::nothrow) std::uint32_t[max_classes + 1]);
    queue_.reset(new (std::nothrow) std::uint32_t[max_classes + 1]);
    if (!edges_ || !first_out_ || !edge_index_ || !visit_ || !parent_edge_ || !queue_)
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

std::uint32_t graph::add_edge(std::uint32_t from, std::uint32_t to, std::uint32_t payload) {
    if (edge_count_ == max_edges_)
        return none;
    const std::uint32_t index = edge_count_++;
    edges_[index] = edge{from, to, first_out_[from], payload};
    first_out_[from] = index;
    edge_index_[slot_of(from, to)] = index + 1;
    return index;
}

std::uint32_t graph::search(std::uint32_t from, std::uint32_t to) {
    if (++generation_ == 0) {
        // The marks wrapped: clear them once so that stale marks cannot look current.
        std::fill_n(visit_.get(), max_classes_ + 1, 0u);
        generation_ = 1;
    }
    std::uint32_t head = 0;
    std::uint32_t tail = 0;
    visit_[from] = generation_;
    queue_[tail++] = from;
    while (head != tail) {
        const std::uint32_t node = queue_[head++];
        for (std::uint32_t e = first_out_[node]; e != none; e = edges_[e].next_out) {
            const std::uint32_t next = edges_[e].to;
            if (visit_[next] == generation_)
                continue;
            visit_[next] = generation_;
            parent_edge_[next] = e;
            if (next == to)
                return to;
            queue_[tail++] = next;
        }
    }
    return none;
}

bool graph::find_path(std::uint32_t from, std::uint32_t to, std::vector<std::uint32_t>& path) {
    path.clear();
    if (from == to || search(from, to) == none)
        return false;
    for (std::uint32_t node = to; node != from; node = edges_[parent_edge_[node]].from)
        path.push_back(parent_edge_[node]);
    std::reverse(path.begin(), path.end());
    return true;
}

}  // namespace fencedep::detail
