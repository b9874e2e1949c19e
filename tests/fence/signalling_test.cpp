// SPDX-License-Identifier: MIT
// The fence signalling annotations (dma-fence.md §5, scenario S7), the start-up priming of
// reservation lock -> reclaim -> fence waits, and resv_lock's acquire context (nest_lock).
#include <cerrno>
#include <chrono>
#include <mutex>
#include <semaphore>
#include <string>
#include <thread>
#include <vector>

#include "../engine/capture.h"
#include "fence_test.h"
#include "modes.h"

using engine_test::capture;
using engine_test::classes_of;
using engine_test::contains;
using fence_test::mock;
using fencedep::fence_ref;

namespace {

fencedep::lock_class_key device_key;

// A fence already signaled: waiting on it returns at once, and still records the wait.
fence_ref<> signaled() {
    auto f = mock();
    f->signal();
    return f;
}

// The scenario lines of a report, in order, joined by '|' (the columns' padding removed).
std::string scenario(const std::string& text) {
    const auto start = text.find("       ----                    ----\n");
    const auto end = text.find(" *** DEADLOCK ***");
    REQUIRE(start != std::string::npos);
    REQUIRE(end != std::string::npos);
    std::string out;
    std::string line;
    for (char c : text.substr(start + 35, end - start - 35)) {
        if (c != '\n') {
            line += c;
            continue;
        }
        const auto first = line.find_first_not_of(' ');
        if (first != std::string::npos)
            out += (out.empty() ? "" : "|") + line.substr(first);
        line.clear();
    }
    return out;
}

// The §5.2 patterns run once per enable_signaling mode: whether a container's lock is held while
// it enables signaling changes which fence locks a wait takes, never the verdict on the wait.
struct signalling_case : fence_test::mode_case {
    using mode_case::mode_case;
    capture cap;
    fencedep::mutex device{"device->lock", device_key};
};

}  // namespace

TEST_SUITE("signalling") {

FENCE_MODE_CASE_FIXTURE(signalling_case, "S7b (pattern 1): a waiter holds a lock that a signalling section takes") {
    auto done = signaled();
    // The completion path: its section takes the device lock before it signals.
    const auto complete = [&] {
        fencedep::signalling_section section;
        device.lock();
        device.unlock();
        mock()->signal();
    };
    // The submission path: holds the device lock while it waits for an earlier job.
    const auto submit = [&] {
        std::lock_guard<fencedep::mutex> guard(device);
        done->wait();
    };

    SUBCASE("the wait closes the cycle") {
        complete();
        submit();
        REQUIRE(cap.kinds() == "circular_dependency");
        const auto r = cap.at(0);
        CHECK(classes_of(r) == "device->lock, fence_signalling");
        CHECK(contains(r.contexts.at(0), "inside a signalling section begun at"));
        CHECK(contains(r.contexts.at(0), "signalling_test.cpp:"));
        CHECK(contains(r.contexts.at(1), "waiting on fence 'mock'"));
        CHECK(contains(r.text, "fence_signalling stands for fence signalling"));
        CHECK(contains(r.text, "(fence_signalling){write}"));
        CHECK(scenario(r.text) == "lock(device->lock);|begin_signalling();|lock(device->lock);|wait(fence);");
    }
    SUBCASE("the section closes the cycle") {
        submit();
        complete();
        REQUIRE(cap.kinds() == "circular_dependency");
        const auto r = cap.at(0);
        CHECK(classes_of(r) == "fence_signalling, device->lock");
        CHECK(contains(r.text, "but task is already holding lock:"));
        CHECK(contains(r.text, "(fence_signalling){read}"));
        CHECK(scenario(r.text) == "begin_signalling();|lock(device->lock);|wait(fence);|lock(device->lock);");
    }
}

FENCE_MODE_CASE_FIXTURE(signalling_case, "S7a (pattern 2): waiting inside a section while holding a lock taken in it") {
    auto other = signaled();
    {
        fencedep::signalling_section section;
        std::lock_guard<fencedep::mutex> guard(device);
        other->wait();
    }
    REQUIRE(cap.kinds() == "circular_dependency");
    CHECK(classes_of(cap.at(0)) == "device->lock, fence_signalling");
}

FENCE_MODE_CASE_FIXTURE(signalling_case, "S7c: what a section allows") {
    auto other = signaled();
    SUBCASE("a wait with no lock taken since the section began") {
        fencedep::signalling_section section;
        other->wait();
        CHECK(other->wait_timeout(std::chrono::nanoseconds::zero()));
        CHECK(fencedep::fence::wait_any(std::vector<fencedep::fence*>{other.get()}, std::chrono::seconds(1)) == 0u);
    }
    SUBCASE("beginning a section under a lock records no dependency into it") {
        {
            std::lock_guard<fencedep::mutex> guard(device);
            fencedep::signalling_section section;
        }
        fencedep::signalling_section section;
        std::lock_guard<fencedep::mutex> guard(device);
    }
    CHECK(cap.kinds() == "");
}

FENCE_MODE_CASE_FIXTURE(signalling_case, "S7c: nested sections: the inner begin and end do nothing") {
    auto other = signaled();
    const bool outer = fencedep::begin_signalling();
    const bool inner = fencedep::begin_signalling();
    CHECK_FALSE(outer);
    CHECK(inner);
    fencedep::end_signalling(inner);
    device.lock();  // still inside the outer section
    device.unlock();
    fencedep::end_signalling(outer);
    CHECK(cap.kinds() == "");
    std::lock_guard<fencedep::mutex> guard(device);
    other->wait();
    REQUIRE(cap.kinds() == "circular_dependency");
    CHECK(classes_of(cap.at(0)) == "device->lock, fence_signalling");
}

FENCE_MODE_CASE_FIXTURE(signalling_case, "S7e: waiting under a lock no signalling path takes") {
    auto other = signaled();
    std::lock_guard<fencedep::mutex> guard(device);
    other->wait();
    CHECK(cap.kinds() == "");
}

FENCE_MODE_CASE_FIXTURE(signalling_case, "pattern 4: a fence callback runs in the signaller's section") {
    struct retire : fencedep::fence_callback {
        fencedep::mutex* device = nullptr;
        static void run(fencedep::fence&, fencedep::fence_callback& cb) noexcept {
            std::lock_guard<fencedep::mutex> guard(*static_cast<retire&>(cb).device);
        }
    } cb;
    cb.device = &device;
    auto job = mock();
    REQUIRE(job->add_callback(cb, retire::run) == 0);
    job->signal();
    // A fence of another lock class: waiting on it takes its lock, which is no part of the cycle.
    fencedep::spinlock other_lock{"other->fence_lock"};
    auto other = fence_test::mock_on(other_lock);
    other->signal();
    std::lock_guard<fencedep::mutex> guard(device);
    other->wait();
    REQUIRE(cap.kinds() == "circular_dependency");
    CHECK(classes_of(cap.at(0)) == "device->lock, fence->lock, fence_signalling");
}

FENCE_MODE_CASE_FIXTURE(signalling_case, "pattern 3 and priming: reclaim and reservation locks inside a section") {
    SUBCASE("S7d: an allocation that may reclaim") {
        {
            fencedep::signalling_section section;
            fencedep::reclaim_scope allocation;
        }
        REQUIRE(cap.kinds() == "circular_dependency");
        const auto r = cap.at(0);
        CHECK(classes_of(r) == "fence_signalling, reclaim");
        CHECK(contains(r.contexts.at(0), "priming fencedep's fence rules at start-up"));
    }
    SUBCASE("a reservation lock") {
        fencedep::resv_lock bo;
        {
            fencedep::signalling_section section;
            bo.lock();
            bo.unlock();
        }
        REQUIRE(cap.kinds() == "circular_dependency");
        CHECK(classes_of(cap.at(0)) == "fence_signalling, reclaim, resv_lock");
    }
    SUBCASE("allowed: waits under a reservation lock and in reclaim") {
        auto other = signaled();
        fencedep::resv_lock bo;
        bo.lock();
        other->wait();
        bo.unlock();
        fencedep::reclaim_scope allocation;
        other->wait();
        CHECK(cap.kinds() == "");
    }
    SUBCASE("priming is redone after reset()") {
        fencedep::reset();
        {
            fencedep::signalling_section section;
            fencedep::reclaim_scope allocation;
        }
        REQUIRE(cap.kinds() == "circular_dependency");
        CHECK(classes_of(cap.at(0)) == "fence_signalling, reclaim");
    }
}

FENCE_MODE_CASE_FIXTURE(signalling_case, "pattern 1 through a container: the waiter waits on an array") {
    auto job = mock();
    auto all = fence_test::array_of({job});
    {
        fencedep::signalling_section section;
        std::lock_guard<fencedep::mutex> guard(device);
    }
    job->signal();
    {
        // The wait enables signaling on the array, which (locked mode) takes its lock and then
        // its child's: fence locks under device->lock that are no part of the cycle.
        std::lock_guard<fencedep::mutex> guard(device);
        all->wait();
    }
    CHECK(all->is_signaled());
    REQUIRE(cap.kinds() == "circular_dependency");
    const auto r = cap.at(0);
    CHECK(classes_of(r) == "device->lock, fence_signalling");
    CHECK(contains(r.contexts.at(1), "waiting on fence_array"));
}

TEST_CASE("a section and a reclaim scope begun while fencedep was off end quietly") {
    capture cap;
    fencedep::enable(false);
    {
        fencedep::signalling_section section;
        fencedep::reclaim_scope allocation;
        fencedep::enable(true);
    }
    CHECK(cap.kinds() == "");
}

TEST_CASE("resv_lock: many under one acquire context are no recursion") {
    capture cap;
    fencedep::resv_lock a, b, c;
    fencedep::resv_lock* all[] = {&a, &b, &c};
    {
        fencedep::resv_acquire_context ctx;
        fencedep::resv_lock::lock_all(all, ctx);
        CHECK(ctx.acquired() == 3);
        CHECK(b.map().held_by_this_thread());
        CHECK(b.lock(ctx) == -EALREADY);
        b.unlock();  // out of order, from the middle of the shared slot
        CHECK(a.map().held_by_this_thread());
        a.unlock();
        c.unlock();
        CHECK_FALSE(c.map().held_by_this_thread());
    }
    CHECK(cap.kinds() == "");
    SUBCASE("without a context they are") {
        a.lock();
        b.lock();
        b.unlock();
        a.unlock();
        REQUIRE(cap.kinds() == "recursive_locking");
        CHECK(classes_of(cap.at(0)) == "resv_lock, resv_lock");
    }
    SUBCASE("two contexts held by one thread are recursive locking") {
        fencedep::resv_acquire_context first;
        fencedep::resv_acquire_context second;
        REQUIRE(cap.kinds() == "recursive_locking");
        CHECK(classes_of(cap.at(0)) == "resv_acquire_context, resv_acquire_context");
    }
}

TEST_CASE("resv_lock: the younger context backs off with -EDEADLK") {
    capture cap;
    fencedep::resv_lock a, b;
    std::binary_semaphore older_holds{0}, younger_done{0};
    std::thread older([&] {
        fencedep::resv_acquire_context ctx;
        REQUIRE(a.lock(ctx) == 0);
        older_holds.release();
        younger_done.acquire();
        a.unlock();
    });
    older_holds.acquire();
    {
        fencedep::resv_acquire_context ctx;  // built after the older one's: a later ticket
        REQUIRE(b.lock(ctx) == 0);
        CHECK(a.lock(ctx) == -EDEADLK);
        CHECK(ctx.acquired() == 1);
        b.unlock();
        younger_done.release();
        a.lock_slow(ctx);
        a.unlock();
    }
    older.join();
    CHECK(cap.kinds() == "");
}

TEST_CASE("a nest lock that is not held is reported") {
    capture cap;
    fencedep::lock_map outer{"outer"};
    fencedep::lock_map inner{"inner"};
    fencedep::lock_map::acquisition how;
    how.nest_lock = &outer;
    inner.acquire(how);
    inner.release();
    REQUIRE(cap.kinds() == "nest_lock_not_held");
    const auto r = cap.at(0);
    CHECK(r.title == "WARNING: Nested lock was not taken");
    CHECK(contains(r.text, "but this task is not holding:\nouter\n"));
    CHECK(classes_of(r) == "inner");
}

}  // TEST_SUITE
