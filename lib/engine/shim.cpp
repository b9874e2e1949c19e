// SPDX-License-Identifier: MIT
// The interposers' view of the engine (include/fencedep/shim.h).
#include <fencedep/shim.h>

#include "config/options.h"
#include "engine/internal.h"
#include "stack/modules.h"

namespace fencedep::shim {

using namespace detail;

bool inside_validator() noexcept {
    return reentry_guard::raised();
}

class_rule preload_classes() noexcept {
    return current_options().preload_classes == preload_classes_mode::address ? class_rule::address
                                                                              : class_rule::site;
}

bool static_storage(const void* address) noexcept {
    // Rebuilding the table of loaded objects allocates and locks: none of that is the program's.
    const reentry_guard guard;
    try {
        return in_writable_image(address);
    } catch (...) {
        return false;
    }
}

const void* user_call_site(const void* return_address) noexcept {
    const reentry_guard guard;
    try {
        return user_return_address(return_address);
    } catch (...) {
        return return_address;
    }
}

void on_gate_change(void (*listener)() noexcept) noexcept {
    gate_listener.store(listener, std::memory_order_release);
}

}  // namespace fencedep::shim
