// SPDX-License-Identifier: MIT
// The learned graph handed to the report layer as data: graph_path at exit, dump_graph().
#include <cstdio>


#include "engine/internal.h"
#include "report/graph_dump.h"

namespace fencedep::detail {

namespace {
// Copies only what the dump needs, under the engine lock; stacks stay ids and keys addresses,
// so that no symbolization (which takes the loader's lock) happens while the lock is held.
graph_snapshot snapshot() {
    engine_state& e = engine();
    std::lock_guard<std::mutex> lock(e.mutex);
    graph_snapshot out;
    if (!e.ready)
        return out;
    out.classes.reserve(e.class_count);
    for (std::uint32_t id = 1; id <= e.class_count; ++id) {
        const lock_class& c = e.classes[id];
        out.classes.push_back({c.name, c.site, c.site.empty() ? c.key : nullptr});
    }
    const graph& g = e.dependencies;
    out.edges.reserve(g.edge_count());
    for (std::uint32_t i = 0; i < g.edge_count(); ++i) {
        const graph::edge& edge = g.at(i);
        graph_snapshot::edge copy{edge.from - 1, edge.to - 1, {}};
        for (unsigned bit = 0; bit < graph::dep_kinds; ++bit) {
            if (!(edge.deps & (1u << bit)))
                continue;
            const edge_record::dependency& rec = e.edge_records[edge.payload].by_kind[bit];
            copy.dependencies.push_back({(1u << bit & (graph::dep_sn | graph::dep_sr)) != 0, rec.to_kind, rec.stack,
                                         rec.context == graph::none ? context_record{} : e.contexts[rec.context]});
        }
        out.edges.push_back(std::move(copy));
    }
    out.chains = hot.chains.size();
    return out;
}

std::string dump_to(const char* path) {
    if (!path || !*path)
        return "fencedep: error: dump_graph: expected a non-empty file path";
    return write_graph(snapshot(), path);
}

// A destructor function runs after the program's atexit handlers and static destructors, so the
// dump holds every edge the run recorded; the report layer sets the exit status after it
// (apply_exit_status has a priority, so it runs after every destructor function without one).
[[gnu::destructor]] void dump_at_exit() {
    if (current_options().graph_path.empty())
        return;
    const reentry_guard guard;
    try {
        if (const std::string error = dump_to(current_options().graph_path.c_str()); !error.empty())
            std::fputs((error + '\n').c_str(), stderr);
    } catch (const std::bad_alloc&) {
        std::fputs("fencedep: error: cannot write the graph dump at exit: out of memory\n", stderr);
    }
}
}  // namespace

}  // namespace fencedep::detail

bool fencedep::dump_graph(const char* path, std::string* error) {
    const detail::reentry_guard guard;
    std::string message;
    try {
        message = detail::dump_to(path);
    } catch (const std::bad_alloc&) {
        message = "fencedep: error: dump_graph: out of memory";
    }
    if (message.empty())
        return true;
    if (error)
        *error = std::move(message);
    else
        std::fputs((message + '\n').c_str(), stderr);
    return false;
}
