// SPDX-License-Identifier: MIT
// Shared by the sync suites.
#pragma once

#include <mutex>
#include <shared_mutex>
#include <thread>

namespace sync_test {

// Whether another thread can take `lock` now through a `Guard` (std::unique_lock: as a writer;
// std::shared_lock: as a reader), giving it back at once: whether the real lock, not only the
// validator's view of it, is free for that.
template <class Guard, class Lock>
bool another_thread_gets(Lock& lock) {
    bool taken = false;
    std::thread([&] { taken = Guard(lock, std::try_to_lock).owns_lock(); }).join();
    return taken;
}

template <class Lock>
bool free_for_another_thread(Lock& lock) {
    return another_thread_gets<std::unique_lock<Lock>>(lock);
}

template <class Lock>
bool free_for_another_reader(Lock& lock) {
    return another_thread_gets<std::shared_lock<Lock>>(lock);
}

}  // namespace sync_test
