// SPDX-License-Identifier: MIT
#include "report/identity.h"

#include <algorithm>
#include <cstdint>
#include <string_view>
#include <vector>

#include <fmt/format.h>

#include "stack/trim.h"

namespace fencedep::detail {

namespace {

// FNV-1a: the id must be the same in every run and on every build of fencedep, which
// std::hash does not promise.
class fnv1a {
public:
    // Names never hold a NUL (control characters are escaped), so one ends each field and
    // ("ab", "c") and ("a", "bc") hash apart.
    void add(std::string_view field) {
        for (const char c : field)
            byte(static_cast<unsigned char>(c));
        byte(0);
    }
    std::uint64_t value() const { return hash_; }

private:
    void byte(unsigned char c) {
        hash_ ^= c;
        hash_ *= 0x100000001b3u;
    }
    std::uint64_t hash_ = 0xcbf29ce484222325u;
};

}  // namespace

frame user_frame(std::span<const frame> stack) {
    if (stack.empty())
        return {};
    const auto user = std::find_if(stack.begin(), stack.end(), [](const frame& f) {
        return !is_fencedep_frame(f) && !standard_library_frame(f);
    });
    return user == stack.end() ? stack.front() : *user;
}

std::string report_id(const report& r) {
    fnv1a hash;
    hash.add(report_kind_name(r.kind));
    // A thread's exit names the thread, and its tid changes from run to run.
    std::string title = r.title;
    if (!r.thread.empty())
        for (std::size_t at; (at = title.find(r.thread)) != std::string::npos;)
            title.erase(at, r.thread.size());
    hash.add(title);
    std::vector<std::string> classes = r.classes;
    if (r.kind == report_kind::circular_dependency) {
        // The same cycle closed at another of its edges lists the same classes, rotated.
        std::rotate(classes.begin(), std::min_element(classes.begin(), classes.end()), classes.end());
    } else {
        hash.add(r.location.function);
        hash.add(r.location.file);
        hash.add(std::to_string(r.location.line));
    }
    for (const std::string& c : classes)
        hash.add(c);
    return fmt::format("{:016x}", hash.value());
}

}  // namespace fencedep::detail
