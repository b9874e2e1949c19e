// SPDX-License-Identifier: MIT
// The dump reader against random and mutated input, seeded so that a failure repeats: each input
// is either accepted or refused with dump_error; any other exception, a crash or a sanitizer
// report fails. tests/fuzz/dump_fuzzer.cpp is the libFuzzer form of the same check (clang only).
#include <doctest/doctest.h>

#include <random>
#include <string>
#include <vector>

#include "report/graph_dump.h"

namespace {

// Valid dumps to mutate: the JSON parser refuses most random bytes, so mutations of valid
// input are what reach the field checks.
std::vector<std::string> seeds() {
    using fencedep::detail::graph_dump;
    graph_dump d;
    d.program = "seed";
    d.pid = 7;
    d.time = "2026-12-03T00:00:00Z";
    d.chains = 3;
    d.classes = {{"a", "", "a.cpp:1 in f"}, {"b", "b_key", ""}, {"c\\n", "", "c.cpp:9"}};
    fencedep::frame full;
    full.address = 0x401000;
    full.function = "f";
    full.offset = 4;
    full.size = 32;
    full.file = "a.cpp";
    full.line = 3;
    full.module = "prog";
    full.module_offset = 0x1000;
    fencedep::frame bare;
    bare.address = 0x402000;
    bare.inlined = true;
    d.stacks = {{full}, {bare}};
    d.edges = {{0, 1, {{false, fencedep::lock_kind::write, 0, "waiting on fence_array ctx 1 seqno 2"}}},
               {1, 2, {{true, fencedep::lock_kind::recursive_read, 1, ""}, {false, fencedep::lock_kind::read, 0, ""}}}};
    return {fencedep::detail::dump_json(d), fencedep::detail::dump_json(graph_dump{})};
}

std::string mutate(std::string text, std::mt19937_64& random) {
    static const std::vector<std::string> tokens = {
        "-1", "1e400", "18446744073709551616", "4294967295", "null", "true", "[]", "{}", "\"\"", "\"write\"",
        "\"recursive read\"", "0", "\"fencedep-graph/1\"", "\"\\u0000\"", "[[[[", "}", ",", ":"};
    const auto pick = [&](std::size_t n) { return n ? static_cast<std::size_t>(random() % n) : 0; };
    const int steps = 1 + static_cast<int>(random() % 4);
    for (int i = 0; i < steps; ++i) {
        const std::size_t at = pick(text.size() + 1);
        switch (random() % 6) {
        case 0: if (at < text.size()) text[at] = static_cast<char>(random()); break;
        case 1: text.resize(at); break;
        case 2: text.insert(at, 1, static_cast<char>(random())); break;
        case 3: text.insert(at, tokens[pick(tokens.size())]); break;
        case 4: {  // replace a digit run or a string with a token
            const std::size_t end = std::min(text.size(), at + 1 + pick(8));
            text.replace(at, end - at, tokens[pick(tokens.size())]);
            break;
        }
        default: {  // duplicate a slice elsewhere
            const std::size_t from = pick(text.size() + 1);
            const std::string slice = text.substr(from, pick(64));
            text.insert(at, slice);
        }
        }
    }
    return text;
}

}  // namespace

TEST_SUITE("graph-tool") {

TEST_CASE("the dump reader refuses random and mutated input with dump_error, never anything else") {
    std::mt19937_64 random(20261203);
    const std::vector<std::string> bases = seeds();
    constexpr int inputs = 50000;
    int accepted = 0;
    for (int i = 0; i < inputs; ++i) {
        std::string text;
        if (i % 10 == 0) {
            text.resize(random() % 256);
            for (char& c : text)
                c = static_cast<char>(random());
        } else {
            text = mutate(bases[random() % bases.size()], random);
        }
        try {
            fencedep::detail::parse_dump(text, "fuzz.json");
            ++accepted;
        } catch (const fencedep::detail::dump_error& e) {
            const std::string what = e.what();
            if (!what.starts_with("fuzz.json: at "))
                FAIL_CHECK("refusal without the file and position: ", what, "\ninput: ", text);
        } catch (const std::exception& e) {
            FAIL_CHECK("other exception: ", e.what(), "\ninput: ", text);
        }
    }
    MESSAGE(inputs, " inputs ran, ", accepted, " accepted");
    CHECK(accepted > 0);
    CHECK(accepted < inputs);
}

}  // TEST_SUITE
