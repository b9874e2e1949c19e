// SPDX-License-Identifier: MIT
// Shared by the engine and fence suites: a fresh validator per case, a handler that keeps every
// report, and helpers to check what the reports say.
#pragma once

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include <doctest/doctest.h>
#include <fencedep/fencedep.h>

namespace engine_test {

inline const char* kind_name(fencedep::report_kind kind) {
    switch (kind) {
    case fencedep::report_kind::circular_dependency: return "circular_dependency";
    case fencedep::report_kind::recursive_locking: return "recursive_locking";
    case fencedep::report_kind::bad_unlock_balance: return "bad_unlock_balance";
    case fencedep::report_kind::held_lock_freed: return "held_lock_freed";
    case fencedep::report_kind::lock_held_at_thread_exit: return "lock_held_at_thread_exit";
    case fencedep::report_kind::table_exhausted: return "table_exhausted";
    case fencedep::report_kind::lock_depth_exceeded: return "lock_depth_exceeded";
    case fencedep::report_kind::invalid_subclass: return "invalid_subclass";
    case fencedep::report_kind::fence_container_nesting: return "fence_container_nesting";
    case fencedep::report_kind::nest_lock_not_held: return "nest_lock_not_held";
    }
    return "unknown report_kind";
}

// Joined into one string so that a failed CHECK prints the whole list (doctest cannot print a
// std::vector).
inline std::string joined(const std::vector<std::string>& parts) {
    std::string out;
    for (const auto& part : parts) {
        if (!out.empty())
            out += ", ";
        out += part;
    }
    return out;
}

// The cycle of a circular report as printed: held lock first, lock being acquired last.
inline std::string classes_of(const fencedep::report& r) { return joined(r.classes); }

inline bool contains(std::string_view haystack, std::string_view needle) {
    return haystack.find(needle) != std::string_view::npos;
}

// Whether `stack` has a frame in `function` at `line` of the calling test's own source file
// (`caller` is the call site; leave it defaulted).
inline bool has_frame(const std::vector<fencedep::frame>& stack, std::string_view function,
                      unsigned line, fencedep::source_location caller = fencedep::source_location::current()) {
    std::string_view path = caller.file_name();
    const auto file_name = path.substr(path.find_last_of('/') + 1);
    return std::ranges::any_of(stack, [&](const fencedep::frame& f) {
        return contains(f.function, function) && f.file.ends_with(file_name) && f.line == line;
    });
}

// For a failed CHECK: the stack as "function file:line" lines.
inline std::string describe(const std::vector<fencedep::frame>& stack) {
    std::string out;
    for (const auto& f : stack)
        out += f.function + " " + f.file + ":" + std::to_string(f.line) + "\n";
    return out;
}

// Starts each case as the kernel selftests do: validator reset and on, every report kept here
// instead of going to the default sink (whose exit-time splat count would fail the suite).
// Declare it before the case's locks, so that it outlives them.
class capture {
public:
    capture() {
        fencedep::reset();
        fencedep::enable(true);
        fencedep::set_report_handler([this](const fencedep::report& r) { add(r); });
    }
    ~capture() {
        fencedep::enable(false);
        fencedep::set_report_handler({});
        fencedep::reset();
    }
    capture(const capture&) = delete;
    capture& operator=(const capture&) = delete;

    std::size_t count() const {
        std::lock_guard guard(mutex_);
        return reports_.size();
    }

    // The kinds of every report so far, in order, e.g. "circular_dependency, bad_unlock_balance".
    std::string kinds() const {
        std::lock_guard guard(mutex_);
        std::vector<std::string> names;
        for (const auto& r : reports_)
            names.emplace_back(kind_name(r.kind));
        return joined(names);
    }

    fencedep::report at(std::size_t index) const {
        std::lock_guard guard(mutex_);
        REQUIRE(index < reports_.size());
        return reports_[index];
    }

    // Waits until `n` reports have arrived or `limit` has passed; the limit only keeps a broken
    // engine from hanging the suite, a correct one never comes near it.
    bool wait_for(std::size_t n, std::chrono::seconds limit) const {
        std::unique_lock guard(mutex_);
        return arrived_.wait_for(guard, limit, [&] { return reports_.size() >= n; });
    }

private:
    void add(const fencedep::report& r) {
        {
            std::lock_guard guard(mutex_);
            reports_.push_back(r);
        }
        arrived_.notify_all();
    }

    // Plain std:: primitives: the handler must not feed the validator it is watching.
    mutable std::mutex mutex_;
    mutable std::condition_variable arrived_;
    std::vector<fencedep::report> reports_;
};

// Takes x then y, and releases both: the selftests' LU2(x, y).
template <class X, class Y>
void lock_unlock_2(X& x, Y& y) {
    x.lock();
    y.lock();
    y.unlock();
    x.unlock();
}

// A reader/writer lock seen through its read side, for the helpers above: with
// `reading read(table)`, lock_unlock_2(read, log) takes log while reading table.
template <class Shared>
class reading {
public:
    explicit reading(Shared& lock) : lock_(lock) {}
    void lock() { lock_.lock_shared(); }
    void unlock() { lock_.unlock_shared(); }

private:
    Shared& lock_;
};

// Six classes named by letter, each constructed on a line of its own (a class is a construction
// line), so that every instance of the struct shares them.
template <class Lock>
struct lettered_locks {
    Lock a{"A"};
    Lock b{"B"};
    Lock c{"C"};
    Lock d{"D"};
    Lock e{"E"};
    Lock x{"X"};

    Lock& operator[](char name) {
        switch (name) {
        case 'A': return a;
        case 'B': return b;
        case 'C': return c;
        case 'D': return d;
        case 'E': return e;
        case 'X': return x;
        }
        FAIL("no lock named ", name);
        return a;
    }
};

// LU2 for each pair of letters, in order: lock_unlock_pairs(l, {"AB", "BC"}) is LU2(A, B);
// LU2(B, C).
template <class Lock>
void lock_unlock_pairs(lettered_locks<Lock>& l, const std::vector<std::string_view>& pairs) {
    for (const auto pair : pairs)
        lock_unlock_2(l[pair.at(0)], l[pair.at(1)]);
}

// Takes x, y, then z, each under the ones before, and releases them in reverse.
template <class X, class Y, class Z>
void lock_unlock_3(X& x, Y& y, Z& z) {
    x.lock();
    lock_unlock_2(y, z);
    x.unlock();
}

}  // namespace engine_test

namespace doctest {
template <>
struct StringMaker<fencedep::report_kind> {
    static String convert(fencedep::report_kind kind) { return engine_test::kind_name(kind); }
};
}  // namespace doctest
