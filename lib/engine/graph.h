// SPDX-License-Identifier: MIT
// The class-level dependency graph: edge tables that grow with use, an incremental topological
// order that lets most new edges skip the cycle search, and a shortest-path search for the rest.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

namespace fencedep::detail {

// Nodes are class ids 1..max_classes (0 is never a node). An edge from -> to means "`to` was
// acquired while `from` was held", and carries the kinds of dependency seen (lockdep.md §1.7),
// named by what `from` was held as (Exclusive or Shared) and what `to` was taken as (a
// Non-recursive locker, a writer or a plain reader, or a Recursive reader).
// The graph itself never refuses an edge: the engine asks find_path() first and does not add a
// dependency that closes a strong cycle, so the graph has no strong cycle. It may have cycles
// through recursive readers, which cannot deadlock, so it is not always a DAG.
//
// The order (Pearce-Kelly's incremental topological order, as in Abseil's GraphCycles). The graph
// keeps its nodes in *components*: sets of classes joined by plain cycles (cycles that are not
// strong), one class each while there are none. It keeps an order of the components in which
// every edge between two components goes forward. Then an edge from -> to that goes forward
// needs no search: a path to -> from would go backward somewhere, so there is none, plain or
// strong. An edge that goes backward is checked by a depth-first search of the region between
// the two (what `to` reaches before `from`'s place); if that finds no path the order is repaired
// when the edge is added, by moving that region and what reaches `from` within it past each
// other. An edge inside one component, or one whose region search finds a path, needs the
// strong-path search; if that finds no strong path the edge goes in, its plain cycle joins every
// component on it into one, and the edges inside that component are searched from then on.
// Components never split: after remove_edges_if() they may be larger than the cycles left, which
// costs searches but never skips one that is needed.
//
// Memory grows with use: the node tables with the largest class id on an edge, the edge tables
// with the edges, each doubling up to the limits given to init().
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
        std::uint32_t next_in;   // next edge in to's backward list, or none
        std::uint32_t payload;   // engine data: index of the edge's stack/context record
        std::uint8_t deps;       // the dependency kinds seen
    };

    // One edge of a path, and the dependency kind (a single bit) that the path uses.
    struct step {
        std::uint32_t edge;
        std::uint8_t dep;
    };

    // Sets the limits and drops every edge. Allocates nothing: the tables grow as edges come.
    void init(std::uint32_t max_classes, std::uint32_t max_edges);
    // Drops every edge and every component, keeping the memory.
    void clear();

    std::uint32_t max_classes() const { return max_classes_; }
    std::uint32_t max_edges() const { return max_edges_; }
    std::uint32_t edge_count() const { return static_cast<std::uint32_t>(edges_.size()); }
    const edge& at(std::uint32_t index) const { return edges_[index]; }

    // Index of the edge from -> to, or none.
    std::uint32_t find_edge(std::uint32_t from, std::uint32_t to) const;
    // Adds from -> to with the kinds `deps` (the edge must not exist yet, and the caller must
    // have made sure it closes no strong cycle), and repairs the order. Returns its index, or
    // none if the edge table is full (or memory to grow it could not be had).
    std::uint32_t add_edge(std::uint32_t from, std::uint32_t to, std::uint32_t payload, std::uint8_t deps);
    // Removes every edge for which `drop` returns true; the others keep their payloads and their
    // order in the forward lists (so later searches find the same shortest paths). Costs
    // O(edges + classes); for the rare calls that unlearn an order, never for an acquisition.
    void remove_edges_if(const std::function<bool(const edge&)>& drop);
    // Adds kinds to an existing edge.
    void add_deps(std::uint32_t index, std::uint8_t deps) { edges_[index].deps |= deps; }

    // Whether an edge from -> to could close a cycle, i.e. whether find_path(to, from, ...) must
    // run. False proves that no path to -> from exists, plain or strong. O(1) for an edge that
    // goes forward in the order; otherwise O(edges of the region between the two).
    bool may_close_cycle(std::uint32_t from, std::uint32_t to);
    // Whether the two classes are in one component (joined by a plain cycle).
    bool same_component(std::uint32_t a, std::uint32_t b);

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
    bool grow_nodes(std::uint32_t id);
    bool grow_edges();
    void link(std::uint32_t index);
    std::uint32_t search(std::uint32_t from, std::uint32_t to, bool from_recursive, bool to_any);
    std::uint64_t slot_of(std::uint32_t from, std::uint32_t to) const;
    std::uint32_t component(std::uint32_t node);
    std::uint32_t next_mark();
    bool reaches(std::uint32_t start, std::uint32_t target, bool forward, std::vector<std::uint32_t>* region);
    void reorder(std::uint32_t from, std::uint32_t to);
    bool alone(std::uint32_t node, const std::vector<std::uint32_t>& first) const;

    std::uint32_t max_classes_ = 0;
    std::uint32_t max_edges_ = 0;
    std::vector<edge> edges_;
    // Open-addressed (from, to) -> edge index + 1, so finding an edge is O(1) with wide fan-out;
    // at most half full.
    std::vector<std::uint32_t> edge_index_;

    // Per node, for the node ids below nodes_ (the others have no edge).
    std::uint32_t nodes_ = 0;
    std::vector<std::uint32_t> first_out_;  // head of its forward list
    std::vector<std::uint32_t> first_in_;   // head of its backward list
    std::vector<std::uint32_t> parent_;     // union-find link to its component's representative
    std::vector<std::uint32_t> member_;     // next member of its component (a circular list)
    std::vector<std::uint32_t> position_;   // a representative's place in the order
    // Places: a new node takes first_place + its id (ids stay below 2^22, options.cpp). A node
    // that nothing leads to moves before every other to front_ - 1, one that leads nowhere after
    // every other to back_, in O(1) (add_edge): so a new class taken under or over old ones
    // never reorders a region.
    std::uint32_t front_ = 0;
    std::uint32_t back_ = 0;
    // Marks of the order's searches: a node was reached forward (backward) in this search iff its
    // mark equals mark_, so no clearing pass is needed between searches.
    std::vector<std::uint32_t> forward_mark_;
    std::vector<std::uint32_t> backward_mark_;
    std::uint32_t mark_ = 0;
    std::vector<std::uint32_t> stack_;
    std::vector<std::uint32_t> forward_region_;
    std::vector<std::uint32_t> backward_region_;
    std::vector<std::uint32_t> places_;

    // Breadth-first search state, over (class, arrival) pairs: state 2c is class c reached by a
    // non-recursive arrival, 2c+1 by recursive-reader arrivals only. A state is visited in this
    // search iff visit_[s] == generation_.
    std::vector<std::uint32_t> visit_;
    std::vector<std::uint32_t> parent_edge_;   // per state: the edge that reached it
    std::vector<std::uint32_t> parent_state_;  // per state: the state that edge left
    std::vector<std::uint32_t> queue_;
    std::uint32_t generation_ = 0;
};

}  // namespace fencedep::detail
