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
    // Element `at` of edge row `i`, an unsigned integer below `limit`. (The row's pointer is
    // formatted only for an error: a dump has tens of thousands of rows.)
    std::uint32_t element(const json& row, std::size_t i, std::size_t at, std::uint64_t limit, const char* what) const {
        const json& value = row[at];
        if (!value.is_number_unsigned() || value.get<std::uint64_t>() >= limit)
            fail(fmt::format("/edges/{}/{}", i, at),
                 fmt::format("expected {} from 0 to {}, found {}", what, limit - 1, value.dump()));
        return static_cast<std::uint32_t>(value.get<std::uint64_t>());
    }

    const std::string& source_;
};

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
    // One row per dependency kind of an edge: [from, to, held, taken, stack] or, recorded inside
    // a fence operation, [from, to, held, taken, stack, context]. Rows of one edge are adjacent.
    const json& edges = array(root, "", "edges");
    out.edges.reserve(edges.size());
    for (std::size_t i = 0; i < edges.size(); ++i) {
        const auto where = [i] { return fmt::format("/edges/{}", i); };
        const json& row = edges[i];
        if (!row.is_array() || row.size() < 5 || row.size() > 6)
            fail(where(), fmt::format("expected an array [from, to, held, taken, stack] or [from, to, held, taken, "
                                      "stack, context], found {}",
                                      row.is_array() ? fmt::format("an array of {}", row.size()) : row.type_name()));
        const std::uint32_t from = element(row, i, 0, out.classes.size(), "a class index");
        const std::uint32_t to = element(row, i, 1, out.classes.size(), "a class index");
        if (from == to)
            fail(where(), "an edge from a class to itself");
        graph_dump::dependency d;
        d.shared_held = element(row, i, 2, 2, "a held kind (0 write, 1 read)") == 1;
        d.taken = static_cast<lock_kind>(element(row, i, 3, 3, "a taken kind (0 write, 1 read, 2 recursive read)"));
        d.stack = element(row, i, 4, out.stacks.size(), "a stack index");
        if (row.size() == 6) {
            if (!row[5].is_string())
                fail(where() + "/5", fmt::format("expected a context string, found {}", row[5].type_name()));
            d.context = escape(row[5].get<std::string>());
        }
        if (out.edges.empty() || out.edges.back().from != from || out.edges.back().to != to)
            out.edges.push_back({from, to, {}});
        out.edges.back().dependencies.push_back(std::move(d));
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
