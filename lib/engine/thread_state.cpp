// SPDX-License-Identifier: MIT
// Per-thread validator state: creation on first use, the re-entry guard, and thread exit.
#include "engine/thread_state.h"

#include <pthread.h>
#include <unistd.h>

#include <new>

namespace fencedep::detail {

constinit thread_local int reentry_depth = 0;
constinit thread_local thread_state* this_thread_state = nullptr;
constinit thread_local thread_state* hot_thread_state = nullptr;

namespace {
// Set once the thread's state is gone, so that locks taken by later TLS destructors do not
// build a new one that nothing would free.
[[gnu::tls_model("initial-exec")]] thread_local bool exited = false;

pthread_key_t exit_key;
pthread_once_t exit_key_once = PTHREAD_ONCE_INIT;

void thread_exit(void* value) {
    auto* exiting = static_cast<thread_state*>(value);
    reentry_guard guard;
    on_thread_exit(*exiting);
    this_thread_state = nullptr;
    exited = true;
    delete exiting;
}

void make_exit_key() {
    pthread_key_create(&exit_key, thread_exit);
}
}  // namespace

thread_state* current_thread_state() noexcept {
    if (this_thread_state || exited)
        return this_thread_state;
    pthread_once(&exit_key_once, make_exit_key);
    auto* created = new (std::nothrow) thread_state;
    if (!created)
        return nullptr;
    created->tid = static_cast<int>(gettid());
    if (pthread_setspecific(exit_key, created) != 0) {
        delete created;
        return nullptr;
    }
    this_thread_state = created;
    return created;
}

}  // namespace fencedep::detail
