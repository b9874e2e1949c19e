// SPDX-License-Identifier: MIT
#pragma once

namespace fencedep::detail {

// Holds a T built at compile time and never destroyed, so that it works from static constructors,
// static destructors, atexit handlers and threads still running while the process exits.
template <class T>
union never_destroyed {
    constexpr never_destroyed() : value() {}
    ~never_destroyed() {}
    T value;
};

}  // namespace fencedep::detail
