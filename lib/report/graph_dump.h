// SPDX-License-Identifier: MIT
// The graph dump (graph_path, fencedep::dump_graph, fencedep-graph): the learned graph as data,
// in memory and as the versioned JSON file "fencedep-graph/1" (README, "Graph dumps").
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include <fencedep/lockdep.h>
#include <fencedep/report.h>

#include "report/pending.h"

namespace fencedep::detail {

inline constexpr const char* graph_format = "fencedep-graph/1";

// The graph as the engine hands it over: copies taken under the engine lock, stacks still ids.
struct graph_snapshot {
    struct lock_class {
        std::string name;          // as printed
        std::string site;          // a construction-site class's site; empty for a keyed class
        const void* key = nullptr;  // a keyed class's key, symbolized outside the lock
    };
    struct dependency {
        bool shared_held = false;   // the edge's `from` was held for read (lockdep's S?)
        lock_kind taken = lock_kind::write;
        stack_id stack = 0;
        context_record context;
    };
    struct edge {
        std::uint32_t from = 0;  // indexes into classes
        std::uint32_t to = 0;
        std::vector<dependency> dependencies;  // first recorded of each kind
    };
    std::vector<lock_class> classes;
    std::vector<edge> edges;
    std::uint64_t chains = 0;
};

// A dump as written and read: every string symbolized and escaped, stacks interned.
struct graph_dump {
    struct lock_class {
        std::string name;
        std::string key;   // a keyed class's key symbol ("ring_lock_key"); else empty
        std::string site;  // a construction-site class's "file.cpp:42 in function"; else empty
    };
    struct dependency {
        bool shared_held = false;
        lock_kind taken = lock_kind::write;
        std::uint32_t stack = 0;  // index into stacks
        std::string context;      // the fence context line, as reports print it; may be empty
    };
    struct edge {
        std::uint32_t from = 0;
        std::uint32_t to = 0;
        std::vector<dependency> dependencies;
    };
    std::string program;
    std::int64_t pid = 0;
    std::string time;  // UTC, ISO 8601
    std::uint64_t chains = 0;
    std::vector<lock_class> classes;
    std::vector<std::vector<frame>> stacks;
    std::vector<edge> edges;
};

// A dump that cannot be read: what() is one line naming the file, the position (a byte offset
// or a JSON pointer) and what was expected.
struct dump_error : std::runtime_error {
    using std::runtime_error::runtime_error;
};

// Symbolizes the snapshot's stacks (each distinct stack once) and keys, and adds this run's
// identity. Called outside the engine lock.
graph_dump make_dump(const graph_snapshot& snapshot);

// The JSON text of a dump.
std::string dump_json(const graph_dump& dump);

// Parses and validates a dump. `source` names it in errors (the file's path). Throws dump_error.
graph_dump parse_dump(std::string_view text, const std::string& source);

// Reads and parses the file at `path`. Throws dump_error (also when the file cannot be read).
graph_dump read_dump(const std::string& path);

// Symbolizes `snapshot` and writes it to `path` (to a file beside it, then renamed, so that a
// reader never sees half a dump). Returns an empty string, or the error line to show, naming the
// path. Called outside the engine lock, with the re-entry guard raised.
std::string write_graph(const graph_snapshot& snapshot, const std::string& path);

}  // namespace fencedep::detail
