// SPDX-License-Identifier: MIT
// fencedep-run, black-box: programs built without fencedep, run through it, get exactly the
// reports their lock use calls for, and their own results (return values, errno, exit status)
// unchanged.
#include <doctest/doctest.h>

#include <signal.h>

#include <cstdlib>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "spawn.h"

using fencedep::testing::describe;
using fencedep::testing::read_file;
using fencedep::testing::spawn_result;
using fencedep::testing::temp_dir;

namespace {

struct preload_run {
    spawn_result result;
    std::string log;
    std::vector<std::string> kinds;  // of the reports in the log, in order
};

// The report kinds named by the header lines of a log (the README's "What it reports").
std::vector<std::string> report_kinds(const std::string& log) {
    const std::pair<const char*, const char*> headers[] = {
        {"WARNING: possible circular locking dependency detected", "circular_dependency"},
        {"WARNING: possible recursive locking detected", "recursive_locking"},
        {"WARNING: bad unlock balance detected!", "bad_unlock_balance"},
        {"WARNING: held lock freed!", "held_lock_freed"},
        {"BUG: max_lock_depth too low!", "lock_depth_exceeded"},
        {"BUG: max_classes too low!", "table_exhausted"},
        {"BUG: max_edges too low!", "table_exhausted"},
        {"BUG: max_chains too low!", "table_exhausted"},
    };
    std::vector<std::string> kinds;
    std::istringstream lines(log);
    for (std::string line; std::getline(lines, line);) {
        if (line.ends_with("still has locks held!"))
            kinds.emplace_back("lock_held_at_thread_exit");
        for (const auto& [header, kind] : headers)
            if (line == header)
                kinds.emplace_back(kind);
    }
    return kinds;
}

// The environment of a run, whatever the test run's own holds. Under AddressSanitizer, the
// preload library comes before the sanitizer's runtime in the load order, which the runtime would
// refuse. Elsewhere the variable means nothing.
fencedep::testing::env_changes clean_environment() {
    const char* asan = std::getenv("ASAN_OPTIONS");
    return {{"FENCEDEP", std::nullopt},
            {"FENCEDEP_OPTIONS", std::nullopt},
            {"LD_PRELOAD", std::nullopt},
            {"ASAN_OPTIONS", std::string(asan ? asan : "") + ":verify_asan_link_order=0"}};
}

// Runs `program case` through fencedep-run with the log in a file, and `options` if any.
preload_run run(const char* program, const char* which, const std::string& options = "") {
    const temp_dir dir;
    const std::string log = (dir.path / "fencedep.log").string();
    std::vector<std::string> argv = {FENCEDEP_RUN, "--options", "log_path=" + log};
    if (!options.empty()) {
        argv.emplace_back("--options");
        argv.push_back(options);
    }
    argv.emplace_back(program);
    argv.emplace_back(which);
    preload_run out{fencedep::testing::spawn(argv, clean_environment(), std::chrono::seconds(60)), "", {}};
    out.log = read_file(log);
    out.kinds = report_kinds(out.log);
    return out;
}

// Runs `program case` with the preload and FENCEDEP=0 (not through fencedep-run, which switches
// validation on); reports go to stderr.
spawn_result run_preloaded_off(const char* program, const char* which) {
    auto environment = clean_environment();
    environment["FENCEDEP"] = "0";
    environment["LD_PRELOAD"] = FENCEDEP_PRELOAD;
    return fencedep::testing::spawn({program, which}, environment, std::chrono::seconds(60));
}

bool contains(const std::string& text, const std::string& part) {
    return text.find(part) != std::string::npos;
}

using kinds = std::vector<std::string>;

// A run that ended by itself with exactly the `expected` reports, the exit status that follows
// from them (66 after a splat, else the program's 0), and the program's own output.
void check_run(const preload_run& r, const kinds& expected, const std::string& out) {
    INFO(describe(r.result), "--- log:\n", r.log);
    CHECK_FALSE(r.result.timed_out);
    CHECK(r.kinds == expected);
    CHECK(r.result.exit_code() == (expected.empty() ? 0 : 66));
    CHECK(r.result.out == out);
}

void check_silent(const preload_run& r, const std::string& out) {
    check_run(r, {}, out);
}

// The class names of a circular dependency report's chain ("-> #0 (name){write}:").
std::vector<std::string> chain_classes(const std::string& log) {
    std::vector<std::string> names;
    std::istringstream lines(log);
    for (std::string line; std::getline(lines, line);) {
        const std::size_t open = line.find("(");
        if (line.starts_with("-> #") && open != std::string::npos)
            names.push_back(line.substr(open + 1, line.rfind("){") - open - 1));
    }
    return names;
}

}  // namespace

TEST_SUITE("preload") {

TEST_CASE("fencedep-run --help explains itself; usage errors exit with 2") {
    const spawn_result help = fencedep::testing::spawn({FENCEDEP_RUN, "--help"}, clean_environment());
    INFO(describe(help));
    CHECK(help.exit_code() == 0);
    CHECK(help.out.starts_with("Usage: fencedep-run [--options KEY=VALUE:...] [--] PROGRAM [ARGUMENTS...]\n"));
    CHECK(contains(help.out, "preload_classes=site|address"));

    const spawn_result nothing = fencedep::testing::spawn({FENCEDEP_RUN}, clean_environment());
    CHECK(nothing.exit_code() == 2);
    CHECK(nothing.err.starts_with("Usage: fencedep-run"));

    const spawn_result unknown = fencedep::testing::spawn({FENCEDEP_RUN, "--verbose", "/bin/true"}, clean_environment());
    CHECK(unknown.exit_code() == 2);
    CHECK(unknown.err == "fencedep-run: unknown option '--verbose' (see fencedep-run --help)\n");
}

TEST_CASE("fencedep-run forwards the exit status and the environment it sets") {
    auto environment = clean_environment();
    environment["FENCEDEP_OPTIONS"] = "exitcode=3";
    const spawn_result variables = fencedep::testing::spawn(
        {FENCEDEP_RUN, "--options", "symbolize=0", "--options=max_lock_depth=64", PTHREAD_CASES, "environment"},
        environment);
    INFO(describe(variables));
    CHECK(variables.exit_code() == 7);
    CHECK(variables.out == "1 exitcode=3:symbolize=0:max_lock_depth=64\npreloaded\n");
}

TEST_CASE("a bad preload_classes value stops the program before main") {
    const preload_run r = run(PTHREAD_CASES, "trylock", "preload_classes=instance");
    INFO(describe(r.result));
    CHECK(r.result.exit_code() == 2);
    CHECK(r.result.out == "");
    CHECK(contains(r.result.err, "invalid value 'instance' for 'preload_classes': expected site or address"));
}

TEST_CASE("ABBA between two threads: one cycle between the two init sites, exit status 66") {
    const preload_run r = run(PTHREAD_CASES, "abba_threads");
    // The program's own line: its locks' addresses, which the report prints as the locks' (the
    // preload's state for a lock lives elsewhere).
    const std::string addresses = r.result.out.substr(0, r.result.out.find('\n'));
    check_run(r, {"circular_dependency"}, addresses + "\nabba done\n");
    const std::size_t b_at = addresses.find(" b=");
    REQUIRE(addresses.starts_with("a=0x"));
    REQUIRE(b_at != std::string::npos);
    const std::string a = addresses.substr(2, b_at - 2);
    const std::string b = addresses.substr(b_at + 3);
    CHECK(contains(r.log, "is trying to acquire lock:\n" + a + " (pthread_cases.c:"));
    CHECK(contains(r.log, "but task is already holding lock:\n" + b + " (pthread_cases.c:"));
    const std::vector<std::string> chain = chain_classes(r.log);
    REQUIRE(chain.size() == 2);
    CHECK(chain[0].starts_with("pthread_cases.c:"));
    CHECK(chain[0].ends_with(" in new_lock_b"));
    CHECK(chain[1].ends_with(" in new_lock_a"));
    // "at:" is the program's call, not the preload.
    CHECK(contains(r.log, ", at: lock_pair+"));
    CHECK_FALSE(contains(r.log, "libfencedep_preload"));
}

TEST_CASE("a suppressions file holds back the ABBA by a frame of the program, and the summary is logged") {
    const temp_dir dir;
    const std::string file = (dir.path / "pthread.supp").string();
    std::ofstream(file) << "circular:lock_pair\n";
    const preload_run r = run(PTHREAD_CASES, "abba_threads", "suppressions=" + file + ":print_suppressions=1");
    // The program's first line is its locks' addresses.
    check_silent(r, r.result.out.substr(0, r.result.out.find('\n') + 1) + "abba done\n");
    CHECK(r.result.out.starts_with("a=0x"));
    CHECK(r.log == "fencedep: 1 report suppressed by 1 rule\nSuppressions used:\n  count rule\n"
                   "      1 circular:lock_pair (" + file + ":1)\n");
}

TEST_CASE("the preload with FENCEDEP=0 changes nothing") {
    const spawn_result r = run_preloaded_off(PTHREAD_CASES, "abba_threads");
    INFO(describe(r));
    CHECK(r.exit_code() == 0);
    CHECK(r.out.starts_with("a=0x"));
    CHECK(r.out.ends_with("\nabba done\n"));
    CHECK(r.err == "");
}

// Started with FENCEDEP=0, the preload sends pthread calls straight to glibc; the program's own
// enable(true) must turn them back to the validator (the engine tells the preload of the switch).
TEST_CASE("validation switched on by the program after starting off: its pthread calls are validated from then on") {
    const spawn_result r = run_preloaded_off(PTHREAD_CASES, "switched");
    INFO(describe(r));
    CHECK(r.exit_code() == 66);
    CHECK(r.out == "switched done\n");
    CHECK(report_kinds(r.err) == kinds{"circular_dependency"});
    const std::vector<std::string> chain = chain_classes(r.err);
    REQUIRE(chain.size() == 2);
    CHECK(chain[0].ends_with(" in new_lock_b"));
    CHECK(chain[1].ends_with(" in new_lock_a"));
}

TEST_CASE("a real two-thread deadlock is reported before it blocks") {
    const preload_run r = run(PTHREAD_CASES, "deadlock", "abort_on_splat=1");
    INFO(describe(r.result), "--- log:\n", r.log);
    CHECK_FALSE(r.result.timed_out);
    CHECK(r.result.signal() == SIGABRT);
    CHECK(r.result.out == "both threads hold their first lock\n");
    CHECK(r.kinds == kinds{"circular_dependency"});
}

TEST_CASE("trylocks in the reverse order, and a timed lock that times out, are not reported") {
    check_silent(run(PTHREAD_CASES, "trylock"), "trylock a: 0\n"
                                                "trylock a, held elsewhere: Device or resource busy\n"
                                                "timedlock a, held elsewhere: Connection timed out\n");
}

TEST_CASE("an errorcheck mutex: relock and foreign unlocks reported, glibc's answers and errno kept") {
    check_run(run(PTHREAD_CASES, "errorcheck"), {"recursive_locking", "bad_unlock_balance", "bad_unlock_balance"},
              "relock: Resource deadlock avoided\n"
              "errno: 4242\n"
              "unlock from another thread: Operation not permitted\n"
              "unlock again: Operation not permitted\n");
}

TEST_CASE("a recursive mutex retaken by its owner is not reported; an unlock too many is") {
    check_run(run(PTHREAD_CASES, "recursive"), {"bad_unlock_balance"}, "unlock unowned: Operation not permitted\n");
}

TEST_CASE("statically initialized locks are named by their symbols") {
    const preload_run r = run(PTHREAD_CASES, "static_locks");
    check_run(r, {"circular_dependency"}, "");
    CHECK(chain_classes(r.log) == std::vector<std::string>{"stats_lock", "config_lock"});
}

TEST_CASE("condition variables: a producer and a consumer work and are not reported") {
    check_silent(run(PTHREAD_CASES, "condvar"), "sum: 500500\n");
}

TEST_CASE("a condition wait retakes its mutex under the locks taken after it: a cycle") {
    const preload_run r = run(PTHREAD_CASES, "condvar_cycle");
    check_run(r, {"circular_dependency"}, "woken\n");
    const std::vector<std::string> chain = chain_classes(r.log);
    REQUIRE(chain.size() == 2);
    CHECK(chain[0].ends_with(" in new_lock_b"));
    CHECK(chain[1].ends_with(" in new_lock_a"));
}

// glibc reaches a C cancellation handler by a longjmp of its own over the interposer's frames,
// which AddressSanitizer does not see, so it finds their stack poisoning stale and stops (a CHECK in
// asan_thread.cpp) under g++'s runtime. clang's runtime takes it in stride, and clang 14 does not
// define __SANITIZE_ADDRESS__, so CI's clang-ASan run covers the case as well as the plain one.
#if defined(__SANITIZE_ADDRESS__)
constexpr bool cancellation_runs = false;
#else
constexpr bool cancellation_runs = true;
#endif

TEST_CASE("a cancelled condition wait holds its mutex again, for the cancellation handler to unlock" *
          doctest::skip(!cancellation_runs)) {
    check_silent(run(PTHREAD_CASES, "condvar_cancel"), "cancelled\n");
}

TEST_CASE("4096 locks initialized and destroyed at reused addresses: no report, in both class rules") {
    check_silent(run(PTHREAD_CASES, "reuse"), "reused\n");
    check_silent(run(PTHREAD_CASES, "reuse", "preload_classes=address"), "reused\n");
}

TEST_CASE("310 locks held at once: max_lock_depth reported once, or raised") {
    const preload_run over = run(PTHREAD_CASES, "many_held");
    check_run(over, {"lock_depth_exceeded"}, "held 310\n");
    CHECK(contains(over.log, "depth: 49  max: 48!"));
    check_silent(run(PTHREAD_CASES, "many_held", "max_lock_depth=512"), "held 310\n");
}

TEST_CASE("read-write locks: readers in both orders around a mutex are no cycle, a writer makes one") {
    check_silent(run(PTHREAD_CASES, "rwlock_readers"), "rwlock done\n");
    check_run(run(PTHREAD_CASES, "rwlock_writer"), {"circular_dependency"}, "rwlock done\n");
}

TEST_CASE("two rwlocks in both orders: a cycle unless both are read under glibc's default reader preference") {
    check_silent(run(PTHREAD_CASES, "rwlock_read_inversion"), "rwlock inversion done\n");
    // The class of each is its init call's line, in rwlock_inversion; `reader_line` is the end
    // of the reader's line: the held lock's, or the link of the lock being acquired.
    const auto check_cycle = [](const char* which, const std::string& reader_line) {
        CAPTURE(which);
        const preload_run r = run(PTHREAD_CASES, which);
        check_run(r, {"circular_dependency"}, "rwlock inversion done\n");
        const std::vector<std::string> chain = chain_classes(r.log);
        REQUIRE(chain.size() == 2);
        CHECK(chain[0].ends_with(" in rwlock_inversion"));
        CHECK(chain[1].ends_with(" in rwlock_inversion"));
        CHECK(chain[0] != chain[1]);
        CHECK(contains(r.log, reader_line));
    };
    check_cycle("rwlock_read_write_inversion", "){recursive read}, at: rwlock_pair+");
    check_cycle("rwlock_write_timed_read_inversion", "){recursive read}:");
    check_cycle("rwlock_nonrecursive_read_inversion", "){read}, at: rwlock_pair+");
}

TEST_CASE("spinlocks are validated as mutexes are") {
    check_run(run(PTHREAD_CASES, "spinlocks"), {"circular_dependency"}, "trylock held: Device or resource busy\n");
}

TEST_CASE("std::mutex members of heap objects: classes of the sites that first lock them") {
    for (const char* program : {STD_CASES, STD_CASES_O0}) {
        CAPTURE(program);
        const preload_run r = run(program, "mutex_abba");
        check_run(r, {"circular_dependency"}, "total 0\n");
        const std::vector<std::string> chain = chain_classes(r.log);
        REQUIRE(chain.size() == 2);
        for (const std::string& name : chain) {
            CHECK(name.starts_with("std_cases.cpp:"));
            CHECK(name.ends_with(" in (anonymous namespace)::transfer"));
        }
        CHECK(chain[0] != chain[1]);
    }
}

TEST_CASE("std::recursive_mutex, std::condition_variable and std::timed_mutex: nothing to report") {
    for (const char* program : {STD_CASES, STD_CASES_O0}) {
        CAPTURE(program);
        check_silent(run(program, "recursive_mutex"), "recursive done\n");
        check_silent(run(program, "condition_variable"), "sum 500500\n");
        check_silent(run(program, "timed_mutex"), "try_lock_for: 0\n");
    }
}

TEST_CASE("std::shared_mutex (glibc's default rwlock): readers in both orders around a mutex are no cycle, a writer makes one") {
    check_silent(run(STD_CASES, "shared_readers"), "shared done\n");
    check_run(run(STD_CASES, "shared_writer"), {"circular_dependency"}, "shared done\n");
}

TEST_CASE("std::mutex rebuilt in reused memory is a new lock, in both class rules") {
    check_silent(run(STD_CASES, "reuse"), "reused\n");
    check_silent(run(STD_CASES, "reuse", "preload_classes=address"), "reused\n");
}

}  // TEST_SUITE
