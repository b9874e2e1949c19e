// SPDX-License-Identifier: MIT
// Context frames: the fence context lines of a splat, and deferred work as a lock segment.
#include "capture.h"

using engine_test::capture;
using engine_test::classes_of;
using engine_test::lock_unlock_2;
using fencedep::context_frame;
using fencedep::context_scope;
using fencedep::fence_op;

namespace {

constexpr context_frame chain_enabling{fence_op::enable_signaling, "fence_chain", "fence_chain", "unbound", 12, 7};
constexpr context_frame array_callback{fence_op::add_callback, "fence_array", "fence_array", "unbound", 9, 1};
constexpr context_frame leaf_signal{fence_op::signal, "fence", "ring", "gfx", 3, 40};
constexpr context_frame array_work{fence_op::deferred_work, "fence_array", "fence_array", "unbound", 9, 1};

}  // namespace

TEST_SUITE("engine") {

TEST_CASE("each link of a cycle carries the context frames its edge was recorded under") {
    capture cap;
    fencedep::spinlock outer{"ctx outer"};
    fencedep::spinlock inner{"ctx inner"};
    {
        context_scope chain(chain_enabling);
        context_scope array(array_callback);
        lock_unlock_2(outer, inner);
    }
    {
        context_scope signal(leaf_signal);
        lock_unlock_2(inner, outer);
    }
    REQUIRE(cap.kinds() == "circular_dependency");
    const auto r = cap.at(0);
    REQUIRE(classes_of(r) == "ctx inner, ctx outer");
    REQUIRE(r.contexts.size() == 2);
    CHECK(r.contexts[0] ==
          "enabling signaling on fence_chain ctx 12 seqno 7, adding a callback to fence_array ctx 9 seqno 1");
    CHECK(r.contexts[1] == "signalling fence 'gfx' ctx 3 seqno 40");
    CHECK(engine_test::contains(r.text, "      recorded while enabling signaling on fence_chain ctx 12 seqno 7"));
    CHECK(engine_test::contains(r.text, "      taken while signalling fence 'gfx' ctx 3 seqno 40"));
}

TEST_CASE("an edge recorded outside any fence operation has no context line") {
    capture cap;
    fencedep::mutex a{"plain A"};
    fencedep::mutex b{"plain B"};
    lock_unlock_2(a, b);
    lock_unlock_2(b, a);
    REQUIRE(cap.kinds() == "circular_dependency");
    const auto r = cap.at(0);
    CHECK(r.contexts == std::vector<std::string>{"", ""});
    CHECK_FALSE(engine_test::contains(r.text, "recorded while"));
}

TEST_CASE("deferred work is a segment of its own: no edges from the locks held around it") {
    capture cap;
    fencedep::mutex driver{"driver D"};
    fencedep::spinlock container{"container A"};

    SUBCASE("inside deferred work") {
        driver.lock();
        {
            context_scope work(array_work);
            container.lock();
            container.unlock();
        }
        driver.unlock();
        // Had driver -> container been recorded, this would close a cycle.
        lock_unlock_2(container, driver);
        CHECK(cap.kinds() == "");
        // The segment is closed: the same order outside deferred work does record the edge.
        lock_unlock_2(driver, container);
        REQUIRE(cap.kinds() == "circular_dependency");
        CHECK(classes_of(cap.at(0)) == "driver D, container A");
    }
    SUBCASE("edges inside the segment are recorded") {
        fencedep::spinlock child{"child L"};
        {
            context_scope work(array_work);
            lock_unlock_2(container, child);
        }
        lock_unlock_2(child, container);
        REQUIRE(cap.kinds() == "circular_dependency");
        CHECK(cap.at(0).contexts.at(0) == "running deferred work of fence_array ctx 9 seqno 1");
    }
    SUBCASE("taking a lock the thread already holds is still recursion") {
        driver.lock();
        {
            context_scope work(array_work);
            driver.map().acquire();  // validator only: the real mutex would deadlock here
            driver.map().release();
        }
        driver.unlock();
        CHECK(cap.kinds() == "recursive_locking");
    }
}

}  // TEST_SUITE
