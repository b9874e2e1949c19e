// SPDX-License-Identifier: MIT
// The kernel's "dma-buf-fence-chain" selftests (st-dma-fence-chain.c), re-created for fence_chain.
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <random>
#include <thread>
#include <vector>

#include "fence_test.h"

using fencedep::fence_chain;
using fencedep::fence_ref;
using namespace std::chrono_literals;

namespace {

constexpr int chain_size = 4096;

std::uint64_t seqno_inc(int i) { return static_cast<std::uint64_t>(i) + 1; }
std::uint64_t seqno_inc2(int i) { return 2 * static_cast<std::uint64_t>(i) + 2; }

// fence_chains_init: `count` mock fences and a timeline over them, every point enabled as it
// is created. Teardown signals every fence, then drops fences and points.
struct fence_chains {
    std::vector<fence_ref<>> fences;
    std::vector<fence_ref<>> chains;
    fence_ref<> tail;

    fence_chains(int count, std::uint64_t (*seqno_fn)(int)) {
        fences.reserve(count);
        chains.reserve(count);
        for (int i = 0; i < count; ++i) {
            fences.push_back(fence_test::mock());
            chains.push_back(fence_chain::create(tail, fences.back(), seqno_fn(i)));
            tail = chains.back();
            tail->enable_sw_signaling();
        }
    }
    ~fence_chains() {
        for (auto& f : fences)
            f->signal();
    }
};

fence_ref<> node_at(const fence_chains& fc, int i) { return fc.chains[static_cast<std::size_t>(i)]; }

}  // namespace

TEST_SUITE("dma-buf-fence-chain") {

TEST_CASE("sanitycheck") {
    auto f = fence_test::mock();
    auto chain = fence_chain::create(nullptr, f, 1);
    chain->enable_sw_signaling();
    f->signal();
    CHECK(chain->is_signaled());
}

TEST_CASE("find_seqno") {
    fence_chains fc(64, seqno_inc);
    fence_ref<> f = fc.tail;
    CHECK(fence_chain::find_seqno(f, 0) == 0);
    CHECK(f == fc.tail);
    for (int i = 0; i < 64; ++i) {
        f = fc.tail;
        REQUIRE(fence_chain::find_seqno(f, seqno_inc(i)) == 0);
        CHECK(f == node_at(fc, i));

        f = node_at(fc, i);
        REQUIRE(fence_chain::find_seqno(f, seqno_inc(i)) == 0);
        CHECK(f == node_at(fc, i));

        f = node_at(fc, i);
        CHECK(fence_chain::find_seqno(f, seqno_inc(i) + 1) == -EINVAL);  // the future

        f = node_at(fc, i);
        REQUIRE(fence_chain::find_seqno(f, seqno_inc(i - 1)) == 0);
        if (i > 0)
            CHECK(f == node_at(fc, i - 1));
    }
}

TEST_CASE("find_signaled") {
    fence_chains fc(2, seqno_inc);
    fc.fences[0]->signal();
    fence_ref<> f = fc.tail;
    REQUIRE(fence_chain::find_seqno(f, 1) == 0);
    CHECK((f == nullptr || f == node_at(fc, 0)));
}

TEST_CASE("find_out_of_order") {
    fence_chains fc(3, seqno_inc);
    fc.fences[1]->signal();
    fence_ref<> f = fc.tail;
    REQUIRE(fence_chain::find_seqno(f, 2) == 0);
    // Point 2 is collected on the way; the caller still has to wait for fence 1 (point 1).
    CHECK(f == node_at(fc, 0));
}

TEST_CASE("find_gap") {
    fence_chains fc(64, seqno_inc2);
    for (int i = 0; i < 64; ++i) {
        fence_ref<> f = fc.tail;
        REQUIRE(fence_chain::find_seqno(f, 2 * static_cast<std::uint64_t>(i) + 1) == 0);
        CHECK(f == node_at(fc, i));
        f = node_at(fc, i);
        REQUIRE(fence_chain::find_seqno(f, 2 * static_cast<std::uint64_t>(i) + 2) == 0);
        CHECK(f == node_at(fc, i));
    }
}

// Concurrent find, collection and signalling on one 4096-point timeline, one thread per CPU.
// The kernel runs it for up to 5 s; a fixed number of rounds keeps CI time predictable.
TEST_CASE("find_race") {
    fence_chains fc(chain_size, seqno_inc);
    const unsigned threads = std::max(2u, std::thread::hardware_concurrency());
    constexpr int rounds = 2000;
    std::atomic<unsigned> failures{0};
    std::atomic<unsigned long> completed{0};
    std::vector<std::thread> workers;
    for (unsigned t = 0; t < threads; ++t) {
        workers.emplace_back([&, t] {
            std::mt19937 rng(t + 1);
            std::uniform_int_distribution<std::uint64_t> pick_seqno(1, chain_size);
            std::uniform_int_distribution<int> pick_fence(0, chain_size - 2);
            for (int r = 0; r < rounds; ++r) {
                fence_ref<> f = fc.tail;
                const std::uint64_t seqno = pick_seqno(rng);
                if (fence_chain::find_seqno(f, seqno) != 0) {
                    failures.fetch_add(1);
                    break;
                }
                // Only the point looked for may be found again from itself.
                if (f && f->seqno() == seqno && fence_chain::find_seqno(f, seqno) != 0) {
                    failures.fetch_add(1);
                    break;
                }
                fc.fences[static_cast<std::size_t>(pick_fence(rng))]->signal();
                completed.fetch_add(1);
            }
        });
    }
    for (auto& w : workers)
        w.join();
    INFO(completed.load(), " completed");
    CHECK(failures.load() == 0);
}

TEST_CASE("signal_forward") {
    fence_chains fc(64, seqno_inc);
    for (int i = 0; i < 64; ++i) {
        fc.fences[static_cast<std::size_t>(i)]->signal();
        CHECK(node_at(fc, i)->is_signaled());
        if (i + 1 < 64)
            CHECK_FALSE(node_at(fc, i + 1)->is_signaled());
    }
}

TEST_CASE("signal_backward") {
    fence_chains fc(64, seqno_inc);
    for (int i = 64; i--;) {
        fc.fences[static_cast<std::size_t>(i)]->signal();
        if (i > 0)
            CHECK_FALSE(node_at(fc, i)->is_signaled());  // older fences still pending
    }
    for (int i = 0; i < 64; ++i)
        CHECK(node_at(fc, i)->is_signaled());
}

namespace {

// The wait_* tests: a thread waits (uninterruptibly) on the tail while this one signals every
// fence in `order`; the waiter must come back once the last one signals.
void wait_for_tail(const std::vector<int>& order) {
    fence_chains fc(chain_size, seqno_inc);
    std::atomic<bool> returned{false};
    std::thread waiter([&] {
        fc.tail->wait();
        returned.store(true);
    });
    for (int i : order)
        fc.fences[static_cast<std::size_t>(i)]->signal();
    waiter.join();
    CHECK(returned.load());
    CHECK(fc.tail->is_signaled());
}

std::vector<int> indices() {
    std::vector<int> order(chain_size);
    for (int i = 0; i < chain_size; ++i)
        order[static_cast<std::size_t>(i)] = i;
    return order;
}

}  // namespace

TEST_CASE("wait_forward") { wait_for_tail(indices()); }

TEST_CASE("wait_backward") {
    auto order = indices();
    std::reverse(order.begin(), order.end());
    wait_for_tail(order);
}

TEST_CASE("wait_random") {
    auto order = indices();
    std::shuffle(order.begin(), order.end(), std::mt19937(4096));  // Fisher-Yates
    wait_for_tail(order);
}

}  // TEST_SUITE
