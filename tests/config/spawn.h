// SPDX-License-Identifier: MIT
// Test helper: runs a program with a controlled environment and collects its output and status.
#pragma once

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

extern char** environ;

namespace fencedep::testing {

struct spawn_result {
    pid_t pid = -1;
    int status = 0;  // as waitpid(2) returns it
    bool timed_out = false;
    std::string out;
    std::string err;

    // The exit status, or -1 if the program did not exit normally.
    int exit_code() const { return WIFEXITED(status) ? WEXITSTATUS(status) : -1; }
    // The signal that ended the program, or 0 if it exited normally.
    int signal() const { return WIFSIGNALED(status) ? WTERMSIG(status) : 0; }
};

// Changes to the parent's environment: a value sets the variable, nullopt removes it.
using env_changes = std::map<std::string, std::optional<std::string>>;

namespace spawn_detail {

inline std::vector<std::string> child_environment(const env_changes& changes) {
    std::vector<std::string> env;
    for (char** entry = environ; *entry; ++entry) {
        const std::string variable = *entry;
        const std::string name = variable.substr(0, variable.find('='));
        if (!changes.contains(name))
            env.push_back(variable);
    }
    for (const auto& [name, value] : changes)
        if (value)
            env.push_back(name + "=" + *value);
    return env;
}

inline std::vector<char*> pointers(std::vector<std::string>& strings) {
    std::vector<char*> result;
    for (std::string& s : strings)
        result.push_back(s.data());
    result.push_back(nullptr);
    return result;
}

[[noreturn]] inline void fail(const char* what, int error) {
    throw std::runtime_error(std::string(what) + ": " + std::strerror(error));
}

}  // namespace spawn_detail

// Runs argv[0] (a path, not searched in PATH) with `argv` and the parent's environment changed by
// `env`; stdin is /dev/null and core dumps are off. Waits for it to end and returns its stdout,
// stderr and wait status.
// A program still running after `timeout` is killed with SIGKILL and marked timed_out, so that a
// hang fails the test instead of stalling the suite.
// A `read_pause` plays a slow reader (a busy CI log collector): after each read of at most 4 KB,
// the parent sleeps that long, so that a program writing a lot fills the pipe and blocks in write.
// Throws std::runtime_error if the program cannot be started.
inline spawn_result spawn(std::vector<std::string> argv, const env_changes& env = {},
                          std::chrono::milliseconds timeout = std::chrono::seconds(20),
                          std::chrono::milliseconds read_pause = std::chrono::milliseconds(0)) {
    using spawn_detail::fail;
    std::vector<std::string> environment = spawn_detail::child_environment(env);
    std::vector<char*> argv_pointers = spawn_detail::pointers(argv);
    std::vector<char*> env_pointers = spawn_detail::pointers(environment);

    // Close-on-exec, so that the child keeps only the ends dup2'ed onto its stdout and stderr,
    // and children spawned concurrently by other threads do not hold our pipes open.
    int out_pipe[2];
    int err_pipe[2];
    if (::pipe2(out_pipe, O_CLOEXEC) != 0)
        fail("pipe2", errno);
    if (::pipe2(err_pipe, O_CLOEXEC) != 0) {
        const int error = errno;
        ::close(out_pipe[0]);
        ::close(out_pipe[1]);
        fail("pipe2", error);
    }

    // The child reports a failed execve through this pipe; close-on-exec makes a successful one
    // show up as end-of-file.
    int exec_pipe[2];
    if (::pipe2(exec_pipe, O_CLOEXEC) != 0) {
        const int error = errno;
        for (int fd : {out_pipe[0], out_pipe[1], err_pipe[0], err_pipe[1]})
            ::close(fd);
        fail("pipe2", error);
    }

    spawn_result result;
    result.pid = ::fork();
    if (result.pid == 0) {
        // Only async-signal-safe calls from here on: the parent may have other threads.
        const int null_fd = ::open("/dev/null", O_RDONLY);
        if (null_fd >= 0)
            ::dup2(null_fd, STDIN_FILENO);
        ::dup2(out_pipe[1], STDOUT_FILENO);
        ::dup2(err_pipe[1], STDERR_FILENO);
        // Children that die of a signal (abort_on_splat) must not litter the build with cores.
        const rlimit no_core{0, 0};
        ::setrlimit(RLIMIT_CORE, &no_core);
        ::execve(argv_pointers[0], argv_pointers.data(), env_pointers.data());
        const int error = errno;
        (void)!::write(exec_pipe[1], &error, sizeof error);
        ::_exit(127);
    }
    const int fork_error = errno;
    ::close(out_pipe[1]);
    ::close(err_pipe[1]);
    ::close(exec_pipe[1]);
    int exec_error = 0;
    if (result.pid < 0)
        exec_error = fork_error;
    else if (::read(exec_pipe[0], &exec_error, sizeof exec_error) > 0)
        ::waitpid(result.pid, nullptr, 0);
    ::close(exec_pipe[0]);
    if (exec_error != 0) {
        ::close(out_pipe[0]);
        ::close(err_pipe[0]);
        fail(argv_pointers[0], exec_error);
    }

    // Both pipes are drained together: a child blocked writing one of them while we wait on the
    // other would never finish.
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    pollfd fds[2] = {{out_pipe[0], POLLIN, 0}, {err_pipe[0], POLLIN, 0}};
    std::string* sinks[2] = {&result.out, &result.err};
    int open_pipes = 2;
    while (open_pipes > 0) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0) {
            result.timed_out = true;
            ::kill(result.pid, SIGKILL);
            break;
        }
        if (::poll(fds, 2, static_cast<int>(left.count())) < 0) {
            if (errno == EINTR)
                continue;
            ::kill(result.pid, SIGKILL);
            break;
        }
        for (int i = 0; i < 2; ++i) {
            if (fds[i].fd < 0 || fds[i].revents == 0)
                continue;
            char buffer[4096];
            const ssize_t got = ::read(fds[i].fd, buffer, sizeof buffer);
            if (got > 0) {
                sinks[i]->append(buffer, static_cast<std::size_t>(got));
                std::this_thread::sleep_for(read_pause);
            } else if (got == 0 || errno != EINTR) {
                ::close(fds[i].fd);
                fds[i].fd = -1;
                --open_pipes;
            }
        }
    }
    for (const pollfd& fd : fds)
        if (fd.fd >= 0)
            ::close(fd.fd);
    while (::waitpid(result.pid, &result.status, 0) < 0 && errno == EINTR) {
    }
    return result;
}

// What a failed check prints about a run.
inline std::string describe(const spawn_result& result) {
    return "status " + std::to_string(result.status) + "\n--- stdout:\n" + result.out + "--- stderr:\n" +
           result.err;
}

// The whole text of a file; empty if it cannot be read.
inline std::string read_file(const std::filesystem::path& path) {
    std::ifstream in(path);
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
}

// A fresh directory under /tmp, removed with its contents when the test is done with it.
struct temp_dir {
    std::filesystem::path path;
    temp_dir() {
        char name[] = "/tmp/fencedep-test-XXXXXX";
        if (::mkdtemp(name) == nullptr)
            spawn_detail::fail("mkdtemp", errno);
        path = name;
    }
    ~temp_dir() {
        std::error_code ignored;
        std::filesystem::remove_all(path, ignored);
    }
    temp_dir(const temp_dir&) = delete;
    temp_dir& operator=(const temp_dir&) = delete;
};

}  // namespace fencedep::testing
