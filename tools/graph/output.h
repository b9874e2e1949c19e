// SPDX-License-Identifier: MIT
// What fencedep-graph prints: merged cycles as splats, DOT, and statistics.
#pragma once

#include <string>
#include <vector>

#include "merged.h"

namespace fencedep::graph_tool {

// Cycle `number` of `total` as a circular-dependency splat in the kernel layout (the report
// layer's append_cycle), each link naming the run and dump that recorded its edge.
std::string splat(const merged_graph& g, const cycle& c, std::size_t number, std::size_t total);

// Graphviz DOT: the whole graph with every cycle's edges highlighted, or (with `only`) the one
// cycle. Nodes are labelled with class names, edges with the kinds recorded.
std::string dot(const merged_graph& g, const std::vector<cycle>& cycles, const cycle* only);

// Pipes DOT through Graphviz's `dot -Tsvg` to stdout. On failure (no Graphviz installed, dot
// failed) prints why on stderr and returns false.
bool render_svg(const std::string& dot_text);

// Figures in the manner of /proc/lockdep_stats.
std::string stats(const merged_graph& g);

}  // namespace fencedep::graph_tool
