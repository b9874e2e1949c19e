// SPDX-License-Identifier: MIT
// Shared by the sync suites.
#pragma once

#include <thread>

namespace sync_test {

// Whether another thread can take `lock` now (it gives it back at once): whether the real lock,
// not only the validator's view of it, is free.
template <class Lock>
bool free_for_another_thread(Lock& lock) {
    bool taken = false;
    std::thread([&] {
        taken = lock.try_lock();
        if (taken)
            lock.unlock();
    }).join();
    return taken;
}

}  // namespace sync_test
