// SPDX-License-Identifier: MIT
#include "output.h"

#include <sys/wait.h>

#include <cstdio>
#include <set>

#include <fmt/format.h>

#include "report/render.h"

namespace fencedep::graph_tool {

namespace {

using detail::cycle_layout;

const merged_graph::dependency& used(const merged_graph& g, const cycle_step& s) {
    return g.edges()[s.edge].dependencies[s.dependency];
}

lock_kind held_as(const merged_graph::dependency& d) { return d.shared_held ? lock_kind::read : lock_kind::write; }

std::string run_note(const merged_graph& g, const merged_graph::dependency& d) {
    const run& r = g.runs()[d.run];
    return fmt::format("recorded by run {}[{}] (dump {})", r.program, r.pid, r.file);
}

// A DOT string literal.
std::string quoted(std::string_view text) {
    std::string out = "\"";
    for (const char c : text) {
        if (c == '\n') {
            out += "\\n";
            continue;
        }
        if (c == '"' || c == '\\')
            out += '\\';
        out += c;
    }
    return out + '"';
}

const char* kind_label(const merged_graph::dependency& d) {
    static constexpr const char* labels[2][3] = {{"EN", "EN", "ER"}, {"SN", "SN", "SR"}};
    return labels[d.shared_held][static_cast<int>(d.taken)];
}

}  // namespace

std::string splat(const merged_graph& g, const cycle& c, std::size_t number, std::size_t total) {
    // The cycle c0 -> c1 -> ... -> c(k-1) -> c0 reads as lockdep's: the last step is the
    // acquisition of c0 under c(k-1) that closes it; the steps before it are the chain.
    const std::size_t k = c.size();
    const auto name = [&](std::uint32_t id) { return g.classes()[id].name; };
    const cycle_step& closing = c.back();
    const merged_graph::edge& last = g.edges()[closing.edge];
    cycle_layout layout;
    layout.subject = name(last.to);
    layout.subject_kind = used(g, closing).taken;
    layout.held = name(last.from);
    layout.held_kind = held_as(used(g, closing));
    const cycle_step& before = c[k - 2];
    layout.parent = name(g.edges()[before.edge].from);
    layout.parent_kind = held_as(used(g, before));
    std::set<std::uint32_t> runs;
    const auto link = [&](const cycle_step& s) {
        const merged_graph::dependency& d = used(g, s);
        runs.insert(d.run);
        layout.chain.push_back({name(g.edges()[s.edge].to), d.taken, g.stacks()[d.stack], d.context, {run_note(g, d)}});
    };
    for (std::size_t i = k - 1; i > 0; --i)
        link(c[i - 1]);
    link(closing);

    const std::string title = fmt::format("WARNING: {}", report_title(report_kind::circular_dependency));
    std::string text = fmt::format("\n{}\n{}\n", std::string(title.size(), '='), title);
    text += fmt::format("fencedep-graph merge: cycle {} of {}, {} classes, recorded by {} run{}\n", number, total, k,
                        runs.size(), runs.size() == 1 ? "" : "s");
    text += std::string(title.size(), '-') + '\n';
    detail::append_signalling_note(text, layout);
    text += fmt::format("{} is acquired while holding {}, which already depends on it.\n", layout.subject, layout.held);
    detail::append_cycle(text, layout);
    return text;
}

std::string dot(const merged_graph& g, const std::vector<cycle>& cycles, const cycle* only) {
    std::set<std::uint32_t> highlighted;
    for (const cycle& c : only ? std::vector<cycle>{*only} : cycles)
        for (const cycle_step& s : c)
            highlighted.insert(s.edge);
    std::set<std::uint32_t> nodes;
    std::vector<std::uint32_t> edges;
    for (std::uint32_t e = 0; e < g.edges().size(); ++e) {
        if (only && !highlighted.contains(e))
            continue;
        edges.push_back(e);
        nodes.insert(g.edges()[e].from);
        nodes.insert(g.edges()[e].to);
    }
    if (!only)
        for (std::uint32_t n = 0; n < g.classes().size(); ++n)
            nodes.insert(n);
    std::string text = "digraph fencedep {\n  node [shape=box, fontname=\"monospace\"];\n";
    for (const std::uint32_t n : nodes) {
        const merged_graph::lock_class& c = g.classes()[n];
        const std::string label = c.site.empty() || c.site == c.name ? c.name : c.name + "\n" + c.site;
        text += fmt::format("  n{} [label={}];\n", n, quoted(label));
    }
    for (const std::uint32_t e : edges) {
        const merged_graph::edge& edge = g.edges()[e];
        std::string kinds;
        for (const merged_graph::dependency& d : edge.dependencies)
            kinds += kinds.empty() ? kind_label(d) : fmt::format(",{}", kind_label(d));
        text += fmt::format("  n{} -> n{} [label={}{}];\n", edge.from, edge.to, quoted(kinds),
                            highlighted.contains(e) ? ", color=red, penwidth=2" : "");
    }
    return text + "}\n";
}

bool render_svg(const std::string& dot_text) {
    std::fflush(stdout);
    FILE* pipe = popen("dot -Tsvg", "w");
    if (!pipe) {
        std::perror("fencedep-graph: error: cannot start Graphviz's dot");
        return false;
    }
    std::fwrite(dot_text.data(), 1, dot_text.size(), pipe);
    const int status = pclose(pipe);
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
        return true;
    if (WIFEXITED(status) && WEXITSTATUS(status) == 127)
        std::fputs("fencedep-graph: error: --svg needs Graphviz's dot in PATH (Debian: apt-get install graphviz)\n",
                   stderr);
    else
        std::fputs("fencedep-graph: error: Graphviz's dot -Tsvg failed\n", stderr);
    return false;
}

std::string stats(const merged_graph& g) {
    const std::vector<cycle> cycles = find_cycles(g);
    const std::vector<std::uint32_t> path = longest_path(g);
    std::size_t dependencies = 0;
    for (const merged_graph::edge& e : g.edges())
        dependencies += e.dependencies.size();
    std::string text;
    text += fmt::format(" runs merged:                   {:>11}\n", g.runs().size());
    text += fmt::format(" lock-classes:                  {:>11}\n", g.classes().size());
    text += fmt::format(" direct dependencies:           {:>11}\n", g.edges().size());
    text += fmt::format(" dependency kinds recorded:     {:>11}\n", dependencies);
    text += fmt::format(" lock-chains (sum of runs):     {:>11}\n", g.chains());
    text += fmt::format(" stack-trace entries:           {:>11}\n", g.stacks().size());
    text += fmt::format(" cycles:                        {:>11}\n", cycles.size());
    text += fmt::format(" longest path (classes):        {:>11}\n", path.size());
    if (!path.empty()) {
        std::string names;
        for (const std::uint32_t id : path)
            names += (names.empty() ? "" : " -> ") + g.classes()[id].name;
        text += fmt::format(" longest path: {}\n", names);
    }
    return text;
}

}  // namespace fencedep::graph_tool
