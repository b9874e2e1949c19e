// SPDX-License-Identifier: MIT
// Lock classes: which class a lock belongs to, what reports call it, and registering it.
//
// Rule (lockdep.h, lock_map): a lock's class is its construction site, and a site inside the
// standard library is no site. std::make_unique, vector::emplace_back and optional::emplace
// construct the lock in <bits/unique_ptr.h> or <bits/stl_construct.h>, so every lock made through
// them, anywhere in the program, would share one class, and nesting two would read as a
// self-deadlock. The site is then the first frame of the constructing stack that is the user's,
// found while the constructor runs (so only while fencedep is on). Each distinct return address
// is symbolized once; after that, a lock built there costs a lookup of its constructor's caller,
// which optimized code has inlined the library into, or a stack walk where it has not (-O0).
//
// Rule: a name is part of a site's identity only when it is a compile-time constant, lying in
// the read-only image of a loaded object. Members named by literals in one constructor share
// their site (C++ evaluates a default member initializer's source_location at the constructor)
// and must stay apart; names made at run time ("conn-17") would otherwise make one class per
// object, fill the graph with copies of one lock and grow the site table without bound.
#include <algorithm>
#include <array>
#include <charconv>
#include <mutex>
#include <unordered_map>

#include <fmt/format.h>

#include "engine/internal.h"
#include "stack/modules.h"
#include "stack/word_cache.h"
#include "stack/trim.h"

namespace fencedep::detail {

namespace {

std::string_view basename(std::string_view path) {
    const auto slash = path.rfind('/');
    return slash == std::string_view::npos ? path : path.substr(slash + 1);
}

// The user's frame where a lock was built: where its site is, and what to call it.
struct user_site {
    bool found = false;  // false: no frame at this address is the user's
    std::string identity;
    std::string name;
};

user_site describe(const frame& f) {
    user_site site{true, {}, {}};
    const std::string function = short_function_name(f.function);
    if (!f.file.empty()) {
        site.identity = fmt::format("{}:{}", f.file, f.line);
        site.name = fmt::format("{}:{}", basename(f.file), f.line);
    } else {
        // No line information: the code address is all there is.
        site.identity = fmt::format("{}+{:#x}", f.module, f.module_offset);
        site.name = fmt::format("{}+{:#x}", basename(f.module), f.module_offset);
    }
    if (!function.empty())
        site.name += fmt::format(" in {}", function);
    return site;
}

// What identifies a site without formatting anything: the lock_map's own fields, with the name
// only when it counts (a compile-time constant) and a data site's generation.
struct raw_site {
    const void* where;  // the file name, or the code or data address
    unsigned line;
    unsigned column;
    const char* name;
    std::uint64_t generation;
    bool operator==(const raw_site&) const = default;
};
// A few multiplies: it is computed for every new instance of a known site.
struct raw_site_hash {
    std::size_t operator()(const raw_site& s) const noexcept {
        std::uint64_t h = reinterpret_cast<std::uintptr_t>(s.where);
        h = (h ^ ((std::uint64_t{s.line} << 32) | s.column)) * 0xff51afd7ed558ccdu;
        h = (h ^ reinterpret_cast<std::uintptr_t>(s.name) ^ s.generation) * 0xc4ceb9fe1a85ec53u;
        return h ^ (h >> 32);
    }
};

// The raw sites whose keys are known, for lookups without the site table's lock. The table's
// map stays the record (an entry here can be replaced by another that shares its slot); keys
// and raw sites are never dropped, so an entry never goes stale.
constinit word_cache<raw_site, lock_class_key*, 11> known_site_keys;

// Return address -> the user's frame among the functions inlined there, if any. Symbolizing is
// done outside the table's lock, so two threads may both resolve one address; they agree.
class site_table {
public:
    user_site resolve(std::uintptr_t address) {
        {
            const std::lock_guard lock(mutex_);
            if (const auto it = sites_.find(address); it != sites_.end())
                return it->second;
        }
        const std::vector<frame> chain = symbolize_inline_chain(address);
        const auto user = std::find_if(chain.begin(), chain.end(),
                                       [](const frame& f) { return !is_fencedep_frame(f) && !standard_library_frame(f); });
        // With no frame of the user's, the innermost names the address (a code_site in a library).
        user_site site = describe(user != chain.end() ? *user : chain.front());
        site.found = user != chain.end();
        const std::lock_guard lock(mutex_);
        return sites_.emplace(address, std::move(site)).first->second;
    }

    // `caller` if its inline chain holds a frame of the user's, else the first return address on
    // the calling thread's stack that does; 0 if none does.
    std::uintptr_t user_address(std::uintptr_t caller) {
        return resolve(caller).found ? caller : first_user_address();
    }

    // The first return address on the calling thread's stack whose inline chain holds a frame of
    // the user's; 0 if none does.
    std::uintptr_t first_user_address() {
        // Deep enough for a lock made by a factory inside a container inside a smart pointer.
        constexpr unsigned frames = 24;
        for (const std::uintptr_t address : stack_addresses(capture_stack(frames))) {
            if (in_fencedep_module(locate(address)))
                continue;
            if (resolve(address).found)
                return address;
        }
        return 0;
    }

    // How many times the data_site at `address` was forgotten: part of its identity.
    std::uint64_t data_generation(std::uintptr_t address) {
        const std::lock_guard lock(mutex_);
        const auto it = data_generations_.find(address);
        return it == data_generations_.end() ? 0 : it->second;
    }
    void forget_data(std::uintptr_t address) {
        const std::lock_guard lock(mutex_);
        ++data_generations_[address];
    }

    // The key of a site already seen, found by the lock_map's own fields: no formatting, no
    // symbolization, so that each new instance of a known site costs one lookup.
    lock_class_key* known_key(const raw_site& site) {
        const std::uint64_t hash = raw_site_hash{}(site);
        lock_class_key* key = nullptr;
        if (known_site_keys.find(site, hash, key))
            return key;
        {
            const std::lock_guard lock(mutex_);
            const auto it = raw_keys_.find(site);
            if (it == raw_keys_.end())
                return nullptr;
            key = it->second;
        }
        known_site_keys.insert(site, hash, key);
        return key;
    }

    // The key of `identity` (created on first use; keys live as long as the process, since
    // locks built before a reset() still point at them), remembered for `site` too.
    lock_class_key* key(const std::string& identity, const raw_site* site) {
        const std::lock_guard lock(mutex_);
        auto& slot = keys_[identity];
        if (!slot)
            slot = std::make_unique<lock_class_key>();
        if (site) {
            raw_keys_.emplace(*site, slot.get());
            known_site_keys.insert(*site, raw_site_hash{}(*site), slot.get());
        }
        return slot.get();
    }

private:
    std::mutex mutex_;
    std::unordered_map<std::uintptr_t, user_site> sites_;
    std::unordered_map<std::uintptr_t, std::uint64_t> data_generations_;
    std::unordered_map<std::string, std::unique_ptr<lock_class_key>> keys_;
    std::unordered_map<raw_site, lock_class_key*, raw_site_hash> raw_keys_;
};

// Never destroyed: locks are built and taken while the process exits.
site_table& the_sites() {
    static site_table* table = new site_table;
    return *table;
}

// The symbol a data address lies in ("ring_lock_key", "config_lock"), or "<what>@address".
// symbolize() looks up the byte before a return address; data is looked up at itself.
// A key or lock on the heap lies in no object and has no symbol: it is named without the
// symbolizer, and without a formatting library, since every new heap key pays for it.
std::string data_symbol(const void* address, const char* what) {
    if (in_loaded_image(address)) {
        frame symbol = symbolize(reinterpret_cast<std::uintptr_t>(address) + 1);
        if (!symbol.function.empty())
            return std::move(symbol.function);
    }
    std::array<char, 2 * sizeof(std::uintptr_t)> digits;
    const auto end = std::to_chars(digits.begin(), digits.end(),
                                   reinterpret_cast<std::uintptr_t>(address), 16).ptr;
    std::string name(what);
    name.append("@0x").append(digits.begin(), end);
    return name;
}

// The name, when it is part of the site's identity.
const char* counted_name(const lock_map& map) {
    const char* name = engine_access::name(map);
    return name && in_read_only_image(name) ? name : nullptr;
}

raw_site raw_site_of(const lock_map& map) {
    const void* address = engine_access::site_address(map);
    const void* where = address ? address : engine_access::site_file(map);
    const unsigned line = address ? 0 : engine_access::site_line(map);
    const unsigned column = address ? 0 : engine_access::site_column(map);
    const std::uint64_t generation =
        engine_access::site_is_data(map) ? the_sites().data_generation(reinterpret_cast<std::uintptr_t>(address)) : 0;
    return {where, line, column, counted_name(map), generation};
}
}  // namespace

namespace {
// Calls `at(i)` for each index of `text` outside template arguments and outside the words
// "(anonymous namespace)", whose parenthesis and space are part of a name, until `at` is true.
template <class At>
void scan_top_level(std::string_view text, At at) {
    constexpr std::string_view anonymous = "(anonymous namespace)";
    int angle = 0;
    for (std::size_t i = 0; i < text.size(); ++i) {
        if (text.substr(i).starts_with(anonymous))
            i += anonymous.size() - 1;
        else if (text[i] == '<')
            ++angle;
        else if (text[i] == '>' && angle > 0)
            --angle;
        else if (angle == 0 && at(i))
            return;
    }
}
}  // namespace

std::string short_function_name(std::string_view function) {
    // Drop the parameter list (the first '(' past "operator()"), then the return type (up to the
    // last space that does not follow "operator").
    std::size_t end = function.size();
    scan_top_level(function, [&](std::size_t i) {
        const bool call_operator = function.substr(0, i).ends_with("operator") && function.substr(i).starts_with("()");
        if (function[i] != '(' || call_operator)
            return false;
        end = i;
        return true;
    });
    const std::string_view name = function.substr(0, end);
    std::size_t start = 0;
    scan_top_level(name, [&](std::size_t i) {
        if (name[i] == ' ' && !name.substr(0, i).ends_with("operator"))
            start = i + 1;
        return false;
    });
    return std::string(name.substr(start));
}

const void* user_return_address(const void* return_address) {
    const std::uintptr_t user = the_sites().user_address(reinterpret_cast<std::uintptr_t>(return_address));
    return user ? reinterpret_cast<const void*>(user) : return_address;
}

// The raw sites looked up are the ones raw_site_of() builds, with the name as passed: a name that
// is not part of the identity (not a literal, counted_name) is null in every entry, so it finds
// nothing, and the constructor takes the long way. A site enters known_site_keys with a file as
// `where` only if that file is the user's, and with a code address only if the user's frame is
// there, so a hit needs no further check.
construction_site find_construction_site(const char* file, unsigned line, unsigned column,
                                         const char* name, const void* caller) {
    lock_class_key* key = nullptr;
    if (const raw_site site{file, line, column, name, 0};
        known_site_keys.find(site, raw_site_hash{}(site), key))
        return {key, nullptr};
    if (!standard_library_file(file))
        return {nullptr, nullptr};
    if (const raw_site site{caller, 0, 0, name, 0}; known_site_keys.find(site, raw_site_hash{}(site), key))
        return {key, caller};
    const reentry_guard guard;
    return {nullptr, reinterpret_cast<const void*>(the_sites().user_address(reinterpret_cast<std::uintptr_t>(caller)))};
}

namespace {
// GCC's std::source_location spells the anonymous namespace "{anonymous}", the demangler (and so
// every frame of a report) "(anonymous namespace)": a site's name uses the frames' spelling.
std::string site_function_name(std::string_view function) {
    constexpr std::string_view gcc = "{anonymous}";
    std::string name;
    for (std::size_t at; (at = function.find(gcc)) != std::string_view::npos; function.remove_prefix(at + gcc.size()))
        name.append(function.substr(0, at)).append("(anonymous namespace)");
    return name.append(function);
}
}  // namespace

class_identity identify(const lock_map& map) {
    const char* name = engine_access::name(map);
    class_identity id;
    if (!engine_access::keyed_by_site(map)) {
        id.name = name ? std::string(name) : data_symbol(engine_access::key(map), "key");
        return id;
    }
    const auto address = reinterpret_cast<std::uintptr_t>(engine_access::site_address(map));
    const char* file = engine_access::site_file(map);
    // A lock built in the standard library while fencedep was off: where it is taken.
    const std::uintptr_t code =
        address || !file || !standard_library_file(file) ? address : the_sites().first_user_address();
    if (engine_access::site_is_data(map)) {
        id.site = fmt::format("data@{:#x}/{}", address, the_sites().data_generation(address));
        id.site_name = data_symbol(engine_access::site_address(map), "lock");
    } else if (code) {
        user_site site = the_sites().resolve(code);
        id.site = std::move(site.identity);
        id.site_name = std::move(site.name);
    } else {
        id.site = fmt::format("{}:{}:{}", file, engine_access::site_line(map), engine_access::site_column(map));
        id.site_name = fmt::format("{}:{}", basename(file), engine_access::site_line(map));
        if (const std::string function = short_function_name(site_function_name(engine_access::site_function(map)));
            !function.empty())
            id.site_name += fmt::format(" in {}", function);
    }
    if (counted_name(map)) {
        id.site += fmt::format("\"{}\"", name);
        id.name = name;
    } else {
        id.name = id.site_name;
    }
    return id;
}

lock_class_key* site_key(const lock_map& map, const class_identity* identity) {
    const raw_site site = raw_site_of(map);
    // A library site found while fencedep was off has no address to look up by: its key comes
    // from where it is taken (identify), every time the lock is new.
    const bool raw_identifies = engine_access::site_address(map) || !standard_library_file(engine_access::site_file(map));
    if (!identity)
        return raw_identifies ? the_sites().known_key(site) : nullptr;
    return the_sites().key(identity->site, raw_identifies ? &site : nullptr);
}

std::uint32_t event::register_class(lock_class_key* key, unsigned subclass, const class_identity& identity) {
    if (const std::uint32_t id = cached_class(*key, subclass))
        return id;
    const options& o = current_options();
    if (e_.class_count == o.max_classes) {
        report_table_full("lock class", o.max_classes, "max_classes");
        return 0;
    }
    // Subclasses of one key share its name and version, as in lockdep ("name#2/1").
    const lock_class* sibling = nullptr;
    for (unsigned other = 0; other < lock_class_key::subclasses && !sibling; ++other)
        if (const std::uint32_t id = cached_class(*key, other))
            sibling = &e_.classes[id];
    std::string base = sibling ? sibling->base : identity.name;
    const std::uint32_t version = sibling ? sibling->version : ++e_.name_versions[base];
    std::string printed = base;
    if (version > 1)
        printed += fmt::format("#{}", version);
    if (subclass != 0)
        printed += fmt::format("/{}", subclass);
    const std::uint32_t id = ++e_.class_count;
    if (id == e_.classes.size())
        e_.classes.emplace_back();
    e_.classes[id] = lock_class{key, subclass, std::move(base), version, std::move(printed), identity.site_name};
    key->cached_class[subclass].store((std::uint64_t{hot.generation} << 32) | id, std::memory_order_release);
    return id;
}

}  // namespace fencedep::detail

void fencedep::forget_data_site(const void* address) noexcept {
    const detail::reentry_guard guard;
    try {
        detail::the_sites().forget_data(reinterpret_cast<std::uintptr_t>(address));
    } catch (const std::bad_alloc&) {
        // Out of memory: the address keeps its class; a lock built there later shares it.
    }
}
