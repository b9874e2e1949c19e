// SPDX-License-Identifier: MIT
// fencedep-graph: merges graph dumps from many runs and test binaries, and finds the cycles that
// no single run saw; draws the graph (DOT, SVG) and counts it. README, "Graph dumps".
#include <cstdio>
#include <exception>
#include <string>
#include <string_view>
#include <vector>

#include <fmt/format.h>

#include "merged.h"
#include "output.h"

namespace {

using namespace fencedep::graph_tool;

constexpr int found_cycle = 66;
constexpr int bad_input = 2;

const char* const usage =
    "usage: fencedep-graph merge DUMP...              print every cycle of the merged graphs as a splat\n"
    "                                                 (exit 66 if there is one, 0 if not)\n"
    "       fencedep-graph dot DUMP... [--cycle N] [--svg]\n"
    "                                                 Graphviz DOT of the graph or of cycle N (as merge\n"
    "                                                 numbers them); --svg renders it with Graphviz's dot\n"
    "       fencedep-graph stats DUMP...              classes, edges, chains, cycles, the longest path\n"
    "Exit status 2 on bad input, with one line naming the file and the position.\n";

int usage_error(const std::string& what) {
    std::fputs(fmt::format("fencedep-graph: {}\n{}", what, usage).c_str(), stderr);
    return bad_input;
}

struct arguments {
    std::vector<std::string> dumps;
    std::size_t cycle = 0;  // 1-based; 0: none
    bool svg = false;
};

// Parses the arguments after the subcommand; returns an error line, or empty.
std::string parse(int argc, char** argv, bool dot_options, arguments& args) {
    for (int i = 2; i < argc; ++i) {
        const std::string_view arg = argv[i];
        if (dot_options && arg == "--svg") {
            args.svg = true;
        } else if (dot_options && arg == "--cycle") {
            if (i + 1 == argc)
                return "--cycle needs a cycle number (1 for the first cycle merge prints)";
            const std::string_view value = argv[++i];
            std::size_t number = 0;
            for (const char c : value) {
                if (c < '0' || c > '9' || number > 100'000'000)
                    return fmt::format("--cycle '{}': expected a cycle number from 1", value);
                number = number * 10 + static_cast<std::size_t>(c - '0');
            }
            if (number == 0)
                return fmt::format("--cycle '{}': expected a cycle number from 1", value);
            args.cycle = number;
        } else if (arg.starts_with("--")) {
            return fmt::format("unknown option '{}'", arg);
        } else {
            args.dumps.emplace_back(arg);
        }
    }
    if (args.dumps.empty())
        return "expected at least one dump file";
    return {};
}

int merge(const merged_graph& g) {
    const std::vector<cycle> cycles = find_cycles(g);
    for (std::size_t i = 0; i < cycles.size(); ++i)
        std::fputs(splat(g, cycles[i], i + 1, cycles.size()).c_str(), stdout);
    const auto counted = [](std::size_t n, std::string_view one, std::string_view many) {
        return fmt::format("{} {}", n, n == 1 ? one : many);
    };
    std::fputs(fmt::format("\nfencedep-graph: {} in {} ({}, {})\n", counted(cycles.size(), "cycle", "cycles"),
                           counted(g.runs().size(), "dump", "dumps"), counted(g.classes().size(), "class", "classes"),
                           counted(g.edges().size(), "edge", "edges"))
                   .c_str(),
               stdout);
    return cycles.empty() ? 0 : found_cycle;
}

int draw(const merged_graph& g, const arguments& args) {
    const std::vector<cycle> cycles = find_cycles(g);
    if (args.cycle > cycles.size()) {
        std::fputs(fmt::format("fencedep-graph: --cycle {}: the merged graph has {} cycle{}\n", args.cycle,
                               cycles.size(), cycles.size() == 1 ? "" : "s")
                       .c_str(),
                   stderr);
        return bad_input;
    }
    const std::string text = args.cycle ? dot(g, cycles, &cycles[args.cycle - 1]) : dot(g, cycles, nullptr);
    if (!args.svg) {
        std::fputs(text.c_str(), stdout);
        return 0;
    }
    return render_svg(text) ? 0 : bad_input;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 2)
        return usage_error("expected a subcommand: merge, dot or stats");
    const std::string_view command = argv[1];
    if (command == "--help" || command == "-h") {
        std::fputs(usage, stdout);
        return 0;
    }
    if (command != "merge" && command != "dot" && command != "stats")
        return usage_error(fmt::format("unknown subcommand '{}'; expected merge, dot or stats", command));
    arguments args;
    if (const std::string error = parse(argc, argv, command == "dot", args); !error.empty())
        return usage_error(error);
    try {
        const merged_graph g = merge_dumps(args.dumps);
        if (command == "merge")
            return merge(g);
        if (command == "dot")
            return draw(g, args);
        std::fputs(stats(g).c_str(), stdout);
        return 0;
    } catch (const fencedep::detail::dump_error& e) {
        std::fputs(fmt::format("fencedep-graph: error: {}\n", e.what()).c_str(), stderr);
        return bad_input;
    } catch (const std::bad_alloc&) {
        std::fputs("fencedep-graph: error: out of memory\n", stderr);
        return bad_input;
    }
}
