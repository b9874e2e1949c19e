// SPDX-License-Identifier: MIT
// libFuzzer target for the suppressions parser and the template match: any bytes are a file; the
// parser must accept them or reject them with one line naming the line, and every rule it gives
// must be matchable.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "report/suppressions.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    const auto parsed = fencedep::detail::parse_suppressions(text, "fuzz.supp");
    if (!parsed.error.empty()) {
        constexpr std::string_view prefix = "fencedep: error: suppressions file 'fuzz.supp', line ";
        const bool names_line = parsed.error.starts_with(prefix) && parsed.error.size() > prefix.size() &&
                                parsed.error[prefix.size()] >= '1' && parsed.error[prefix.size()] <= '9';
        if (!names_line || parsed.error.find('\n') != std::string_view::npos || !parsed.rules.empty())
            std::abort();
        return 0;
    }
    for (const auto& rule : parsed.rules) {
        if (rule.pattern.empty() || rule.line == 0)
            std::abort();
        // The input itself is a name as good as any for the matcher.
        fencedep::detail::pattern_matches(rule.pattern, text);
    }
    return 0;
}
