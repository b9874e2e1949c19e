// SPDX-License-Identifier: MIT
// The names of the report kinds: the title a splat prints under its banner, and the stable
// identifier that JSON, SARIF rule ids and suppression files use. Apart from the renderer so
// that code which only reads or writes reports links without it (tests/fuzz/dump_fuzzer).
#include <fencedep/report.h>

const char* fencedep::report_title(report_kind kind) noexcept {
    switch (kind) {
    case report_kind::circular_dependency: return "possible circular locking dependency detected";
    case report_kind::recursive_locking: return "possible recursive locking detected";
    case report_kind::bad_unlock_balance: return "bad unlock balance detected!";
    case report_kind::held_lock_freed: return "held lock freed!";
    case report_kind::lock_held_at_thread_exit: return "thread exited with locks held!";
    case report_kind::table_exhausted: return "validator table full";
    case report_kind::lock_depth_exceeded: return "too many locks held at once";
    case report_kind::invalid_subclass: return "invalid lock subclass";
    case report_kind::fence_container_nesting: return "fence container nested in a container";
    case report_kind::nest_lock_not_held: return "Nested lock was not taken";
    }
    return "unknown report";
}

const char* fencedep::report_kind_name(report_kind kind) noexcept {
    switch (kind) {
    case report_kind::circular_dependency: return "circular_dependency";
    case report_kind::recursive_locking: return "recursive_locking";
    case report_kind::bad_unlock_balance: return "bad_unlock_balance";
    case report_kind::held_lock_freed: return "held_lock_freed";
    case report_kind::lock_held_at_thread_exit: return "lock_held_at_thread_exit";
    case report_kind::table_exhausted: return "table_exhausted";
    case report_kind::lock_depth_exceeded: return "lock_depth_exceeded";
    case report_kind::invalid_subclass: return "invalid_subclass";
    case report_kind::fence_container_nesting: return "fence_container_nesting";
    case report_kind::nest_lock_not_held: return "nest_lock_not_held";
    }
    return "unknown";
}
