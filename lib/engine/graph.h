// SPDX-License-Identifier: MIT
// The class-level dependency graph: fixed-capacity edge tables and a shortest-path search.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

namespace fencedep::detail {

// Nodes are class ids 1..max_classes (0 is never a node). An edge from -> to means "`to` was
// acquired while `from` was held". The graph itself never refuses an edge that closes a cycle:
// the engine asks find_path() first and does not add the closing edge, so the graph stays acyclic.
// Not thread-safe: the engine serializes every call with its own lock.
class graph {
public:
    static constexpr std::uint32_t none = 0xffffffffu;

    struct edge {
        std::uint32_t from;
        std::uint32_t to;
        std::uint32_t next_out;  // next edge in from's forward list, or none
        std::uint32_t payload;   // engine data: index of the edge's stack/context record
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
    // Adds from -> to (which must not exist yet). Returns its index, or none if the edge table is
    // full.
    std::uint32_t add_edge(std::uint32_t from, std::uint32_t to, std::uint32_t payload);

    // Breadth-first search for the shortest path from `from` to `to` (from != to). On success
    // fills `path` with the edge indices in order (first edge leaves `from`) and returns true.
    // Costs O(classes + edges reachable from `from`); needs no allocation beyond `path`.
    bool find_path(std::uint32_t from, std::uint32_t to, std::vector<std::uint32_t>& path);

private:
    std::uint32_t search(std::uint32_t from, std::uint32_t to);
    std::uint64_t slot_of(std::uint32_t from, std::uint32_t to) const;

    std::uint32_t max_classes_ = 0;
    std::uint32_t max_edges_ = 0;
    std::uint32_t edge_count_ = 0;
    std::unique_ptr<edge[]> edges_;
    std::unique_ptr<std::uint32_t[]> first_out_;    // per class: head of its forward list
    // Open-addressed (from, to) -> edge index + 1, so finding an edge is O(1) with wide fan-out.
    std::unique_ptr<std::uint32_t[]> edge_index_;
    std::uint64_t index_mask_ = 0;
    // Breadth-first search state: a class is visited in this search iff visit_[c] == generation_,
    // so no clearing pass is needed between searches.
    std::unique_ptr<std::uint32_t[]> visit_;
    std::unique_ptr<std::uint32_t[]> parent_edge_;
    std::unique_ptr<std::uint32_t[]> queue_;
    std::uint32_t generation_ = 0;
};

}  // namespace fencedep::detail
