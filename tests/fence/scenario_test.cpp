// SPDX-License-Identifier: MIT
// The validator scenarios of dma-fence.md §8 (S1-S6, S8-S10), with their verdicts in both modes.
#include <algorithm>
#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "../engine/capture.h"
#include "fence_test.h"
#include "modes.h"

using engine_test::capture;
using engine_test::classes_of;
using engine_test::contains;
using engine_test::describe;
using engine_test::has_frame;
using fence_test::array_of;
using fence_test::enable_signaling_mode;
using fence_test::mock_on;
using fence_test::mode_scope;
using fencedep::fence;
using fencedep::fence_array;
using fencedep::fence_chain;
using fencedep::fence_ref;
using fencedep::report_kind;

namespace {

// Leaf fences of class L: one driver lock class, as a ring's fence lock.
fencedep::lock_class_key ring_key;
struct ring {
    fencedep::spinlock lock{"ring->fence_lock", ring_key};
};

// A driver lock D, e.g. a device mutex.
fencedep::lock_class_key device_key;

// The two composition sites of S3; each records the line of its enable call.
unsigned array_into_chain_line = 0;
unsigned chain_into_array_line = 0;

// S1: an array (a merge) as a timeline point.
[[gnu::noinline]] fence_ref<> array_into_chain(fence_ref<> f1, fence_ref<> f2) {
    auto chain = fence_chain::create(nullptr, array_of({f1, f2}), 7);
    chain->enable_sw_signaling(); array_into_chain_line = __LINE__;
    return chain;
}

// S2: a timeline point inside an array.
[[gnu::noinline]] fence_ref<> chain_into_array(fence_ref<> f1, fence_ref<> f2) {
    auto array = array_of({fence_chain::create(nullptr, f1, 1), f2});
    array->enable_sw_signaling(); chain_into_array_line = __LINE__;
    return array;
}

void signal_all(const std::vector<fence_ref<>>& fences) {
    for (const auto& f : fences)
        f->signal();
}

// Every scenario runs once per enable_signaling mode (`mode`), reports kept in `cap`, with a
// ring `r` for leaf fences of class L.
struct scenario : fence_test::mode_case {
    using mode_case::mode_case;
    capture cap;
    ring r;

    // The verdict of a lock report that needs a container lock held while enabling. Both modes
    // report `warnings` (the structural container warnings, "" for none); locked mode then
    // reports `kind` over the cycle `cycle`. Returns that report in locked mode.
    std::optional<fencedep::report> locked_only(const std::string& warnings, const std::string& kind,
                                                const char* cycle) const {
        if (mode != enable_signaling_mode::locked) {
            CHECK(cap.kinds() == warnings);
            return std::nullopt;
        }
        REQUIRE(cap.kinds() == (warnings.empty() ? kind : warnings + ", " + kind));
        const auto report = cap.at(cap.count() - 1);
        CHECK(classes_of(report) == cycle);
        return report;
    }
};

}  // namespace

TEST_SUITE("fence-scenarios") {

FENCE_MODE_CASE_FIXTURE(scenario, "S1 array into chain, alone: OK") {
    auto f1 = mock_on(r.lock);
    auto f2 = mock_on(r.lock);
    auto chain = array_into_chain(f1, f2);
    signal_all({f1, f2});
    CHECK(chain->is_signaled());
    CHECK(cap.kinds() == "");
}

FENCE_MODE_CASE_FIXTURE(scenario, "S2 chain into array, alone: no lock report, a container warning") {
    auto f1 = mock_on(r.lock);
    auto f2 = mock_on(r.lock);
    auto array = chain_into_array(f1, f2);
    signal_all({f1, f2});
    CHECK(array->is_signaled());
    REQUIRE(cap.kinds() == "fence_container_nesting");
    const auto warning = cap.at(0);
    CHECK_FALSE(warning.is_splat);
    CHECK(fencedep::splat_count() == 0);
    INFO("text:\n", warning.text);
    CHECK(contains(warning.text, "fence_array ctx"));
    CHECK(contains(warning.text, "was given fence_chain ctx"));
    CHECK(contains(warning.text, "unwrap_merge"));
    REQUIRE_FALSE(warning.stacks.empty());
    // The stack starts in the test: in its fence_test:: helpers, where the compiler inlined them
    // into chain_into_array, then in chain_into_array.
    const auto& stack = warning.stacks[0];
    const auto caller = std::ranges::find_if_not(
        stack, [](const fencedep::frame& f) { return f.function.starts_with("fence_test::"); });
    REQUIRE_MESSAGE(caller != stack.end(), describe(stack));
    CHECK_MESSAGE(contains(caller->function, "chain_into_array"), describe(stack));
}

FENCE_MODE_CASE_FIXTURE(scenario, "S3 array into chain and chain into array: circular A <-> C (locked only)") {
    auto f1 = mock_on(r.lock);
    auto f2 = mock_on(r.lock);
    auto f3 = mock_on(r.lock);
    auto f4 = mock_on(r.lock);
    // Different objects, other thread, later: still one class graph.
    auto first = array_into_chain(f1, f2);
    std::thread elsewhere([&] { chain_into_array(f3, f4); });
    elsewhere.join();
    signal_all({f1, f2, f3, f4});

    // The 2026 proposal holds no container lock while enabling: only the structural warning.
    const auto found = locked_only("fence_container_nesting", "circular_dependency",
                                   "fence_array->lock, fence_chain->lock");
    if (!found)
        return;
    const auto& r3 = *found;
    REQUIRE(r3.stacks.size() == 2);
    REQUIRE(r3.contexts.size() == 2);
    INFO("text:\n", r3.text);
    // #1: fence_array->lock was taken under fence_chain->lock where the array went into a chain.
    CHECK_MESSAGE(has_frame(r3.stacks[0], "array_into_chain", array_into_chain_line),
                  describe(r3.stacks[0]));
    CHECK(contains(r3.contexts[0], "enabling signaling on fence_chain ctx " +
                                       std::to_string(first->context()) + " seqno 7"));
    CHECK(contains(r3.contexts[0], "adding a callback to fence_array ctx"));
    // #0: fence_chain->lock being taken under fence_array->lock where the chain went into an
    // array.
    CHECK_MESSAGE(has_frame(r3.stacks[1], "chain_into_array", chain_into_array_line),
                  describe(r3.stacks[1]));
    CHECK(contains(r3.contexts[1], "enabling signaling on fence_array ctx"));
    CHECK(contains(r3.contexts[1], "adding a callback to fence_chain ctx"));
    CHECK(contains(r3.text, "recorded while enabling signaling on fence_chain"));
}

FENCE_MODE_CASE_FIXTURE(scenario, "S4 array into array: recursive fence_array->lock (locked only), plus a warning") {
    auto f1 = mock_on(r.lock);
    auto f2 = mock_on(r.lock);
    auto f3 = mock_on(r.lock);
    auto a2 = array_of({array_of({f1, f2}), f3});
    a2->enable_sw_signaling();
    signal_all({f1, f2, f3});
    CHECK(a2->is_signaled());
    locked_only("fence_container_nesting", "recursive_locking",
                "fence_array->lock, fence_array->lock");
}

FENCE_MODE_CASE_FIXTURE(scenario, "S5a chain as a chain's contained fence: recursive fence_chain->lock (locked only)") {
    auto f1 = mock_on(r.lock);
    auto c2 = fence_chain::create(nullptr, fence_chain::create(nullptr, f1, 1), 2);
    c2->enable_sw_signaling();
    f1->signal();
    CHECK(c2->is_signaled());
    if (locked_only("fence_container_nesting", "recursive_locking",
                    "fence_chain->lock, fence_chain->lock"))
        CHECK(contains(cap.at(0).text, "as its contained fence"));
}

FENCE_MODE_CASE_FIXTURE(scenario, "S5b chains joined through prev (a timeline): OK, no chain -> chain edge") {
    auto f1 = mock_on(r.lock);
    auto f2 = mock_on(r.lock);
    auto c1 = fence_chain::create(nullptr, f1, 1);
    c1->enable_sw_signaling();
    auto c2 = fence_chain::create(c1, f2, 2);
    c2->enable_sw_signaling();
    f2->signal();
    CHECK_FALSE(c2->is_signaled());
    f1->signal();
    CHECK(c1->is_signaled());
    CHECK(c2->is_signaled());
    // A chain -> chain edge would have been a recursive-locking report the moment it was taken.
    CHECK(cap.kinds() == "");
}

namespace {

// S6's callback: takes the device lock from inside a fence callback (under the fence's lock).
struct device_callback : fencedep::fence_callback {
    explicit device_callback(fencedep::mutex& device_lock) : device(&device_lock) {}
    fencedep::mutex* device;
    static void run(fence&, fencedep::fence_callback& cb) noexcept {
        auto& self = static_cast<device_callback&>(cb);
        self.device->lock();
        self.device->unlock();
    }
};

// S6 variant: the callback only records the completion; the device lock is taken later, with
// no fence lock held.
struct deferring_callback : fencedep::fence_callback {
    std::atomic<bool> done{false};
    static void run(fence&, fencedep::fence_callback& cb) noexcept {
        static_cast<deferring_callback&>(cb).done.store(true);
    }
};

}  // namespace

FENCE_MODE_CASE_FIXTURE(scenario, "S6 a callback takes a driver lock that a signaller holds: circular L <-> D") {
    fencedep::mutex device{"device->lock", device_key};
    auto f = mock_on(r.lock);
    auto g = mock_on(r.lock);

    SUBCASE("callback takes D: REPORT") {
        device_callback cb{device};
        std::thread t1([&] {
            CHECK(f->add_callback(cb, device_callback::run) == 0);
            f->signal();  // L -> D
        });
        t1.join();
        std::thread t2([&] {
            std::lock_guard guard(device);
            g->signal();  // D -> L
        });
        t2.join();
        REQUIRE(cap.kinds() == "circular_dependency");
        const auto r6 = cap.at(0);
        CHECK(classes_of(r6) == "device->lock, ring->fence_lock");
        REQUIRE(r6.contexts.size() == 2);
        INFO("text:\n", r6.text);
        CHECK(contains(r6.contexts[0], "running a signal callback of fence 'mock' ctx " +
                                           std::to_string(f->context())));
        CHECK(contains(r6.contexts[1], "signalling fence 'mock' ctx " +
                                           std::to_string(g->context())));
    }
    SUBCASE("callback only defers, D taken later with no fence lock: OK") {
        deferring_callback cb;
        REQUIRE(f->add_callback(cb, deferring_callback::run) == 0);
        f->signal();
        REQUIRE(cb.done.load());
        {
            std::lock_guard guard(device);
        }
        {
            std::lock_guard guard(device);
            g->signal();  // D -> L only
        }
        CHECK(cap.kinds() == "");
    }
}

namespace {

// S8: a child's callback enables (or adds a callback to) its container.
struct reenter_callback : fencedep::fence_callback {
    fence* container = nullptr;
    static void enable(fence&, fencedep::fence_callback& cb) noexcept {
        static_cast<reenter_callback&>(cb).container->enable_sw_signaling();
    }
};

// Signals `child`, whose callback then enables `container` under the child's lock.
void signal_reentering(fence& child, fence& container) {
    reenter_callback cb;
    cb.container = &container;
    REQUIRE(child.add_callback(cb, reenter_callback::enable) == 0);
    child.signal();
}

}  // namespace

FENCE_MODE_CASE_FIXTURE(scenario, "S8 re-entering container enabling from a child callback") {
    SUBCASE("the array enabled elsewhere, then again from a child's callback: circular A <-> L "
            "(locked only)") {
        auto f1 = mock_on(r.lock);
        auto f2 = mock_on(r.lock);
        auto a = array_of({f1, f2});
        a->enable_sw_signaling();  // A -> L (locked mode)
        signal_reentering(*f1, *a);  // the callback takes A under L (locked mode)
        f2->signal();
        CHECK(a->is_signaled());
        locked_only("", "circular_dependency", "ring->fence_lock, fence_array->lock");
    }
    SUBCASE("a fresh array over a fence of the same class, enabled from a callback: recursive L "
            "in both modes") {
        // Two ring locks of one class. Were they one instance (a shared timeline lock), this
        // would be a real self-deadlock; the class-level report comes first either way.
        ring r1, r2;
        auto f1 = mock_on(r1.lock);
        auto f2 = mock_on(r2.lock);
        auto a = array_of({f2});
        signal_reentering(*f1, *a);
        f2->signal();
        CHECK(a->is_signaled());
        REQUIRE(cap.kinds() == "recursive_locking");
        CHECK(classes_of(cap.at(0)) == "ring->fence_lock, ring->fence_lock");
    }
}

namespace {

// A leaf whose signaled() op peeks at "hardware": true once `done` is set.
struct polled_fence final : fence {
    polled_fence(fencedep::spinlock& lock, std::atomic<bool>& done_flag)
        : fence(lock, fence::allocate_contexts(1), 1), done(done_flag) {}
    const char* driver_name() const noexcept override { return "polled"; }
    const char* timeline_name() const noexcept override { return "poll"; }
    bool signaled() noexcept override { return done.load(); }
    std::atomic<bool>& done;
};

}  // namespace

FENCE_MODE_CASE_FIXTURE(scenario, "S9 must-not-flag basics") {
    SUBCASE("two arrays enabled one after the other") {
        auto a1 = array_of({mock_on(r.lock), mock_on(r.lock)});
        auto a2 = array_of({mock_on(r.lock), mock_on(r.lock)});
        a1->enable_sw_signaling();
        a2->enable_sw_signaling();
        for (auto* a : {a1.get(), a2.get()})
            for (const auto& f : a->fences())
                f->signal();
    }
    SUBCASE("an array over two leaves sharing one driver lock instance") {
        auto f1 = mock_on(r.lock);
        auto f2 = mock_on(r.lock);
        auto a = array_of({f1, f2});
        a->enable_sw_signaling();
        signal_all({f1, f2});
        CHECK(a->is_signaled());
    }
    SUBCASE("signalling a leaf of an enabled array records no L -> A") {
        auto f1 = mock_on(r.lock);
        auto f2 = mock_on(r.lock);
        auto a = array_of({f1, f2});
        a->enable_sw_signaling();  // A -> L in locked mode
        signal_all({f1, f2});      // an L -> A here would close a cycle
        CHECK(a->is_signaled());
        auto again = array_of({mock_on(r.lock)});
        again->enable_sw_signaling();
        again->fences()[0]->signal();
    }
    SUBCASE("get_status on an array may signal a child under the array's lock") {
        std::atomic<bool> done{true};
        auto child = fencedep::make_fence<polled_fence>(r.lock, done);
        auto a = array_of({child, mock_on(r.lock)});
        CHECK(a->get_status() == 0);  // A -> L: the polled child signals
        CHECK(child->test_signaled_flag());
        a->fences()[1]->signal();
        CHECK(a->get_status() == 1);
    }
    SUBCASE("wait_any takes each fence's lock separately") {
        auto f1 = mock_on(r.lock);
        auto f2 = mock_on(r.lock);
        auto f3 = mock_on(r.lock);
        f2->signal();
        fence* all[] = {f1.get(), f2.get(), f3.get()};
        CHECK(fence::wait_any(all, std::chrono::seconds(30)) == 1u);
        signal_all({f1, f3});
    }
    CHECK(cap.kinds() == "");
}

namespace {

// S10: a driver's own "wrapper" fence whose enable_signaling arms a callback on another fence,
// as a driver-side container would. Both are leaves.
struct wrapper_fence final : fence {
    wrapper_fence(fence_ref<> inner_fence, fencedep::fence_lock_class lock_class)
        : fence(lock_class, fence::allocate_contexts(1), 1), inner(std::move(inner_fence)) {}
    wrapper_fence(fence_ref<> inner_fence)
        : fence(fence::allocate_contexts(1), 1), inner(std::move(inner_fence)) {}
    const char* driver_name() const noexcept override { return "wrapper"; }
    const char* timeline_name() const noexcept override { return "wrap"; }
    bool enable_signaling() noexcept override {
        return inner->add_callback(forward, &wrapper_fence::on_inner) == 0;
    }
    static void on_inner(fence&, fencedep::fence_callback& cb) noexcept {
        // Only marks completion; the test signals the wrapper itself.
        static_cast<forward_callback&>(cb).fired.store(true);
    }
    struct forward_callback : fencedep::fence_callback {
        std::atomic<bool> fired{false};
    };
    fence_ref<> inner;
    forward_callback forward;
};

fencedep::lock_class_key wrapper_key;

}  // namespace

FENCE_MODE_CASE_FIXTURE(scenario, "S10 class granularity: containers have their own classes; leaves may choose one") {
    SUBCASE("S1 over fences with the default per-fence lock: OK") {
        auto f1 = fence_test::mock();
        auto f2 = fence_test::mock();
        auto chain = fence_chain::create(nullptr, array_of({f1, f2}), 1);
        chain->enable_sw_signaling();
        signal_all({f1, f2});
        CHECK(chain->is_signaled());
        CHECK(cap.kinds() == "");
    }
    SUBCASE("a wrapper and its inner fence both in the default class: recursive (locked only)") {
        auto inner = fence_test::mock();
        auto wrapper = fencedep::make_fence<wrapper_fence>(inner);
        wrapper->enable_sw_signaling();
        inner->signal();
        wrapper->signal();
        locked_only("", "recursive_locking", "fence->lock, fence->lock");
    }
    SUBCASE("the wrapper with a class of its own: OK") {
        auto inner = fence_test::mock();
        auto wrapper = fencedep::make_fence<wrapper_fence>(
            inner, fencedep::fence_lock_class{"wrapper->lock", wrapper_key});
        wrapper->enable_sw_signaling();
        inner->signal();
        wrapper->signal();
        CHECK(cap.kinds() == "");
    }
}

FENCE_MODE_CASE_FIXTURE(scenario, "context lines name deferred work: an array's callback taking D, D held to enable") {
    fencedep::mutex device{"device->lock", device_key};
    auto f = mock_on(r.lock);
    auto a = array_of({f});
    device_callback cb{device};
    REQUIRE(a->add_callback(cb, device_callback::run) == 0);
    f->signal();  // deferred work signals the array; its callback takes D: A -> D
    REQUIRE(a->test_signaled_flag());
    {
        std::lock_guard guard(device);
        array_of({mock_on(r.lock)})->get_status();  // D -> A
    }
    REQUIRE(cap.kinds() == "circular_dependency");
    const auto report = cap.at(0);
    CHECK(classes_of(report) == "device->lock, fence_array->lock");
    REQUIRE(report.contexts.size() == 2);
    INFO("text:\n", report.text);
    const std::string array_name = "fence_array ctx " + std::to_string(a->context()) + " seqno 1";
    CHECK(report.contexts[0] == "running deferred work of " + array_name + ", signalling " +
                                    array_name + ", running a signal callback of " + array_name);
    CHECK(contains(report.contexts[1], "querying fence_array"));
}

FENCE_MODE_CASE_FIXTURE(scenario, "deferred work is its own lock segment: signalling with a driver lock held records no D -> A") {
    fencedep::mutex device{"device->lock", device_key};
    auto f = mock_on(r.lock);
    auto a = array_of({f});
    a->enable_sw_signaling();
    {
        // The array's deferred work runs before signal() returns, with D still held; like the
        // kernel's irq_work it is a context of its own, so no D -> fence_array->lock is recorded.
        std::lock_guard guard(device);
        f->signal();
    }
    REQUIRE(a->test_signaled_flag());
    // An array callback that takes D records fence_array->lock -> D: no cycle may close.
    auto other = array_of({mock_on(r.lock)});
    device_callback cb{device};
    REQUIRE(other->add_callback(cb, device_callback::run) == 0);
    other->fences()[0]->signal();
    REQUIRE(other->test_signaled_flag());
    CHECK(cap.kinds() == "");
}

TEST_CASE("container_rules=off and =error") {
    SUBCASE("off: no report") {
        mode_scope modes(enable_signaling_mode::unlocked, fence_test::container_rules_mode::off);
        capture cap;
        auto a = array_of({array_of({fence_test::mock()})});
        CHECK(cap.kinds() == "");
    }
    SUBCASE("error: the warning counts as a splat") {
        mode_scope modes(enable_signaling_mode::unlocked, fence_test::container_rules_mode::error);
        capture cap;
        auto a = array_of({array_of({fence_test::mock()})});
        REQUIRE(cap.kinds() == "fence_container_nesting");
        CHECK(cap.at(0).is_splat);
        CHECK(fencedep::splat_count() == 1);
    }
}

}  // TEST_SUITE
