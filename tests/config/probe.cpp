// SPDX-License-Identifier: MIT
// A user's test binary in miniature, run by env_test under controlled FENCEDEP variables.

#include <cstdio>
#include <cstring>

#include <fencedep/fencedep.h>

namespace {

// Each mode prints this first, so that env_test can tell whether main ran at all.
constexpr const char* main_marker = "probe: main reached";

void say(const char* line) {
    // Flushed at once: with abort_on_splat the process dies before stdio would flush.
    std::puts(line);
    std::fflush(stdout);
}

// Separate, named functions, so that the splat's stacks have frames env_test can recognise.
[[gnu::noinline]] void probe_lock_a_then_b(fencedep::mutex& a, fencedep::mutex& b) {
    a.lock();
    b.lock();
    b.unlock();
    a.unlock();
}

[[gnu::noinline]] void probe_lock_b_then_a(fencedep::mutex& a, fencedep::mutex& b) {
    b.lock();
    a.lock();
    a.unlock();
    b.unlock();
}

}  // namespace

int main(int argc, char** argv) {
    say(main_marker);
    if (argc > 1 && std::strcmp(argv[1], "abba") == 0) {
        fencedep::mutex a{"probe_a"};
        fencedep::mutex b{"probe_b"};
        probe_lock_a_then_b(a, b);
        probe_lock_b_then_a(a, b);
    }
    say("probe: done");
    return 0;
}
