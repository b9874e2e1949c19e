// SPDX-License-Identifier: MIT
// Tests of stack capture, the stack depot and symbolization (lib/stack).
#include <dlfcn.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <climits>
#include <cstdint>
#include <filesystem>
#include <mutex>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <functional>

#include <doctest/doctest.h>

#include "stack/stack.h"

using fencedep::frame;
using fencedep::detail::capture_stack;
using fencedep::detail::intern_stack;
using fencedep::detail::locate;
using fencedep::detail::stack_addresses;
using fencedep::detail::stack_id;
using fencedep::detail::symbolize;
using fencedep::detail::symbolize_stack;
using fencedep::detail::unsymbolized_stack;

// Called by the helpers below right after the call that produced their id, so that the call is
// never a tail call: a tail call would take the helper's own frame off the stack. (A store to an
// otherwise unused variable is not enough: clang deletes it.)
[[gnu::always_inline]] static inline void keep_frame() {
    asm volatile("" ::: "memory");
}

// Stand-ins for fencedep's own code: trimming must drop them because of their namespace.
namespace fencedep::test_internal {

static std::atomic<unsigned> capture_line;

[[gnu::noinline]] static stack_id capture_inside() {
    capture_line.store(__LINE__); const stack_id id = capture_stack(64);
    keep_frame();
    return id;
}

[[gnu::noinline]] static stack_id forward_to_capture() {
    const stack_id id = capture_inside();
    keep_frame();
    return id;
}

static std::atomic<unsigned> inlined_capture_line;

// Inlined into the user's function, as fencedep's lock functions are.
[[gnu::always_inline]] static inline stack_id inlined_capture() {
    inlined_capture_line.store(__LINE__); const stack_id id = capture_stack(64);
    keep_frame();
    return id;
}

// A Lockable type of fencedep's, to instantiate a standard lock wrapper on.
struct fake_lock {
    [[gnu::noinline]] void lock() { ++depth; }
    [[gnu::noinline]] void unlock() { --depth; }
    [[gnu::noinline]] bool try_lock() { return ++depth > 0; }
    int depth = 0;
};

}  // namespace fencedep::test_internal

namespace stack_test {

// The frames of the functions the addresses lie in, without the inlined calls expanded inside
// them: sanitizer builds inline their own checks at a function's entry, where these tests point.
inline std::vector<fencedep::frame> out_of_line(std::vector<fencedep::frame> frames) {
    std::erase_if(frames, [](const fencedep::frame& f) { return f.inlined; });
    return frames;
}

// The lines of the calls that the tests expect in traces. Each helper records its own, right next
// to the call; atomic because some helpers run on several threads at once.
static std::atomic<unsigned> capture_line;
static std::atomic<unsigned> call_capture_line;
static std::atomic<unsigned> test_case_line;
static std::atomic<unsigned> skip_call_line;
static std::atomic<unsigned> fencedep_call_line;
static std::atomic<unsigned> inlined_call_line;
static std::atomic<unsigned> inlined_capture_line;
static std::atomic<unsigned> wrapper_call_line;
static std::atomic<unsigned> fencedep_inlined_call_line;
static std::atomic<unsigned> lambda_line;

[[gnu::noinline]] static stack_id capture_here() {
    capture_line.store(__LINE__); const stack_id id = capture_stack(64);
    keep_frame();
    return id;
}

// Inlined into its caller twice over: a trace shows each as a frame of its own.
[[gnu::always_inline]] static inline stack_id inlined_capture() {
    inlined_capture_line.store(__LINE__); const stack_id id = capture_stack(64);
    keep_frame();
    return id;
}

[[gnu::always_inline]] static inline stack_id inlined_wrapper() {
    wrapper_call_line.store(__LINE__); const stack_id id = inlined_capture();
    keep_frame();
    return id;
}

[[gnu::noinline]] static stack_id call_inlined_capture() {
    inlined_call_line.store(__LINE__); const stack_id id = inlined_wrapper();
    keep_frame();
    return id;
}

[[gnu::noinline]] static stack_id call_fencedep_inlined() {
    fencedep_inlined_call_line.store(__LINE__); const stack_id id = fencedep::test_internal::inlined_capture();
    keep_frame();
    return id;
}

[[gnu::noinline]] static stack_id call_capture_here() {
    call_capture_line.store(__LINE__); const stack_id id = capture_here();
    keep_frame();
    return id;
}

// Only the two innermost frames, which are the same whichever call site runs this, so that
// repeated captures are the same trace even when the compiler duplicates a calling loop.
[[gnu::noinline]] static stack_id capture_two_frames() {
    const stack_id id = capture_stack(2);
    keep_frame();
    return id;
}

[[gnu::noinline]] static stack_id call_capture_two_frames() {
    const stack_id id = capture_two_frames();
    keep_frame();
    return id;
}

[[gnu::noinline]] static stack_id capture_elsewhere() {
    const stack_id id = capture_stack(64);
    keep_frame();
    return id;
}

[[gnu::noinline]] static stack_id capture_skipping_self() {
    const stack_id id = capture_stack(64, 1);
    keep_frame();
    return id;
}

[[gnu::noinline]] static stack_id call_capture_skipping_self() {
    skip_call_line.store(__LINE__); const stack_id id = capture_skipping_self();
    keep_frame();
    return id;
}

[[gnu::noinline]] static stack_id user_calls_fencedep() {
    using fencedep::test_internal::forward_to_capture;
    fencedep_call_line.store(__LINE__); const stack_id id = forward_to_capture();
    keep_frame();
    return id;
}

// A user's callback called through std::function with a fencedep type in its signature.
[[gnu::noinline]] static stack_id call_through_function() {
    stack_id id = 0;
    const std::function<void(fencedep::test_internal::fake_lock&)> callback =
        [&id](fencedep::test_internal::fake_lock&) {
            lambda_line.store(__LINE__); id = fencedep::test_internal::forward_to_capture();
            keep_frame();
        };
    fencedep::test_internal::fake_lock lock;
    callback(lock);
    keep_frame();
    return id;
}

// Global objects, as lock_class_keys are: the engine names keyed classes by the key's symbol.
// The array is zero-initialized and large, so its end lies in .bss pages past the end of the file,
// which libdwfl leaves out of the executable's mapped range.
static int ring_lock_key;
static int ring_lock_keys[8192];

// A user's Lockable type: a standard wrapper on it is user code, never trimmed.
struct user_lock {
    [[gnu::noinline]] void lock() { depth += 2; }
    [[gnu::noinline]] void unlock() { depth -= 2; }
    [[gnu::noinline]] bool try_lock() { return (depth += 2) > 0; }
    int depth = 0;
};

template <class Function>
std::uintptr_t address_of(Function* function) {
    return reinterpret_cast<std::uintptr_t>(function);
}

// A return address inside `function`, as a trace would hold one.
template <class Function>
std::uintptr_t return_address_in(Function* function) {
    return address_of(function) + 1;
}

static const void* object_base(const void* address) {
    Dl_info object{};
    return dladdr(address, &object) != 0 ? object.dli_fbase : nullptr;
}

template <class Function>
const void* object_base(Function* function) {
    return object_base(reinterpret_cast<const void*>(function));
}

static std::string executable_path() {
    std::array<char, PATH_MAX> buffer{};
    const ssize_t length = readlink("/proc/self/exe", buffer.data(), buffer.size() - 1);
    return length > 0 ? std::string(buffer.data(), static_cast<std::size_t>(length))
                      : std::string();
}

static std::vector<std::string> function_names(const std::vector<frame>& frames) {
    std::vector<std::string> names;
    for (const frame& f : frames)
        names.push_back(f.function);
    return names;
}

static bool ends_with(std::string_view text, std::string_view suffix) {
    return text.ends_with(suffix);
}

// A function with internal linkage, inlined: clang gives it a linkage name, whose demangling ends
// in its parameters; GCC gives it none, and its DWARF name has none.
static bool is_internal_function(std::string_view function, std::string_view name) {
    return function == name || function == std::string(name) + "()";
}

// A lambda's call operator, defined in `function`: GCC's DWARF names the closure "<lambda>",
// clang's mangled name "$_N".
static bool is_lambda_in(std::string_view function, std::string_view enclosing) {
    return function.starts_with(std::string(enclosing) + "()::") &&
           function.find("::operator()") != std::string_view::npos;
}

}  // namespace stack_test

using namespace stack_test;

TEST_SUITE("stack") {

TEST_CASE("a captured stack names the capturing function, its callers, and their lines") {
    test_case_line.store(__LINE__); const stack_id id = call_capture_here();
    REQUIRE(id != 0);
    const std::vector<frame> frames = symbolize_stack(id, false);
    REQUIRE(frames.size() >= 4);

    CHECK(frames[0].function == "stack_test::capture_here()");
    // Absolute, although the build compiles from its build directory with a relative path.
    CHECK(std::filesystem::path(frames[0].file).is_absolute());
    CHECK(ends_with(frames[0].file, "/tests/stack/stack_test.cpp"));
    CHECK(frames[0].file.find("..") == std::string::npos);
    CHECK(frames[0].line == capture_line.load());
    CHECK(frames[0].module == executable_path());
    CHECK(frames[0].address == stack_addresses(id)[0]);
    CHECK(frames[0].offset > 0);
    CHECK(frames[0].offset < frames[0].size);

    CHECK(frames[1].function == "stack_test::call_capture_here()");
    CHECK(ends_with(frames[1].file, "stack_test.cpp"));
    CHECK(frames[1].line == call_capture_line.load());

    // doctest's function for this test case, then doctest's runner, then main.
    CHECK(frames[2].function.find("DOCTEST_ANON_FUNC") != std::string::npos);
    CHECK(ends_with(frames[2].file, "stack_test.cpp"));
    CHECK(frames[2].line == test_case_line.load());
    const std::vector<std::string> names = function_names(frames);
    CHECK(std::find(names.begin(), names.end(), "main") != names.end());

    // Nothing here is fencedep's, so trimming keeps the whole trace.
    CHECK(function_names(symbolize_stack(id)) == names);
}

TEST_CASE("inlined calls are frames of their own, innermost first, each at its own line") {
    const stack_id id = call_inlined_capture();
    REQUIRE(id != 0);
    const std::vector<frame> frames = symbolize_stack(id);
    REQUIRE(frames.size() >= 3);
    const std::uintptr_t address = stack_addresses(id)[0];
    CHECK_MESSAGE(is_internal_function(frames[0].function, "stack_test::inlined_capture"),
                  frames[0].function);
    CHECK(frames[0].line == inlined_capture_line.load());
    CHECK(frames[0].inlined);
    CHECK(frames[0].offset == 0);
    CHECK_MESSAGE(is_internal_function(frames[1].function, "stack_test::inlined_wrapper"),
                  frames[1].function);
    CHECK(frames[1].line == wrapper_call_line.load());
    CHECK(frames[1].inlined);
    CHECK(frames[2].function == "stack_test::call_inlined_capture()");
    CHECK(frames[2].line == inlined_call_line.load());
    CHECK_FALSE(frames[2].inlined);
    CHECK(frames[2].offset > 0);
    for (const frame& f : std::span(frames).first(3)) {
        CHECK(f.address == address);
        CHECK(ends_with(f.file, "/tests/stack/stack_test.cpp"));
        CHECK(f.module == executable_path());
    }

    SUBCASE("symbolize gives the innermost function at an address") {
        const frame f = symbolize(address);
        CHECK_MESSAGE(is_internal_function(f.function, "stack_test::inlined_capture"), f.function);
        CHECK(f.line == inlined_capture_line.load());
    }

    SUBCASE("symbolize and trimming pass over fencedep's functions inlined into the user's") {
        const stack_id inlined = call_fencedep_inlined();
        const std::vector<frame> untrimmed = symbolize_stack(inlined, false);
        REQUIRE(untrimmed.size() >= 2);
        CHECK_MESSAGE(
            is_internal_function(untrimmed[0].function, "fencedep::test_internal::inlined_capture"),
            untrimmed[0].function);
        CHECK(untrimmed[0].line == fencedep::test_internal::inlined_capture_line.load());
        const std::vector<frame> trimmed = symbolize_stack(inlined);
        REQUIRE(trimmed.size() == untrimmed.size() - 1);
        CHECK(trimmed[0].function == "stack_test::call_fencedep_inlined()");
        CHECK(trimmed[0].line == fencedep_inlined_call_line.load());

        const frame site = symbolize(stack_addresses(inlined)[0]);
        CHECK(site.function == "stack_test::call_fencedep_inlined()");
        CHECK(site.line == fencedep_inlined_call_line.load());
    }
}

TEST_CASE("capture_stack's skip and max_frames are exact") {
    const stack_id skipped = call_capture_skipping_self();
    REQUIRE(skipped != 0);
    const std::vector<frame> frames = symbolize_stack(skipped, false);
    REQUIRE(!frames.empty());
    CHECK(frames[0].function == "stack_test::call_capture_skipping_self()");
    CHECK(frames[0].line == skip_call_line.load());

    const stack_id full = call_capture_here();
    const std::span<const std::uintptr_t> full_trace = stack_addresses(full);
    const std::span<const std::uintptr_t> skipped_trace = stack_addresses(skipped);
    // Below the two helpers, both traces run through this test case's function and up to main.
    REQUIRE(full_trace.size() == skipped_trace.size() + 1);
    CHECK(std::equal(full_trace.begin() + 3, full_trace.end(), skipped_trace.begin() + 2));

    SUBCASE("max_frames bounds the trace") {
        const stack_id two = call_capture_two_frames();
        REQUIRE(two != 0);
        CHECK(stack_addresses(two).size() == 2);
        CHECK(capture_stack(0) == 0);
    }

    SUBCASE("skipping past the outermost frame gives no stack") {
        CHECK(capture_stack(64, 10000) == 0);
    }
}

TEST_CASE("the depot interns each distinct trace once") {
    SUBCASE("the same call site twice gives one id, another site another") {
        const stack_id first = call_capture_two_frames();
        const stack_id second = call_capture_two_frames();
        CHECK(first != 0);
        CHECK(first == second);
        const std::vector<frame> frames = symbolize_stack(first);
        REQUIRE(frames.size() == 2);
        CHECK(frames[0].function == "stack_test::capture_two_frames()");
        CHECK(frames[1].function == "stack_test::call_capture_two_frames()");

        const stack_id other = capture_elsewhere();
        CHECK(other != 0);
        CHECK(other != first);
    }

    SUBCASE("intern_stack round-trips addresses and deduplicates") {
        const std::array<std::uintptr_t, 3> trace{0x401000, 0x402000, 0x403000};
        const stack_id id = intern_stack(trace);
        REQUIRE(id != 0);
        CHECK(intern_stack(trace) == id);
        const std::span<const std::uintptr_t> stored = stack_addresses(id);
        CHECK(std::equal(stored.begin(), stored.end(), trace.begin(), trace.end()));
        CHECK(stored.data() != trace.data());

        const std::array<std::uintptr_t, 3> changed{0x401000, 0x402000, 0x403001};
        const std::array<std::uintptr_t, 2> prefix{0x401000, 0x402000};
        const stack_id changed_id = intern_stack(changed);
        const stack_id prefix_id = intern_stack(prefix);
        CHECK(changed_id != 0);
        CHECK(prefix_id != 0);
        CHECK(std::set<stack_id>{id, changed_id, prefix_id}.size() == 3);
        CHECK(stack_addresses(prefix_id).size() == 2);
    }

    SUBCASE("0 is no stack") {
        CHECK(intern_stack({}) == 0);
        CHECK(stack_addresses(0).empty());
        CHECK(stack_addresses(0xfffffff0).empty());
        CHECK(symbolize_stack(0).empty());
    }
}

TEST_CASE("concurrent captures and interning from 4 threads") {
    constexpr unsigned threads = 4;
    constexpr unsigned captures = 200;
    constexpr unsigned synthetic = 3000;  // enough to grow the hash table and several segments
    std::array<std::vector<stack_id>, threads> captured;
    std::array<std::vector<stack_id>, threads> shallow;
    std::array<std::vector<stack_id>, threads> interned;
    std::vector<std::thread> workers;
    for (unsigned t = 0; t < threads; ++t)
        workers.emplace_back([t, &captured, &shallow, &interned] {
            for (unsigned i = 0; i < captures; ++i) {
                captured[t].push_back(capture_here());
                shallow[t].push_back(call_capture_two_frames());
            }
            for (unsigned i = 0; i < synthetic; ++i) {
                const std::array<std::uintptr_t, 3> trace{0x7000, t + 1, i};
                interned[t].push_back(intern_stack(trace));
            }
        });
    for (std::thread& worker : workers)
        worker.join();

    // Full traces from every thread start in capture_here and run down through the thread's
    // start routine; the compiler may have copied the calling loop, so ids may be a few.
    std::set<stack_id> full_ids;
    for (const std::vector<stack_id>& ids : captured)
        full_ids.insert(ids.begin(), ids.end());
    CHECK(full_ids.count(0) == 0);
    CHECK(full_ids.size() <= 4);
    for (const stack_id id : full_ids) {
        const std::vector<frame> frames = symbolize_stack(id);
        REQUIRE(frames.size() >= 3);
        CHECK(frames[0].function == "stack_test::capture_here()");
        CHECK(frames[0].line == capture_line.load());
    }

    // The same two-frame trace from every thread gets a single id.
    const stack_id shared = shallow[0].front();
    CHECK(shared != 0);
    for (const std::vector<stack_id>& ids : shallow)
        CHECK(std::all_of(ids.begin(), ids.end(), [&](stack_id id) { return id == shared; }));

    std::set<stack_id> distinct;
    bool round_trips = true;
    for (unsigned t = 0; t < threads; ++t)
        for (unsigned i = 0; i < synthetic; ++i) {
            const stack_id id = interned[t][i];
            distinct.insert(id);
            const std::span<const std::uintptr_t> trace = stack_addresses(id);
            round_trips = round_trips && trace.size() == 3 && trace[0] == 0x7000 &&
                          trace[1] == t + 1 && trace[2] == i;
        }
    CHECK(distinct.size() == threads * synthetic);
    CHECK(distinct.count(0) == 0);
    CHECK(round_trips);
}

TEST_CASE("trimming drops fencedep's leading frames and keeps the user's") {
    SUBCASE("captured through functions in namespace fencedep") {
        const stack_id id = user_calls_fencedep();
        REQUIRE(id != 0);
        const std::vector<frame> untrimmed = symbolize_stack(id, false);
        REQUIRE(untrimmed.size() >= 3);
        CHECK(untrimmed[0].function == "fencedep::test_internal::capture_inside()");
        CHECK(untrimmed[0].line == fencedep::test_internal::capture_line.load());
        CHECK(untrimmed[1].function == "fencedep::test_internal::forward_to_capture()");

        const std::vector<frame> trimmed = symbolize_stack(id);
        REQUIRE(trimmed.size() == untrimmed.size() - 2);
        CHECK(trimmed[0].function == "stack_test::user_calls_fencedep()");
        CHECK(ends_with(trimmed[0].file, "stack_test.cpp"));
        CHECK(trimmed[0].line == fencedep_call_line.load());
        CHECK(trimmed[0].address == untrimmed[2].address);
    }

    using fencedep::test_internal::fake_lock;
    // Only symbolized, never called: a standard lock wrapper instantiated on a fencedep type, whose
    // demangled name starts with its return type ("void std::lock<...>(...)").
    void (*const lock_fencedep)(fake_lock&, fake_lock&) = &std::lock<fake_lock, fake_lock>;
    void (*const lock_user)(user_lock&, user_lock&) = &std::lock<user_lock, user_lock>;

    SUBCASE("standard wrappers on fencedep types are fencedep's") {
        const std::array<std::uintptr_t, 3> trace{
            return_address_in(lock_fencedep),
            return_address_in(&fencedep::test_internal::forward_to_capture),
            return_address_in(&user_calls_fencedep)};
        const std::vector<frame> untrimmed = out_of_line(symbolize_stack(intern_stack(trace), false));
        REQUIRE(untrimmed.size() == 3);
        CHECK(untrimmed[0].function.starts_with(
            "void std::lock<fencedep::test_internal::fake_lock"));
        CHECK(untrimmed[0].offset == 1);

        const std::vector<frame> trimmed = symbolize_stack(intern_stack(trace));
        REQUIRE(trimmed.size() == 1);
        CHECK(trimmed[0].function == "stack_test::user_calls_fencedep()");
    }

    SUBCASE("standard wrappers on user types are the user's") {
        const std::array<std::uintptr_t, 2> trace{return_address_in(lock_user),
                                                  return_address_in(&user_calls_fencedep)};
        const std::vector<frame> trimmed = out_of_line(symbolize_stack(intern_stack(trace)));
        REQUIRE(trimmed.size() == 2);
        CHECK(trimmed[0].function.starts_with("void std::lock<stack_test::user_lock"));
    }

    SUBCASE("a user's lambda called by std::function on a fencedep type is the user's") {
        const stack_id id = call_through_function();
        REQUIRE(id != 0);
        const std::vector<frame> trimmed = symbolize_stack(id);
        REQUIRE(!trimmed.empty());
        CHECK_MESSAGE(is_lambda_in(trimmed[0].function, "stack_test::call_through_function"),
                      trimmed[0].function);
        CHECK(ends_with(trimmed[0].file, "/tests/stack/stack_test.cpp"));
        CHECK(trimmed[0].line == lambda_line.load());
    }

    SUBCASE("a thread's lambda is shown as itself, not as std::thread's invoker") {
        stack_id id = 0;
        unsigned line = 0;
        std::thread([&id, &line] {
            line = __LINE__; id = fencedep::test_internal::forward_to_capture();
            keep_frame();
        }).join();
        REQUIRE(id != 0);
        const std::vector<frame> trimmed = symbolize_stack(id);
        REQUIRE(!trimmed.empty());
        // The lambda is in this test case's function, which doctest names.
        const std::string_view function = trimmed[0].function;
        const std::size_t test_function = function.find("::DOCTEST_ANON_FUNC_");
        REQUIRE_MESSAGE(test_function != std::string_view::npos, function);
        const std::size_t end = function.find("()::", test_function);
        REQUIRE_MESSAGE(end != std::string_view::npos, function);
        CHECK_MESSAGE(is_lambda_in(function, function.substr(0, end)), function);
        CHECK(ends_with(trimmed[0].file, "/tests/stack/stack_test.cpp"));
        CHECK(trimmed[0].line == line);
    }

    SUBCASE("a trace of nothing but fencedep frames stays whole") {
        const std::array<std::uintptr_t, 2> trace{
            return_address_in(&fencedep::test_internal::capture_inside),
            return_address_in(&fencedep::test_internal::forward_to_capture)};
        const std::vector<frame> frames = symbolize_stack(intern_stack(trace));
        REQUIRE(frames.size() == 2);
        CHECK(frames[0].function == "fencedep::test_internal::capture_inside()");
    }
}

TEST_CASE("symbolize handles shared libraries, late dlopen and bogus addresses") {
    SUBCASE("a function in libc names its module") {
        const frame f = symbolize(return_address_in(&getpid));
        CHECK(!f.function.empty());
        CHECK(f.module.find("libc.so") != std::string::npos);
        CHECK(f.module != executable_path());
    }

    SUBCASE("a global object is named from .symtab") {
        const frame f = symbolize(reinterpret_cast<std::uintptr_t>(&ring_lock_key) + 1);
        CHECK(f.function == "stack_test::ring_lock_key");
        CHECK(f.module == executable_path());
        const frame last = symbolize(reinterpret_cast<std::uintptr_t>(&ring_lock_keys[8191]) + 1);
        CHECK(last.function == "stack_test::ring_lock_keys");
        CHECK(last.offset == 8191 * sizeof(int) + 1);
        CHECK(last.module == executable_path());
    }

    SUBCASE("a library dlopen'ed after the first lookup is found") {
        CHECK(!symbolize(return_address_in(&capture_here)).function.empty());
        void* const library = dlopen("libcrypt.so.1", RTLD_NOW | RTLD_LOCAL);
        REQUIRE(library != nullptr);
        void* const function = dlsym(library, "crypt");
        REQUIRE(function != nullptr);
        const frame f = symbolize(reinterpret_cast<std::uintptr_t>(function) + 1);
        CHECK(f.module.find("libcrypt.so") != std::string::npos);
        CHECK(!f.function.empty());
        // libcrypt has no local debug info; looking for it must not have loaded the debuginfod
        // client (and libcurl with it) into the process.
        CHECK(dlopen("libdebuginfod.so.1", RTLD_NOW | RTLD_NOLOAD) == nullptr);
    }

    SUBCASE("an unsymbolized frame is its module and the offset from the module's base") {
        const auto address = return_address_in(&getpid);
        Dl_info object{};
        REQUIRE(dladdr(reinterpret_cast<void*>(address), &object) != 0);
        const frame f = locate(address);
        CHECK(f.address == address);
        CHECK(f.function.empty());
        CHECK(f.module.find("libc.so") != std::string::npos);
        CHECK(f.module_offset == address - reinterpret_cast<std::uintptr_t>(object.dli_fbase));
        CHECK(symbolize(address).module_offset == f.module_offset);

        const frame own = locate(return_address_in(&capture_here));
        CHECK(own.module == executable_path());
        CHECK(own.module_offset == return_address_in(&capture_here) -
                                       reinterpret_cast<std::uintptr_t>(object_base(&capture_here)));
    }

    SUBCASE("an address in no module gives an empty frame") {
        const frame bogus = symbolize(0x10);
        CHECK(bogus.address == 0x10);
        CHECK(bogus.function.empty());
        CHECK(bogus.module.empty());
        CHECK(bogus.file.empty());
        CHECK(bogus.line == 0);
        CHECK(symbolize(0).function.empty());

        const std::array<std::uintptr_t, 2> trace{0x10, return_address_in(&capture_here)};
        const std::vector<frame> frames = out_of_line(symbolize_stack(intern_stack(trace)));
        REQUIRE(frames.size() == 2);
        CHECK(frames[0].function.empty());
        CHECK(frames[1].function == "stack_test::capture_here()");
    }
}

}  // TEST_SUITE
