// SPDX-License-Identifier: MIT
// fencedep-graph's model: the union of many graph dumps, joined by class identity, and what
// the subcommands compute from it (cycles, the longest path).
#pragma once

#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "report/graph_dump.h"

namespace fencedep::graph_tool {

using detail::graph_dump;

// The run that wrote a dump.
struct run {
    std::string program;
    std::int64_t pid = 0;
    std::string file;  // the dump's path, as given
};

class merged_graph {
public:
    struct lock_class {
        std::string name;
        std::string key;
        std::string site;
    };
    // The first dependency of one kind recorded on an edge, by whichever run recorded it first.
    struct dependency {
        bool shared_held = false;
        lock_kind taken = lock_kind::write;
        std::uint32_t stack = 0;  // index into stacks()
        std::string context;
        std::uint32_t run = 0;    // index into runs()
    };
    struct edge {
        std::uint32_t from = 0;
        std::uint32_t to = 0;
        std::vector<dependency> dependencies;  // at most one per kind (lockdep's EN, ER, SN, SR)
    };

    // Adds a dump read from `file`: its classes are found or added by identity (name, key symbol
    // and construction site, which builds of the same sources share), its edges joined.
    void add(graph_dump&& dump, const std::string& file);

    const std::vector<run>& runs() const { return runs_; }
    const std::vector<lock_class>& classes() const { return classes_; }
    const std::vector<edge>& edges() const { return edges_; }
    const std::vector<std::vector<frame>>& stacks() const { return stacks_; }
    // Per class, the indices of its outgoing edges.
    const std::vector<std::vector<std::uint32_t>>& out_edges() const { return out_; }
    std::uint64_t chains() const { return chains_; }

private:
    std::uint32_t intern_stack(std::vector<frame>&& stack);

    std::vector<run> runs_;
    std::vector<lock_class> classes_;
    std::unordered_map<std::string, std::uint32_t> class_ids_;
    std::vector<edge> edges_;
    // Per (from << 32 | to), the edge's index and the kinds its dependencies have (bit kind_of()):
    // a dump's edges are mostly known already, and are then passed over with this one look-up.
    struct edge_slot {
        std::uint32_t index;
        std::uint8_t kinds;
    };
    std::unordered_map<std::uint64_t, edge_slot> edge_ids_;
    std::vector<std::vector<std::uint32_t>> out_;
    std::vector<std::vector<frame>> stacks_;
    std::unordered_map<std::string, std::uint32_t> stack_ids_;
    std::uint64_t chains_ = 0;
    std::string identity_;  // add()'s buffer for a class's or a stack's identity
};

// Reads every dump (in parallel, joined in the order given) into one graph. Throws
// detail::dump_error for the first dump that cannot be read.
merged_graph merge_dumps(const std::vector<std::string>& files);

// One step of a cycle: an edge and the dependency of it the cycle uses.
struct cycle_step {
    std::uint32_t edge;
    std::uint32_t dependency;  // index into the edge's dependencies
};
using cycle = std::vector<cycle_step>;  // steps[i].to == steps[i + 1].from, last.to == first.from

// The cycles that can deadlock: for every edge inside a strongly connected component, the
// shortest cycle through it that never arrives at a class as a recursive reader and leaves it
// held for read (the engine's rule), each cycle once; sorted shortest first, then by class
// names. Starts at the class with the lowest index.
std::vector<cycle> find_cycles(const merged_graph& g);

// The longest path counted in edges between strongly connected components (a cycle counts once):
// its classes, where two consecutive hops that meet at two classes of one component list both.
std::vector<std::uint32_t> longest_path(const merged_graph& g);

}  // namespace fencedep::graph_tool
