// SPDX-License-Identifier: MIT
// The cost of fencedep-run on an unmodified program: preload_bench run as it is, with the preload
// and FENCEDEP=0, and through fencedep-run, at depth 1 and 8. Runs alternate between the modes,
// so that a busy neighbour on a shared machine slows them alike, and each mode keeps its fastest
// run; the ratios are of CPU time per lock/unlock pair, measured inside the program.
//
// Usage: preload_ratios FENCEDEP_RUN PRELOAD_LIBRARY PRELOAD_BENCH [ROUNDS]
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

extern char** environ;

namespace {

struct mode {
    const char* name;
    std::vector<std::string> prefix;  // argv before the program
    std::vector<std::string> env;     // set on top of a cleaned environment
};

// Runs argv with the environment less FENCEDEP* and LD_PRELOAD, plus `extra`; returns the number
// the program printed, or a negative value on failure.
double run(const std::vector<std::string>& argv, const std::vector<std::string>& extra) {
    std::vector<std::string> env;
    for (char** entry = environ; *entry; ++entry) {
        const std::string variable = *entry;
        if (!variable.starts_with("FENCEDEP") && !variable.starts_with("LD_PRELOAD="))
            env.push_back(variable);
    }
    env.insert(env.end(), extra.begin(), extra.end());
    std::vector<char*> argv_pointers;
    for (const std::string& a : argv)
        argv_pointers.push_back(const_cast<char*>(a.c_str()));
    argv_pointers.push_back(nullptr);
    std::vector<char*> env_pointers;
    for (const std::string& e : env)
        env_pointers.push_back(const_cast<char*>(e.c_str()));
    env_pointers.push_back(nullptr);

    int out[2];
    if (pipe(out) != 0)
        return -1;
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, out[1], STDOUT_FILENO);
    posix_spawn_file_actions_addclose(&actions, out[0]);
    pid_t pid = 0;
    const int error = posix_spawn(&pid, argv_pointers[0], &actions, nullptr, argv_pointers.data(), env_pointers.data());
    posix_spawn_file_actions_destroy(&actions);
    close(out[1]);
    std::string text;
    char buffer[256];
    for (ssize_t n; error == 0 && (n = read(out[0], buffer, sizeof buffer)) > 0;)
        text.append(buffer, static_cast<std::size_t>(n));
    close(out[0]);
    int status = 0;
    if (error != 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
        return -1;
    return std::strtod(text.c_str(), nullptr);
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 4) {
        std::fprintf(stderr, "usage: preload_ratios FENCEDEP_RUN PRELOAD_LIBRARY PRELOAD_BENCH [ROUNDS]\n");
        return 2;
    }
    const std::string fencedep_run = argv[1];
    const std::string preload = argv[2];
    const std::string bench = argv[3];
    const std::string rounds = argc > 4 ? argv[4] : "2000000";
    const mode modes[] = {
        {"raw", {}, {}},
        {"preloaded, FENCEDEP=0", {}, {"LD_PRELOAD=" + preload, "FENCEDEP=0"}},
        {"fencedep-run", {fencedep_run}, {}},
    };
    constexpr int repetitions = 7;
    for (const char* depth : {"1", "8"}) {
        double best[3];
        std::fill(std::begin(best), std::end(best), std::numeric_limits<double>::max());
        for (int repetition = 0; repetition < repetitions; ++repetition) {
            for (int m = 0; m < 3; ++m) {
                std::vector<std::string> command = modes[m].prefix;
                command.insert(command.end(), {bench, depth, rounds});
                const double ns = run(command, modes[m].env);
                if (ns < 0) {
                    std::fprintf(stderr, "preload_ratios: %s run at depth %s failed\n", modes[m].name, depth);
                    return 1;
                }
                best[m] = std::min(best[m], ns);
            }
        }
        std::printf("depth %s: raw %.2f ns per lock/unlock pair (CPU)\n", depth, best[0]);
        for (int m = 1; m < 3; ++m)
            std::printf("depth %s: %s %.2f ns, %.2fx raw\n", depth, modes[m].name, best[m], best[m] / best[0]);
    }
    return 0;
}
