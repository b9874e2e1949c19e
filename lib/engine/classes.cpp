// SPDX-License-Identifier: MIT
// Lock classes: which class a lock belongs to, and the name a report prints for it.
#include <fmt/format.h>

#include "engine/internal.h"

namespace fencedep::detail {

namespace {
std::string_view basename(std::string_view path) {
    const auto slash = path.rfind('/');
    return slash == std::string_view::npos ? path : path.substr(slash + 1);
}
}  // namespace

// A lock is named by the name it was given; failing that, like the kernel, by its key's symbol
// (e.g. "ring_lock_key"), or for construction-site classes by the site ("abba.cpp:12").
// Symbolizing a key goes through the symbolizer, which may read the loader's tables; a thread
// inside dlopen() holds the loader's lock while a library constructor takes fencedep locks, so
// this runs before the engine lock is taken, never under it.
std::string instance_name(const lock_map& map) {
    if (const char* name = engine_access::name(map))
        return name;
    if (const lock_class_key* key = engine_access::key(map); key && !engine_access::keyed_by_site(map)) {
        // symbolize() takes return addresses and looks up the byte before; a key is data.
        const frame symbol = symbolize(reinterpret_cast<std::uintptr_t>(key) + 1);
        if (!symbol.function.empty())
            return symbol.function;
        return fmt::format("key@{}", fmt::ptr(key));
    }
    return fmt::format("{}:{}", basename(engine_access::site_file(map)), engine_access::site_line(map));
}

lock_class_key* site_key(engine_state& e, const lock_map& map) {
    // The name is part of the identity: C++ evaluates the site of a lock built by a default
    // member initializer at the enclosing constructor, so `mutex a{"a"}; mutex b{"b"};` in one
    // struct share a site, yet are two locks in the kernel's sense (two init calls).
    const char* name = engine_access::name(map);
    auto& slot = e.sites[fmt::format("{}:{}:{}:{}", engine_access::site_file(map), engine_access::site_line(map),
                                     engine_access::site_column(map), name ? name : "")];
    if (!slot)
        slot = std::make_unique<lock_class_key>();
    return slot.get();
}

std::uint32_t event::register_class(lock_class_key* key, unsigned subclass, const std::string& name) {
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
    std::string base = sibling ? sibling->base : name;
    const std::uint32_t version = sibling ? sibling->version : ++e_.name_versions[base];
    std::string printed = base;
    if (version > 1)
        printed += fmt::format("#{}", version);
    if (subclass != 0)
        printed += fmt::format("/{}", subclass);
    const std::uint32_t id = ++e_.class_count;
    e_.classes[id] = lock_class{key, subclass, std::move(base), version, std::move(printed)};
    key->cached_class[subclass].store((std::uint64_t{hot.generation} << 32) | id, std::memory_order_release);
    return id;
}

}  // namespace fencedep::detail
