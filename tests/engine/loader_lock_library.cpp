// SPDX-License-Identifier: MIT
// A library whose constructor takes a fencedep lock while the dynamic linker holds its lock, as a
// driver library that initializes its state under a lock does. Its key is fresh at every load, so
// the lock's class is registered, and named by symbolizing the key, each time.
#include <fencedep/fencedep.h>

namespace {
fencedep::lock_class_key library_key;
}

[[gnu::constructor]] static void on_load() {
    fencedep::lock_map lock(nullptr, library_key);
    lock.acquire();
    lock.release();
}
