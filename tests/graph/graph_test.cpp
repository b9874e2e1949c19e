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
    // Whether any path from -> to exists, strong or not (from != to).
    bool plain_path(std::uint32_t from, std::uint32_t to) const {
        std::vector<bool> seen(classes + 1);
        std::vector<std::uint32_t> todo{from};
        while (!todo.empty()) {
            const std::uint32_t c = todo.back();
            todo.pop_back();
            for (const auto& e : edges)
                if (e.from == c && !seen[e.to]) {
                    seen[e.to] = true;
                    todo.push_back(e.to);
                }
        }
        return seen[to];
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
    g.init(16, 64);
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
    g.init(8, 2);
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
    g.init(8, 16);
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
        g.init(classes, 4096);
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
            // The order skips the search exactly when no plain path b -> a exists and a and b
            // are not joined by a plain cycle already.
            REQUIRE(g.may_close_cycle(a, b) == (ref.plain_path(b, a) || g.same_component(a, b)));
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
        // The components are exactly the classes joined by plain cycles.
        for (std::uint32_t a = 1; a <= classes; ++a)
            for (std::uint32_t b = a + 1; b <= classes; ++b)
                REQUIRE(g.same_component(a, b) == (ref.plain_path(a, b) && ref.plain_path(b, a)));
        // Strong reachability agrees for every pair and start at the end.
        for (std::uint32_t a = 1; a <= classes; ++a)
            for (std::uint32_t b = 1; b <= classes; ++b)
                if (a != b)
                    for (bool recursive : {false, true})
                        REQUIRE(g.find_path(a, b, recursive, false, path) ==
                                (ref.distance(a, b, recursive ? er : 0, false) > 0));
    }
}

TEST_CASE("graph: an edge with the order needs no search, one against it reorders") {
    graph g;
    g.init(16, 64);
    REQUIRE(g.add_edge(1, 2, 0, en) != graph::none);
    REQUIRE(g.add_edge(2, 3, 0, en) != graph::none);
    CHECK_FALSE(g.may_close_cycle(1, 3));
    CHECK(g.may_close_cycle(3, 1));
    // 5 -> 4 goes against the ids' order, but nothing joins them: no search, then a reorder after
    // which 4 -> 5 is the edge that may close a cycle.
    CHECK_FALSE(g.may_close_cycle(5, 4));
    REQUIRE(g.add_edge(5, 4, 0, en) != graph::none);
    CHECK(g.may_close_cycle(4, 5));
    CHECK_FALSE(g.may_close_cycle(5, 4));
    // 3 -> 5 and 4 -> 1 are unrelated to each other until both are in: then 1 ... 3 -> 5 -> 4 -> 1.
    REQUIRE(g.add_edge(3, 5, 0, en) != graph::none);
    CHECK(g.may_close_cycle(4, 1));
    std::vector<graph::step> path;
    REQUIRE(g.find_path(1, 4, false, true, path));
    CHECK(path_classes(g, path) == std::vector<std::uint32_t>{1, 2, 3, 5, 4});
}

TEST_CASE("graph: a cycle closed after a run of reorderings is still searched for") {
    graph g;
    g.init(64, 256);
    // A chain built from its end, each edge against the order of ids: 40 -> 39 -> ... -> 1, with
    // branches off it built in between, so that every step moves a region.
    for (std::uint32_t c = 40; c > 1; --c) {
        CHECK_FALSE(g.may_close_cycle(c, c - 1));
        REQUIRE(g.add_edge(c, c - 1, 0, en) != graph::none);
        if (c % 5 == 0) {
            CHECK_FALSE(g.may_close_cycle(c - 1, 40 + c / 5));
            REQUIRE(g.add_edge(c - 1, 40 + c / 5, 0, en) != graph::none);
        }
    }
    std::vector<graph::step> path;
    for (std::uint32_t c = 2; c <= 40; ++c) {
        CAPTURE(c);
        REQUIRE(g.may_close_cycle(1, c));
        REQUIRE(g.find_path(c, 1, false, true, path));
        CHECK(path.size() == c - 1);
    }
    // The branches' ends reach nothing, and nothing reaches the chain's head: an edge between two
    // ends, or out of the head, closes nothing; one from an end back to the head may.
    CHECK_FALSE(g.may_close_cycle(48, 41));
    CHECK_FALSE(g.may_close_cycle(41, 48));
    CHECK_FALSE(g.may_close_cycle(40, 1));
    CHECK_FALSE(g.may_close_cycle(40, 41));
    CHECK(g.may_close_cycle(41, 40));
    CHECK(g.may_close_cycle(48, 40));
}

TEST_CASE("graph: recursive readers in both orders, then exclusive cycles elsewhere and through them") {
    graph g;
    g.init(16, 64);
    std::vector<graph::step> path;
    // 1 held exclusively, 2 taken as a recursive reader; then 2 held as that reader and 1 taken as
    // one: the plain cycle 1 -> 2 -> 1 is no strong one (the engine adds both), in either order of
    // ids.
    REQUIRE(g.add_edge(1, 2, 0, er) != graph::none);
    CHECK(g.may_close_cycle(2, 1));
    CHECK_FALSE(g.find_path(1, 2, true, false, path));
    REQUIRE(g.add_edge(2, 1, 0, sr) != graph::none);
    REQUIRE(g.add_edge(7, 6, 0, er) != graph::none);
    CHECK(g.may_close_cycle(6, 7));
    CHECK_FALSE(g.find_path(7, 6, true, false, path));
    REQUIRE(g.add_edge(6, 7, 0, sr) != graph::none);
    CHECK(g.same_component(1, 2));
    CHECK(g.same_component(6, 7));
    CHECK_FALSE(g.same_component(1, 6));

    // Elsewhere: 3 -> 4, then 4 -> 3 closes an exclusive cycle.
    REQUIRE(g.add_edge(3, 4, 0, en) != graph::none);
    REQUIRE(g.may_close_cycle(4, 3));
    REQUIRE(g.find_path(3, 4, false, true, path));
    CHECK(path_classes(g, path) == std::vector<std::uint32_t>{3, 4});

    // Through the component: 2 -> 5 exclusively; 5 -> 1 closes 1 -(ER)-> 2 -(EN)-> 5 -> 1, since
    // the recursive reader 2 is left by an exclusive edge.
    REQUIRE(g.add_edge(2, 5, 0, en) != graph::none);
    REQUIRE(g.may_close_cycle(5, 1));
    REQUIRE(g.find_path(1, 5, false, true, path));
    CHECK(path_classes(g, path) == std::vector<std::uint32_t>{1, 2, 5});

    // Inside the component: a writer 2 taken under 1 closes 2 -(SR)-> 1 -(EN)-> 2.
    REQUIRE(g.may_close_cycle(1, 2));
    REQUIRE(g.find_path(2, 1, false, true, path));
    CHECK(path_classes(g, path) == std::vector<std::uint32_t>{2, 1});

    // Into the component from classes ordered after it: 5 -> 6 goes forward; 7 -> 2 closes the plain
    // cycle 2 -> 5 -> 6 -(SR)-> 7 -> 2, which arrives at 7 as a recursive reader and leaves it
    // shared: no strong cycle, and one component of five. Inside it, 6 -> 1 closes the strong
    // cycle 1 -(ER)-> 2 -> 5 -> 6 -> 1.
    REQUIRE(g.add_edge(5, 6, 0, en) != graph::none);
    REQUIRE(g.may_close_cycle(7, 2));
    CHECK_FALSE(g.find_path(2, 7, false, false, path));
    REQUIRE(g.add_edge(7, 2, 0, sn) != graph::none);
    CHECK(g.same_component(1, 7));
    CHECK(g.same_component(5, 6));
    CHECK_FALSE(g.same_component(3, 5));
    REQUIRE(g.may_close_cycle(6, 1));
    REQUIRE(g.find_path(1, 6, false, true, path));
    CHECK(path_classes(g, path) == std::vector<std::uint32_t>{1, 2, 5, 6});
}

TEST_CASE("graph: removing edges keeps every search that is needed") {
    for (std::uint32_t seed = 1; seed <= 100; ++seed) {
        CAPTURE(seed);
        std::mt19937 rng(seed);
        const std::uint32_t classes = 4 + rng() % 20;
        graph g;
        g.init(classes, 4096);
        reference ref{classes, {}};
        for (int step = 0; step < 200; ++step) {
            if (rng() % 40 == 0) {
                const std::uint32_t gone = 1 + rng() % classes;
                const auto touches = [&](auto& e) { return e.from == gone || e.to == gone; };
                g.remove_edges_if(touches);
                std::erase_if(ref.edges, touches);
                continue;
            }
            const std::uint32_t a = 1 + rng() % classes;
            const std::uint32_t b = 1 + rng() % classes;
            if (a == b || ref.find(a, b))
                continue;
            const auto dep = static_cast<std::uint8_t>(1u << (rng() % 4));
            if (!g.may_close_cycle(a, b))
                REQUIRE_FALSE(ref.plain_path(b, a));
            std::vector<graph::step> path;
            const bool b_recursive = dep & (er | sr);
            const bool a_exclusive = dep & (en | er);
            if (g.find_path(b, a, b_recursive, a_exclusive, path))
                continue;
            REQUIRE(g.add_edge(a, b, step, dep) != graph::none);
            ref.edges.push_back({a, b, dep});
        }
    }
}

TEST_CASE("graph: the tables grow with use, and stop at the limits") {
    graph g;
    g.init(100000, 300);
    // A class id near the limit is a node at once; an id past it is none.
    REQUIRE(g.add_edge(99999, 100000, 1, en) != graph::none);
    CHECK(g.add_edge(100000, 100001, 2, en) == graph::none);
    for (std::uint32_t c = 1; c < 299; ++c)
        REQUIRE(g.add_edge(c + 1, c, c, en) != graph::none);
    CHECK(g.edge_count() == 299);
    CHECK(g.add_edge(1, 300, 0, en) != graph::none);
    CHECK(g.add_edge(1, 301, 0, en) == graph::none);
    for (std::uint32_t c = 1; c < 299; ++c)
        REQUIRE(g.at(g.find_edge(c + 1, c)).payload == c);
    std::vector<graph::step> path;
    REQUIRE(g.may_close_cycle(1, 299));
    REQUIRE(g.find_path(299, 1, false, true, path));
    CHECK(path.size() == 298);
}
