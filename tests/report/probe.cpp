// SPDX-License-Identifier: MIT
// A user's test binary in miniature for the report suite: it makes lock-order splats in the ways
// report_test needs (at exit, from a throwing handler, from many threads, under odd names) and is
// run by it in child processes.
#include <pthread.h>

#include <barrier>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <fencedep/fencedep.h>

namespace {

void say(const char* line) {
    std::puts(line);
    std::fflush(stdout);
}

// One ABBA between two fresh locks of these names: one circular splat. Names made at run time
// do not make classes, keys do: each call gets a pair of its own (never freed: a key must
// outlive the graph that holds its class).
void abba(const char* a_name, const char* b_name) {
    auto* keys = new fencedep::lock_class_key[2];
    fencedep::mutex a{a_name, keys[0]};
    fencedep::mutex b{b_name, keys[1]};
    a.lock();
    b.lock();
    b.unlock();
    a.unlock();
    b.lock();
    a.lock();
    a.unlock();
    b.unlock();
}

// Two instances of one class, one taken inside the other: a recursive-locking splat whose stack
// names this function, for frame patterns to match.
[[gnu::noinline]] void driver_b_recurse() {
    static fencedep::lock_class_key key;
    fencedep::mutex outer{"driver_b::queue", key};
    fencedep::mutex inner{"driver_b::queue", key};
    outer.lock();
    inner.lock();
    inner.unlock();
    outer.unlock();
}

// Three splats for the suppression cases: two cycles told apart by their class names, and a
// recursion told apart by its function.
void three_splats() {
    abba("driver_a::ring", "driver_a::sched");
    abba("other_a", "other_b");
    driver_b_recurse();
}

// A global whose destructor has work left: it writes its last line and the ofstream flushes
// only then. If the exit status were applied before static destructors ran, the file would miss
// that line.
struct exit_witness {
    std::ofstream out;
    ~exit_witness() {
        if (out.is_open())
            out << "destructor ran\n";
    }
} witness;

// Each thread gets its own pair of classes, with names made long
// so that every report is several times PIPE_BUF, and tagged so that the test can tell whose
// text it is reading.
void concurrent(int threads) {
    std::barrier start(threads);
    std::vector<std::thread> workers;
    for (int t = 0; t < threads; ++t) {
        workers.emplace_back([&start, t] {
            const std::string tag = "<thread" + std::to_string(t) + ">";
            std::string padding;
            while (padding.size() < 6000)
                padding += tag;
            const std::string a = tag + "a" + padding;
            const std::string b = tag + "b" + padding;
            start.arrive_and_wait();
            abba(a.c_str(), b.c_str());
        });
    }
    for (auto& worker : workers)
        worker.join();
}

// Two instances of one class, the second taken while holding the first: one recursive locking
// report.
[[gnu::noinline]] void lock_twice() {
    static fencedep::lock_class_key key;
    fencedep::mutex outer{"twice", key};
    fencedep::mutex inner{"twice", key};
    outer.lock();
    inner.lock();
    inner.unlock();
    outer.unlock();
}

struct job final : fencedep::fence {
    using fence::fence;
    const char* driver_name() const noexcept override { return "probe"; }
    const char* timeline_name() const noexcept override { return "jobs"; }
};

// A chain placed in an array: one fence container warning (not a splat).
[[gnu::noinline]] void nest_container() {
    static fencedep::spinlock lock{"probe job lock"};
    auto leaf = fencedep::make_fence<job>(lock, fencedep::fence::allocate_contexts(1), 1);
    auto point = fencedep::fence_chain::create(nullptr, leaf, 1);
    auto array = fencedep::fence_array::create({point}, fencedep::fence::allocate_contexts(1), 1);
    leaf->signal();
}

}  // namespace

int main(int argc, char** argv) {
    const std::string_view mode = argc > 1 ? argv[1] : "";
    if (mode == "exit-file" && argc > 2) {
        // argv[3] == "enable": validation switched on by the program, after its globals were built.
        if (argc > 3 && std::string_view(argv[3]) == "enable")
            fencedep::enable(true);
        witness.out.open(argv[2]);
        witness.out << "main ran\n";
        abba("exit_a", "exit_b");
    } else if (mode == "abba") {
        const int count = argc > 2 ? std::atoi(argv[2]) : 1;
        for (int i = 0; i < count; ++i) {
            const std::string a = "abba_a" + std::to_string(i);
            const std::string b = "abba_b" + std::to_string(i);
            abba(a.c_str(), b.c_str());
        }
    } else if (mode == "kinds") {
        // One report of each of three kinds, and a second cycle; argv[2] == "reversed" closes
        // the first cycle at its other edge.
        if (argc > 2 && std::string_view(argv[2]) == "reversed")
            abba("kinds_b", "kinds_a");
        else
            abba("kinds_a", "kinds_b");
        abba("kinds_c", "kinds_d");
        lock_twice();
        nest_container();
    } else if (mode == "clean") {
        // No report at all.
    } else if (mode == "handler") {
        // Reports a handler takes are reports too: the SARIF log has them.
        fencedep::set_report_handler([](const fencedep::report& r) {
            std::printf("handled %s at %s\n", r.id.c_str(), r.location.function.c_str());
        });
        abba("handled_a", "handled_b");
    } else if (mode == "throw-std" || mode == "throw-other") {
        fencedep::set_report_handler([mode](const fencedep::report&) {
            if (mode == "throw-std")
                throw std::runtime_error("FAIL: lock order\n(from the test)");
            throw 42;
        });
        abba("throw_a1", "throw_b1");
        abba("throw_a2", "throw_b2");
    } else if (mode == "pass-on") {
        // Keeps the reports about keep_* locks, and passes the others on to the log.
        fencedep::set_report_handler([](const fencedep::report& r) {
            if (!r.classes.front().starts_with("keep_"))
                fencedep::log_report(r);
        });
        abba("keep_a", "keep_b");
        abba("pass_a", "pass_b");
        std::printf("probe: %llu splats\n", static_cast<unsigned long long>(fencedep::splat_count()));
    } else if (mode == "concurrent" && argc > 2) {
        concurrent(std::atoi(argv[2]));
    } else if (mode == "three") {
        three_splats();
    } else if (mode == "three-handler") {
        fencedep::set_report_handler([](const fencedep::report& r) { std::printf("handler: %s\n", r.title.c_str()); });
        three_splats();
        std::printf("splat_count: %llu\n", static_cast<unsigned long long>(fencedep::splat_count()));
    } else if (mode == "names") {
        pthread_setname_np(pthread_self(), "probe\tthread");
        abba("line\nbreak", "tab\there\x01\\");
    } else {
        say("probe: unknown mode");
        return 1;
    }
    say("probe: done");
    return 0;
}
