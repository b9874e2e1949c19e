// SPDX-License-Identifier: MIT
// Suppression files as a program meets them: the probe makes three splats (two cycles, one
// recursion) and runs with a suppressions file; what is printed, the exit status, the summary and
// the handler's share are checked, and so are the errors for files that cannot be used.
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "probe_run.h"

using fencedep::testing::describe;
using fencedep::testing::temp_dir;
using namespace report_test;

namespace {

const std::string recursive_title = "WARNING: possible recursive locking detected";

// A suppressions file in its own directory, with the options that name it.
struct suppressions_file {
    temp_dir dir;
    std::filesystem::path path = dir.path / "fencedep.supp";

    explicit suppressions_file(const std::string& text) { std::ofstream(path) << text; }
    run_options options(const std::string& more = "") const {
        return with_options("suppressions=" + path.string() + (more.empty() ? "" : ":" + more));
    }
};

// The program stopped before main with status 2 and exactly this line.
void check_stopped(const spawn_result& result, const std::string& error) {
    INFO(describe(result));
    CHECK(result.exit_code() == 2);
    CHECK(result.out.empty());
    CHECK(result.err == error + "\n");
}

}  // namespace

TEST_SUITE("report") {

TEST_CASE("without suppressions the probe makes two circular splats and a recursive one") {
    const spawn_result result = run(PROBE_PATH, {"three"});
    INFO(describe(result));
    CHECK(result.exit_code() == 66);
    CHECK(count(result.err, splat_title) == 2);
    CHECK(count(result.err, recursive_title) == 1);
    CHECK(contains(result.err, "(driver_a::ring){write}"));
    CHECK_FALSE(contains(result.err, "suppressed"));
}

TEST_CASE("a class pattern and a frame pattern hold back their reports; the others are printed") {
    const suppressions_file file("# driver A takes its ring and scheduler locks in both orders on purpose\n"
                                 "circular:driver_a::\n"
                                 "\n"
                                 "  recursive:*driver_b_recurse*  \r\n"
                                 "circular:no_such_lock\n");
    const spawn_result result = run(PROBE_PATH, {"three"}, file.options());
    INFO(describe(result));
    CHECK(result.exit_code() == 66);
    CHECK(result.out == "probe: done\n");
    CHECK(count(result.err, splat_title) == 1);
    CHECK(contains(result.err, "(other_a){write}"));
    CHECK_FALSE(contains(result.err, "driver_a::"));
    CHECK_FALSE(contains(result.err, recursive_title));
    // The unmatched rule is not counted; without print_suppressions the rules are not listed.
    CHECK(result.err.ends_with("\nfencedep: 2 reports suppressed by 2 rules\n"));
    CHECK(count(result.err, "suppressed") == 1);
}

TEST_CASE("everything suppressed: exit status 0, and print_suppressions lists the rules that matched") {
    const suppressions_file file("circular:^driver_a::ring$\n"
                                 "circular:other_*\n"
                                 "recursive:driver_b_recurse\n"
                                 "unlock:driver_b_recurse\n"
                                 "circular:driver_a\n");
    const spawn_result result = run(PROBE_PATH, {"three"}, file.options("print_suppressions=1"));
    INFO(describe(result));
    CHECK(result.exit_code() == 0);
    CHECK(result.out == "probe: done\n");
    const std::string at = " (" + file.path.string() + ":";
    // The first rule that matches counts the report; the later circular:driver_a matches the same
    // report and is not counted.
    CHECK(result.err == "fencedep: 3 reports suppressed by 3 rules\n"
                        "Suppressions used:\n"
                        "  count rule\n"
                        "      1 circular:^driver_a::ring$" + at + "1)\n"
                        "      1 circular:other_*" + at + "2)\n"
                        "      1 recursive:driver_b_recurse" + at + "3)\n");
}

TEST_CASE("a suppressed report does not reach the report handler nor splat_count()") {
    const suppressions_file file("circular:driver_a\n");
    const spawn_result result = run(PROBE_PATH, {"three-handler"}, file.options());
    INFO(describe(result));
    CHECK(result.exit_code() == 0);
    CHECK(result.out == "handler: " + splat_title + "\nhandler: " + recursive_title + "\nsplat_count: 2\nprobe: done\n");
    CHECK(result.err == "fencedep: 1 report suppressed by 1 rule\n");
}

TEST_CASE("a suppressions file that cannot be used stops the program before main with status 2") {
    const std::string types = "circular, recursive, unlock, freed, thread_exit, container, nest_lock";
    SUBCASE("an unknown type, named with its line, even with validation off") {
        const suppressions_file file("circular:x\n\n# TSan's name for it\ndeadlock:foo\n");
        run_options how = file.options();
        how.fencedep = "0";
        check_stopped(run(PROBE_PATH, {"three"}, how),
                      "fencedep: error: suppressions file '" + file.path.string() +
                          "', line 4: unknown type 'deadlock'; expected one of " + types);
    }
    SUBCASE("a line without a type") {
        const suppressions_file file("circular:x\ndriver_a\n");
        check_stopped(run(PROBE_PATH, {"three"}, file.options()),
                      "fencedep: error: suppressions file '" + file.path.string() +
                          "', line 2: 'driver_a' is not of the form TYPE:PATTERN; TYPE is one of " + types);
    }
    SUBCASE("a missing file") {
        const temp_dir dir;
        const std::string path = (dir.path / "absent.supp").string();
        check_stopped(run(PROBE_PATH, {"three"}, with_options("suppressions=" + path)),
                      "fencedep: error: cannot read suppressions file '" + path + "': No such file or directory");
    }
    SUBCASE("a directory") {
        const temp_dir dir;
        check_stopped(run(PROBE_PATH, {"three"}, with_options("suppressions=" + dir.path.string())),
                      "fencedep: error: cannot read suppressions file '" + dir.path.string() + "': Is a directory");
    }
}

}  // TEST_SUITE
