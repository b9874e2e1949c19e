// SPDX-License-Identifier: MIT
// Reads a graph dump back, checking every field: dumps come from many runs and machines, and a
// truncated or hostile file must end in one clear line, never in a crash or a wrong graph.
#include <cerrno>
#include <cstring>
#include <fstream>
#include <iterator>

#include <fmt/format.h>

#include "config/escape.h"
#include "report/graph_dump.h"
#include "report/json.h"

namespace fencedep::detail {

using nlohmann::json;

namespace {

// Walks a parsed dump; `where` is the JSON pointer of the value being read, for the errors.
class reader {
public:
    explicit reader(const std::string& source) : source_(source) {}

    graph_dump read(const json& root);

private:
    [[noreturn]] void fail(const std::string& where, const std::string& what) const {
        throw dump_error(fmt::format("{}: at {}: {}", escape(source_), where.empty() ? "/" : where, what));
    }
    const json& field(const json& object, const std::string& where, const char* name) const {
        const auto it = object.find(name);
        if (it == object.end())
            fail(where, fmt::format("missing field \"{}\"", name));
        return *it;
    }
    const json& array(const json& object, const std::string& where, const char* name) const {
        const json& value = field(object, where, name);
        if (!value.is_array())
            fail(where + "/" + name, fmt::format("expected an array, found {}", value.type_name()));
        return value;
    }
    void expect_object(const json& value, const std::string& where) const {
        if (!value.is_object())
            fail(where, fmt::format("expected an object, found {}", value.type_name()));
    }
    std::string string(const json& object, const std::string& where, const char* name, bool required) const {
        if (!required && !object.contains(name))
            return {};
        const json& value = field(object, where, name);
        if (!value.is_string())
            fail(where + "/" + name, fmt::format("expected a string, found {}", value.type_name()));
        return value.get<std::string>();
    }
    // An unsigned integer below `limit`; `what` says what it counts or indexes.
    std::uint64_t number(const json& object, const std::string& where, const char* name, std::uint64_t limit,
                         const char* what) const {
        const json& value = field(object, where, name);
        if (!value.is_number_unsigned() || value.get<std::uint64_t>() >= limit)
            fail(where + "/" + name, fmt::format("expected {} from 0 to {}, found {}", what, limit - 1, value.dump()));
        return value.get<std::uint64_t>();
    }
    graph_dump::dependency dependency(const json& j, const std::string& where, std::size_t stacks) const;

    const std::string& source_;
};

graph_dump::dependency reader::dependency(const json& j, const std::string& where, std::size_t stacks) const {
    expect_object(j, where);
    graph_dump::dependency d;
    const std::string held = string(j, where, "held", true);
    if (held != "write" && held != "read")
        fail(where + "/held", fmt::format("expected \"write\" or \"read\", found \"{}\"", escape(held)));
    d.shared_held = held == "read";
    const std::string taken = string(j, where, "taken", true);
    if (taken == "write")
        d.taken = lock_kind::write;
    else if (taken == "read")
        d.taken = lock_kind::read;
    else if (taken == "recursive read")
        d.taken = lock_kind::recursive_read;
    else
        fail(where + "/taken",
             fmt::format("expected \"write\", \"read\" or \"recursive read\", found \"{}\"", escape(taken)));
    d.stack = static_cast<std::uint32_t>(number(j, where, "stack", stacks, "a stack index"));
    d.context = escape(string(j, where, "context", false));
    return d;
}

graph_dump reader::read(const json& root) {
    expect_object(root, "");
    const json& format = field(root, "", "format");
    if (format != graph_format)
        fail("/format", fmt::format("not a fencedep graph dump: expected \"{}\", found {}", graph_format,
                                    escape(format.dump())));
    graph_dump out;
    out.program = escape(string(root, "", "program", true));
    out.pid = static_cast<std::int64_t>(number(root, "", "pid", std::uint64_t{1} << 62, "a process id"));
    out.time = escape(string(root, "", "time", true));
    out.chains = number(root, "", "chains", std::uint64_t{1} << 62, "a count");
    const json& classes = array(root, "", "classes");
    out.classes.reserve(classes.size());
    for (std::size_t i = 0; i < classes.size(); ++i) {
        const std::string where = fmt::format("/classes/{}", i);
        expect_object(classes[i], where);
        out.classes.push_back({escape(string(classes[i], where, "name", true)),
                               escape(string(classes[i], where, "key", false)),
                               escape(string(classes[i], where, "site", false))});
    }
    const json& stacks = array(root, "", "stacks");
    out.stacks.reserve(stacks.size());
    for (std::size_t i = 0; i < stacks.size(); ++i) {
        try {
            std::vector<frame> stack = stack_from_json(stacks[i]);
            for (frame& f : stack) {
                f.function = escape(f.function);
                f.file = escape(f.file);
                f.module = escape(f.module);
            }
            out.stacks.push_back(std::move(stack));
        } catch (const json::exception& e) {
            fail(fmt::format("/stacks/{}", i), e.what());
        }
    }
    const json& edges = array(root, "", "edges");
    out.edges.reserve(edges.size());
    for (std::size_t i = 0; i < edges.size(); ++i) {
        const std::string where = fmt::format("/edges/{}", i);
        const json& e = edges[i];
        expect_object(e, where);
        graph_dump::edge edge;
        edge.from = static_cast<std::uint32_t>(number(e, where, "from", out.classes.size(), "a class index"));
        edge.to = static_cast<std::uint32_t>(number(e, where, "to", out.classes.size(), "a class index"));
        if (edge.from == edge.to)
            fail(where, "an edge from a class to itself");
        const json& deps = array(e, where, "dependencies");
        if (deps.empty())
            fail(where + "/dependencies", "expected at least one dependency");
        for (std::size_t k = 0; k < deps.size(); ++k)
            edge.dependencies.push_back(dependency(deps[k], fmt::format("{}/dependencies/{}", where, k), out.stacks.size()));
        out.edges.push_back(std::move(edge));
    }
    return out;
}

}  // namespace

graph_dump parse_dump(std::string_view text, const std::string& source) {
    json root;
    try {
        root = json::parse(text);
    } catch (const json::parse_error& e) {
        // e.byte is the 1-based offset where parsing stopped; the message says what it expected.
        throw dump_error(fmt::format("{}: at byte {}: not valid JSON: {}", escape(source), e.byte, escape(e.what())));
    } catch (const json::out_of_range& e) {
        // A number beyond a double's range (1e400): nlohmann names the token, not its offset.
        throw dump_error(fmt::format("{}: at a number out of range: {}", escape(source), escape(e.what())));
    }
    return reader(source).read(root);
}

graph_dump read_dump(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in)
        throw dump_error(fmt::format("{}: cannot open: {}", escape(path), std::strerror(errno)));
    const std::string text{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
    if (in.bad())
        throw dump_error(fmt::format("{}: cannot read: {}", escape(path), std::strerror(errno)));
    return parse_dump(text, path);
}

}  // namespace fencedep::detail
