// SPDX-License-Identifier: MIT
// Where reports go: the user's handler, or the log with one write(2) per report.
#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <mutex>

#include <fmt/format.h>

#include "config/options.h"
#include "report/pending.h"
#include "report/render.h"

namespace fencedep::detail {

namespace {
std::atomic<std::uint64_t> splats{0};
std::atomic<std::uint64_t> printed_splats{0};
std::atomic<int> log_fd{STDERR_FILENO};

struct handler_slot {
    std::mutex mutex;
    report_handler handler;
};

handler_slot& handler() {
    // Never destroyed: a thread may report while the process exits.
    static handler_slot* slot = new handler_slot;
    return *slot;
}

// One write(2) per report, looping only on partial writes, so that reports from concurrent
// threads never interleave mid-line in the log.
void write_all(int fd, const std::string& text) {
    const char* data = text.data();
    std::size_t left = text.size();
    while (left > 0) {
        const ssize_t n = write(fd, data, left);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return;
        data += n;
        left -= static_cast<std::size_t>(n);
    }
}
}  // namespace

bool open_log() {
    const std::string& path = current_options().log_path;
    if (path.empty())
        return true;
    const int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0) {
        write_all(STDERR_FILENO, fmt::format("fencedep: error: cannot open log_path '{}': {}; reporting to stderr\n",
                                             path, std::strerror(errno)));
        return false;
    }
    log_fd.store(fd, std::memory_order_relaxed);
    return true;
}

void deliver(pending_report&& pending) {
    const report r = render(pending);
    if (r.is_splat)
        splats.fetch_add(1, std::memory_order_relaxed);
    report_handler h;
    {
        std::lock_guard<std::mutex> lock(handler().mutex);
        h = handler().handler;
    }
    if (h) {
        h(r);
    } else {
        write_all(log_fd.load(std::memory_order_relaxed), r.text);
        if (r.is_splat)
            printed_splats.fetch_add(1, std::memory_order_relaxed);
    }
    if (r.is_splat && current_options().abort_on_splat)
        std::abort();
}

std::uint64_t printed_splat_count() noexcept { return printed_splats.load(std::memory_order_relaxed); }

void reset_splat_count() noexcept { splats.store(0, std::memory_order_relaxed); }

void hold_handler_lock(bool held) noexcept {
    if (held)
        handler().mutex.lock();
    else
        handler().mutex.unlock();
}

}  // namespace fencedep::detail

fencedep::report_handler fencedep::set_report_handler(report_handler new_handler) {
    auto& slot = detail::handler();
    std::lock_guard<std::mutex> lock(slot.mutex);
    std::swap(slot.handler, new_handler);
    return new_handler;
}

std::uint64_t fencedep::splat_count() noexcept { return detail::splats.load(std::memory_order_relaxed); }
