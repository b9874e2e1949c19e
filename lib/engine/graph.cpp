// SPDX-License-Identifier: MIT
// The class-level dependency graph: growing edge tables, the incremental order and the
// shortest-path search.
//
// Breadth-first search is what lockdep uses too: it finds the shortest path, which is what a
// splat should show, and with one visit mark per class it never needs a queue larger than the
// class table, so unlike lockdep's fixed 4096-slot queue it cannot overflow.
#include "engine/graph.h"

#include <algorithm>
#include <bit>
#include <initializer_list>
#include <new>

namespace fencedep::detail {

namespace {
std::uint64_t mix(std::uint32_t from, std::uint32_t to) {
    std::uint64_t x = (std::uint64_t{from} << 32) | to;
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    return x;
}

// The smallest tables worth allocating: a few lines each.
constexpr std::uint32_t min_nodes = 64;
constexpr std::uint32_t min_edges = 256;
// See graph::front_.
constexpr std::uint32_t first_place = 1u << 30;
constexpr std::uint32_t first_back_place = 1u << 31;

// Starts a new search over marks that say "visited in this search" by holding the search's
// number, so that no clearing pass is needed between searches; when the number wraps, the marks
// are cleared once so that stale ones cannot look current.
std::uint32_t next_generation(std::uint32_t& generation, std::initializer_list<std::vector<std::uint32_t>*> marks) {
    if (++generation == 0) {
        for (std::vector<std::uint32_t>* m : marks)
            std::fill(m->begin(), m->end(), 0u);
        generation = 1;
    }
    return generation;
}
}  // namespace

void graph::init(std::uint32_t max_classes, std::uint32_t max_edges) {
    max_classes_ = max_classes;
    max_edges_ = max_edges;
    clear();
}

void graph::clear() {
    edges_.clear();
    std::fill(edge_index_.begin(), edge_index_.end(), 0u);
    std::fill_n(first_out_.begin(), nodes_, none);
    std::fill_n(first_in_.begin(), nodes_, none);
    for (std::uint32_t c = 0; c < nodes_; ++c) {
        parent_[c] = member_[c] = c;
        position_[c] = first_place + c;
    }
    front_ = first_place;
    back_ = first_back_place;
}

// A new node starts as a component of its own at the place of its id, which no older node holds:
// the order only ever trades places among the nodes it moves, or gives one a place before (or
// after) every place given so far.
bool graph::grow_nodes(std::uint32_t id) {
    const std::uint32_t limit = max_classes_ + 1;
    if (id < nodes_ || id >= limit)
        return id < nodes_;
    const std::uint32_t size = std::min(limit, std::max({std::bit_ceil(id + 1), 2 * nodes_, min_nodes}));
    try {
        first_out_.resize(size, none);
        first_in_.resize(size, none);
        parent_.resize(size);
        member_.resize(size);
        position_.resize(size);
        forward_mark_.resize(size);
        backward_mark_.resize(size);
        visit_.resize(2 * std::size_t{size});
        parent_edge_.resize(2 * std::size_t{size});
        parent_state_.resize(2 * std::size_t{size});
        queue_.resize(2 * std::size_t{size});
    } catch (const std::bad_alloc&) {
        return false;
    }
    for (std::uint32_t c = nodes_; c < size; ++c) {
        parent_[c] = member_[c] = c;
        position_[c] = first_place + c;
    }
    nodes_ = size;
    return true;
}

// Doubles the edge table (up to max_edges) and keeps the index at most half full, checking both:
// a failed allocation may have grown one and not the other.
bool graph::grow_edges() {
    if (edges_.size() < edges_.capacity() && 2 * (edges_.size() + 1) <= edge_index_.size())
        return true;
    const std::size_t size = std::min<std::size_t>(max_edges_, std::max<std::size_t>(2 * edges_.size(), min_edges));
    try {
        edges_.reserve(size);
        const std::size_t slots = std::bit_ceil(2 * edges_.capacity());
        if (slots <= edge_index_.size())
            return true;
        edge_index_.assign(slots, 0u);
    } catch (const std::bad_alloc&) {
        return false;
    }
    for (std::uint32_t i = 0; i < edges_.size(); ++i)
        edge_index_[slot_of(edges_[i].from, edges_[i].to)] = i + 1;
    return true;
}

std::uint64_t graph::slot_of(std::uint32_t from, std::uint32_t to) const {
    const std::uint64_t mask = edge_index_.size() - 1;
    std::uint64_t slot = mix(from, to) & mask;
    for (;;) {
        const std::uint32_t stored = edge_index_[slot];
        if (stored == 0)
            return slot;
        const edge& e = edges_[stored - 1];
        if (e.from == from && e.to == to)
            return slot;
        slot = (slot + 1) & mask;
    }
}

std::uint32_t graph::find_edge(std::uint32_t from, std::uint32_t to) const {
    if (edge_index_.empty())
        return none;
    const std::uint32_t stored = edge_index_[slot_of(from, to)];
    return stored == 0 ? none : stored - 1;
}

void graph::link(std::uint32_t index) {
    edge& e = edges_[index];
    e.next_out = first_out_[e.from];
    first_out_[e.from] = index;
    e.next_in = first_in_[e.to];
    first_in_[e.to] = index;
    edge_index_[slot_of(e.from, e.to)] = index + 1;
}

std::uint32_t graph::add_edge(std::uint32_t from, std::uint32_t to, std::uint32_t payload, std::uint8_t deps) {
    if (edges_.size() == max_edges_ || !grow_nodes(std::max(from, to)) || !grow_edges())
        return none;
    const auto index = static_cast<std::uint32_t>(edges_.size());
    edges_.push_back(edge{from, to, none, none, payload, deps});
    link(index);
    const std::uint32_t a = component(from);
    const std::uint32_t b = component(to);
    if (a == b || position_[a] < position_[b])
        return index;
    if (alone(a, first_in_) && front_ > 1)
        position_[a] = --front_;
    else if (alone(b, first_out_) && back_ < none)
        position_[b] = back_++;
    else
        reorder(a, b);
    return index;
}

// The kept edges are moved down in index order and relinked oldest first, as add_edge() linked
// them, so each forward list keeps its newest-first order. The order and the components stay:
// an order of a graph is one of every graph with fewer edges.
void graph::remove_edges_if(const std::function<bool(const edge&)>& drop) {
    std::erase_if(edges_, [&](const edge& e) { return drop(e); });
    std::fill(edge_index_.begin(), edge_index_.end(), 0u);
    std::fill_n(first_out_.begin(), nodes_, none);
    std::fill_n(first_in_.begin(), nodes_, none);
    for (std::uint32_t i = 0; i < edges_.size(); ++i)
        link(i);
}

// Whether `node` is a component of its own with no edge in the list `first` (first_in_: nothing
// leads to it; first_out_: it leads nowhere), so that no path runs through it.
bool graph::alone(std::uint32_t node, const std::vector<std::uint32_t>& first) const {
    return member_[node] == node && first[node] == none;
}

std::uint32_t graph::component(std::uint32_t node) {
    while (parent_[node] != node)
        node = parent_[node] = parent_[parent_[node]];
    return node;
}

bool graph::same_component(std::uint32_t a, std::uint32_t b) {
    if (a >= nodes_ || b >= nodes_)
        return a == b;
    return component(a) == component(b);
}

std::uint32_t graph::next_mark() {
    return next_generation(mark_, {&forward_mark_, &backward_mark_});
}

// Depth-first search over components from `start`, forward along edges (or backward against
// them), that stays between start's place and target's: every path from start to target in a
// topological order does. Marks what it reaches with mark_ in forward_mark_ (backward_mark_).
// Without `region` it stops at target; with it, it collects every component it reaches,
// start and target included.
bool graph::reaches(std::uint32_t start, std::uint32_t target, bool forward, std::vector<std::uint32_t>* region) {
    std::vector<std::uint32_t>& marks = forward ? forward_mark_ : backward_mark_;
    const std::uint32_t bound = position_[target];
    bool reached = false;
    stack_.clear();
    stack_.push_back(start);
    marks[start] = mark_;
    while (!stack_.empty()) {
        const std::uint32_t c = stack_.back();
        stack_.pop_back();
        if (region)
            region->push_back(c);
        std::uint32_t m = c;
        do {
            for (std::uint32_t e = forward ? first_out_[m] : first_in_[m]; e != none;
                 e = forward ? edges_[e].next_out : edges_[e].next_in) {
                const std::uint32_t d = component(forward ? edges_[e].to : edges_[e].from);
                if (marks[d] == mark_ || (forward ? position_[d] > bound : position_[d] < bound))
                    continue;
                marks[d] = mark_;
                if (d == target) {
                    reached = true;
                    if (!region)
                        return true;
                    region->push_back(d);
                    continue;
                }
                stack_.push_back(d);
            }
            m = member_[m];
        } while (m != c);
    }
    return reached;
}

bool graph::may_close_cycle(std::uint32_t from, std::uint32_t to) {
    if (from >= nodes_ || to >= nodes_)
        return false;  // a node past the tables has no edge yet
    const std::uint32_t a = component(from);
    const std::uint32_t b = component(to);
    if (a == b)
        return true;
    if (position_[a] < position_[b] || alone(a, first_in_) || alone(b, first_out_))
        return false;
    next_mark();
    return reaches(b, a, true, nullptr);
}

// The new edge a -> b goes backward (b is placed before a). Pearce-Kelly: the region `forward`
// that b reaches up to a's place and the region `backward` that reaches a down to b's place trade
// places, backward first, each keeping its own order; they take the places they held between
// them, so every edge into or out of the region still goes forward. If b reaches a, the edge
// closed a plain cycle: the components on it (both regions hold them) become one, placed between
// the two, which leaves places unused, never two components in one place.
void graph::reorder(std::uint32_t a, std::uint32_t b) {
    next_mark();
    forward_region_.clear();
    backward_region_.clear();
    const bool cycle = reaches(b, a, true, &forward_region_);
    reaches(a, b, false, &backward_region_);
    places_.clear();
    for (const std::uint32_t c : forward_region_)
        places_.push_back(position_[c]);
    for (const std::uint32_t c : backward_region_)
        if (forward_mark_[c] != mark_)
            places_.push_back(position_[c]);
    std::sort(places_.begin(), places_.end());
    const auto by_place = [&](std::uint32_t x, std::uint32_t y) { return position_[x] < position_[y]; };
    if (cycle) {
        // The cycle's components leave both regions and join a's.
        const auto on_cycle = [&](std::uint32_t c) { return forward_mark_[c] == mark_ && backward_mark_[c] == mark_; };
        for (const std::uint32_t c : forward_region_)
            if (c != a && on_cycle(c)) {
                parent_[c] = a;
                std::swap(member_[a], member_[c]);
            }
        std::erase_if(forward_region_, on_cycle);
        std::erase_if(backward_region_, on_cycle);
    }
    std::sort(forward_region_.begin(), forward_region_.end(), by_place);
    std::sort(backward_region_.begin(), backward_region_.end(), by_place);
    // The regions keep their members' relative order; backward takes the lowest places and
    // forward the highest, so each member moves down (backward) or up (forward), never past
    // a component outside the regions that it has an edge with.
    for (std::size_t i = 0; i < backward_region_.size(); ++i)
        position_[backward_region_[i]] = places_[i];
    if (cycle)
        position_[a] = places_[backward_region_.size()];
    const std::size_t first_forward = places_.size() - forward_region_.size();
    for (std::size_t i = 0; i < forward_region_.size(); ++i)
        position_[forward_region_[i]] = places_[first_forward + i];
}

// The rule of strong paths (lockdep.md §1.7): a lock entered as a recursive reader blocks no
// other reader, so a path that arrives at it with -(?R)-> may only leave it with an -(E?)-> edge
// (one taken while it was held exclusively, which was a different acquisition, so the path does
// not pass through that reader at all). The search runs over (class, arrival) states; a class
// reached non-recursively may leave by any edge, so it makes its recursive state redundant.
// Returns the state that matched `to`, or none.
std::uint32_t graph::search(std::uint32_t from, std::uint32_t to, bool from_recursive, bool to_any) {
    next_generation(generation_, {&visit_});
    std::uint32_t head = 0;
    std::uint32_t tail = 0;
    const std::uint32_t root = 2 * from + (from_recursive ? 1 : 0);
    visit_[root] = generation_;
    queue_[tail++] = root;
    while (head != tail) {
        const std::uint32_t state = queue_[head++];
        const std::uint32_t node = state / 2;
        const bool arrived_recursive = state & 1;
        for (std::uint32_t e = first_out_[node]; e != none; e = edges_[e].next_out) {
            std::uint8_t usable = edges_[e].deps;
            if (arrived_recursive)
                usable &= dep_en | dep_er;
            if (!usable)
                continue;
            const std::uint32_t next = edges_[e].to;
            const bool recursive = !(usable & (dep_en | dep_sn));
            const std::uint32_t next_state = 2 * next + (recursive ? 1 : 0);
            if (visit_[next_state] == generation_ || (recursive && visit_[2 * next] == generation_))
                continue;
            visit_[next_state] = generation_;
            parent_edge_[next_state] = e;
            parent_state_[next_state] = state;
            if (next == to && (to_any || !recursive))
                return next_state;
            queue_[tail++] = next_state;
        }
    }
    return none;
}

bool graph::find_path(std::uint32_t from, std::uint32_t to, bool from_recursive, bool to_any,
                      std::vector<step>& path) {
    path.clear();
    if (from == to || from >= nodes_ || to >= nodes_)
        return false;  // a node past the tables has no edge yet
    std::uint32_t state = search(from, to, from_recursive, to_any);
    if (state == none)
        return false;
    const std::uint32_t root = 2 * from + (from_recursive ? 1 : 0);
    for (; state != root; state = parent_state_[state]) {
        const std::uint32_t e = parent_edge_[state];
        std::uint8_t usable = edges_[e].deps;
        if (parent_state_[state] & 1)
            usable &= dep_en | dep_er;
        // The kind the path uses: a non-recursive arrival where the state says so.
        const std::uint8_t wanted = (state & 1) ? (dep_er | dep_sr) : (dep_en | dep_sn);
        const std::uint8_t kinds = usable & wanted;
        path.push_back({e, static_cast<std::uint8_t>(kinds & -kinds)});
    }
    std::reverse(path.begin(), path.end());
    return true;
}

}  // namespace fencedep::detail
