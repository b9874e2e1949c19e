// SPDX-License-Identifier: MIT
// Escaping of text that came from the user (option keys and values, lock, fence and thread names)
// before it goes into a diagnostic. Here rather than in lib/report/ because the option errors need
// it too, and the config layer sits below the report layer.
#pragma once

#include <algorithm>
#include <string>
#include <string_view>

namespace fencedep::detail {

// Whether escape() rewrites `c`.
inline bool needs_escape(char c) {
    const auto byte = static_cast<unsigned char>(c);
    return c == '\\' || byte < 0x20 || byte == 0x7f;
}

// Returns `text` with control characters written as C escapes (\n, \r, \t, else \xNN, as the
// sanitizers print them) and the backslash doubled, so that one name stays on one line of a report
// and an escape in the output always means an escape. Bytes from 0x80 up pass through: names may
// be UTF-8.
inline std::string escape(std::string_view text) {
    constexpr char hex[] = "0123456789abcdef";
    std::string out;
    out.reserve(text.size());
    for (const char c : text) {
        const auto byte = static_cast<unsigned char>(c);
        if (c == '\\')
            out += "\\\\";
        else if (c == '\n')
            out += "\\n";
        else if (c == '\r')
            out += "\\r";
        else if (c == '\t')
            out += "\\t";
        else if (byte < 0x20 || byte == 0x7f)
            out += {'\\', 'x', hex[byte >> 4], hex[byte & 0xf]};
        else
            out += c;
    }
    return out;
}

// escape() of `text`, in place. Most names need nothing and are then left as they are, without a
// copy: fencedep-graph reads a million names from its dumps.
inline void escape_in_place(std::string& text) {
    if (std::ranges::any_of(text, needs_escape))
        text = escape(text);
}

}  // namespace fencedep::detail
