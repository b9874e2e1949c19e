// SPDX-License-Identifier: MIT
// Per-thread validator state: creation on first use, the re-entry guard, and thread exit.
#include "engine/thread_state.h"

#include <pthread.h>
#include <unistd.h>

#include <new>

namespace fencedep::detail {

namespace {
// initial-exec: an access is one load from the thread pointer, and never calls malloc (a
// dynamic TLS access may), which matters once fencedep interposes on pthread locks.
[[gnu::tls_model("initial-exec")]] thread_local int guard_depth = 0;
[[gnu::tls_model("initial-exec")]] thread_local thread_state* state = nullptr;
[[gnu::tls_model("initial-exec")]] thread_local bool exited = false;

pthread_key_t exit_key;
pthread_once_t exit_key_once = PTHREAD_ONCE_INIT;

void thread_exit(void* value) {
    auto* exiting = static_cast<thread_state*>(value);
    reentry_guard guard;
    on_thread_exit(*exiting);
    state = nullptr;
    exited = true;
    delete exiting;
}

void make_exit_key() {
    pthread_key_create(&exit_key, thread_exit);
}
}  // namespace

reentry_guard::reentry_guard() noexcept { ++guard_depth; }
reentry_guard::~reentry_guard() { --guard_depth; }
bool reentry_guard::raised() noexcept { return guard_depth > 0; }

thread_state* current_thread_state() noexcept {
    if (state || exited)
        return state;
    pthread_once(&exit_key_once, make_exit_key);
    auto* created = new (std::nothrow) thread_state;
    if (!created)
        return nullptr;
    created->tid = static_cast<int>(gettid());
    if (pthread_setspecific(exit_key, created) != 0) {
        delete created;
        return nullptr;
    }
    state = created;
    return state;
}

}  // namespace fencedep::detail
