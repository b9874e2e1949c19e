// SPDX-License-Identifier: MIT
// The dependency graph against a naive reference: named cases and a randomized differential test.
#include <doctest/doctest.h>

#include <algorithm>
#include <cstdint>
#include <deque>
#include <random>
#include <utility>
#include <vector>

#include "engine/graph.h"

using fencedep::detail::graph;

namespace {

// The reference: a plain edge list, with breadth-first distances computed from scratch.
struct reference {
    std::uint32_t classes;
    std::vector<std::pair<std::uint32_t, std::uint32_t>> edges;

    bool has_edge(std::uint32_t from, std::uint32_t to) const {
        return std::find(edges.begin(), edges.end(), std::pair{from, to}) != edges.end();
    }
    // Number of edges on a shortest path, or -1.
    int distance(std::uint32_t from, std::uint32_t to) const {
        std::vector<int> dist(classes + 1, -1);
        std::deque<std::uint32_t> queue{from};
        dist[from] = 0;
        while (!queue.empty()) {
            const auto node = queue.front();
            queue.pop_front();
            for (const auto& [a, b] : edges)
                if (a == node && dist[b] < 0) {
                    dist[b] = dist[node] + 1;
                    queue.push_back(b);
                }
        }
        return dist[to];
    }
};

std::vector<std::uint32_t> path_classes(const graph& g, const std::vector<std::uint32_t>& path) {
    std::vector<std::uint32_t> classes;
    for (auto e : path) {
        if (classes.empty())
            classes.push_back(g.at(e).from);
        classes.push_back(g.at(e).to);
    }
    return classes;
}

}  // namespace

TEST_CASE("graph: shortest path is found and is the shortest") {
    graph g;
    REQUIRE(g.init(16, 64));
    // 1 -> 2 -> 3 -> 4 -> 5 and a shortcut 2 -> 5.
    for (auto [a, b] : std::vector<std::pair<std::uint32_t, std::uint32_t>>{{1, 2}, {2, 3}, {3, 4}, {4, 5}, {2, 5}})
        REQUIRE(g.add_edge(a, b, 0) != graph::none);
    std::vector<std::uint32_t> path;
    REQUIRE(g.find_path(1, 5, path));
    CHECK(path_classes(g, path) == std::vector<std::uint32_t>{1, 2, 5});
    CHECK_FALSE(g.find_path(5, 1, path));
    CHECK(path.empty());
    CHECK(g.find_edge(2, 5) != graph::none);
    CHECK(g.find_edge(5, 2) == graph::none);
}

TEST_CASE("graph: a full edge table refuses the edge and keeps the rest") {
    graph g;
    REQUIRE(g.init(8, 2));
    CHECK(g.add_edge(1, 2, 0) != graph::none);
    CHECK(g.add_edge(2, 3, 0) != graph::none);
    CHECK(g.add_edge(3, 4, 0) == graph::none);
    CHECK(g.edge_count() == 2);
    std::vector<std::uint32_t> path;
    CHECK(g.find_path(1, 3, path));
    g.clear();
    CHECK(g.edge_count() == 0);
    CHECK_FALSE(g.find_path(1, 3, path));
    CHECK(g.add_edge(3, 4, 7) != graph::none);
    CHECK(g.at(g.find_edge(3, 4)).payload == 7);
}

TEST_CASE("graph: randomized differential test against the naive reference") {
    for (std::uint32_t seed = 1; seed <= 200; ++seed) {
        CAPTURE(seed);
        std::mt19937 rng(seed);
        const std::uint32_t classes = 4 + rng() % 40;
        graph g;
        REQUIRE(g.init(classes, 4096));
        reference ref{classes, {}};
        std::vector<std::uint32_t> path;
        for (int step = 0; step < 300; ++step) {
            const std::uint32_t a = 1 + rng() % classes;
            const std::uint32_t b = 1 + rng() % classes;
            if (a == b)
                continue;
            // What the engine does before adding a -> b: look for b ->...-> a.
            const bool cycle = g.find_path(b, a, path);
            const int expected = ref.distance(b, a);
            REQUIRE(cycle == (expected > 0));
            if (cycle) {
                const auto walk = path_classes(g, path);
                REQUIRE(static_cast<int>(path.size()) == expected);
                REQUIRE(walk.front() == b);
                REQUIRE(walk.back() == a);
                for (auto e : path)
                    REQUIRE(ref.has_edge(g.at(e).from, g.at(e).to));
                continue;  // the closing edge is refused, so the graph stays acyclic
            }
            REQUIRE((g.find_edge(a, b) != graph::none) == ref.has_edge(a, b));
            if (!ref.has_edge(a, b)) {
                REQUIRE(g.add_edge(a, b, step) != graph::none);
                ref.edges.emplace_back(a, b);
            }
        }
        CHECK(g.edge_count() == ref.edges.size());
        // Reachability agrees for every pair at the end.
        for (std::uint32_t a = 1; a <= classes; ++a)
            for (std::uint32_t b = 1; b <= classes; ++b)
                if (a != b)
                    REQUIRE(g.find_path(a, b, path) == (ref.distance(a, b) > 0));
    }
}
