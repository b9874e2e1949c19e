// SPDX-License-Identifier: MIT
// Trimming: telling fencedep's own frames from the user's by module and by function.
#include "stack/trim.h"

#include <array>
#include <string>
#include <string_view>

#include "stack/modules.h"

namespace fencedep::detail {
namespace {

// The qualified name of a demangled function: without the return type that template functions
// carry ("void std::lock<...>(...)") and without the parameter list, whose types say nothing
// about whose function it is. A lambda is named after the function it is defined in.
std::string_view qualified_name(std::string_view function) noexcept {
    constexpr std::string_view anonymous = "(anonymous namespace)";
    constexpr std::string_view op = "operator";
    std::size_t start = 0;
    int depth = 0;
    for (std::size_t i = 0; i < function.size(); ++i) {
        const std::string_view rest = function.substr(i);
        if (rest.starts_with(anonymous)) {
            i += anonymous.size() - 1;
            continue;
        }
        // An operator's name may hold brackets ("operator()", "operator<"); its parameter list is
        // the next parenthesis after them.
        if (depth == 0 && rest.starts_with(op) && (i == start || function[i - 1] == ':')) {
            const std::size_t name_end = rest.substr(op.size()).starts_with("()") ? op.size() + 2
                                                                                   : op.size();
            const std::size_t parameters = function.find('(', i + name_end);
            return function.substr(start, parameters == std::string_view::npos
                                              ? std::string_view::npos
                                              : parameters - start);
        }
        switch (function[i]) {
        case '(':
            if (depth == 0)
                return function.substr(start, i - start);
            ++depth;
            break;
        case '<':
        case '[':
        case '{':
            ++depth;
            break;
        case '>':
            if (i > 0 && function[i - 1] == '-')  // "->" in a decltype
                break;
            --depth;
            break;
        case ')':
        case ']':
        case '}':
            --depth;
            break;
        case ' ':
            if (depth == 0)
                start = i + 1;
            break;
        default:
            break;
        }
    }
    return function.substr(start);
}

// The name without its template arguments: "std::lock_guard<fencedep::mutex>::lock_guard" is
// "std::lock_guard::lock_guard".
std::string without_template_arguments(std::string_view name) {
    std::string plain;
    int depth = 0;
    for (const char c : name) {
        if (c == '<')
            ++depth;
        else if (c == '>')
            --depth;
        else if (depth == 0)
            plain += c;
    }
    return plain;
}

// libstdc++'s lock wrappers, which only forward to the Lockable they are instantiated on.
bool is_lock_wrapper(std::string_view plain) noexcept {
    constexpr std::array<std::string_view, 4> classes = {
        "std::lock_guard::", "std::unique_lock::", "std::scoped_lock::", "std::shared_lock::"};
    constexpr std::array<std::string_view, 4> functions = {
        "std::lock", "std::try_lock", "std::__detail::__lock_impl",
        "std::__detail::__try_lock_impl"};
    for (const std::string_view prefix : classes)
        if (plain.starts_with(prefix))
            return true;
    for (const std::string_view function : functions)
        if (plain == function)
            return true;
    return false;
}

enum class owner { fencedep, standard_library, user };

owner owner_of(std::string_view function) {
    const std::string_view name = qualified_name(function);
    if (name.starts_with("fencedep::"))
        return owner::fencedep;
    if (!name.starts_with("std::") && !name.starts_with("__gnu_cxx::"))
        return owner::user;
    // The qualified name holds no parameters, so a fencedep type in it is a template argument.
    if (name.find("fencedep::") != std::string_view::npos &&
        is_lock_wrapper(without_template_arguments(name)))
        return owner::fencedep;
    return owner::standard_library;
}

// The pthread preload (lib/preload), whose interposed pthread functions stand between the
// user's call and the validator as fencedep's lock functions do.
bool is_preload_module(std::string_view module) noexcept {
    const std::size_t slash = module.rfind('/');
    const std::string_view file = slash == std::string_view::npos ? module : module.substr(slash + 1);
    return file.starts_with("libfencedep_preload.");
}

// fencedep's shared library, or null when fencedep's objects are linked into the executable. It
// stays loaded as long as this code runs, so the first answer holds for good.
const loaded_module* fencedep_library() {
    static const loaded_module* const library = [] {
        const loaded_module* module =
            current_modules().find(reinterpret_cast<std::uintptr_t>(&fencedep_frames));
        return module != nullptr && !module->main_program ? module : nullptr;
    }();
    return library;
}

bool is_fencedep_frame(std::span<const frame> frames, std::size_t i, bool inner_is_fencedep) {
    const frame& f = frames[i];
    if (in_fencedep_module(f))
        return true;
    if (f.function.empty())
        return false;
    switch (owner_of(f.function)) {
    case owner::fencedep:
        return true;
    case owner::user:
        // libstdc++'s functions outside namespace std (__gthread_mutex_lock, which std::mutex
        // calls pthread through) are known by their file.
        if (!standard_library_file(f.file))
            return false;
        break;
    case owner::standard_library:
        break;
    }
    return inner_is_fencedep ||
           (f.inlined && i + 1 < frames.size() && is_fencedep_frame(frames, i + 1, false));
}

}  // namespace

// libstdc++ and libc++ headers both live under an include/c++/ directory; libstdc++'s
// target-specific ones (bits/gthr-default.h, which std::mutex::lock calls pthread through) under
// include/<target>/c++/<version>/.
bool standard_library_file(std::string_view file) {
    if (file.find("/include/c++/") != std::string_view::npos)
        return true;
    const std::size_t versioned = file.find("/c++/");
    return versioned != std::string_view::npos && file.find("/include/") < versioned &&
           versioned + 5 < file.size() && file[versioned + 5] >= '0' && file[versioned + 5] <= '9';
}

bool standard_library_frame(const frame& f) {
    if (!f.file.empty())
        return standard_library_file(f.file);
    // Without line information, the name tells.
    return f.function.starts_with("std::") || f.function.starts_with("__gnu_cxx::");
}

bool in_fencedep_module(const frame& f) {
    if (is_preload_module(f.module))
        return true;
    const loaded_module* const library = fencedep_library();
    return library != nullptr && f.address != 0 && library->low <= f.address - 1 &&
           f.address - 1 < library->high;
}

bool is_fencedep_frame(const frame& f) {
    return is_fencedep_frame(std::span(&f, 1), 0, false);
}

std::size_t fencedep_frames(std::span<const frame> frames) {
    std::size_t count = 0;
    while (count < frames.size() && is_fencedep_frame(frames, count, count > 0))
        ++count;
    return count == frames.size() ? 0 : count;
}

}  // namespace fencedep::detail
