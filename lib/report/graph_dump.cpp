// SPDX-License-Identifier: MIT
// Writes graph dumps and reads them back, validating every field: a dump is the one file that
// travels between processes, and fencedep-graph reads dumps from many runs.
#include "report/graph_dump.h"

#include <errno.h>
#include <unistd.h>

#include <cstring>
#include <ctime>
#include <fstream>
#include <unordered_map>

#include <fmt/format.h>

#include "config/escape.h"
#include "report/json.h"
#include "report/render.h"

namespace fencedep::detail {

using nlohmann::json;

namespace {

std::string utc_now() {
    const std::time_t now = std::time(nullptr);
    std::tm tm{};
    gmtime_r(&now, &tm);
    char text[32];
    std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return text;
}

}  // namespace

graph_dump make_dump(const graph_snapshot& snapshot) {
    graph_dump out;
    out.program = escape(program_invocation_short_name);
    out.pid = getpid();
    out.time = utc_now();
    out.chains = snapshot.chains;
    for (const graph_snapshot::lock_class& c : snapshot.classes) {
        std::string key;
        if (c.key) {
            // A data address is looked up at itself (symbolize() looks at the byte before).
            const frame symbol = symbolize(reinterpret_cast<std::uintptr_t>(c.key) + 1);
            key = symbol.function.empty() ? fmt::format("key@{}", c.key) : symbol.function;
        }
        out.classes.push_back({escape(c.name), escape(key), escape(c.site)});
    }
    std::unordered_map<stack_id, std::uint32_t> interned;
    for (const graph_snapshot::edge& e : snapshot.edges) {
        graph_dump::edge edge{e.from, e.to, {}};
        for (const graph_snapshot::dependency& d : e.dependencies) {
            const auto [at, added] = interned.try_emplace(d.stack, static_cast<std::uint32_t>(out.stacks.size()));
            if (added)
                out.stacks.push_back(report_frames(d.stack));
            // The line's own words hold no control characters: escaping it whole escapes the names.
            edge.dependencies.push_back({d.shared_held, d.taken, at->second, escape(context_line(d.context))});
        }
        out.edges.push_back(std::move(edge));
    }
    return out;
}

std::string dump_json(const graph_dump& dump) {
    json classes = json::array();
    for (const graph_dump::lock_class& c : dump.classes) {
        json j = {{"name", c.name}};
        if (!c.key.empty())
            j["key"] = c.key;
        if (!c.site.empty())
            j["site"] = c.site;
        classes.push_back(std::move(j));
    }
    json stacks = json::array();
    for (const std::vector<frame>& s : dump.stacks)
        stacks.push_back(stack_json(s));
    json edges = json::array();
    for (const graph_dump::edge& e : dump.edges)
        for (const graph_dump::dependency& d : e.dependencies) {
            json row = {e.from, e.to, d.shared_held ? 1 : 0, static_cast<int>(d.taken), d.stack};
            if (!d.context.empty())
                row.push_back(d.context);
            edges.push_back(std::move(row));
        }
    const json out = {{"format", graph_format}, {"program", dump.program}, {"pid", dump.pid},
                      {"time", dump.time},      {"chains", dump.chains},   {"classes", std::move(classes)},
                      {"stacks", std::move(stacks)}, {"edges", std::move(edges)}};
    return out.dump() + '\n';
}

std::string write_graph(const graph_snapshot& snapshot, const std::string& path) {
    const auto failed = [&](const char* what) {
        return fmt::format("fencedep: error: cannot write graph dump '{}': {}: {}", escape(path), what,
                           std::strerror(errno));
    };
    const std::string text = dump_json(make_dump(snapshot));
    const std::string temporary = fmt::format("{}.{}.tmp", path, getpid());
    {
        std::ofstream out(temporary, std::ios::binary | std::ios::trunc);
        if (!out)
            return failed("cannot create it");
        out.write(text.data(), static_cast<std::streamsize>(text.size()));
        out.close();
        if (!out) {
            const std::string error = failed("write failed");
            unlink(temporary.c_str());
            return error;
        }
    }
    if (rename(temporary.c_str(), path.c_str()) != 0) {
        const std::string error = failed("cannot rename it into place");
        unlink(temporary.c_str());
        return error;
    }
    return {};
}

}  // namespace fencedep::detail
