// SPDX-License-Identifier: MIT
// Where reports go: the user's handler, or the log, one whole report at a time.
#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <mutex>
#include <string_view>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "config/escape.h"
#include "config/options.h"
#include "engine/thread_state.h"
#include "report/json.h"
#include "report/pending.h"
#include "report/render.h"
#include "report/sarif.h"
#include "report/suppressions.h"

namespace fencedep::detail {

namespace {
std::atomic<std::uint64_t> splats{0};
std::atomic<std::uint64_t> printed_splats{0};

struct handler_slot {
    std::mutex mutex;
    report_handler handler;
};

handler_slot& handler() {
    // Never destroyed: a thread may report while the process exits.
    static handler_slot* slot = new handler_slot;
    return *slot;
}

// The log, with the lock that every write to it holds from its first byte to its last: a pipe
// takes a write above PIPE_BUF in pieces, and another thread's report could land between them.
struct log_slot {
    std::mutex mutex;
    int fd = STDERR_FILENO;
};

log_slot& log() {
    // Never destroyed, like the handler slot.
    static log_slot* slot = new log_slot;
    return *slot;
}

// The reports the SARIF log will hold, handlers' and suppressed ones included, kept until the
// process exits.
struct sarif_slot {
    std::mutex mutex;
    std::vector<sarif_entry> reports;
    bool written = false;
};

sarif_slot& sarif() {
    // Never destroyed, like the handler slot: a thread may report while the process exits.
    static sarif_slot* slot = new sarif_slot;
    return *slot;
}

// A forked child inherits the parent's reports and sarif_path: if it wrote the log at its exit,
// it would overwrite the parent's. The parent writes it; the child's reports go to the log only.
const pid_t sarif_owner = getpid();

// Returns 0, or the errno of the write that failed.
int write_all(int fd, std::string_view text) {
    while (!text.empty()) {
        const ssize_t n = write(fd, text.data(), text.size());
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return errno;
        // A write that takes nothing would be retried for ever.
        if (n == 0)
            return EIO;
        text.remove_prefix(static_cast<std::size_t>(n));
    }
    return 0;
}

// A log file that refuses a write (a full disk, a quota) would lose every report while the exit
// status still claimed there were some: the reports go to stderr from then on, after one line
// saying why.
void write_log(std::string_view text) {
    log_slot& l = log();
    std::lock_guard<std::mutex> lock(l.mutex);
    const int error = write_all(l.fd, text);
    if (error == 0 || l.fd == STDERR_FILENO)
        return;
    close(l.fd);
    l.fd = STDERR_FILENO;
    write_all(STDERR_FILENO, fmt::format("fencedep: error: cannot write to log_path '{}': {}; reporting to stderr\n{}",
                                         escape(current_options().log_path), std::strerror(error), text));
}

// A report written to the log in the log's format, which counts for the exit status if it is a
// splat. `thrown`: the line that says a handler threw on it, if one did.
void log_written(const report& r, const std::string& thrown) {
    if (current_options().log_format == log_format_mode::json) {
        nlohmann::json line = report_json(r);
        // The line would break a reader of JSON Lines: it is a field of the report it was about.
        if (!thrown.empty())
            line["handler_error"] = thrown.substr(0, thrown.size() - 1);
        write_log(dump_json(line) + '\n');
    } else {
        write_log(thrown + r.text);
    }
    if (r.is_splat)
        printed_splats.fetch_add(1, std::memory_order_relaxed);
}

// Writes the SARIF log of every report so far, once: at exit, or before abort_on_splat's abort.
// Reports made after it (by threads still running while the process exits) are not in it.
void write_sarif() {
    const std::string& path = current_options().sarif_path;
    if (path.empty() || getpid() != sarif_owner)
        return;
    sarif_slot& s = sarif();
    std::lock_guard<std::mutex> lock(s.mutex);
    if (std::exchange(s.written, true))
        return;
    const int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    const int error = fd < 0 ? errno : write_all(fd, sarif_log(s.reports));
    if (fd >= 0)
        close(fd);
    if (error != 0)
        write_all(STDERR_FILENO, fmt::format("fencedep: error: cannot write sarif_path '{}': {}; no SARIF log\n",
                                             escape(path), std::strerror(error)));
}

// Keeps `r` for the SARIF log, if there is one.
void keep_for_sarif(const report& r, const suppression_rule* suppression) {
    if (current_options().sarif_path.empty())
        return;
    std::lock_guard<std::mutex> lock(sarif().mutex);
    sarif().reports.push_back({r, suppression});
}

// Calls the handler; if it throws, returns the line that says so, for the log.
std::string call_handler(const report_handler& h, const report& r) {
    try {
        h(r);
        return {};
    } catch (const std::exception& e) {
        return fmt::format("fencedep: error: the report handler threw ({}); the report follows\n", escape(e.what()));
    } catch (...) {
        return "fencedep: error: the report handler threw an exception that is not a std::exception; the report "
               "follows\n";
    }
}

// Destructor functions of a shared library run in _dl_fini, after every atexit handler and static
// destructor and after the executable's own destructor functions, among them gcov's, which writes
// the .gcda files. So the _exit here skips only the destructor functions of the libraries that
// libfencedep itself uses (libc, libstdc++, ...) and stdio's last flush, which it does first.
// Its priority makes it the last of libfencedep's own destructor functions (those with a lower
// number run later, and all after those without one): the graph dump at exit runs before it. The
// suppression summary is written here too, so that it comes after every report the program's own
// exit-time code made.
[[gnu::destructor(101)]] void apply_exit_status() {
    {
        // The log's and the SARIF log's locks are fencedep's own: a pthread interposer must not
        // see them.
        const reentry_guard guard;
        if (const std::string summary = suppressions_summary(); !summary.empty())
            write_log(summary);
        write_sarif();
    }
    const int code = current_options().exitcode;
    if (code != 0 && printed_splats.load(std::memory_order_relaxed) > 0) {
        std::fflush(nullptr);
        _exit(code);
    }
}
}  // namespace

bool open_log() {
    const std::string& path = current_options().log_path;
    if (path.empty())
        return true;
    const int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0) {
        write_log(fmt::format("fencedep: error: cannot open log_path '{}': {}; reporting to stderr\n", escape(path),
                              std::strerror(errno)));
        return false;
    }
    std::lock_guard<std::mutex> lock(log().mutex);
    log().fd = fd;
    return true;
}

void deliver(pending_report&& pending) {
    const report r = render(pending);
    // A suppressed report is the user's decision that it needs no action: it reaches neither the
    // handler nor the log, and counts neither in splat_count() nor for the exit status, only in
    // the exit-time summary and, marked as suppressed, in the SARIF log, where an audit finds it.
    if (const suppression_rule* rule = suppressed(r)) {
        keep_for_sarif(r, rule);
        return;
    }
    if (r.is_splat)
        splats.fetch_add(1, std::memory_order_relaxed);
    report_handler h;
    {
        std::lock_guard<std::mutex> lock(handler().mutex);
        h = handler().handler;
    }
    keep_for_sarif(r, nullptr);
    // A handler that threw is treated as if there were none, so that the report is not lost: the
    // exception cannot travel on, since the lock functions that got here are noexcept.
    const std::string thrown = h ? call_handler(h, r) : std::string{};
    if (!h || !thrown.empty())
        log_written(r, thrown);
    if (r.is_splat && current_options().abort_on_splat) {
        write_sarif();
        std::abort();
    }
}

void reset_splat_count() noexcept { splats.store(0, std::memory_order_relaxed); }

void hold_handler_lock(bool held) noexcept {
    // The locks are never nested anywhere else, so any order is safe here.
    if (held) {
        handler().mutex.lock();
        log().mutex.lock();
        sarif().mutex.lock();
    } else {
        sarif().mutex.unlock();
        log().mutex.unlock();
        handler().mutex.unlock();
    }
}

}  // namespace fencedep::detail

fencedep::report_handler fencedep::set_report_handler(report_handler new_handler) {
    // The slot's lock is fencedep's own: a pthread interposer must not see it.
    const detail::reentry_guard guard;
    auto& slot = detail::handler();
    std::lock_guard<std::mutex> lock(slot.mutex);
    std::swap(slot.handler, new_handler);
    return new_handler;
}

void fencedep::log_report(const report& r) {
    const detail::reentry_guard guard;
    detail::log_written(r, {});
}

std::uint64_t fencedep::splat_count() noexcept { return detail::splats.load(std::memory_order_relaxed); }
