// SPDX-License-Identifier: MIT
// The class-level dependency graph: fixed-capacity edge tables and a shortest-path search.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

namespace fencedep::detail {

// Nodes are class ids 1..max_classes (0 is never a node). An edge from -> to means "`to` was
// acquired while `from` was held", and carries the kinds of dependency seen (lockdep.md §1.7),
// named by what `from` was held as (Exclusive or Shared) and what `to` was taken as (a
// Non-recursive locker, a writer or a plain reader, or a Recursive reader).
// The graph itself never refuses an edge: the engine asks find_path() first and does not add a
// dependency that closes a strong cycle, so the graph has no strong cycle (it may have cycles
// through recursive readers, which cannot deadlock).
// Not thread-safe: the engine serializes every call with its own lock.
class graph {
public:
    static constexpr std::uint32_t none = 0xffffffffu;

    // Dependency kinds, one bit each; dep_bit() numbers them.
    static constexpr std::uint8_t dep_en = 1u << 0;  // exclusive -> non-recursive
    static constexpr std::uint8_t dep_er = 1u << 1;  // exclusive -> recursive reader
    static constexpr std::uint8_t dep_sn = 1u << 2;  // shared -> non-recursive
    static constexpr std::uint8_t dep_sr = 1u << 3;  // shared -> recursive reader
    static constexpr unsigned dep_kinds = 4;

    struct edge {
        std::uint32_t from;
        std::uint32_t to;
        std::uint32_t next_out;  // next edge in from's forward list, or none
        std::uint32_t payload;   // engine data: index of the edge's stack/context record
        std::uint8_t deps;       // the dependency kinds seen
    };

    // One edge of a path, and the dependency kind (a single bit) that the path uses.
    struct step {
        std::uint32_t edge;
        std::uint8_t dep;
    };

    // Allocates the tables; returns false if memory could not be had. Drops every edge.
    bool init(std::uint32_t max_classes, std::uint32_t max_edges);
    // Drops every edge, keeping the capacities.
    void clear();

    std::uint32_t max_classes() const { return max_classes_; }
    std::uint32_t max_edges() const { return max_edges_; }
    std::uint32_t edge_count() const { return edge_count_; }
    const edge& at(std::uint32_t index) const { return edges_[index]; }

    // Index of the edge from -> to, or none.
    std::uint32_t find_edge(std::uint32_t from, std::uint32_t to) const;
    // Adds from -> to with the kinds `deps` (the edge must not exist yet). Returns its index, or
    // none if the edge table is full.
    std::uint32_t add_edge(std::uint32_t from, std::uint32_t to, std::uint32_t payload, std::uint8_t deps);
    // Removes every edge for which `drop` returns true; the others keep their payloads and their
    // order in the forward lists (so later searches find the same shortest paths). Costs
    // O(edges + classes); for the rare calls that unlearn an order, never for an acquisition.
    void remove_edges_if(const std::function<bool(const edge&)>& drop);
    // Adds kinds to an existing edge.
    void add_deps(std::uint32_t index, std::uint8_t deps) { edges_[index].deps |= deps; }

    // Breadth-first search for the shortest *strong* path from `from` to `to` (from != to): a
    // path that never arrives at a lock as a recursive reader and leaves it as a shared holder
    // (-(?R)-> then -(S?)->), since a recursive reader holding a lock blocks no reader.
    // `from_recursive`: `from` itself is entered as a recursive reader (so the path may not leave
    // it shared). `to_any`: any arrival at `to` counts; otherwise only a non-recursive one
    // (lockdep's hlock_conflict: a cycle closes at a lock held exclusively whatever arrives, at a
    // shared one only if the arrival can be blocked by it).
    // On success fills `path` with the steps in order (the first leaves `from`) and returns true.
    // Costs O(classes + edges reachable from `from`); needs no allocation beyond `path`.
    bool find_path(std::uint32_t from, std::uint32_t to, bool from_recursive, bool to_any, std::vector<step>& path);

private:
    std::uint32_t search(std::uint32_t from, std::uint32_t to, bool from_recursive, bool to_any);
    std::uint64_t slot_of(std::uint32_t from, std::uint32_t to) const;

    std::uint32_t max_classes_ = 0;
    std::uint32_t max_edges_ = 0;
    std::uint32_t edge_count_ = 0;
    std::unique_ptr<edge[]> edges_;
    std::unique_ptr<std::uint32_t[]> first_out_;    // per class: head of its forward list
    // Open-addressed (from, to) -> edge index + 1, so finding an edge is O(1) with wide fan-out.
    std::unique_ptr<std::uint32_t[]> edge_index_;
    std::uint64_t index_mask_ = 0;
    // Breadth-first search state, over (class, arrival) pairs: state 2c is class c reached by a
    // non-recursive arrival, 2c+1 by recursive-reader arrivals only. A state is visited in this
    // search iff visit_[s] == generation_, so no clearing pass is needed between searches.
    std::unique_ptr<std::uint32_t[]> visit_;
    std::unique_ptr<std::uint32_t[]> parent_edge_;   // per state: the edge that reached it
    std::unique_ptr<std::uint32_t[]> parent_state_;  // per state: the state that edge left
    std::unique_ptr<std::uint32_t[]> queue_;
    std::uint32_t generation_ = 0;
};

}  // namespace fencedep::detail
