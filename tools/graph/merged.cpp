// SPDX-License-Identifier: MIT
#include "merged.h"

#include <algorithm>
#include <deque>
#include <future>
#include <iterator>
#include <set>
#include <thread>

#include <fmt/format.h>

namespace fencedep::graph_tool {

namespace {
// The dependency kind numbering of the engine (dep_bit): held exclusive or shared, taken as a
// non-recursive locker or a recursive reader.
unsigned kind_of(bool shared_held, lock_kind taken) {
    return (shared_held ? 2u : 0u) + (taken == lock_kind::recursive_read ? 1u : 0u);
}

// A stack's identity across runs: everything but the addresses, which move with each load.
void stack_identity(const std::vector<frame>& stack, std::string& id) {
    id.clear();
    for (const frame& f : stack)
        fmt::format_to(std::back_inserter(id), "{}\x1f{}\x1f{}\x1f{}\x1f{}\x1f{}\x1f{}\x1e", f.function, f.offset, f.file,
                       f.line, f.module, f.module_offset, f.inlined);
}
}  // namespace

std::uint32_t merged_graph::intern_stack(std::vector<frame>&& stack) {
    stack_identity(stack, identity_);
    const auto [at, added] = stack_ids_.try_emplace(identity_, static_cast<std::uint32_t>(stacks_.size()));
    if (added)
        stacks_.push_back(std::move(stack));
    return at->second;
}

void merged_graph::add(graph_dump&& dump, const std::string& file) {
    const auto run_id = static_cast<std::uint32_t>(runs_.size());
    runs_.push_back({dump.program, dump.pid, file});
    chains_ += dump.chains;
    std::vector<std::uint32_t> ids(dump.classes.size());
    for (std::size_t i = 0; i < dump.classes.size(); ++i) {
        auto& c = dump.classes[i];
        identity_.assign(c.name).append(1, '\0').append(c.key).append(1, '\0').append(c.site);
        const auto [at, added] = class_ids_.try_emplace(identity_, static_cast<std::uint32_t>(classes_.size()));
        if (added) {
            classes_.push_back({std::move(c.name), std::move(c.key), std::move(c.site)});
            out_.emplace_back();
        }
        ids[i] = at->second;
    }
    // Each of the dump's stacks joins the union's table when a dependency first uses it.
    std::vector<std::uint32_t> stack_ids(dump.stacks.size(), UINT32_MAX);
    for (graph_dump::edge& e : dump.edges) {
        const std::uint32_t from = ids[e.from];
        const std::uint32_t to = ids[e.to];
        const auto [at, added] = edge_ids_.try_emplace(std::uint64_t{from} << 32 | to,
                                                       edge_slot{static_cast<std::uint32_t>(edges_.size()), 0});
        edge_slot& slot = at->second;
        if (added) {
            edges_.push_back({from, to, {}});
            out_[from].push_back(slot.index);
        }
        for (graph_dump::dependency& d : e.dependencies) {
            const unsigned kind = 1u << kind_of(d.shared_held, d.taken);
            if (slot.kinds & kind)
                continue;
            slot.kinds |= kind;
            if (stack_ids[d.stack] == UINT32_MAX)
                stack_ids[d.stack] = intern_stack(std::move(dump.stacks[d.stack]));
            edges_[slot.index].dependencies.push_back(
                {d.shared_held, d.taken, stack_ids[d.stack], std::move(d.context), run_id});
        }
    }
}

merged_graph merge_dumps(const std::vector<std::string>& files) {
    // Parsing dominates; it runs on every core, a dump per core ahead of the join, which overlaps
    // it and stays in the order given (so does the error reported: the first in that order).
    // Memory holds the union and the dumps ahead.
    const std::size_t ahead = std::max(1u, std::thread::hardware_concurrency());
    std::deque<std::future<graph_dump>> parsing;
    std::size_t next = 0;
    merged_graph g;
    for (const std::string& file : files) {
        for (; next < files.size() && parsing.size() < ahead; ++next)
            parsing.push_back(std::async(std::launch::async, [&path = files[next]] { return detail::read_dump(path); }));
        graph_dump dump = parsing.front().get();
        parsing.pop_front();
        g.add(std::move(dump), file);
    }
    return g;
}

namespace {

// Strongly connected components (Tarjan's, without recursion): component[class], numbered in
// reverse topological order (an edge between components goes to a lower number).
std::vector<std::uint32_t> components(const merged_graph& g, std::uint32_t& count) {
    const std::size_t n = g.classes().size();
    constexpr std::uint32_t unvisited = UINT32_MAX;
    std::vector<std::uint32_t> index(n, unvisited), low(n), component(n, unvisited);
    std::vector<std::uint32_t> stack;
    struct frame_state {
        std::uint32_t node;
        std::size_t next;
    };
    std::vector<frame_state> calls;
    std::uint32_t next_index = 0;
    count = 0;
    for (std::uint32_t root = 0; root < n; ++root) {
        if (index[root] != unvisited)
            continue;
        calls.push_back({root, 0});
        index[root] = low[root] = next_index++;
        stack.push_back(root);
        while (!calls.empty()) {
            frame_state& top = calls.back();
            const auto& out = g.out_edges()[top.node];
            if (top.next < out.size()) {
                const std::uint32_t to = g.edges()[out[top.next++]].to;
                if (index[to] == unvisited) {
                    index[to] = low[to] = next_index++;
                    stack.push_back(to);
                    calls.push_back({to, 0});
                } else if (component[to] == unvisited) {
                    low[top.node] = std::min(low[top.node], index[to]);
                }
                continue;
            }
            const std::uint32_t node = top.node;
            calls.pop_back();
            if (!calls.empty())
                low[calls.back().node] = std::min(low[calls.back().node], low[node]);
            if (low[node] == index[node]) {
                std::uint32_t member;
                do {
                    member = stack.back();
                    stack.pop_back();
                    component[member] = count;
                } while (member != node);
                ++count;
            }
        }
    }
    return component;
}

bool leaves_shared(const merged_graph::dependency& d) { return d.shared_held; }
bool arrives_recursive(const merged_graph::dependency& d) { return d.taken == lock_kind::recursive_read; }

}  // namespace

std::vector<cycle> find_cycles(const merged_graph& g) {
    std::uint32_t count = 0;
    const std::vector<std::uint32_t> component = components(g, count);
    // Breadth-first search over (class, arrived as a recursive reader) states, as the engine's
    // graph does; the arrays are reused across searches, told apart by a generation number.
    const std::size_t states = g.classes().size() * 2;
    std::vector<std::uint32_t> seen(states, 0);
    std::vector<cycle_step> parent(states);
    std::vector<std::uint32_t> parent_state(states);
    std::vector<std::uint32_t> queue;
    std::uint32_t generation = 0;
    std::set<std::vector<std::uint32_t>> found;  // each cycle's classes, rotated to the lowest
    std::vector<cycle> cycles;
    for (std::uint32_t e = 0; e < g.edges().size(); ++e) {
        const merged_graph::edge& closing = g.edges()[e];
        if (component[closing.from] != component[closing.to])
            continue;
        for (std::uint32_t k = 0; k < closing.dependencies.size(); ++k) {
            const merged_graph::dependency& last = closing.dependencies[k];
            ++generation;
            queue.clear();
            const std::uint32_t start = closing.to * 2 + (arrives_recursive(last) ? 1 : 0);
            seen[start] = generation;
            queue.push_back(start);
            std::uint32_t goal = UINT32_MAX;
            for (std::size_t head = 0; head < queue.size() && goal == UINT32_MAX; ++head) {
                const std::uint32_t state = queue[head];
                const std::uint32_t node = state / 2;
                const bool recursive = state % 2;
                if (node == closing.from) {
                    if (!(recursive && leaves_shared(last)))
                        goal = state;
                    continue;
                }
                for (const std::uint32_t out : g.out_edges()[node]) {
                    const merged_graph::edge& step = g.edges()[out];
                    if (component[step.to] != component[node])
                        continue;
                    for (std::uint32_t d = 0; d < step.dependencies.size(); ++d) {
                        if (recursive && leaves_shared(step.dependencies[d]))
                            continue;
                        const std::uint32_t next = step.to * 2 + (arrives_recursive(step.dependencies[d]) ? 1 : 0);
                        if (seen[next] == generation)
                            continue;
                        seen[next] = generation;
                        parent[next] = {out, d};
                        parent_state[next] = state;
                        queue.push_back(next);
                    }
                }
            }
            if (goal == UINT32_MAX)
                continue;
            cycle c;
            for (std::uint32_t s = goal; s != start; s = parent_state[s])
                c.push_back(parent[s]);
            std::reverse(c.begin(), c.end());
            c.push_back({e, k});
            // Rotate so that the cycle starts at its lowest class: one form per cycle.
            const auto lowest = std::ranges::min_element(
                c, [&](const cycle_step& a, const cycle_step& b) { return g.edges()[a.edge].from < g.edges()[b.edge].from; });
            std::rotate(c.begin(), lowest, c.end());
            std::vector<std::uint32_t> classes;
            for (const cycle_step& s : c)
                classes.push_back(g.edges()[s.edge].from);
            if (found.insert(std::move(classes)).second)
                cycles.push_back(std::move(c));
        }
    }
    const auto names = [&](const cycle& c) {
        std::vector<std::string_view> out;
        for (const cycle_step& s : c)
            out.push_back(g.classes()[g.edges()[s.edge].from].name);
        return out;
    };
    std::ranges::stable_sort(cycles, [&](const cycle& a, const cycle& b) {
        return a.size() != b.size() ? a.size() < b.size() : names(a) < names(b);
    });
    return cycles;
}

std::vector<std::uint32_t> longest_path(const merged_graph& g) {
    std::uint32_t count = 0;
    const std::vector<std::uint32_t> component = components(g, count);
    // Components come numbered so that every edge between two goes to a lower number: visiting
    // them from 0 up, each one's successors are done before it.
    std::vector<std::vector<std::uint32_t>> members(count);
    for (std::uint32_t c = 0; c < component.size(); ++c)
        members[component[c]].push_back(c);
    std::vector<std::uint32_t> length(count, 0), next(count, UINT32_MAX), via(count, UINT32_MAX);
    for (std::uint32_t comp = 0; comp < count; ++comp)
        for (const std::uint32_t node : members[comp])
            for (const std::uint32_t out : g.out_edges()[node]) {
                const std::uint32_t target = component[g.edges()[out].to];
                if (target != comp && length[target] + 1 > length[comp]) {
                    length[comp] = length[target] + 1;
                    next[comp] = target;
                    via[comp] = out;
                }
            }
    std::vector<std::uint32_t> path;
    if (count == 0)
        return path;
    // Two consecutive hops meet in one component, perhaps at two of its classes: both are listed.
    for (auto comp = static_cast<std::uint32_t>(std::ranges::max_element(length) - length.begin());
         via[comp] != UINT32_MAX; comp = next[comp]) {
        const merged_graph::edge& hop = g.edges()[via[comp]];
        if (path.empty() || path.back() != hop.from)
            path.push_back(hop.from);
        path.push_back(hop.to);
    }
    return path;
}

}  // namespace fencedep::graph_tool
