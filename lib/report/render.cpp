// SPDX-License-Identifier: MIT
// Renders a pending report as a fencedep::report with the kernel lockdep layout and wording.
//
// The text follows lockdep's reports line for line (header, "-> #N" chain in reverse order,
// "Chain exists of:", the CPU0/CPU1 scenario, held locks, "stack backtrace:") so that people and
// tools that read kernel splats read ours. Two things are added: file:line on every frame, and a
// fence context line under each link that was recorded inside a fence operation.
#include "report/render.h"

#include <errno.h>
#include <unistd.h>

#include <algorithm>
#include <iterator>
#include <string_view>

#include <fmt/format.h>

#include <fencedep/signalling.h>

#include <fencedep/version.h>

#include "config/escape.h"
#include "config/options.h"
#include "report/identity.h"
#include "stack/trim.h"

namespace fencedep::detail {

namespace {

const char* verb(fence_op op) {
    switch (op) {
    case fence_op::enable_signaling: return "enabling signaling on";
    case fence_op::add_callback: return "adding a callback to";
    case fence_op::signal: return "signalling";
    case fence_op::signal_callback: return "running a signal callback of";
    case fence_op::release: return "releasing";
    case fence_op::wait: return "waiting on";
    case fence_op::deferred_work: return "running deferred work of";
    case fence_op::query: return "querying";
    case fence_op::remove_callback: return "removing a callback from";
    case fence_op::signalling: return "inside a signalling section";
    case fence_op::priming: return "priming";
    }
    return "inside";
}

std::string describe(const context_copy& c) {
    if (c.op == fence_op::signalling)
        return c.file.empty() ? verb(c.op) : fmt::format("{} begun at {}:{}", verb(c.op), c.file, c.line);
    if (c.op == fence_op::priming)
        return "priming fencedep's fence rules at start-up (waits on fences may happen under reservation "
               "locks and in memory reclaim)";
    // The timeline names the fence best; containers have the kernel's "unbound" timeline, so
    // they fall back to their driver name unless that only repeats the kind.
    std::string_view name = c.timeline;
    if (name.empty() || name == "unbound")
        name = c.driver == c.kind ? std::string_view{} : std::string_view{c.driver};
    std::string text = fmt::format("{} {}", verb(c.op), c.kind);
    if (!name.empty())
        text += fmt::format(" '{}'", name);
    return text + fmt::format(" ctx {} seqno {}", c.context, c.seqno);
}

}  // namespace

std::string context_line(const context_record& record) {
    std::string line;
    for (const auto& c : record.frames) {
        if (!line.empty())
            line += ", ";
        line += describe(c);
    }
    if (record.cut)
        line += fmt::format(", ... ({} more)", record.cut);
    return line;
}

// Without a function name, a frame is "module+0xoffset" as the sanitizers print it, so that an
// offline symbolizer can name it; an address in no known object stays bare.
std::string frame_text(const frame& f) {
    std::string text;
    if (!f.function.empty()) {
        text = f.function;
        if (!f.inlined) {
            text += fmt::format("+{:#x}", f.offset);
            if (f.size)
                text += fmt::format("/{:#x}", f.size);
        }
    } else {
        const frame located = f.module.empty() ? locate(f.address) : f;
        text = located.module.empty() ? fmt::format("{:#x}", f.address)
                                      : fmt::format("{}+{:#x}", located.module, located.module_offset);
    }
    if (!f.file.empty())
        text += fmt::format(" {}:{}", f.file, f.line);
    if (f.inlined)
        text += " (inlined)";
    return text;
}

std::vector<frame> report_frames(stack_id id) {
    const options& o = current_options();
    std::vector<frame> out = o.symbolize ? symbolize_stack(id) : unsymbolized_stack(id);
    if (out.size() > o.stack_depth)
        out.resize(o.stack_depth);
    return out;
}

namespace {

template <class... Args>
void append_line(std::string& text, fmt::format_string<Args...> format, Args&&... args) {
    fmt::format_to(std::back_inserter(text), format, std::forward<Args>(args)...);
    text += '\n';
}

class renderer {
public:
    explicit renderer(const pending_report& p) : p_(p), symbolize_(current_options().symbolize) {}

    report run();

private:
    std::vector<frame> frames(stack_id id) const { return report_frames(id); }
    frame site(const void* ip) const {
        const auto address = reinterpret_cast<std::uintptr_t>(ip);
        return symbolize_ ? symbolize(address) : locate(address);
    }
    frame acquire_site(const lock_ref& lock);

    void header(const std::string& title);
    void lock_line(const lock_ref& lock);
    void stack(const std::vector<frame>& trace, std::string_view indent);
    void held_locks();
    void backtrace();
    void context(const context_record& record, std::string_view prefix, std::string_view indent);
    template <class... Args>
    void line(fmt::format_string<Args...> format, Args&&... args) {
        append_line(text_, format, std::forward<Args>(args)...);
    }

    void circular();
    void recursive();
    void bad_unlock();
    void nest_not_held();
    void freed();
    void thread_exit();
    void message();

    const pending_report& p_;
    bool symbolize_;
    report out_;
    std::string text_;
    std::vector<frame> current_;
    std::vector<frame> current_untrimmed_;  // filled on first need by acquire_site()
};

void renderer::header(const std::string& title) {
    const std::string rule(title.size(), '=');
    text_ += '\n';
    line("{}", rule);
    line("{}", title);
    line("fencedep {}, process {}[{}], thread {}", FENCEDEP_VERSION, escape(program_invocation_short_name), getpid(),
         p_.thread);
    line("{}", std::string(title.size(), '-'));
}

// The user's frame where a lock was taken. The engine keeps a stack only for acquisitions that
// took the slow path; otherwise it has two return addresses, resolved here, at report time, so
// that the fast path pays nothing for them.
frame renderer::acquire_site(const lock_ref& lock) {
    // A captured stack names the user's function even where the acquire site lies in a
    // std::lock_guard instantiation; the current stack is symbolized already.
    if (lock.stack) {
        const std::vector<frame> acquired = lock.stack == p_.stack ? current_ : frames(lock.stack);
        if (!acquired.empty())
            return acquired.front();
    }
    if (!symbolize_)
        return site(lock.ip);
    const std::vector<frame> chain = symbolize_inline_chain(reinterpret_cast<std::uintptr_t>(lock.ip));
    const frame& at = chain[fencedep_frames(chain)];
    // Standard library code that made the lock call itself is a std::mutex (or kin) calling
    // pthread, which the preload interposes: the user's frame is the first one outward of it.
    if (standard_library_frame(at)) {
        const auto user = std::find_if_not(chain.begin(), chain.end(), standard_library_frame);
        if (user != chain.end())
            return *user;
    }
    if (!is_fencedep_frame(at))
        return at;
    // The lock function was inlined into fencedep's own code (the fence layer) or a std lock
    // wrapper. If that function is still running, as a fence operation holding its fence's lock
    // while it calls back into the user is, the user's frame is the first one outward of it.
    const frame& function = chain.back();
    if (p_.stack && current_untrimmed_.empty())
        current_untrimmed_ = symbolize_stack(p_.stack, false);
    const std::span<const frame> current(current_untrimmed_);
    for (std::size_t i = 0; i < current.size(); ++i) {
        if (current[i].inlined || current[i].function.empty() || current[i].function != function.function ||
            current[i].module != function.module)
            continue;
        const std::size_t fencedep = fencedep_frames(current.subspan(i));
        if (fencedep > 0)
            return current[i + fencedep];
    }
    // It has returned (a std::lock_guard constructor): its caller is the user's frame.
    if (lock.outer_ip) {
        frame outer = site(lock.outer_ip);
        if (!is_fencedep_frame(outer))
            return outer;
    }
    return at;
}

// How a lock is held or taken, as every lock line shows it: "{write}", "{read}" (a
// non-recursive reader) or "{recursive read}"; "{not held}" for a lock released but not held.
std::string_view kind_mark(std::optional<lock_kind> kind) {
    if (!kind)
        return "{not held}";
    switch (*kind) {
    case lock_kind::write: return "{write}";
    case lock_kind::read: return "{read}";
    case lock_kind::recursive_read: return "{recursive read}";
    }
    return "{write}";
}

// One acquisition as a scenario line shows it. fence_signalling is no lock to a reader: its
// read is a signalling section and its write a wait on a fence. Otherwise lockdep's verbs:
// rlock() for a reader on CPU0, lock() on CPU1 (`cpu0`: which column).
std::string scenario_step(std::string_view name, std::optional<lock_kind> kind, bool cpu0) {
    const bool read = kind && *kind != lock_kind::write;
    if (name == signalling_lock_name)
        return read ? "begin_signalling();" : "wait(fence);";
    return fmt::format("{}({});", cpu0 && read ? "rlock" : "lock", name);
}

void renderer::lock_line(const lock_ref& lock) {
    std::string text = fmt::format("{} ({}){}", fmt::ptr(lock.instance), lock.name, kind_mark(lock.kind));
    if (!lock.label.empty())
        text += fmt::format(" \"{}\"", lock.label);
    if (lock.stack || lock.ip)
        text += ", at: " + frame_text(acquire_site(lock));
    line("{}", text);
}

void renderer::stack(const std::vector<frame>& trace, std::string_view indent) {
    for (const frame& f : trace)
        line("{}{}", indent, frame_text(f));
}

void renderer::context(const context_record& record, std::string_view prefix, std::string_view indent) {
    if (!record.empty())
        line("{}{} {}", indent, prefix, context_line(record));
}

void renderer::held_locks() {
    if (p_.held_locks.empty()) {
        line("no locks held by {}.", p_.thread);
        return;
    }
    line("{} lock{} held by {}:", p_.held_locks.size(), p_.held_locks.size() == 1 ? "" : "s", p_.thread);
    for (std::size_t i = 0; i < p_.held_locks.size(); ++i) {
        text_ += fmt::format(" #{}: ", i);
        lock_line(p_.held_locks[i]);
        context(p_.held_locks[i].context, "taken while", "     ");
    }
}

void renderer::backtrace() {
    line("");
    line("stack backtrace:");
    stack(current_, " ");
}

void renderer::circular() {
    cycle_layout cycle{{}, p_.subject.name, p_.subject.kind.value_or(lock_kind::write), p_.held.name,
                       p_.held.kind.value_or(lock_kind::write), p_.parent, p_.parent_kind, true};
    const std::size_t n = p_.chain.size();
    for (std::size_t i = 0; i < n; ++i) {
        const chain_link& link = p_.chain[i];
        auto trace = i + 1 == n ? current_ : frames(link.stack);
        cycle.chain.push_back({link.name, link.kind, trace, context_line(link.context), {}});
        out_.classes.push_back(link.name);
        out_.stacks.push_back(std::move(trace));
        out_.contexts.push_back(cycle.chain.back().context);
    }
    append_signalling_note(text_, cycle);
    line("{} is trying to acquire lock:", p_.thread);
    lock_line(p_.subject);
    line("");
    line("but task is already holding lock:");
    lock_line(p_.held);
    line("");
    line("which lock already depends on the new lock.");
    line("");
    append_cycle(text_, cycle);
    held_locks();
    backtrace();
}

void renderer::recursive() {
    line("{} is trying to acquire lock:", p_.thread);
    lock_line(p_.subject);
    context(p_.subject.context, "while", "");
    line("");
    line("but task is already holding lock:");
    lock_line(p_.held);
    context(p_.held.context, "taken while", "");
    line("");
    line("other info that might help us debug this:");
    line(" Possible unsafe locking scenario:");
    line("");
    line("       CPU0");
    line("       ----");
    line("  {}", scenario_step(p_.held.name, p_.held.kind, true));
    line("  {}", scenario_step(p_.subject.name, p_.subject.kind, true));
    line("");
    line(" *** DEADLOCK ***");
    line("");
    line(" May be due to missing lock nesting notation");
    for (const auto& l : p_.lines)
        line(" {}", l);
    line("");
    held_locks();
    backtrace();
    out_.classes = {p_.held.name, p_.subject.name};
    out_.contexts = {context_line(p_.held.context), context_line(p_.subject.context)};
}

void renderer::bad_unlock() {
    line("{} is trying to release lock ({}) at:", p_.thread, p_.subject.name);
    line("{}", frame_text(site(p_.subject.ip)));
    line("but there are no more locks to release!");
    line("");
    line("other info that might help us debug this:");
    held_locks();
    backtrace();
    out_.classes = {p_.subject.name};
}

void renderer::nest_not_held() {
    line("{} is trying to lock:", p_.thread);
    lock_line(p_.subject);
    line("");
    line("but this task is not holding:");
    line("{}", p_.lines.empty() ? std::string() : p_.lines.front());
    line("");
    line("other info that might help us debug this:");
    held_locks();
    backtrace();
    out_.classes = {p_.subject.name};
}

void renderer::freed() {
    for (const auto& l : p_.lines)
        line("{}", l);
    lock_line(p_.subject);
    held_locks();
    backtrace();
    out_.classes = {p_.subject.name};
}

void renderer::thread_exit() {
    held_locks();
    backtrace();
    // The exit stack says little; each held lock's acquire site says where it was left held.
    for (const auto& held : p_.held_locks) {
        out_.classes.push_back(held.name);
        out_.stacks.push_back({site(held.ip)});
    }
}

void renderer::message() {
    for (const auto& l : p_.lines)
        line("{}", l);
    context(p_.context, "while", "");
    if (!p_.subject.name.empty()) {
        line("");
        lock_line(p_.subject);
        out_.classes = {p_.subject.name};
    }
    line("");
    held_locks();
    backtrace();
}

report renderer::run() {
    out_.kind = p_.kind;
    out_.is_splat = p_.is_splat;
    out_.thread = p_.thread;
    out_.title = p_.title.empty() ? fmt::format("WARNING: {}", report_title(p_.kind)) : p_.title;
    if (p_.stack)
        current_ = frames(p_.stack);
    header(out_.title);
    switch (p_.kind) {
    case report_kind::circular_dependency: circular(); break;
    case report_kind::recursive_locking: recursive(); break;
    case report_kind::bad_unlock_balance: bad_unlock(); break;
    case report_kind::held_lock_freed: freed(); break;
    case report_kind::lock_held_at_thread_exit: thread_exit(); break;
    case report_kind::table_exhausted:
    case report_kind::lock_depth_exceeded:
    case report_kind::invalid_subclass:
    case report_kind::fence_container_nesting: message(); break;
    case report_kind::nest_lock_not_held: nest_not_held(); break;
    }
    if (out_.stacks.empty())
        out_.stacks.push_back(current_);
    if (out_.contexts.empty() && !p_.context.empty())
        out_.contexts.push_back(context_line(p_.context));
    out_.text = std::move(text_);
    out_.location = user_frame(current_.empty() ? out_.stacks.front() : current_);
    out_.id = report_id(out_);
    return std::move(out_);
}

}  // namespace

void append_signalling_note(std::string& text, const cycle_layout& cycle) {
    const auto signalling = [](const cycle_layout::link& link) { return link.name == signalling_lock_name; };
    if (!std::ranges::any_of(cycle.chain, signalling))
        return;
    append_line(text, "{} stands for fence signalling: signalling sections and fence callbacks hold it for read,",
                signalling_lock_name);
    append_line(text, "each wait on a fence takes it for write; a cycle through it is a wait that a signaller may "
                      "never end.");
    append_line(text, "");
}

void append_cycle(std::string& text, const cycle_layout& cycle) {
    append_line(text, "");
    append_line(text, "the existing dependency chain (in reverse order) is:");
    const std::size_t n = cycle.chain.size();
    for (std::size_t i = 0; i < n; ++i) {
        const cycle_layout::link& link = cycle.chain[i];
        const std::size_t number = n - 1 - i;
        append_line(text, "");
        append_line(text, "-> #{} ({}){}:", number, link.name, kind_mark(link.kind));
        for (const frame& f : link.stack)
            append_line(text, "      {}", frame_text(f));
        if (!link.context.empty())
            append_line(text, "      {} {}", number == 0 && cycle.happening_now ? "taken while" : "recorded while",
                        link.context);
        for (const std::string& note : link.notes)
            append_line(text, "      {}", note);
    }
    append_line(text, "");
    append_line(text, "other info that might help us debug this:");
    append_line(text, "");
    const std::string& next = cycle.subject;
    const std::string& prev = cycle.held;
    if (cycle.parent != next) {
        append_line(text, "Chain exists of:");
        append_line(text, "  {} --> {} --> {}", next, cycle.parent, prev);
        append_line(text, "");
    }
    append_line(text, " Possible unsafe locking scenario:");
    append_line(text, "");
    append_line(text, "       CPU0                    CPU1");
    append_line(text, "       ----                    ----");
    append_line(text, "  {}", scenario_step(prev, cycle.held_kind, true));
    append_line(text, "                               {}", scenario_step(cycle.parent, cycle.parent_kind, false));
    append_line(text, "                               {}", scenario_step(prev, cycle.chain.front().kind, false));
    append_line(text, "  {}", scenario_step(next, cycle.subject_kind, true));
    append_line(text, "");
    append_line(text, " *** DEADLOCK ***");
    append_line(text, "");
}

namespace {

// Lock, fence and thread names come from the program and may hold a newline or another control
// character, which would break the layout that people and tools read line by line. Escaping them
// all here, once, keeps every rendering (and the structured fields, which hold names as printed)
// free of them.
pending_report escaped(const pending_report& p) {
    pending_report out = p;
    const auto names = [](context_record& record) {
        for (context_copy& c : record.frames) {
            c.file = escape(c.file);
            c.kind = escape(c.kind);
            c.driver = escape(c.driver);
            c.timeline = escape(c.timeline);
        }
    };
    out.title = escape(p.title);
    out.thread = escape(p.thread);
    const auto lock_names = [&](lock_ref& lock) {
        lock.name = escape(lock.name);
        lock.label = escape(lock.label);
        names(lock.context);
    };
    lock_names(out.subject);
    lock_names(out.held);
    for (lock_ref& lock : out.held_locks)
        lock_names(lock);
    for (chain_link& link : out.chain) {
        link.name = escape(link.name);
        names(link.context);
    }
    out.parent = escape(p.parent);
    names(out.context);
    for (std::string& l : out.lines)
        l = escape(l);
    return out;
}

}  // namespace

report render(const pending_report& pending) {
    return renderer(escaped(pending)).run();
}

}  // namespace fencedep::detail
