// SPDX-License-Identifier: MIT
// A first-seen edge in a big graph: 10,000 classes and 100,000 edges, then fresh edges timed one
// by one, reported as median, p99 and mean per edge (the distribution is the point: a mean hides
// the searches that run over most of the graph).
//
// The edges are random but consistent with one hidden order of the classes, so none closes a
// cycle. The classes are registered in an order unrelated to the hidden one, so that the engine's
// own order of the classes starts out wrong and the fresh edges include both edges consistent
// with the order it has learned and edges against it. Each timed edge is one pair outer -> inner
// taken through the public API: two chain-cache misses, the dependency, its saved stack, timed
// in the thread's CPU time. The graph_only runs time the graph's part of the same work alone.
#include <benchmark/benchmark.h>

#include <time.h>

#include <algorithm>
#include <cstdint>
#include <deque>
#include <memory>
#include <numeric>
#include <random>
#include <unordered_set>
#include <utility>
#include <vector>

#include <fencedep/fencedep.h>

#include "engine/graph.h"

namespace {

constexpr std::uint32_t classes = 10000;
constexpr std::uint32_t initial_edges = 100000;

// Random pairs of classes 0..classes-1, each new, each in the order of one hidden permutation.
class edge_source {
public:
    edge_source() : position_(classes) {
        std::iota(position_.begin(), position_.end(), 0u);
        std::shuffle(position_.begin(), position_.end(), random_);
    }

    std::pair<std::uint32_t, std::uint32_t> fresh_edge() {
        std::uniform_int_distribution<std::uint32_t> pick(0, classes - 1);
        for (;;) {
            std::uint32_t a = pick(random_);
            std::uint32_t b = pick(random_);
            if (a == b)
                continue;
            if (position_[a] > position_[b])
                std::swap(a, b);
            if (seen_.insert(std::uint64_t{a} * classes + b).second)
                return {a, b};
        }
    }

private:
    std::vector<std::uint32_t> position_;  // per class: its place in the hidden order
    std::unordered_set<std::uint64_t> seen_;
    std::mt19937_64 random_{20261203};
};

class big_graph {
public:
    big_graph() : keys_(new fencedep::lock_class_key[classes]) {
        for (std::uint32_t i = 0; i < classes; ++i)
            locks_.emplace_back("bench graph", keys_[i]);
    }

    // Registers the classes in index order and records the initial edges.
    void build() {
        fencedep::reset();
        fencedep::enable(true);
        for (auto& lock : locks_) {
            lock.acquire();
            lock.release();
        }
        for (std::uint32_t i = 0; i < initial_edges; ++i)
            add(edges.fresh_edge());
    }

    void add(std::pair<std::uint32_t, std::uint32_t> edge) {
        locks_[edge.first].acquire();
        locks_[edge.second].acquire();
        locks_[edge.second].release();
        locks_[edge.first].release();
    }

    edge_source edges;

private:
    std::unique_ptr<fencedep::lock_class_key[]> keys_;
    std::deque<fencedep::lock_map> locks_;
};

// The thread's CPU time: the machine is shared, and wall time would count other programs' turns.
double cpu_seconds() {
    timespec t{};
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_nsec) * 1e-9;
}

// The distribution of per-edge times, in µs, as the benchmark's counters.
void report(benchmark::State& state, std::vector<double>& micros) {
    std::sort(micros.begin(), micros.end());
    const auto at = [&](double q) { return micros[static_cast<std::size_t>(q * static_cast<double>(micros.size() - 1))]; };
    state.counters["median_us"] = at(0.5);
    state.counters["p99_us"] = at(0.99);
    state.counters["max_us"] = micros.back();
    state.counters["mean_us"] = std::accumulate(micros.begin(), micros.end(), 0.0) / static_cast<double>(micros.size());
}

// Each iteration times one fresh edge; the counters are the distribution of those times.
void first_seen_edge(benchmark::State& state) {
    big_graph graph;
    graph.build();
    std::vector<double> micros;
    micros.reserve(static_cast<std::size_t>(state.max_iterations));
    for (auto _ : state) {
        const auto edge = graph.edges.fresh_edge();
        const double start = cpu_seconds();
        graph.add(edge);
        const double seconds = cpu_seconds() - start;
        state.SetIterationTime(seconds);
        micros.push_back(seconds * 1e6);
    }
    fencedep::enable(false);
    if (fencedep::splat_count() != 0)
        state.SkipWithError("fencedep reported a splat (a table full, or a cycle)");
    fencedep::reset();
    report(state, micros);
}
// 20,000 fresh edges after the 100,000: the graph grows by a fifth while it is measured.
BENCHMARK(first_seen_edge)->Name("first_seen_edge_10k_classes_100k_edges")->Iterations(20000)->UseManualTime()
    ->Unit(benchmark::kMicrosecond);

// The graph's share of the same work, on the same edges: what the engine asks the graph for a
// new dependency (the order's check, the search if it is needed, the edge). With `always_search`
// the search runs for every edge, as it did before the graph kept an order.
void graph_only(benchmark::State& state, bool always_search) {
    using fencedep::detail::graph;
    edge_source edges;
    graph g;
    g.init(classes + 1, initial_edges + static_cast<std::uint32_t>(state.max_iterations));
    std::vector<graph::step> path;
    const auto add = [&](std::pair<std::uint32_t, std::uint32_t> e) {
        const std::uint32_t from = e.first + 1;
        const std::uint32_t to = e.second + 1;
        if ((always_search || g.may_close_cycle(from, to)) && g.find_path(to, from, false, true, path))
            return false;
        return g.add_edge(from, to, 0, graph::dep_en) != graph::none;
    };
    for (std::uint32_t i = 0; i < initial_edges; ++i)
        add(edges.fresh_edge());
    std::vector<double> micros;
    micros.reserve(static_cast<std::size_t>(state.max_iterations));
    for (auto _ : state) {
        const auto edge = edges.fresh_edge();
        const double start = cpu_seconds();
        const bool added = add(edge);
        const double seconds = cpu_seconds() - start;
        state.SetIterationTime(seconds);
        micros.push_back(seconds * 1e6);
        if (!added)
            state.SkipWithError("the graph refused an edge consistent with the hidden order");
    }
    report(state, micros);
}
BENCHMARK_CAPTURE(graph_only, order, false)->Name("graph_only_order")->Iterations(20000)->UseManualTime()
    ->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(graph_only, search, true)->Name("graph_only_search_every_edge")->Iterations(20000)->UseManualTime()
    ->Unit(benchmark::kMicrosecond);

}  // namespace

BENCHMARK_MAIN();
