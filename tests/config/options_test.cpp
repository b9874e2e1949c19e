// SPDX-License-Identifier: MIT
// parse_options and load_options: defaults, every key, and the exact text of every diagnostic.
#include <doctest/doctest.h>

#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "config/escape.h"
#include "config/options.h"

using namespace fencedep::detail;

namespace {

constexpr int pid = 4242;

parse_result parse(const char* fencedep_options, const char* fencedep = "1") {
    return parse_options(fencedep, fencedep_options, pid);
}

// Parses `fencedep_options`, requires that it was accepted without diagnostics, and returns the
// options.
options accepted(const char* fencedep_options) {
    INFO("FENCEDEP_OPTIONS=", fencedep_options);
    parse_result result = parse(fencedep_options);
    REQUIRE(result.error == "");
    REQUIRE(result.warnings.empty());
    return result.opts;
}

// Parses `fencedep_options` and returns the error line, which must be there.
std::string rejected(const char* fencedep_options) {
    INFO("FENCEDEP_OPTIONS=", fencedep_options);
    const parse_result result = parse(fencedep_options);
    REQUIRE(result.error != "");
    return result.error;
}

std::string invalid(const std::string& value, const std::string& key, const std::string& expected) {
    return "fencedep: error: FENCEDEP_OPTIONS: invalid value '" + value + "' for '" + key +
           "': " + expected;
}

const std::string known_options =
    "known options: log_path, log_format, sarif_path, abort_on_splat, exitcode, stack_depth, symbolize, "
    "max_classes, max_edges, max_chains, max_lock_depth, container_rules, enable_signaling, preload_classes, "
    "graph_path, suppressions, print_suppressions";

std::string unknown(const std::string& key) {
    return "fencedep: warning: unknown option '" + key + "' in FENCEDEP_OPTIONS; " + known_options;
}

}  // namespace

TEST_SUITE("config") {

TEST_CASE("defaults, with neither variable set") {
    const parse_result result = parse_options(nullptr, nullptr, pid);
    CHECK(result.error == "");
    CHECK(result.warnings.empty());
    const options& opts = result.opts;
    CHECK_FALSE(opts.enabled);
    CHECK(opts.log_path == "");
    CHECK(opts.log_format == log_format_mode::text);
    CHECK(opts.sarif_path == "");
    CHECK_FALSE(opts.abort_on_splat);
    CHECK(opts.exitcode == 66);
    CHECK(opts.stack_depth == 32);
    CHECK(opts.symbolize);
    CHECK(opts.max_classes == 8192);
    CHECK(opts.max_edges == 32768);
    CHECK(opts.max_chains == 65536);
    CHECK(opts.max_lock_depth == 48);
    CHECK(opts.container_rules == container_rules_mode::warn);
    CHECK(opts.enable_signaling == enable_signaling_mode::locked);
    CHECK(opts.preload_classes == preload_classes_mode::site);
}

TEST_CASE("FENCEDEP switches validation on with 1 and off with 0 or unset") {
    CHECK_FALSE(parse_options(nullptr, nullptr, pid).opts.enabled);
    CHECK_FALSE(parse_options("0", nullptr, pid).opts.enabled);
    const parse_result on = parse_options("1", nullptr, pid);
    CHECK(on.opts.enabled);
    CHECK(on.error == "");
}

TEST_CASE("any other FENCEDEP value is an error") {
    for (const char* value : {"yes", "", "true", "2", "01", " 1", "1 ", "-1", "on"}) {
        INFO("FENCEDEP=", value);
        const parse_result result = parse_options(value, nullptr, pid);
        CHECK(result.error == "fencedep: error: FENCEDEP='" + std::string(value) +
                                  "': expected 0 or 1");
        CHECK_FALSE(result.opts.enabled);
    }
}

TEST_CASE("a bad FENCEDEP is reported before anything in FENCEDEP_OPTIONS") {
    const parse_result result = parse_options("yes", "bogus=1:exitcode=abc", pid);
    CHECK(result.error == "fencedep: error: FENCEDEP='yes': expected 0 or 1");
    CHECK(result.warnings.empty());
}

TEST_CASE("FENCEDEP_OPTIONS is validated while fencedep is off") {
    for (const char* fencedep : {static_cast<const char*>(nullptr), "0"}) {
        INFO("FENCEDEP=", fencedep ? fencedep : "(unset)");
        const parse_result bad = parse_options(fencedep, "exitcode=abc", pid);
        CHECK(bad.error == invalid("abc", "exitcode", "expected an integer from 0 to 255"));
        const parse_result typo = parse_options(fencedep, "stak_depth=3", pid);
        CHECK(typo.warnings.size() == 1);
        const parse_result good = parse_options(fencedep, "exitcode=9", pid);
        CHECK(good.opts.exitcode == 9);
        CHECK_FALSE(good.opts.enabled);
    }
}

TEST_CASE("every key is parsed") {
    SUBCASE("log_path") { CHECK(accepted("log_path=/tmp/fd.log").log_path == "/tmp/fd.log"); }
    SUBCASE("log_format") {
        CHECK(accepted("log_format=json").log_format == log_format_mode::json);
        CHECK(accepted("log_format=json:log_format=text").log_format == log_format_mode::text);
    }
    SUBCASE("sarif_path") { CHECK(accepted("sarif_path=/tmp/fd.sarif").sarif_path == "/tmp/fd.sarif"); }
    SUBCASE("abort_on_splat") {
        CHECK(accepted("abort_on_splat=1").abort_on_splat);
        CHECK(accepted("abort_on_splat=true").abort_on_splat);
        CHECK_FALSE(accepted("abort_on_splat=1:abort_on_splat=0").abort_on_splat);
        CHECK_FALSE(accepted("abort_on_splat=1:abort_on_splat=false").abort_on_splat);
    }
    SUBCASE("exitcode") {
        CHECK(accepted("exitcode=0").exitcode == 0);
        CHECK(accepted("exitcode=3").exitcode == 3);
        CHECK(accepted("exitcode=255").exitcode == 255);
        CHECK(accepted("exitcode=007").exitcode == 7);
    }
    SUBCASE("stack_depth") {
        CHECK(accepted("stack_depth=1").stack_depth == 1);
        CHECK(accepted("stack_depth=256").stack_depth == 256);
    }
    SUBCASE("symbolize") {
        CHECK_FALSE(accepted("symbolize=0").symbolize);
        CHECK_FALSE(accepted("symbolize=false").symbolize);
        CHECK(accepted("symbolize=0:symbolize=1").symbolize);
        CHECK(accepted("symbolize=0:symbolize=true").symbolize);
    }
    SUBCASE("max_classes") {
        CHECK(accepted("max_classes=1").max_classes == 1);
        CHECK(accepted("max_classes=4194304").max_classes == 4194304);
    }
    SUBCASE("max_edges") {
        CHECK(accepted("max_edges=1").max_edges == 1);
        CHECK(accepted("max_edges=16777216").max_edges == 16777216);
    }
    SUBCASE("max_chains") {
        CHECK(accepted("max_chains=1").max_chains == 1);
        CHECK(accepted("max_chains=16777216").max_chains == 16777216);
    }
    SUBCASE("max_lock_depth") {
        CHECK(accepted("max_lock_depth=1").max_lock_depth == 1);
        CHECK(accepted("max_lock_depth=1024").max_lock_depth == 1024);
    }
    SUBCASE("container_rules") {
        CHECK(accepted("container_rules=off").container_rules == container_rules_mode::off);
        CHECK(accepted("container_rules=warn").container_rules == container_rules_mode::warn);
        CHECK(accepted("container_rules=error").container_rules == container_rules_mode::error);
    }
    SUBCASE("enable_signaling") {
        CHECK(accepted("enable_signaling=unlocked").enable_signaling ==
              enable_signaling_mode::unlocked);
        CHECK(accepted("enable_signaling=unlocked:enable_signaling=locked").enable_signaling ==
              enable_signaling_mode::locked);
    }
    SUBCASE("preload_classes") {
        CHECK(accepted("preload_classes=address").preload_classes == preload_classes_mode::address);
        CHECK(accepted("preload_classes=address:preload_classes=site").preload_classes ==
              preload_classes_mode::site);
    }
    SUBCASE("suppressions and print_suppressions") {
        CHECK(accepted("suppressions=/tmp/fd.supp").suppressions == "/tmp/fd.supp");
        CHECK(accepted("print_suppressions=1").print_suppressions);
        CHECK_FALSE(accepted("").print_suppressions);
    }
}

TEST_CASE("several keys at once, the last of a repeated key winning") {
    const options opts = accepted(
        "exitcode=3:stack_depth=8:symbolize=0:max_classes=10:max_edges=20:max_chains=30:"
        "max_lock_depth=5:container_rules=error:enable_signaling=unlocked:preload_classes=address:abort_on_splat=1:"
        "log_path=/a:log_path=/b:exitcode=4");
    CHECK(opts.enabled);
    CHECK(opts.exitcode == 4);
    CHECK(opts.stack_depth == 8);
    CHECK_FALSE(opts.symbolize);
    CHECK(opts.max_classes == 10);
    CHECK(opts.max_edges == 20);
    CHECK(opts.max_chains == 30);
    CHECK(opts.max_lock_depth == 5);
    CHECK(opts.container_rules == container_rules_mode::error);
    CHECK(opts.enable_signaling == enable_signaling_mode::unlocked);
    CHECK(opts.preload_classes == preload_classes_mode::address);
    CHECK(opts.abort_on_splat);
    CHECK(opts.log_path == "/b");
}

TEST_CASE("log_path expands %p to the pid") {
    CHECK(accepted("log_path=/tmp/dir/fd.%p").log_path == "/tmp/dir/fd.4242");
    CHECK(accepted("log_path=%p/%p.log").log_path == "4242/4242.log");
    // Only %p is special; other percent signs are kept as written.
    CHECK(accepted("log_path=/tmp/50%.%d%").log_path == "/tmp/50%.%d%");
    CHECK(parse_options("1", "log_path=/x.%p", 7).opts.log_path == "/x.7");
    CHECK(accepted("sarif_path=/tmp/fd.%p.sarif").sarif_path == "/tmp/fd.4242.sarif");
}

TEST_CASE("graph_path expands %p to the pid, and is off by default") {
    CHECK(accepted("").graph_path == "");
    CHECK(accepted("graph_path=/tmp/graph.%p.json").graph_path == "/tmp/graph.4242.json");
    CHECK(accepted("graph_path=g.json").log_path == "");
    CHECK(rejected("graph_path=") ==
          invalid("", "graph_path", "expected a non-empty file path (%p expands to the pid)"));
}

TEST_CASE("empty segments are ignored") {
    CHECK(accepted("").exitcode == 66);
    CHECK(accepted(":").exitcode == 66);
    CHECK(accepted("::exitcode=3::").exitcode == 3);
    const options opts = accepted(":exitcode=5::stack_depth=7:");
    CHECK(opts.exitcode == 5);
    CHECK(opts.stack_depth == 7);
}

TEST_CASE("malformed values name the key, the value and what is accepted") {
    const std::string boolean = "expected 0, 1, true or false";
    CHECK(rejected("log_path=") ==
          invalid("", "log_path", "expected a non-empty file path (%p expands to the pid)"));
    CHECK(rejected("log_format=xml") == invalid("xml", "log_format", "expected text or json"));
    CHECK(rejected("log_format=JSON") == invalid("JSON", "log_format", "expected text or json"));
    CHECK(rejected("sarif_path=") ==
          invalid("", "sarif_path", "expected a non-empty file path (%p expands to the pid)"));
    CHECK(rejected("abort_on_splat=2") == invalid("2", "abort_on_splat", boolean));
    CHECK(rejected("abort_on_splat=yes") == invalid("yes", "abort_on_splat", boolean));
    CHECK(rejected("abort_on_splat=") == invalid("", "abort_on_splat", boolean));
    CHECK(rejected("symbolize=TRUE") == invalid("TRUE", "symbolize", boolean));
    CHECK(rejected("container_rules=on") ==
          invalid("on", "container_rules", "expected off, warn or error"));
    CHECK(rejected("container_rules=") ==
          invalid("", "container_rules", "expected off, warn or error"));
    CHECK(rejected("enable_signaling=maybe") ==
          invalid("maybe", "enable_signaling", "expected locked or unlocked"));
    CHECK(rejected("preload_classes=instance") ==
          invalid("instance", "preload_classes", "expected site or address"));
    CHECK(rejected("preload_classes=") == invalid("", "preload_classes", "expected site or address"));
    CHECK(rejected("suppressions=") == invalid("", "suppressions", "expected a non-empty file path"));
    CHECK(rejected("print_suppressions=yes") ==
          invalid("yes", "print_suppressions", "expected 0, 1, true or false"));
}

TEST_CASE("numbers are decimal, unsigned, in range, with nothing after them") {
    struct range {
        const char* key;
        const char* expected;
        const char* below;
        const char* above;
    };
    const range ranges[] = {
        {"exitcode", "expected an integer from 0 to 255", nullptr, "256"},
        {"stack_depth", "expected an integer from 1 to 256", "0", "257"},
        {"max_classes", "expected an integer from 1 to 4194304", "0", "4194305"},
        {"max_edges", "expected an integer from 1 to 16777216", "0", "16777217"},
        {"max_chains", "expected an integer from 1 to 16777216", "0", "16777217"},
        {"max_lock_depth", "expected an integer from 1 to 1024", "0", "1025"},
    };
    for (const range& r : ranges) {
        const std::string key = r.key;
        std::vector<std::string> bad = {"abc", "", "+5", "-1", "5x", " 5", "5 ", "0x10", "1e2",
                                        "1.0", "99999999999999999999999", "18446744073709551617",
                                        r.above};
        if (r.below)
            bad.emplace_back(r.below);
        for (const std::string& value : bad) {
            // Quoted, so that the white space in some of them is part of the value.
            const std::string segment = key + "='" + value + "'";
            CHECK(rejected(segment.c_str()) == invalid(value, key, r.expected));
        }
    }
}

TEST_CASE("the first malformed value stops the parse with one error") {
    const parse_result result = parse("exitcode=abc:stack_depth=0:bogus=1");
    CHECK(result.error == invalid("abc", "exitcode", "expected an integer from 0 to 255"));
    CHECK(result.warnings.empty());
}

TEST_CASE("a segment without '=' is not of the form key=value") {
    for (const char* segment : {"foo", "exitcode", "=3", "="}) {
        const std::string options = std::string("stack_depth=4:") + segment + ":exitcode=1";
        CHECK(rejected(options.c_str()) == "fencedep: error: FENCEDEP_OPTIONS: '" +
                                               std::string(segment) +
                                               "' is not of the form key=value");
    }
}

TEST_CASE("a value may contain '='") {
    CHECK(accepted("log_path=/tmp/a=b").log_path == "/tmp/a=b");
}

TEST_CASE("options are separated by ':', ',' and white space, as in the sanitizers") {
    for (const char* line : {"log_path=/tmp/x,exitcode=3", "log_path=/tmp/x:exitcode=3",
                             "log_path=/tmp/x exitcode=3", "log_path=/tmp/x\texitcode=3",
                             "log_path=/tmp/x\nexitcode=3", "log_path=/tmp/x\r\nexitcode=3",
                             " ,log_path=/tmp/x, :\texitcode=3 ,"}) {
        const options opts = accepted(line);
        CHECK(opts.log_path == "/tmp/x");
        CHECK(opts.exitcode == 3);
    }
}

TEST_CASE("a value in quotes keeps its separators") {
    CHECK(accepted("log_path='/tmp/a,b:c d'").log_path == "/tmp/a,b:c d");
    CHECK(accepted("log_path=\"/tmp/a,b\":exitcode=3").log_path == "/tmp/a,b");
    CHECK(accepted("log_path=\"/tmp/a,b\":exitcode=3").exitcode == 3);
    // The other kind of quote is an ordinary character inside.
    CHECK(accepted("log_path=\"/tmp/it's\"").log_path == "/tmp/it's");
    CHECK(accepted("log_path='/tmp/\"x\"'").log_path == "/tmp/\"x\"");
    // A quote only opens a value at its start.
    CHECK(accepted("log_path=/tmp/it's").log_path == "/tmp/it's");
    CHECK(accepted("exitcode='7' stack_depth=\"9\"").stack_depth == 9);
    CHECK(rejected("log_path=''") ==
          invalid("", "log_path", "expected a non-empty file path (%p expands to the pid)"));
}

TEST_CASE("a quote must be closed, and followed by a separator or the end") {
    CHECK(rejected("exitcode=3:log_path='/tmp/x,exitcode=4") ==
          "fencedep: error: FENCEDEP_OPTIONS: the value of 'log_path' opens a quote (') that is not closed");
    CHECK(rejected("log_path=\"/tmp/x") ==
          "fencedep: error: FENCEDEP_OPTIONS: the value of 'log_path' opens a quote (\") that is not closed");
    CHECK(rejected("log_path='/tmp/x'y,exitcode=3") ==
          "fencedep: error: FENCEDEP_OPTIONS: the quoted value of 'log_path' is followed by more text; "
          "separate options with ':', ',' or white space");
}

TEST_CASE("control characters in keys and values are escaped in the diagnostics") {
    CHECK(rejected("exitcode='1\n2'") == invalid("1\\n2", "exitcode", "expected an integer from 0 to 255"));
    CHECK(rejected("exitcode='\x1b[31m\\'") ==
          invalid("\\x1b[31m\\\\", "exitcode", "expected an integer from 0 to 255"));
    CHECK(rejected("a\x01" "b") == "fencedep: error: FENCEDEP_OPTIONS: 'a\\x01b' is not of the form key=value");
    const parse_result result = parse("bell\a=1");
    REQUIRE(result.warnings.size() == 1);
    CHECK(result.warnings[0] == unknown("bell\\x07"));
    CHECK(parse_options("1\n", nullptr, pid).error == "fencedep: error: FENCEDEP='1\\n': expected 0 or 1");
}

TEST_CASE("escape writes control characters as C escapes and doubles the backslash") {
    CHECK(escape("plain name/42") == "plain name/42");
    CHECK(escape("a\nb\rc\td") == "a\\nb\\rc\\td");
    CHECK(escape(std::string_view("\0\x01\x1f\x7f", 4)) == "\\x00\\x01\\x1f\\x7f");
    CHECK(escape("back\\slash") == "back\\\\slash");
    CHECK(escape("caf\xc3\xa9 \x20~") == "caf\xc3\xa9  ~");
    CHECK(escape("") == "");
}

TEST_CASE("an unknown key is a warning that lists the known keys") {
    const parse_result result = parse("frobnicate=1:exitcode=3");
    CHECK(result.error == "");
    REQUIRE(result.warnings.size() == 1);
    CHECK(result.warnings[0] == unknown("frobnicate"));
    CHECK(result.opts.exitcode == 3);
}

TEST_CASE("an unknown key close to a known one gets a suggestion") {
    struct typo {
        const char* key;
        const char* meant;
    };
    const typo typos[] = {
        {"stak_depth", "stack_depth"},        // one deletion
        {"exit_code", "exitcode"},            // one insertion
        {"symbolise", "symbolize"},           // one substitution
        {"max_edgse", "max_edges"},           // a transposition is two edits
        {"abort_on_splats", "abort_on_splat"},
        {"logpath", "log_path"},
        {"max_chain", "max_chains"},
        {"max_edge", "max_edges"},
        {"Exitcode", "exitcode"},
    };
    for (const typo& t : typos) {
        const std::string options = std::string(t.key) + "=1";
        const parse_result result = parse(options.c_str());
        CHECK(result.error == "");
        REQUIRE(result.warnings.size() == 1);
        CHECK(result.warnings[0] ==
              unknown(t.key) + " (did you mean '" + std::string(t.meant) + "'?)");
    }
}

TEST_CASE("no suggestion for a key three or more edits away") {
    for (const char* key : {"stk_dpth", "depth", "abort", "max", "colour"}) {
        const std::string options = std::string(key) + "=1";
        const parse_result result = parse(options.c_str());
        REQUIRE(result.warnings.size() == 1);
        CHECK(result.warnings[0] == unknown(key));
    }
}

TEST_CASE("each unknown key gets its own warning; an unknown key's value is not checked") {
    const parse_result result = parse("alpha=1:stak_depth=:beta");
    // "beta" has no '=': malformed, even though the parse already warned about other keys.
    CHECK(result.error == "fencedep: error: FENCEDEP_OPTIONS: 'beta' is not of the form key=value");
    REQUIRE(result.warnings.size() == 2);
    CHECK(result.warnings[0] == unknown("alpha"));
    CHECK(result.warnings[1] == unknown("stak_depth") + " (did you mean 'stack_depth'?)");
}

TEST_CASE("current_options is one process-wide object") {
    CHECK(&current_options() == &current_options());
}

TEST_CASE("load_options fills current_options and prints warnings to stderr") {
    const options saved = current_options();
    const char* saved_fencedep = std::getenv("FENCEDEP");
    const char* saved_options = std::getenv("FENCEDEP_OPTIONS");
    const std::string fencedep_before = saved_fencedep ? saved_fencedep : "";
    const std::string options_before = saved_options ? saved_options : "";

    char path[] = "/tmp/fencedep-options-test-XXXXXX";
    const int capture = ::mkstemp(path);
    REQUIRE(capture >= 0);
    ::unlink(path);
    std::fflush(stderr);
    const int real_stderr = ::dup(STDERR_FILENO);
    REQUIRE(real_stderr >= 0);
    ::dup2(capture, STDERR_FILENO);

    ::setenv("FENCEDEP", "0", 1);
    ::setenv("FENCEDEP_OPTIONS", "exitcode=7:stak_depth=3:log_path=/tmp/fd.%p", 1);
    load_options();
    const options loaded = current_options();

    ::dup2(real_stderr, STDERR_FILENO);
    ::close(real_stderr);
    if (saved_fencedep)
        ::setenv("FENCEDEP", fencedep_before.c_str(), 1);
    else
        ::unsetenv("FENCEDEP");
    if (saved_options)
        ::setenv("FENCEDEP_OPTIONS", options_before.c_str(), 1);
    else
        ::unsetenv("FENCEDEP_OPTIONS");
    current_options() = saved;

    std::string printed(4096, '\0');
    const ssize_t length = ::pread(capture, printed.data(), printed.size(), 0);
    ::close(capture);
    REQUIRE(length >= 0);
    printed.resize(static_cast<std::size_t>(length));

    CHECK(printed == unknown("stak_depth") + " (did you mean 'stack_depth'?)\n");
    CHECK_FALSE(loaded.enabled);
    CHECK(loaded.exitcode == 7);
    CHECK(loaded.log_path == "/tmp/fd." + std::to_string(::getpid()));
}

}  // TEST_SUITE
