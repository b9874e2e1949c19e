// SPDX-License-Identifier: MIT
// Cost of a lock/unlock pair with fencedep off and on, and of a first-seen edge, vs std::mutex.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstdio>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <fencedep/fencedep.h>

namespace {

void raw_mutex(benchmark::State& state) {
    std::mutex lock;
    for (auto _ : state) {
        lock.lock();
        lock.unlock();
    }
}
BENCHMARK(raw_mutex);

void fencedep_off(benchmark::State& state) {
    fencedep::enable(false);
    fencedep::mutex lock{"bench off"};
    for (auto _ : state) {
        lock.lock();
        lock.unlock();
    }
}
BENCHMARK(fencedep_off);

constexpr unsigned max_depth = 8;
fencedep::lock_class_key depth_keys[max_depth];

// The innermost of `depth` nested mutexes, each of its own class. The chain is validated once
// before timing, so every timed lock() is a chain-cache hit: the hot path of a program whose lock
// orders are all known.
void fencedep_on(benchmark::State& state) {
    const auto depth = static_cast<unsigned>(state.range(0));
    fencedep::reset();
    fencedep::enable(true);
    std::deque<fencedep::mutex> outer;
    for (unsigned i = 0; i + 1 < depth; ++i)
        outer.emplace_back("bench outer", depth_keys[i]);
    fencedep::mutex inner{"bench inner", depth_keys[depth - 1]};

    for (auto& lock : outer)
        lock.lock();
    inner.lock();
    inner.unlock();
    for (auto _ : state) {
        inner.lock();
        inner.unlock();
    }
    for (auto it = outer.rbegin(); it != outer.rend(); ++it)
        it->unlock();
    fencedep::enable(false);
    if (fencedep::splat_count() != 0)
        state.SkipWithError("fencedep reported a splat");
}
BENCHMARK(fencedep_on)->Arg(1)->Arg(4)->Arg(8);

// A graph of 1,000 classes in a chain, and a pool of fresh class pairs (p, q), each q already
// linked to the head of the chain. Timing p -> q then covers all a first-seen edge costs:
// registering p, two chain-cache misses, a search from q through all 1,000 classes that finds
// no cycle, and the saved stack trace.
class edge_graph {
public:
    static constexpr unsigned chain_length = 1000;
    static constexpr unsigned pool_size = 2048;

    edge_graph()
        : chain_keys_(new fencedep::lock_class_key[chain_length]),
          from_keys_(new fencedep::lock_class_key[pool_size]),
          to_keys_(new fencedep::lock_class_key[pool_size]) {
        for (unsigned i = 0; i < chain_length; ++i)
            chain_.emplace_back("bench chain", chain_keys_[i]);
        for (unsigned i = 0; i < pool_size; ++i) {
            from_.emplace_back("bench edge from", from_keys_[i]);
            to_.emplace_back("bench edge to", to_keys_[i]);
        }
    }

    // Forgets everything and records the chain and the pool's q -> head edges again.
    void rebuild() {
        fencedep::reset();
        fencedep::enable(true);
        for (unsigned i = 0; i + 1 < chain_length; ++i)
            take_pair(chain_[i], chain_[i + 1]);
        for (auto& to : to_)
            take_pair(to, chain_.front());
        next_ = 0;
    }

    bool exhausted() const { return next_ == pool_size; }

    void add_fresh_edge() {
        take_pair(from_[next_], to_[next_]);
        ++next_;
    }

private:
    static void take_pair(fencedep::lock_map& outer, fencedep::lock_map& inner) {
        outer.acquire();
        inner.acquire();
        inner.release();
        outer.release();
    }

    std::unique_ptr<fencedep::lock_class_key[]> chain_keys_;
    std::unique_ptr<fencedep::lock_class_key[]> from_keys_;
    std::unique_ptr<fencedep::lock_class_key[]> to_keys_;
    std::deque<fencedep::lock_map> chain_;
    std::deque<fencedep::lock_map> from_;
    std::deque<fencedep::lock_map> to_;
    unsigned next_ = 0;
};

void fencedep_new_edge(benchmark::State& state) {
    edge_graph graph;
    graph.rebuild();
    for (auto _ : state) {
        if (graph.exhausted()) {
            state.PauseTiming();
            graph.rebuild();
            state.ResumeTiming();
        }
        graph.add_fresh_edge();
    }
    fencedep::enable(false);
    if (fencedep::splat_count() != 0)
        state.SkipWithError("fencedep reported a splat");
    fencedep::reset();
}
BENCHMARK(fencedep_new_edge);

// Prints as usual, and keeps each benchmark's fastest real and CPU time per iteration so that
// ratios can be taken against raw_mutex from the same run. Both are printed: on a loaded machine
// real time includes waiting for a core, which CPU time leaves out.
class ratio_reporter : public benchmark::ConsoleReporter {
public:
    ratio_reporter() : benchmark::ConsoleReporter(OO_Tabular) {}

    void ReportRuns(const std::vector<Run>& runs) override {
        for (const auto& run : runs) {
            if (run.run_type != Run::RT_Iteration || run.error_occurred)
                continue;
            const double scale = time_unit_to_ns(run.time_unit);
            const timing t{run.GetAdjustedRealTime() * scale, run.GetAdjustedCPUTime() * scale};
            auto [it, inserted] = best_.emplace(run.benchmark_name(), t);
            if (!inserted) {
                it->second.real_ns = std::min(it->second.real_ns, t.real_ns);
                it->second.cpu_ns = std::min(it->second.cpu_ns, t.cpu_ns);
            }
        }
        benchmark::ConsoleReporter::ReportRuns(runs);
    }

    void print_ratios() const {
        const auto raw = best_.find("raw_mutex");
        if (raw == best_.end() || raw->second.real_ns <= 0 || raw->second.cpu_ns <= 0) {
            std::printf("no raw_mutex result: no ratios\n");
            return;
        }
        std::printf("\nraw std::mutex lock/unlock: %.2f ns real, %.2f ns CPU\n",
                    raw->second.real_ns, raw->second.cpu_ns);
        print_ratio("ratio off/raw", "fencedep_off", raw->second, " (target <= 1.1)");
        struct depth_target {
            const char* depth;
            const char* target;
        };
        for (const auto& [depth, target] : {depth_target{"1", " (target <= 3)"},
                                            depth_target{"4", ""}, depth_target{"8", ""}}) {
            const std::string label = std::string("ratio on(depth ") + depth + ")/raw";
            print_ratio(label.c_str(), std::string("fencedep_on/") + depth, raw->second, target);
        }
        print_ratio("ratio new edge (1000 classes)/raw", "fencedep_new_edge", raw->second, "");
    }

private:
    struct timing {
        double real_ns;
        double cpu_ns;
    };

    static double time_unit_to_ns(benchmark::TimeUnit unit) {
        switch (unit) {
        case benchmark::kNanosecond: return 1;
        case benchmark::kMicrosecond: return 1e3;
        case benchmark::kMillisecond: return 1e6;
        case benchmark::kSecond: return 1e9;
        }
        return 1;
    }

    void print_ratio(const char* label, const std::string& name, const timing& raw,
                     const char* target) const {
        const auto it = best_.find(name);
        if (it == best_.end())
            return;
        std::printf("%s: %.2f real, %.2f CPU (%.2f ns real, %.2f ns CPU)%s\n", label,
                    it->second.real_ns / raw.real_ns, it->second.cpu_ns / raw.cpu_ns,
                    it->second.real_ns, it->second.cpu_ns, target);
    }

    std::map<std::string, timing> best_;
};

}  // namespace

int main(int argc, char** argv) {
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv))
        return 1;
    ratio_reporter reporter;
    benchmark::RunSpecifiedBenchmarks(&reporter);
    reporter.print_ratios();
    benchmark::Shutdown();
    return 0;
}
