// SPDX-License-Identifier: MIT
// Cost of a lock/unlock pair with fencedep off and on, and of a first-seen edge, vs std::mutex;
// and of a shared_mutex reader with fencedep on, vs std::shared_mutex.
#include <benchmark/benchmark.h>

#include <deque>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <type_traits>
#include <vector>

#include <fencedep/fencedep.h>

#include "ratio_reporter.h"

namespace {

// The two sides a lock/unlock pair can take: a writer's lock()/unlock(), a reader's
// lock_shared()/unlock_shared().
struct exclusive {
    static void take(auto& lock) { lock.lock(); }
    static void drop(auto& lock) { lock.unlock(); }
};
struct shared {
    static void take(auto& lock) { lock.lock_shared(); }
    static void drop(auto& lock) { lock.unlock_shared(); }
};

template <class Lock, class Side>
void raw(benchmark::State& state) {
    Lock lock;
    for (auto _ : state) {
        Side::take(lock);
        Side::drop(lock);
    }
}
BENCHMARK(raw<std::mutex, exclusive>)->Name("raw_mutex");
BENCHMARK(raw<std::shared_mutex, shared>)->Name("raw_shared_mutex");

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

// The innermost of `depth` nested locks, each of its own class, the outer ones mutexes and the
// innermost a `Lock` taken on `Side`. The chain is validated once before timing, so every timed
// acquisition is a chain-cache hit: the hot path of a program whose lock orders are all known.
template <class Lock, class Side>
void fencedep_on(benchmark::State& state) {
    const auto depth = static_cast<unsigned>(state.range(0));
    fencedep::reset();
    fencedep::enable(true);
    std::deque<fencedep::mutex> outer;
    for (unsigned i = 0; i + 1 < depth; ++i)
        outer.emplace_back("bench outer", depth_keys[i]);
    Lock inner{"bench inner", depth_keys[depth - 1]};

    for (auto& lock : outer)
        lock.lock();
    Side::take(inner);
    Side::drop(inner);
    for (auto _ : state) {
        Side::take(inner);
        Side::drop(inner);
    }
    for (auto it = outer.rbegin(); it != outer.rend(); ++it)
        it->unlock();
    fencedep::enable(false);
    if (fencedep::splat_count() != 0)
        state.SkipWithError("fencedep reported a splat");
}
BENCHMARK(fencedep_on<fencedep::mutex, exclusive>)->Name("fencedep_on")->Arg(1)->Arg(4)->Arg(8);
BENCHMARK(fencedep_on<fencedep::shared_mutex, shared>)->Name("fencedep_on_shared")->Arg(1);

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

// A new lock per iteration, taken once: the price of finding its class. Keyed, at a
// construction site in the user's code, and built inside the standard library (std::make_unique),
// whose site is the user's frame found by a table lookup on the constructor's caller.
fencedep::lock_class_key construct_key;

template <class Make>
void construct_and_take(benchmark::State& state, Make make) {
    fencedep::reset();
    fencedep::enable(true);
    for (auto _ : state) {
        auto lock = make();
        lock->lock();
        lock->unlock();
    }
    fencedep::enable(false);
    fencedep::reset();
}

void construct_keyed(benchmark::State& state) {
    construct_and_take(state, [] { return std::make_unique<fencedep::mutex>("keyed", construct_key); });
}
BENCHMARK(construct_keyed);

void construct_at_site(benchmark::State& state) {
    construct_and_take(state, [] { return std::unique_ptr<fencedep::mutex>(new fencedep::mutex); });
}
BENCHMARK(construct_at_site);

void construct_in_library(benchmark::State& state) {
    construct_and_take(state, [] { return std::make_unique<fencedep::mutex>(); });
}
BENCHMARK(construct_in_library);

// The first acquisition of an unnamed lock whose key is on the heap (a key per object): the
// class's registration, with a name found for an address no symbol covers, and the new chain's
// stack. The keys outlive their classes (until reset()), as keys must.
void register_heap_key(benchmark::State& state) {
    fencedep::reset();
    fencedep::enable(true);
    std::vector<std::unique_ptr<fencedep::lock_class_key>> keys;
    keys.reserve(state.max_iterations);
    for (auto _ : state) {
        keys.push_back(std::make_unique<fencedep::lock_class_key>());
        fencedep::mutex lock{*keys.back()};
        lock.lock();
        lock.unlock();
    }
    fencedep::enable(false);
    if (fencedep::splat_count() != 0)
        state.SkipWithError("fencedep reported a splat");
    fencedep::reset();
}
// Fewer than max_classes: each iteration registers a class.
BENCHMARK(register_heap_key)->Iterations(4000)->Unit(benchmark::kMicrosecond);

// reset() after a small test case (three locks nested in one order): what every case of a suite
// pays when the doctest or GoogleTest adapter starts it from a fresh validator.
void reset_after_test_case(benchmark::State& state) {
    static fencedep::lock_class_key keys[3];
    fencedep::mutex a{"reset a", keys[0]};
    fencedep::mutex b{"reset b", keys[1]};
    fencedep::mutex c{"reset c", keys[2]};
    for (auto _ : state) {
        state.PauseTiming();
        fencedep::enable(true);
        {
            const std::scoped_lock nested(a, b, c);
        }
        state.ResumeTiming();
        fencedep::reset();
    }
    fencedep::enable(false);
}
BENCHMARK(reset_after_test_case)->Unit(benchmark::kMicrosecond);

// Threads on disjoint locks: each thread holds 7 nested locks of its own and takes an 8th under
// them, the same 8 classes in every thread (8 objects of one type per thread), its chain known.
// What threads share is the engine's tables, read without a lock. Real time: throughput is what
// scales (or collapses) with threads; 16 threads on 2 cores should keep the throughput of 2.
template <class Lock>
void threads_on_own_locks(benchmark::State& state) {
    fencedep::enable(true);
    std::deque<Lock> locks;
    for (unsigned i = 0; i < max_depth; ++i) {
        if constexpr (std::is_same_v<Lock, fencedep::mutex>)
            locks.emplace_back("bench thread", depth_keys[i]);
        else
            locks.emplace_back();
    }
    for (unsigned i = 0; i + 1 < max_depth; ++i)
        locks[i].lock();
    Lock& inner = locks.back();
    inner.lock();
    inner.unlock();
    for (auto _ : state) {
        inner.lock();
        inner.unlock();
    }
    for (unsigned i = max_depth - 1; i-- > 0;)
        locks[i].unlock();
    if (fencedep::splat_count() != 0)
        state.SkipWithError("fencedep reported a splat");
}
// One thread last: glibc's mutexes skip their atomic instructions in a process that has never
// started a thread, which would make the one-thread baseline of the first run unfairly cheap.
BENCHMARK(threads_on_own_locks<std::mutex>)->Name("raw_threads")->Threads(2)->Threads(16)->Threads(1)->UseRealTime();
BENCHMARK(threads_on_own_locks<fencedep::mutex>)
    ->Name("fencedep_on_threads")
    ->Threads(2)
    ->Threads(16)
    ->Threads(1)
    ->UseRealTime();

}  // namespace

int main(int argc, char** argv) {
    return bench::run_with_ratios(argc, argv, [](const bench::ratio_reporter& r) {
        r.print_ratio("ratio off/raw", "fencedep_off", "raw_mutex", " (target <= 1.1)");
        r.print_ratio("ratio on(depth 1)/raw", "fencedep_on/1", "raw_mutex", " (target <= 3)");
        r.print_ratio("ratio on(depth 4)/raw", "fencedep_on/4", "raw_mutex");
        r.print_ratio("ratio on(depth 8)/raw", "fencedep_on/8", "raw_mutex");
        r.print_ratio("ratio shared_mutex reader on(depth 1)/raw", "fencedep_on_shared/1", "raw_shared_mutex",
                      " (target <= 3)");
        r.print_ratio("ratio new edge (1000 classes)/raw", "fencedep_new_edge", "raw_mutex");
        r.print_ratio("ratio new lock at a site/keyed", "construct_at_site", "construct_keyed");
        r.print_ratio("ratio new lock built by make_unique/at a site", "construct_in_library", "construct_at_site");
        for (const char* name : {"raw_threads", "fencedep_on_threads"})
            for (const unsigned threads : {2u, 16u})
                r.print_scaling(name, threads);
    });
}
