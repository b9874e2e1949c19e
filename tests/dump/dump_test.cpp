// SPDX-License-Identifier: MIT
// Graph dumps: what dump_graph() writes, what the reader accepts and how it refuses the rest,
// and what fencedep-graph's merge finds in the union of several dumps.
#include <doctest/doctest.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "../engine/capture.h"
#include "merged.h"
#include "output.h"
#include "report/graph_dump.h"

using fencedep::detail::dump_error;
using fencedep::detail::graph_dump;
using fencedep::detail::parse_dump;
using fencedep::graph_tool::merged_graph;

namespace {

std::string temp_path(const std::string& name) {
    return (std::filesystem::temp_directory_path() / (name + "." + std::to_string(getpid()) + ".json")).string();
}

// The message parse_dump throws for `text`, or "" if it accepts it.
std::string refusal(const std::string& text) {
    try {
        parse_dump(text, "dump.json");
        return {};
    } catch (const dump_error& e) {
        return e.what();
    }
}

[[gnu::noinline]] void take_in_order(fencedep::mutex& first, fencedep::mutex& second) {
    std::lock_guard a(first);
    std::lock_guard b(second);
}

// A dump by hand: classes by name (site "t.cpp:N"), edges as (from, to, held, taken).
graph_dump make(const std::string& program, std::int64_t pid, std::vector<std::string> names,
                std::vector<std::tuple<std::uint32_t, std::uint32_t, bool, fencedep::lock_kind>> edges) {
    graph_dump d;
    d.program = program;
    d.pid = pid;
    d.time = "2026-12-03T00:00:00Z";
    for (const std::string& n : names)
        d.classes.push_back({n, "", "t.cpp:" + n});
    fencedep::frame site;
    site.address = 0x10;
    site.function = program + "_site";
    site.file = "t.cpp";
    site.line = 7;
    d.stacks.push_back({site});
    for (const auto& [from, to, shared, taken] : edges)
        d.edges.push_back({from, to, {{shared, taken, 0, ""}}});
    return d;
}

merged_graph merge(std::vector<graph_dump> dumps) {
    merged_graph g;
    for (std::size_t i = 0; i < dumps.size(); ++i)
        g.add(std::move(dumps[i]), "dump" + std::to_string(i) + ".json");
    return g;
}

const std::string valid = R"({"format":"fencedep-graph/1","program":"p","pid":1,"time":"t","chains":0,
  "classes":[{"name":"a"},{"name":"b"}],"stacks":[[{"function":"f","line":3}]],
  "edges":[[0,1,0,0,0]]})";

}  // namespace

TEST_SUITE("graph-tool") {

TEST_CASE("dump_graph writes the classes, edges, stacks and run of the graph learned so far") {
    engine_test::capture reports;
    fencedep::mutex outer{"dump_outer"};
    fencedep::mutex inner{"dump_inner"};
    take_in_order(outer, inner);
    const std::string path = temp_path("dump_graph");
    std::string error;
    REQUIRE_MESSAGE(fencedep::dump_graph(path.c_str(), &error), error);
    const graph_dump d = fencedep::detail::read_dump(path);
    std::filesystem::remove(path);
    CHECK(d.pid == getpid());
    CHECK(d.program == program_invocation_short_name);
    CHECK(d.time.size() == 20);
    std::uint32_t outer_id = UINT32_MAX, inner_id = UINT32_MAX;
    for (std::uint32_t i = 0; i < d.classes.size(); ++i) {
        if (d.classes[i].name == "dump_outer")
            outer_id = i;
        if (d.classes[i].name == "dump_inner")
            inner_id = i;
    }
    REQUIRE(outer_id != UINT32_MAX);
    REQUIRE(inner_id != UINT32_MAX);
    CHECK(d.classes[outer_id].site.starts_with("dump_test.cpp:"));
    const auto edge = std::ranges::find_if(d.edges, [&](const graph_dump::edge& e) {
        return e.from == outer_id && e.to == inner_id;
    });
    REQUIRE(edge != d.edges.end());
    REQUIRE(edge->dependencies.size() == 1);
    CHECK_FALSE(edge->dependencies[0].shared_held);
    CHECK(edge->dependencies[0].taken == fencedep::lock_kind::write);
    const auto& stack = d.stacks[edge->dependencies[0].stack];
    REQUIRE_FALSE(stack.empty());
    CHECK(stack.front().function.find("take_in_order") != std::string::npos);
    // The fence layer's primed classes are keyed: their key's symbol is there.
    const auto signalling = std::ranges::find_if(d.classes, [](const auto& c) { return c.name == "fence_signalling"; });
    REQUIRE(signalling != d.classes.end());
    CHECK(signalling->key.find("signalling_key") != std::string::npos);
    CHECK(reports.count() == 0);
}

TEST_CASE("dump_graph to a path it cannot write returns false with the path and the reason") {
    engine_test::capture reports;
    std::string error;
    CHECK_FALSE(fencedep::dump_graph("/nonexistent-dir/graph.json", &error));
    CHECK(error ==
          "fencedep: error: cannot write graph dump '/nonexistent-dir/graph.json': cannot create it: No such file or "
          "directory");
    CHECK_FALSE(fencedep::dump_graph("", &error));
    CHECK(error == "fencedep: error: dump_graph: expected a non-empty file path");
}

TEST_CASE("a dump reads back as it was written") {
    graph_dump d = make("prog", 42, {"a", "b", "c"}, {{0, 1, false, fencedep::lock_kind::write},
                                                      {1, 2, true, fencedep::lock_kind::recursive_read}});
    d.edges[1].dependencies[0].context = "enabling signaling on fence_array ctx 1 seqno 1";
    d.chains = 5;
    const graph_dump back = parse_dump(fencedep::detail::dump_json(d), "x");
    CHECK(back.program == "prog");
    CHECK(back.pid == 42);
    CHECK(back.chains == 5);
    REQUIRE(back.classes.size() == 3);
    CHECK(back.classes[2].site == "t.cpp:c");
    REQUIRE(back.edges.size() == 2);
    CHECK(back.edges[1].dependencies[0].shared_held);
    CHECK(back.edges[1].dependencies[0].taken == fencedep::lock_kind::recursive_read);
    CHECK(back.edges[1].dependencies[0].context == "enabling signaling on fence_array ctx 1 seqno 1");
    REQUIRE(back.stacks.size() == 1);
    CHECK(back.stacks[0][0].function == "prog_site");
}

TEST_CASE("bad dumps are refused with the file, the position and what is accepted") {
    CHECK(refusal(valid).empty());
    CHECK(refusal(valid.substr(0, 40)).starts_with("dump.json: at byte 41: not valid JSON: "));
    CHECK(refusal("") .starts_with("dump.json: at byte 1: not valid JSON: "));
    // Found by fuzz_test.cpp: nlohmann throws out_of_range, not parse_error, for this one.
    CHECK(refusal(R"({"pid":1e400})") ==
          "dump.json: at a number out of range: [json.exception.out_of_range.406] number overflow parsing '1e400'");
    CHECK(refusal("[]") == "dump.json: at /: expected an object, found array");
    CHECK(refusal(R"({"format":"fencedep-graph/2"})") ==
          R"(dump.json: at /format: not a fencedep graph dump: expected "fencedep-graph/1", found "fencedep-graph/2")");
    const auto with = [](const std::string& from, const std::string& to) {
        std::string text = valid;
        text.replace(text.find(from), from.size(), to);
        return refusal(text);
    };
    CHECK(with(R"("pid":1)", R"("pid":-1)") == "dump.json: at /pid: expected a process id from 0 to 4611686018427387903, found -1");
    CHECK(with("[0,1,0,0,0]", "[0,2,0,0,0]") == "dump.json: at /edges/0/1: expected a class index from 0 to 1, found 2");
    CHECK(with("[0,1,0,0,0]", "[0,0,0,0,0]") == "dump.json: at /edges/0: an edge from a class to itself");
    CHECK(with("[0,1,0,0,0]", "[0,1,0,0,1]") == "dump.json: at /edges/0/4: expected a stack index from 0 to 0, found 1");
    CHECK(with("[0,1,0,0,0]", "[0,1,0,3,0]") ==
          "dump.json: at /edges/0/3: expected a taken kind (0 write, 1 read, 2 recursive read) from 0 to 2, found 3");
    CHECK(with("[0,1,0,0,0]", "[0,1,2,0,0]") ==
          "dump.json: at /edges/0/2: expected a held kind (0 write, 1 read) from 0 to 1, found 2");
    CHECK(with("[0,1,0,0,0]", "[0,1,0,0,0,7]") == "dump.json: at /edges/0/5: expected a context string, found number");
    CHECK(with("[0,1,0,0,0]", "[0,1,0,0]") ==
          "dump.json: at /edges/0: expected an array [from, to, held, taken, stack] or [from, to, held, taken, stack, "
          "context], found an array of 4");
    CHECK(with(R"({"name":"a"})", R"({"name":7})") == "dump.json: at /classes/0/name: expected a string, found number");
    CHECK(with(R"("line":3)", R"("line":"3")").starts_with("dump.json: at /stacks/0: "));
    // Found by clang's UBSan under the fuzz test: a frame's integer fields took any number, and
    // nlohmann casts a float out of range into them, which is undefined behaviour.
    CHECK(with(R"("line":3)", R"("line":4.11845e+22)") ==
          "dump.json: at /stacks/0: [json.exception.type_error.302] \"line\" must be an integer from 0 to 4294967295, "
          "not 4.11845e+22");
    CHECK(with(R"("line":3)", R"("line":-1)").ends_with("\"line\" must be an integer from 0 to 4294967295, not -1"));
    CHECK(with(R"("line":3)", R"("line":2.5)").ends_with("\"line\" must be an integer from 0 to 4294967295, not 2.5"));
    CHECK(with(R"("program":"p",)", "") == R"(dump.json: at /: missing field "program")");
}

// The reader reads a stream of parse events, not a document: the error it reports must still be
// the one reading the whole document first would, in any order of the fields (the writer sorts
// them: "classes", "edges", "format", ..., "stacks").
TEST_CASE("of several faults in a dump, the reader reports the first in the order of the fields") {
    const auto with = [](std::vector<std::pair<std::string, std::string>> changes) {
        std::string text = valid;
        for (const auto& [from, to] : changes)
            text.replace(text.find(from), from.size(), to);
        return refusal(text);
    };
    // A syntax error anywhere comes first.
    CHECK(with({{R"({"name":"a"})", R"({"name":7})"}, {"]]}", "]]"}})
              .starts_with("dump.json: at byte 176: not valid JSON: "));
    // The format before the classes, even when they come first in the file.
    CHECK(refusal(R"({"classes":[{"name":7}],"format":"fencedep-graph/2"})") ==
          R"(dump.json: at /format: not a fencedep graph dump: expected "fencedep-graph/1", found "fencedep-graph/2")");
    // An edge's stack index is checked against the stacks that follow the edges.
    CHECK(refusal(R"({"chains":0,"classes":[{"name":"a"},{"name":"b"}],"edges":[[0,1,0,0,1]],)"
                  R"("format":"fencedep-graph/1","pid":1,"program":"p","stacks":[[],[]],"time":"t"})")
              .empty());
    // The first faulty edge row, and in it the first faulty element, whatever the others hold.
    CHECK(with({{"[[0,1,0,0,0]]", R"([[0,5,0,0,0],[0,"x",0,0,0]])"}}) ==
          "dump.json: at /edges/0/1: expected a class index from 0 to 1, found 5");
    CHECK(with({{"[[0,1,0,0,0]]", R"([[0,1,0,0,0],[9,{"a":[1]},0,0,0]])"}}) ==
          "dump.json: at /edges/1/0: expected a class index from 0 to 1, found 9");
    CHECK(with({{"[[0,1,0,0,0]]", R"([[0,1,0,0,0],[1,{"a":[1]},0,0,0]])"}}) ==
          R"(dump.json: at /edges/1/1: expected a class index from 0 to 1, found {"a":[1]})");
    CHECK(with({{"[[0,1,0,0,0]]", R"([[0,1,0,0,0],[1,0,0,0,0,[]],7])"}}) ==
          "dump.json: at /edges/1/5: expected a context string, found array");
    // The classes before the stacks and the edges; in a class, "name" before "key" and "site".
    CHECK(with({{R"({"name":"b"})", R"({"site":1,"key":[],"name":"b"})"}, {"[[0,1,0,0,0]]", "[7]"}}) ==
          "dump.json: at /classes/1/key: expected a string, found array");
    CHECK(with({{R"({"name":"b"})", R"({"site":1})"}}) == R"(dump.json: at /classes/1: missing field "name")");
    // A later field of the same name replaces an earlier one, as in a parsed document.
    CHECK(with({{R"({"name":"b"})", R"({"name":7,"name":"b"})"}}).empty());
    CHECK(with({{R"("edges":[[0,1,0,0,0]])", R"("edges":[[0,0,0,0,0]],"edges":[[1,0,0,0,0]])"}}).empty());
}

TEST_CASE("read_dump names a file it cannot open") {
    CHECK_THROWS_WITH_AS(fencedep::detail::read_dump("/nonexistent-dir/x.json"),
                         "/nonexistent-dir/x.json: cannot open: No such file or directory", dump_error);
}

TEST_CASE("merge joins classes by identity and finds a cycle no single dump holds") {
    using enum fencedep::lock_kind;
    // Dump 0: a -> b. Dump 1: b -> c, and its own class "a" of another site (not joined).
    graph_dump first = make("one", 1, {"a", "b"}, {{0, 1, false, write}});
    graph_dump second = make("two", 2, {"b", "c", "a"}, {{0, 1, false, write}, {1, 2, false, write}});
    second.classes[2].site = "other.cpp:1";
    graph_dump third = make("three", 3, {"c", "a"}, {{0, 1, false, write}});
    const merged_graph g = merge({std::move(first), std::move(second), std::move(third)});
    CHECK(g.classes().size() == 4);
    CHECK(g.edges().size() == 4);
    const auto cycles = fencedep::graph_tool::find_cycles(g);
    REQUIRE(cycles.size() == 1);
    REQUIRE(cycles[0].size() == 3);
    const std::string text = fencedep::graph_tool::splat(g, cycles[0], 1, 1);
    CHECK(text.find("-> #2 (c){write}:\n      three_site") == std::string::npos);
    CHECK(text.find("-> #2 (c){write}:\n      two_site+0x0 t.cpp:7\n      recorded by run two[2] (dump dump1.json)") !=
          std::string::npos);
    CHECK(text.find("-> #1 (b){write}:\n      one_site+0x0 t.cpp:7\n      recorded by run one[1] (dump dump0.json)") !=
          std::string::npos);
    CHECK(text.find("-> #0 (a){write}:\n      three_site+0x0 t.cpp:7\n      recorded by run three[3] (dump dump2.json)") !=
          std::string::npos);
    CHECK(text.find("Chain exists of:\n  a --> b --> c\n") != std::string::npos);
    CHECK(text.find("fencedep-graph merge: cycle 1 of 1, 3 classes, recorded by 3 runs\n") != std::string::npos);
}

TEST_CASE("merge keeps the engine's reader rules: recursive readers in both orders are no cycle") {
    using enum fencedep::lock_kind;
    // a held for read, b taken as a recursive reader, and the other way round: no deadlock.
    const merged_graph readers = merge({make("r", 1, {"a", "b"}, {{0, 1, true, recursive_read}}),
                                        make("r", 2, {"b", "a"}, {{0, 1, true, recursive_read}})});
    CHECK(fencedep::graph_tool::find_cycles(readers).empty());
    // With a writer on one side it is one.
    const merged_graph writer = merge({make("w", 1, {"a", "b"}, {{0, 1, true, recursive_read}}),
                                       make("w", 2, {"b", "a"}, {{0, 1, false, write}})});
    CHECK(fencedep::graph_tool::find_cycles(writer).size() == 1);
}

TEST_CASE("merge reports each cycle once, shortest first") {
    using enum fencedep::lock_kind;
    // a <-> b, and a -> c -> d -> a.
    const merged_graph g = merge({make("m", 1, {"a", "b", "c", "d"},
                                       {{0, 1, false, write}, {1, 0, false, write}, {0, 2, false, write},
                                        {2, 3, false, write}, {3, 0, false, write}})});
    const auto cycles = fencedep::graph_tool::find_cycles(g);
    REQUIRE(cycles.size() == 2);
    CHECK(cycles[0].size() == 2);
    CHECK(cycles[1].size() == 3);
}

TEST_CASE("dot draws the graph with cycle edges highlighted, or one cycle") {
    using enum fencedep::lock_kind;
    const merged_graph g = merge({make("d", 1, {"a", "b", "c"},
                                       {{0, 1, false, write}, {1, 0, false, write}, {1, 2, true, write}})});
    const auto cycles = fencedep::graph_tool::find_cycles(g);
    CHECK(fencedep::graph_tool::dot(g, cycles, nullptr) ==
          "digraph fencedep {\n  node [shape=box, fontname=\"monospace\"];\n"
          "  n0 [label=\"a\\nt.cpp:a\"];\n  n1 [label=\"b\\nt.cpp:b\"];\n  n2 [label=\"c\\nt.cpp:c\"];\n"
          "  n0 -> n1 [label=\"EN\", color=red, penwidth=2];\n"
          "  n1 -> n0 [label=\"EN\", color=red, penwidth=2];\n"
          "  n1 -> n2 [label=\"SN\"];\n}\n");
    CHECK(fencedep::graph_tool::dot(g, cycles, &cycles[0]).find("n2") == std::string::npos);
}

TEST_CASE("stats counts classes, edges, chains and the longest path") {
    using enum fencedep::lock_kind;
    graph_dump d = make("s", 1, {"a", "b", "c", "d"}, {{0, 1, false, write}, {1, 2, false, write}, {0, 3, false, write}});
    d.chains = 7;
    const std::string text = fencedep::graph_tool::stats(merge({std::move(d)}));
    CHECK(text.find(" lock-classes:                            4\n") != std::string::npos);
    CHECK(text.find(" direct dependencies:                     3\n") != std::string::npos);
    CHECK(text.find(" lock-chains (sum of runs):               7\n") != std::string::npos);
    CHECK(text.find(" longest path: a -> b -> c\n") != std::string::npos);
}

}  // TEST_SUITE
