// SPDX-License-Identifier: MIT
// The C++ standard fencedep's headers are written in, checked first by each of them.
#pragma once

// #error does not stop the compiler, so each public header compiles the rest of itself only under
// FENCEDEP_CXX20: a C++17 consumer then sees this one error instead of dozens of cryptic ones from
// the code below it. pkg-config has no way to carry -std=c++20; fencedep::fencedep does (CMake's
// INTERFACE_COMPILE_FEATURES cxx_std_20), hence the advice.
#if __cplusplus >= 202002L
#define FENCEDEP_CXX20 1
#else
#error "fencedep's headers need C++20: compile with -std=c++20 (CMake: target_link_libraries(... fencedep::fencedep) carries it)"
#endif
