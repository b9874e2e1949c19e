// SPDX-License-Identifier: MIT
// The dependency graph against a naive reference: named cases and a randomized differential test
// of the strong-path search (lockdep.md §1.7).
#include <doctest/doctest.h>

#include <algorithm>
#include <array>
#include <bit>
#include <cstdint>
#include <random>
#include <utility>
#include <vector>

#include "engine/graph.h"

using fencedep::detail::graph;

namespace {

constexpr std::uint8_t en = graph::dep_en;
constexpr std::uint8_t er = graph::dep_er;
constexpr std::uint8_t sn = graph::dep_sn;
constexpr std::uint8_t sr = graph::dep_sr;

// Whether a step of kind `dep` may follow an arrival of kind `arrived` (a single dep bit, or 0
// for the start): after an arrival as a recursive reader (?R), only an exclusive departure (E?).
bool may_follow(std::uint8_t arrived, std::uint8_t dep) {
    return !(arrived & (er | sr)) || (dep & (en | er));
}

// The reference: a plain edge list, and shortest strong-path lengths by relaxing every edge until
// nothing changes (Bellman-Ford over (class, last kind) pairs), written without the graph's
// queue or its state encoding.
struct reference {
    struct edge {
        std::uint32_t from, to;
        std::uint8_t deps;
    };
    std::uint32_t classes;
    std::vector<edge> edges;

    edge* find(std::uint32_t from, std::uint32_t to) {
        for (auto& e : edges)
            if (e.from == from && e.to == to)
                return &e;
        return nullptr;
    }
    // Number of edges on a shortest strong path from `from` to `to`, or -1. `start` is the kind
    // `from` is taken as (er for a recursive reader, else 0); `to_any` as in graph::find_path.
    int distance(std::uint32_t from, std::uint32_t to, std::uint8_t start, bool to_any) const {
        constexpr int inf = 1 << 29;
        // dist[c][k]: shortest strong path to c whose last step has kind bit k (0..3).
        std::vector<std::array<int, 4>> dist(classes + 1, {inf, inf, inf, inf});
        for (bool changed = true; changed;) {
            changed = false;
            for (const auto& e : edges)
                for (unsigned k = 0; k < 4; ++k) {
                    const std::uint8_t dep = 1u << k;
                    if (!(e.deps & dep))
                        continue;
                    int best = inf;
                    if (e.from == from && may_follow(start, dep))
                        best = 1;
                    for (unsigned j = 0; j < 4; ++j)
                        if (dist[e.from][j] < inf && may_follow(1u << j, dep))
                            best = std::min(best, dist[e.from][j] + 1);
                    if (best < dist[e.to][k]) {
                        dist[e.to][k] = best;
                        changed = true;
                    }
                }
        }
        int best = inf;
        for (unsigned k = 0; k < 4; ++k)
            if (to_any || ((1u << k) & (en | sn)))
                best = std::min(best, dist[to][k]);
        return best == inf ? -1 : best;
    }
};

std::vector<std::uint32_t> path_classes(const graph& g, const std::vector<graph::step>& path) {
    std::vector<std::uint32_t> classes;
    for (auto s : path) {
        if (classes.empty())
            classes.push_back(g.at(s.edge).from);
        classes.push_back(g.at(s.edge).to);
    }
    return classes;
}

}  // namespace

TEST_CASE("graph: shortest path is found and is the shortest") {
    graph g;
    REQUIRE(g.init(16, 64));
    // 1 -> 2 -> 3 -> 4 -> 5 and a shortcut 2 -> 5.
    for (auto [a, b] : std::vector<std::pair<std::uint32_t, std::uint32_t>>{{1, 2}, {2, 3}, {3, 4}, {4, 5}, {2, 5}})
        REQUIRE(g.add_edge(a, b, 0, en) != graph::none);
    std::vector<graph::step> path;
    REQUIRE(g.find_path(1, 5, false, true, path));
    CHECK(path_classes(g, path) == std::vector<std::uint32_t>{1, 2, 5});
    CHECK_FALSE(g.find_path(5, 1, false, true, path));
    CHECK(path.empty());
    CHECK(g.find_edge(2, 5) != graph::none);
    CHECK(g.find_edge(5, 2) == graph::none);
}

TEST_CASE("graph: a full edge table refuses the edge and keeps the rest") {
    graph g;
    REQUIRE(g.init(8, 2));
    CHECK(g.add_edge(1, 2, 0, en) != graph::none);
    CHECK(g.add_edge(2, 3, 0, en) != graph::none);
    CHECK(g.add_edge(3, 4, 0, en) == graph::none);
    CHECK(g.edge_count() == 2);
    std::vector<graph::step> path;
    CHECK(g.find_path(1, 3, false, true, path));
    g.clear();
    CHECK(g.edge_count() == 0);
    CHECK_FALSE(g.find_path(1, 3, false, true, path));
    CHECK(g.add_edge(3, 4, 7, en) != graph::none);
    CHECK(g.at(g.find_edge(3, 4)).payload == 7);
}

TEST_CASE("graph: a recursive reader's arrival cannot leave shared") {
    graph g;
    REQUIRE(g.init(8, 16));
    std::vector<graph::step> path;
    // 1 -(ER)-> 2 -(SN)-> 3: 2 was entered as a recursive reader, left while held shared.
    REQUIRE(g.add_edge(1, 2, 0, er) != graph::none);
    REQUIRE(g.add_edge(2, 3, 0, sn) != graph::none);
    CHECK_FALSE(g.find_path(1, 3, false, true, path));
    // A second kind on 1 -> 2 (a writer taken under 1) makes the path strong.
    g.add_deps(g.find_edge(1, 2), en);
    REQUIRE(g.find_path(1, 3, false, true, path));
    REQUIRE(path.size() == 2);
    CHECK(path[0].dep == en);
    CHECK(path[1].dep == sn);
    // Starting as a recursive reader at 2 forbids leaving it shared; arriving at 3 recursively
    // counts only when to_any says so.
    CHECK_FALSE(g.find_path(2, 3, true, true, path));
    REQUIRE(g.add_edge(3, 4, 0, sr) != graph::none);
    CHECK_FALSE(g.find_path(3, 4, false, false, path));
    CHECK(g.find_path(3, 4, false, true, path));
}

TEST_CASE("graph: randomized differential test of strong paths against the naive reference") {
    for (std::uint32_t seed = 1; seed <= 200; ++seed) {
        CAPTURE(seed);
        std::mt19937 rng(seed);
        const std::uint32_t classes = 4 + rng() % 30;
        graph g;
        REQUIRE(g.init(classes, 4096));
        reference ref{classes, {}};
        std::vector<graph::step> path;
        for (int step = 0; step < 300; ++step) {
            const std::uint32_t a = 1 + rng() % classes;
            const std::uint32_t b = 1 + rng() % classes;
            if (a == b)
                continue;
            // What the engine does before adding a dependency a -> b of kind `dep`: look for a
            // strong path b ->...-> a that closes a cycle with it.
            const auto dep = static_cast<std::uint8_t>(1u << (rng() % 4));
            const bool b_recursive = dep & (er | sr);
            const bool a_exclusive = dep & (en | er);
            const bool cycle = g.find_path(b, a, b_recursive, a_exclusive, path);
            const int expected = ref.distance(b, a, b_recursive ? er : 0, a_exclusive);
            REQUIRE(cycle == (expected > 0));
            if (cycle) {
                const auto walk = path_classes(g, path);
                REQUIRE(static_cast<int>(path.size()) == expected);
                REQUIRE(walk.front() == b);
                REQUIRE(walk.back() == a);
                std::uint8_t arrived = b_recursive ? er : 0;
                for (auto s : path) {
                    reference::edge* e = ref.find(g.at(s.edge).from, g.at(s.edge).to);
                    REQUIRE(e);
                    REQUIRE(std::popcount(s.dep) == 1);
                    REQUIRE((e->deps & s.dep));
                    REQUIRE(may_follow(arrived, s.dep));
                    arrived = s.dep;
                }
                REQUIRE((a_exclusive || (arrived & (en | sn))));
                continue;  // the closing dependency is refused: no strong cycle in the graph
            }
            reference::edge* e = ref.find(a, b);
            const std::uint32_t index = g.find_edge(a, b);
            REQUIRE((index != graph::none) == (e != nullptr));
            if (e) {
                REQUIRE(g.at(index).deps == e->deps);
                g.add_deps(index, dep);
                e->deps |= dep;
            } else {
                REQUIRE(g.add_edge(a, b, step, dep) != graph::none);
                ref.edges.push_back({a, b, dep});
            }
        }
        CHECK(g.edge_count() == ref.edges.size());
        // Strong reachability agrees for every pair and start at the end.
        for (std::uint32_t a = 1; a <= classes; ++a)
            for (std::uint32_t b = 1; b <= classes; ++b)
                if (a != b)
                    for (bool recursive : {false, true})
                        REQUIRE(g.find_path(a, b, recursive, false, path) ==
                                (ref.distance(a, b, recursive ? er : 0, false) > 0));
    }
}
