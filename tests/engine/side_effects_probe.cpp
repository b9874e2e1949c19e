// SPDX-License-Identifier: MIT
// A user's test binary in miniature, run by side_effects_test in a fresh process with FENCEDEP=1:
// it takes locks into a first stack capture and two symbolized splats (printed by the default
// sink) and prints what the program can see before and after each step: its descriptors, threads,
// signal handlers and errno.
#include <dirent.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdio>
#include <string>
#include <vector>

#include <fencedep/fencedep.h>

namespace {

// No call sets errno to this, so finding it after a call means the call left errno alone.
constexpr int sentinel = 4242;

// The open descriptors as "fd=target", sorted, without the one that reads the directory.
std::string descriptors() {
    std::vector<std::string> entries;
    DIR* const dir = opendir("/proc/self/fd");
    if (dir == nullptr)
        return "unreadable";
    const int own = dirfd(dir);
    while (const dirent* entry = readdir(dir)) {
        const std::string name = entry->d_name;
        if (name == "." || name == ".." || name == std::to_string(own))
            continue;
        char target[PATH_MAX] = {};
        const ssize_t length = readlink(("/proc/self/fd/" + name).c_str(), target, sizeof target - 1);
        entries.push_back(name + "=" + (length > 0 ? std::string(target, static_cast<std::size_t>(length)) : "?"));
    }
    closedir(dir);
    std::sort(entries.begin(), entries.end());
    std::string out = std::to_string(entries.size());
    for (const std::string& entry : entries)
        out += " " + entry;
    return out;
}

// The entries of /proc/self/task: one per thread of the process.
int threads() {
    DIR* const dir = opendir("/proc/self/task");
    if (dir == nullptr)
        return -1;
    int count = 0;
    while (const dirent* entry = readdir(dir))
        count += entry->d_name[0] != '.';
    closedir(dir);
    return count;
}

// Every signal whose disposition is not the default, as "signal:handler/flags".
std::string signal_handlers() {
    std::string out = "default";
    for (int signal = 1; signal <= SIGRTMAX; ++signal) {
        struct sigaction action {};
        if (sigaction(signal, nullptr, &action) != 0 || action.sa_handler == SIG_DFL)
            continue;
        char line[64];
        std::snprintf(line, sizeof line, " %d:%p/%#x", signal, reinterpret_cast<void*>(action.sa_handler),
                      static_cast<unsigned>(action.sa_flags));
        out += line;
    }
    return out;
}

void say(const std::string& line) {
    std::fputs((line + "\n").c_str(), stdout);
    std::fflush(stdout);
}

// Runs `step` with errno set to the sentinel, and prints the errno it left.
template <class Step>
void errno_after(const std::string& label, Step step) {
    errno = sentinel;
    step();
    const int after = errno;
    say("errno " + label + ": " + std::to_string(after));
}

// Separate, named functions, so that side_effects_test can find them in the symbolized splats.
[[gnu::noinline]] void side_effects_lock_a_then_b(fencedep::mutex& a, fencedep::mutex& b, const std::string& round) {
    errno_after(round + " lock", [&] { a.lock(); });
    errno_after(round + " new edge", [&] { b.lock(); });
    errno_after(round + " unlock", [&] { b.unlock(); });
    a.unlock();
}

[[gnu::noinline]] void side_effects_lock_b_then_a(fencedep::mutex& a, fencedep::mutex& b, const std::string& round) {
    b.lock();
    errno_after(round + " splat", [&] { a.lock(); });
    a.unlock();
    b.unlock();
}

}  // namespace

int main() {
    // Before anything else: C starts a program with errno 0, whatever library constructors ran.
    say("errno at main: " + std::to_string(errno));
    const std::string handlers_before = signal_handlers();
    say("threads before: " + std::to_string(threads()));
    say("descriptors before: " + descriptors());

    fencedep::mutex a{"side_effects_a"};
    fencedep::mutex b{"side_effects_b"};
    side_effects_lock_a_then_b(a, b, "first");
    say("descriptors after the first capture: " + descriptors());
    side_effects_lock_b_then_a(a, b, "first");
    say("descriptors after the first splat: " + descriptors());

    fencedep::mutex c{"side_effects_c"};
    fencedep::mutex d{"side_effects_d"};
    side_effects_lock_a_then_b(c, d, "second");
    side_effects_lock_b_then_a(c, d, "second");
    say("descriptors after the second splat: " + descriptors());

    say("threads after: " + std::to_string(threads()));
    say(std::string("signal handlers: ") + (signal_handlers() == handlers_before ? "unchanged" : "changed"));
    say("signal handlers before: " + handlers_before);
    say("signal handlers after: " + signal_handlers());
    return 0;
}
