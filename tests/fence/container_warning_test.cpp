// SPDX-License-Identifier: MIT
// The container-nesting warning is made once per call site and pair of kinds: a loop that nests
// fresh fences is one mistake in one place, so it must give one warning, not one per fence.
#include <cstddef>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "../engine/capture.h"
#include "fence_test.h"
#include "modes.h"

using engine_test::capture;
using engine_test::describe;
using engine_test::has_frame;
using fence_test::container_rules_mode;
using fence_test::enable_signaling_mode;
using fence_test::mock;
using fence_test::mode_scope;
using fencedep::fence;
using fencedep::fence_array;
using fencedep::fence_chain;
using fencedep::fence_ref;
using fencedep::report_kind;

namespace {

constexpr int loop_count = 2000;

// A timeline point of its own: a container that no array may hold. The cases below call
// fence_array::create and fence_chain::create directly where they nest: the call site is the
// caller of create, so a helper around it would make every use one site.
fence_ref<> fresh_chain() { return fence_chain::create(nullptr, mock(), 1); }

// The warning's own lines: those between the header's closing rule and the first blank line.
std::vector<std::string> message_lines(const fencedep::report& r) {
    std::istringstream in(r.text);
    std::vector<std::string> out;
    bool after_header = false;
    for (std::string line; std::getline(in, line);) {
        if (!after_header) {
            after_header = !line.empty() && line.find_first_not_of('-') == std::string::npos;
            continue;
        }
        if (line.empty())
            break;
        out.push_back(line);
    }
    return out;
}

// The 'what' line of an array given a container as child `index`, as the warning must word it.
std::string array_given(const fence_array& array, std::size_t index) {
    const fence& child = *array.fences()[index];
    return fmt::format("fence_array ctx {} seqno {} was given {} ctx {} seqno {} as child {}",
                       array.context(), array.seqno(), child.kind_name(), child.context(),
                       child.seqno(), index);
}

std::string chain_given_chain(const fence_chain& chain) {
    const fence& inner = chain.contained();
    return fmt::format("fence_chain ctx {} seqno {} was given fence_chain ctx {} seqno {} as its "
                       "contained fence",
                       chain.context(), chain.seqno(), inner.context(), inner.seqno());
}

// Checks report `index` of `cap`: a container-nesting warning whose 'what' line is `what`, made
// by the call at `line` of this file.
void check_warning(const capture& cap, std::size_t index, const std::string& what, unsigned line,
                   const char* advice_part) {
    const auto r = cap.at(index);
    INFO("report ", index, ":\n", r.text);
    CHECK(r.kind == report_kind::fence_container_nesting);
    CHECK(r.title == "WARNING: fence container nested in a container");
    const auto lines = message_lines(r);
    REQUIRE(lines.size() == 2);
    CHECK(lines[0] == what);
    CHECK(engine_test::contains(lines[1], advice_part));
    REQUIRE_FALSE(r.stacks.empty());
    REQUIRE_FALSE(r.stacks[0].empty());
    // The innermost user frame is the call of create that nested the container.
    CHECK_MESSAGE(has_frame({r.stacks[0].front()}, "", line), describe(r.stacks[0]));
}

// 2,000 arrays, each given a fresh chain, all created by one call: one site, 2,000 nestings.
// Returns the 'what' line of the first and the line of the call.
std::pair<std::string, unsigned> nest_chains_at_one_site() {
    std::string first;
    unsigned site = 0;
    for (int i = 0; i < loop_count; ++i) {
        auto array = fence_array::create({fresh_chain()}, fence::allocate_contexts(1), 1); site = __LINE__;
        if (i == 0)
            first = array_given(*array, 0);
    }
    return {first, site};
}

constexpr const char* array_advice = "fencedep::unwrap_merge()";
constexpr const char* chain_advice = "chains may only be linked through prev";

}  // namespace

TEST_SUITE("fence-container-warning") {

TEST_CASE("one call site nesting 2,000 fresh chains in arrays: one report, naming the first") {
    // container_rules=warn makes it a warning; error, one splat.
    for (const bool error : {false, true}) {
        INFO("container_rules=", error ? "error" : "warn");
        mode_scope modes(enable_signaling_mode::locked, error ? container_rules_mode::error : container_rules_mode::warn);
        capture cap;
        const auto [first, site] = nest_chains_at_one_site();
        REQUIRE(cap.kinds() == "fence_container_nesting");
        check_warning(cap, 0, first, site, array_advice);
        CHECK(cap.at(0).is_splat == error);
        CHECK(fencedep::splat_count() == (error ? 1u : 0u));
    }
}

TEST_CASE("two call sites nesting 2,000 chains each: one warning per site") {
    mode_scope modes(enable_signaling_mode::locked, container_rules_mode::warn);
    capture cap;
    std::string first_a, first_b;
    unsigned site_a = 0, site_b = 0;
    for (int i = 0; i < loop_count; ++i) {
        auto a = fence_array::create({fresh_chain()}, fence::allocate_contexts(1), 1); site_a = __LINE__;
        auto b = fence_array::create({fresh_chain()}, fence::allocate_contexts(1), 1); site_b = __LINE__;
        if (i == 0) {
            first_a = array_given(*a, 0);
            first_b = array_given(*b, 0);
        }
    }
    REQUIRE(cap.kinds() == "fence_container_nesting, fence_container_nesting");
    check_warning(cap, 0, first_a, site_a, array_advice);
    check_warning(cap, 1, first_b, site_b, array_advice);
}

TEST_CASE("one call site given a chain, then an array: one warning per pair of kinds") {
    mode_scope modes(enable_signaling_mode::locked, container_rules_mode::warn);
    capture cap;
    std::string first_given_chain, first_given_array, first_chain_in_chain;
    unsigned site = 0, chain_site = 0;
    for (int i = 0; i < loop_count; ++i) {
        fence_ref<> child = i % 2 == 0 ? fresh_chain() : fence_test::array_of({mock()});
        auto array = fence_array::create({child}, fence::allocate_contexts(1), 1); site = __LINE__;
        auto chain = fence_chain::create(nullptr, fresh_chain(), 1); chain_site = __LINE__;
        if (i == 0) {
            first_given_chain = array_given(*array, 0);
            first_chain_in_chain = chain_given_chain(*chain);
        } else if (i == 1) {
            first_given_array = array_given(*array, 0);
        }
    }
    // Iteration 0 warns for both sites; the array site's second pair first appears in iteration 1.
    REQUIRE(cap.count() == 3);
    check_warning(cap, 0, first_given_chain, site, array_advice);
    check_warning(cap, 1, first_chain_in_chain, chain_site, chain_advice);
    check_warning(cap, 2, first_given_array, site, array_advice);
}

TEST_CASE("one array given two containers of one kind and one of another: two warnings") {
    mode_scope modes(enable_signaling_mode::locked, container_rules_mode::warn);
    capture cap;
    std::vector<fence_ref<>> children{fresh_chain(), mock(), fresh_chain(), fence_test::array_of({mock()})};
    auto array = fence_array::create(children, fence::allocate_contexts(1), 1); const unsigned site = __LINE__;
    REQUIRE(cap.count() == 2);
    check_warning(cap, 0, array_given(*array, 0), site, array_advice);
    check_warning(cap, 1, array_given(*array, 3), site, array_advice);
}

}  // TEST_SUITE
