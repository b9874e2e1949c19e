// SPDX-License-Identifier: MIT
// Class names of construction sites: the function part, cut down from what the compiler's
// source_location or the demangler gives.
#include <doctest/doctest.h>

#include "engine/internal.h"

using fencedep::detail::short_function_name;

TEST_SUITE("engine") {

TEST_CASE("a site's function loses its return type and parameters, and nothing else") {
    CHECK(short_function_name("int main()") == "main");
    CHECK(short_function_name("DB::DB(const Options&)") == "DB::DB");
    CHECK(short_function_name("main()::<lambda()>") == "main");
    CHECK(short_function_name("two_members") == "two_members");
    CHECK(short_function_name("") == "");
    // Template arguments keep their parentheses and spaces.
    CHECK(short_function_name("void foo<std::pair<int, int> >(int)") == "foo<std::pair<int, int> >");
    CHECK(short_function_name("std::vector<int, std::allocator<int> >::push_back(int const&)") ==
          "std::vector<int, std::allocator<int> >::push_back");
    // The call operator's own parentheses are part of its name.
    CHECK(short_function_name("S::operator()(int) const") == "S::operator()");
    // So are the demangler's "(anonymous namespace)" (this gave an empty name once).
    CHECK(short_function_name("(anonymous namespace)::abba(char const*, char const*)") == "(anonymous namespace)::abba");
    CHECK(short_function_name("void (anonymous namespace)::f()") == "(anonymous namespace)::f");
}

}  // TEST_SUITE
