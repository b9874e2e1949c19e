// SPDX-License-Identifier: MIT
// The workload bench/peers/run times under every checker: one source, the lock type chosen at
// compile time (-DLOCK_STD, -DLOCK_FENCEDEP or -DLOCK_ABSL), so that each variant runs the same
// loops. It times CPU time (CLOCK_PROCESS_CPUTIME_ID, all threads of the process) and prints the
// median of its repetitions, in ns per operation, as one line on stdout: "ns_per_op <value>".
//
//   workload nested K PAIRS          K locks taken in a fixed order and released, per lock/unlock
//   workload threads T PAIRS         T threads, each on its own 8 nested locks (same classes)
//   workload graph N EDGES           N classes already ordered (a chain), then EDGES new edges
//                                    between random pairs in that order: per new edge
//   workload invert-nested K         K nested locks, then the innermost two in reverse order
//   workload invert-graph N          the chain of N classes, then its first edge in reverse order
//
// The invert-* cases are the limits probes: a checker that works reports the inversion on stderr.
#include <algorithm>
#include <charconv>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <memory>
#include <random>
#include <set>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#if defined(LOCK_STD)
#include <mutex>
#elif defined(LOCK_FENCEDEP)
#include <fencedep/fencedep.h>
#elif defined(LOCK_ABSL)
#include <absl/synchronization/mutex.h>
#else
#error "choose the lock type: -DLOCK_STD, -DLOCK_FENCEDEP or -DLOCK_ABSL"
#endif

namespace {

constexpr int repetitions = 5;
constexpr unsigned max_locks = 20000;

// Lock i of every variant: a class of its own where the checker has classes (fencedep: lock i is
// built with key i, so a thread's lock i and another thread's lock i share a class, as two objects
// of one type do); the peers key by address.
#if defined(LOCK_STD)
struct lock {
    explicit lock(unsigned) {}
    void take() { m.lock(); }
    void drop() { m.unlock(); }
    std::mutex m;
};
#elif defined(LOCK_FENCEDEP)
// Keys outlive every lock (the engine caches class ids in them): never freed.
fencedep::lock_class_key* const keys = new fencedep::lock_class_key[max_locks];
struct lock {
    explicit lock(unsigned i) : m("peers", keys[i]) {}
    void take() { m.lock(); }
    void drop() { m.unlock(); }
    fencedep::mutex m;
};
#elif defined(LOCK_ABSL)
struct lock {
    explicit lock(unsigned) {}
    void take() { m.Lock(); }
    void drop() { m.Unlock(); }
    absl::Mutex m;
};
#endif

struct locks {
    explicit locks(unsigned n) : all(static_cast<lock*>(::operator new(sizeof(lock) * n))), n(n) {
        for (unsigned i = 0; i < n; ++i)
            new (&all[i]) lock(i);
    }
    ~locks() {
        for (unsigned i = 0; i < n; ++i)
            all[i].~lock();
        ::operator delete(all);
    }
    locks(const locks&) = delete;
    locks& operator=(const locks&) = delete;
    lock& operator[](unsigned i) { return all[i]; }
    lock* all;
    unsigned n;
};

double cpu_ns() {
    timespec ts{};
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return static_cast<double>(ts.tv_sec) * 1e9 + static_cast<double>(ts.tv_nsec);
}

void nest(locks& l, unsigned k) {
    for (unsigned i = 0; i < k; ++i)
        l[i].take();
    for (unsigned i = k; i-- > 0;)
        l[i].drop();
}

// Runs `body` `repetitions` times and prints the median of its CPU time divided by `ops`.
template <class Body>
void time_median(double ops, Body body) {
    std::vector<double> per_op;
    for (int r = 0; r < repetitions; ++r) {
        const double start = cpu_ns();
        body(r);
        per_op.push_back((cpu_ns() - start) / ops);
    }
    std::nth_element(per_op.begin(), per_op.begin() + repetitions / 2, per_op.end());
    std::printf("ns_per_op %.3f\n", per_op[repetitions / 2]);
}

void nested(unsigned k, unsigned long pairs) {
    locks l(k);
    nest(l, k);  // first sight of the order, outside the timing
    const unsigned long rounds = std::max(1ul, pairs / k);
    time_median(static_cast<double>(rounds * k), [&](int) {
        for (unsigned long r = 0; r < rounds; ++r)
            nest(l, k);
    });
}

void threads(unsigned t, unsigned long pairs) {
    constexpr unsigned k = 8;
    const unsigned long rounds = std::max(1ul, pairs / k);
    std::vector<std::unique_ptr<locks>> own;
    for (unsigned i = 0; i < t; ++i) {
        own.push_back(std::make_unique<locks>(k));
        nest(*own.back(), k);
    }
    time_median(static_cast<double>(rounds * k * t), [&](int) {
        std::vector<std::thread> running;
        for (unsigned i = 0; i < t; ++i)
            running.emplace_back([&, i] {
                for (unsigned long r = 0; r < rounds; ++r)
                    nest(*own[i], k);
            });
        for (auto& thread : running)
            thread.join();
    });
}

// Edge i -> i+1 for every i, added in ascending order (each one first seen with nothing after it).
void chain(locks& l) {
    for (unsigned i = 0; i + 1 < l.n; ++i) {
        l[i].take();
        l[i + 1].take();
        l[i + 1].drop();
        l[i].drop();
    }
}

void graph(unsigned n, unsigned edges) {
    locks l(n);
    chain(l);
    // Distinct pairs a < b not already edges of the chain, in the chain's order (so no checker
    // has a cycle to report); a fixed seed, so that every variant takes the same ones.
    std::mt19937 random(2026);
    std::uniform_int_distribution<unsigned> pick(0, n - 1);
    std::set<std::pair<unsigned, unsigned>> seen;
    std::vector<std::pair<unsigned, unsigned>> pairs;
    while (pairs.size() < std::size_t{edges} * repetitions) {
        const unsigned x = pick(random);
        const unsigned y = pick(random);
        const unsigned a = std::min(x, y);
        const unsigned b = std::max(x, y);
        if (b > a + 1 && seen.emplace(a, b).second)
            pairs.emplace_back(a, b);
    }
    time_median(edges, [&](int r) {
        for (unsigned e = 0; e < edges; ++e) {
            auto [a, b] = pairs[static_cast<std::size_t>(r) * edges + e];
            l[a].take();
            l[b].take();
            l[b].drop();
            l[a].drop();
        }
    });
}

void invert(locks& l, unsigned first, unsigned second) {
    l[first].take();
    l[second].take();
    l[second].drop();
    l[first].drop();
    std::printf("inverted %u before %u\n", first, second);
}

void invert_nested(unsigned k) {
    locks l(k);
    nest(l, k);
    invert(l, k - 1, k - 2);
}

void invert_graph(unsigned n) {
    locks l(n);
    chain(l);
    invert(l, 1, 0);
}

unsigned long number(const char* text, unsigned long low, unsigned long high, const char* what) {
    unsigned long value = 0;
    const std::string_view s(text);
    auto [end, error] = std::from_chars(s.data(), s.data() + s.size(), value);
    if (error != std::errc{} || end != s.data() + s.size() || value < low || value > high) {
        std::fprintf(stderr, "workload: %s '%s' is not a number from %lu to %lu\n", what, text, low, high);
        std::exit(2);
    }
    return value;
}

[[noreturn]] void usage() {
    std::fputs("usage: workload nested K PAIRS | threads T PAIRS | graph N EDGES | invert-nested K | "
               "invert-graph N\n",
               stderr);
    std::exit(2);
}

}  // namespace

int main(int argc, char** argv) {
#if defined(LOCK_ABSL)
    // The library's default is kAbort; kReport prints a cycle and goes on, as the others do.
    absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kReport);
#endif
    if (argc < 3)
        usage();
    const std::string_view what = argv[1];
    // At least 2 locks for an inversion, and room for the new edges of a graph.
    const char* size_name = what == "threads" ? "T" : what.ends_with("graph") ? "N" : "K";
    const auto size = static_cast<unsigned>(number(argv[2], what.starts_with("invert") ? 2 : what == "graph" ? 100 : 1,
                                                   max_locks, size_name));
    if (what == "invert-nested" && argc == 3)
        invert_nested(size);
    else if (what == "invert-graph" && argc == 3)
        invert_graph(size);
    else if (argc != 4)
        usage();
    else if (what == "nested")
        nested(size, number(argv[3], 1, 1ul << 40, "PAIRS"));
    else if (what == "threads")
        threads(size, number(argv[3], 1, 1ul << 40, "PAIRS"));
    else if (what == "graph")
        graph(size, static_cast<unsigned>(number(argv[3], 1, size * 2ul, "EDGES")));
    else
        usage();
}
