// SPDX-License-Identifier: MIT
// lib/stack and the dynamic linker: traces in libraries unloaded since, and symbolization from a
// library's constructor, which runs while the dynamic linker holds its lock.
#include <dlfcn.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <doctest/doctest.h>

#include "../watchdog.h"

#include "stack/stack.h"

using fencedep::frame;
using fencedep::detail::capture_stack;
using fencedep::detail::stack_addresses;
using fencedep::detail::stack_id;
using fencedep::detail::symbolize;
using fencedep::detail::symbolize_stack;

namespace {

// Two builds of tests/stack/loader_library.cpp, named by the test's environment (meson.build).
std::string library_path(const char* variable) {
    const char* const path = std::getenv(variable);
    return path != nullptr ? path : "";
}

using call_function = unsigned (*)(unsigned (*)());

unsigned capture_for_library() {
    const stack_id id = capture_stack(64);
    // Keeps the call from being a tail call, which would take this frame off the stack.
    asm volatile("" ::: "memory");
    return id;
}

// A lock_class_key stand-in: its end lies in .bss pages past the end of the file, which libdwfl
// leaves out of the executable's mapped range (the case that once needed dladdr).
int ring_keys[8192];

std::atomic<bool> hook_armed{false};
std::atomic<unsigned long> lookups{0};
std::vector<frame> constructor_stack;
frame constructor_key;

}  // namespace

extern "C" [[gnu::visibility("default")]] void stack_loader_constructor_hook();

// Runs in the library's constructor, inside dlopen, when armed.
void stack_loader_constructor_hook() {
    if (!hook_armed.load())
        return;
    // Lets the other thread reach its next lookups while this thread holds the loader's lock.
    const unsigned long seen = lookups.load();
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
    while (lookups.load() < seen + 2 && std::chrono::steady_clock::now() < deadline)
        std::this_thread::yield();
    constructor_stack = symbolize_stack(capture_stack(64));
    constructor_key = symbolize(reinterpret_cast<std::uintptr_t>(&ring_keys[8191]) + 1);
}

TEST_SUITE("stack") {

TEST_CASE("a trace in a library unloaded since names the library and offset, not what is there now") {
    const std::string first = library_path("STACK_LOADER_LIBRARY");
    const std::string second = library_path("STACK_LOADER_LIBRARY_2");
    REQUIRE(!first.empty());
    REQUIRE(!second.empty());
    void* const library = dlopen(first.c_str(), RTLD_NOW | RTLD_LOCAL);
    REQUIRE(library != nullptr);
    void* const symbol = dlsym(library, "stack_loader_call");
    REQUIRE(symbol != nullptr);
    const auto call = reinterpret_cast<call_function>(symbol);
    const stack_id id = call(&capture_for_library);
    REQUIRE(id != 0);

    const std::vector<frame> loaded = symbolize_stack(id, false);
    REQUIRE(loaded.size() >= 2);
    CHECK(loaded[0].function == "(anonymous namespace)::capture_for_library()");
    CHECK(loaded[1].function == "stack_loader_call");
    CHECK(loaded[1].module == first);
    Dl_info object{};
    REQUIRE(dladdr(symbol, &object) != 0);
    const std::uintptr_t address = stack_addresses(id)[1];
    const std::uintptr_t offset = address - reinterpret_cast<std::uintptr_t>(object.dli_fbase);
    CHECK(loaded[1].module_offset == offset);

    REQUIRE(dlclose(library) == 0);
    REQUIRE(dlopen(first.c_str(), RTLD_NOW | RTLD_NOLOAD) == nullptr);
    // Another object, most likely mapped where the first one was.
    void* const other = dlopen(second.c_str(), RTLD_NOW | RTLD_LOCAL);
    REQUIRE(other != nullptr);

    const std::vector<frame> unloaded = symbolize_stack(id, false);
    REQUIRE(unloaded.size() == loaded.size());
    CHECK(unloaded[0].function == loaded[0].function);
    CHECK(unloaded[1].address == address);
    CHECK(unloaded[1].module == first);
    CHECK(unloaded[1].module_offset == offset);
    CHECK(unloaded[1].function.empty());
    CHECK(unloaded[1].file.empty());
    CHECK(unloaded[2].function == loaded[2].function);
    CHECK(dlclose(other) == 0);
}

TEST_CASE("a library's constructor symbolizes while another thread symbolizes, without deadlock") {
    const std::string path = library_path("STACK_LOADER_LIBRARY");
    REQUIRE(!path.empty());
    const fencedep::testing::watchdog guard(std::chrono::seconds(10), "loader_test");
    std::atomic<bool> stop{false};
    std::thread other([&stop] {
        while (!stop.load()) {
            const frame key = symbolize(reinterpret_cast<std::uintptr_t>(&ring_keys[8191]) + 1);
            if (key.function != "(anonymous namespace)::ring_keys")
                break;
            lookups.fetch_add(1);
        }
    });
    hook_armed.store(true);
    void* const library = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
    hook_armed.store(false);
    stop.store(true);
    other.join();
    REQUIRE(library != nullptr);

    CHECK(constructor_key.function == "(anonymous namespace)::ring_keys");
    REQUIRE(constructor_stack.size() >= 2);
    CHECK(constructor_stack[0].function == "stack_loader_constructor_hook");
    CHECK(constructor_stack[1].function == "on_load()");
    CHECK(constructor_stack[1].module == path);
    CHECK(dlclose(library) == 0);
}

}  // TEST_SUITE
