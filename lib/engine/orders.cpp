// SPDX-License-Identifier: MIT
// Orders the program declares rather than the run learns: blessed pairs of classes, and classes
// whose learned order is forgotten.
#include <algorithm>

#include "engine/internal.h"

namespace fencedep::detail {

namespace {

std::pair<const lock_class_key*, const lock_class_key*> blessed_pair(const lock_class_key* a,
                                                                      const lock_class_key* b) {
    return std::less<const lock_class_key*>{}(a, b) ? std::pair{a, b} : std::pair{b, a};
}

// Drops the edges `drop` selects and every cached chain, since a chain validated with them
// would let its next acquisition skip the search. Clearing the cache while other threads read it
// is safe: a reader that misses takes the slow path, which waits for the engine lock.
void unlearn(engine_state& e, const std::function<bool(const graph::edge&)>& drop) {
    e.dependencies.remove_edges_if(drop);
    hot.chains.clear();
}

}  // namespace

bool blessed(const engine_state& e, std::uint32_t a, std::uint32_t b) {
    return !e.blessed.empty() && e.blessed.contains(blessed_pair(e.classes[a].key, e.classes[b].key));
}

}  // namespace fencedep::detail

using namespace fencedep::detail;

void fencedep::bless_order(const lock_class_key& a, const lock_class_key& b) {
    if (&a == &b)
        return;
    const reentry_guard guard;
    engine_state& e = engine();
    std::lock_guard<std::mutex> lock(e.mutex);
    e.blessed.insert(blessed_pair(&a, &b));
    if (!e.ready)
        return;
    unlearn(e, [&](const graph::edge& edge) { return blessed(e, edge.from, edge.to); });
}

void fencedep::forget(const lock_map& map) {
    const reentry_guard guard;
    // The site table has its own lock, which is never taken under the engine's.
    const lock_class_key* key = engine_access::key(map);
    if (!key && engine_access::keyed_by_site(map))
        key = site_key(map, nullptr);
    if (!key)
        return;  // no lock of its class was ever taken: nothing was learned
    engine_state& e = engine();
    std::lock_guard<std::mutex> lock(e.mutex);
    if (!e.ready)
        return;
    const auto forgotten = [&](std::uint32_t id) { return e.classes[id].key == key; };
    unlearn(e, [&](const graph::edge& edge) { return forgotten(edge.from) || forgotten(edge.to); });
    // A cycle through the class was reported with edges that are gone now: learned again, it is
    // news again. The other kinds are deduplicated by what a thread held or where it was, which
    // no learned order changes, and stay reported.
    for (auto it = e.reported_cycles.begin(); it != e.reported_cycles.end();) {
        if (std::ranges::any_of(it->second, forgotten)) {
            e.reported.erase(it->first);
            it = e.reported_cycles.erase(it);
        } else {
            ++it;
        }
    }
}
