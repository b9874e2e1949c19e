// SPDX-License-Identifier: MIT
// The kernel's "dma-buf-fence-unwrap" selftests (st-dma-fence-unwrap.c), re-created for unwrap.
#include <vector>

#include "fence_test.h"

using fence_test::array_of;
using fence_test::leaves;
using fence_test::mock;
using fencedep::fence;
using fencedep::fence_chain;
using fencedep::fence_ref;

namespace {

// mock_chain: seqno 1, taking over both references.
fence_ref<fence_chain> chain_of(fence_ref<> prev, fence_ref<> f) {
    return fence_chain::create(std::move(prev), std::move(f), 1);
}

// A leaf enabled first, as every unwrap selftest does.
fence_ref<> enabled(fence_ref<> f) {
    f->enable_sw_signaling();
    return f;
}

}  // namespace

TEST_SUITE("dma-buf-fence-unwrap") {

TEST_CASE("sanitycheck") {
    auto f = enabled(mock());
    auto array = array_of({f});
    auto chain = chain_of(nullptr, array);  // an array inside a chain is legal
    CHECK(leaves(*chain) == std::vector<fence*>{f.get()});
}

TEST_CASE("unwrap_array") {
    auto f1 = enabled(mock());
    auto f2 = enabled(mock());
    auto array = array_of({f1, f2});
    CHECK(leaves(*array) == std::vector<fence*>{f1.get(), f2.get()});
}

TEST_CASE("unwrap_chain") {
    auto f1 = enabled(mock());
    auto f2 = enabled(mock());
    auto chain = chain_of(f1, f2);
    // The point's own fence first, then the trailing prev.
    CHECK(leaves(*chain) == std::vector<fence*>{f2.get(), f1.get()});
}

TEST_CASE("unwrap_chain_array") {
    auto f1 = enabled(mock());
    auto f2 = enabled(mock());
    auto chain = chain_of(nullptr, array_of({f1, f2}));
    CHECK(leaves(*chain) == std::vector<fence*>{f1.get(), f2.get()});
}

TEST_CASE("unwrap_merge") {
    auto f1 = enabled(mock());
    auto f2 = enabled(mock());
    auto merged = fencedep::unwrap_merge({f1.get(), f2.get()});
    CHECK(leaves(*merged) == std::vector<fence*>{f1.get(), f2.get()});
}

TEST_CASE("unwrap_merge_duplicate") {
    auto f1 = enabled(mock());
    auto merged = fencedep::unwrap_merge({f1.get(), f1.get()});
    CHECK(merged == f1);
    CHECK(leaves(*merged) == std::vector<fence*>{f1.get()});
}

TEST_CASE("unwrap_merge_seqno") {
    const auto ctx = fence::allocate_contexts(2);
    auto f1 = enabled(mock(ctx + 1, 1));
    auto f2 = enabled(mock(ctx + 1, 2));
    auto f3 = enabled(mock(ctx, 1));
    auto merged = fencedep::unwrap_merge({f1.get(), f2.get(), f3.get()});
    // Sorted by context; f1 dropped as the older fence of its context.
    CHECK(leaves(*merged) == std::vector<fence*>{f3.get(), f2.get()});
}

TEST_CASE("unwrap_merge_order") {
    auto f1 = enabled(mock());
    auto f2 = enabled(mock());
    auto a1 = array_of({f1, f2});
    auto c2 = chain_of(chain_of(nullptr, f1), f2);  // the same fences, the other order
    auto merged = fencedep::unwrap_merge({a1.get(), c2.get()});
    CHECK(leaves(*merged) == std::vector<fence*>{f1.get(), f2.get()});
}

TEST_CASE("unwrap_merge_complex") {
    auto f1 = enabled(mock());
    auto f2 = enabled(mock());
    auto f3 = fencedep::unwrap_merge({f1.get(), f2.get()});
    auto f4 = array_of({f2, f1});
    auto stub = fencedep::stub_fence();
    auto f5 = fencedep::unwrap_merge({f3.get(), f4.get(), stub.get()});
    // Each leaf once; the signaled stub filtered out.
    CHECK(leaves(*f5) == std::vector<fence*>{f1.get(), f2.get()});
}

TEST_CASE("unwrap_merge_complex_seqno") {
    const auto ctx = fence::allocate_contexts(2);
    auto f1 = enabled(mock(ctx, 2));
    auto f2 = enabled(mock(ctx + 1, 1));
    auto f3 = enabled(mock(ctx, 1));
    auto f4 = enabled(mock(ctx + 1, 2));
    auto merged = fencedep::unwrap_merge({array_of({f1, f2}).get(), array_of({f3, f4}).get()});
    // The latest of each context, contexts ascending.
    CHECK(leaves(*merged) == std::vector<fence*>{f1.get(), f4.get()});
}

}  // TEST_SUITE
