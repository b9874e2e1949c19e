// SPDX-License-Identifier: MIT
// Cost of fence operations with fencedep off and on: callbacks, a 4096-point chain, a 64-wide array.
#include <benchmark/benchmark.h>

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <fencedep/fencedep.h>

#include "ratio_reporter.h"

namespace {

// Each benchmark takes Arg(0) for fencedep off and Arg(1) for on, so one run gives both and the
// ratio of the two lines is the price of validation.
void set_validation(benchmark::State& state) {
    const bool on = state.range(0) != 0;
    if (on)
        fencedep::reset();
    fencedep::enable(on);
    state.SetLabel(on ? "fencedep on" : "fencedep off");
}

void check_no_splat(benchmark::State& state) {
    fencedep::enable(false);
    if (fencedep::splat_count() != 0)
        state.SkipWithError("fencedep reported a splat");
}

struct bench_fence final : fencedep::fence {
    using fence::fence;
    const char* driver_name() const noexcept override { return "bench"; }
    const char* timeline_name() const noexcept override { return "bench"; }
};

void count_callback(fencedep::fence&, fencedep::fence_callback&) noexcept {}

// A fence on the stack (no allocation), `n` callbacks added, then signaled: the driver's
// completion path with n waiters.
template <int N>
void signal_with_callbacks(benchmark::State& state) {
    set_validation(state);
    fencedep::spinlock ring_lock{"bench ring->lock"};
    const std::uint64_t context = fencedep::fence::allocate_contexts(1);
    fencedep::fence_callback callbacks[N];
    std::uint64_t seqno = 0;
    for (auto _ : state) {
        bench_fence f(ring_lock, context, ++seqno);
        for (auto& cb : callbacks)
            f.add_callback(cb, count_callback);
        f.signal();
    }
    check_no_splat(state);
}
BENCHMARK(signal_with_callbacks<1>)->Arg(0)->Arg(1);
BENCHMARK(signal_with_callbacks<16>)->Arg(0)->Arg(1);

// A 4096-point timeline with every point enabled as it is created (as drm_syncobj and the
// kernel's chain selftests do), then every fence signaled in order: one callback hop per point.
void chain_4096_enable_and_signal(benchmark::State& state) {
    constexpr int points = 4096;
    set_validation(state);
    fencedep::spinlock ring_lock{"bench ring->lock"};
    const std::uint64_t context = fencedep::fence::allocate_contexts(1);
    std::vector<fencedep::fence_ref<>> fences(points);
    std::vector<fencedep::fence_ref<fencedep::fence_chain>> nodes(points);
    for (auto _ : state) {
        state.PauseTiming();
        for (int i = 0; i < points; ++i)
            fences[i] = fencedep::make_fence<bench_fence>(ring_lock, context, i + 1);
        state.ResumeTiming();
        fencedep::fence_ref<> prev;
        for (int i = 0; i < points; ++i) {
            nodes[i] = fencedep::fence_chain::create(prev, fences[i], i + 1);
            nodes[i]->enable_sw_signaling();
            prev = nodes[i];
        }
        for (auto& f : fences)
            f->signal();
        benchmark::DoNotOptimize(nodes.back()->test_signaled_flag());
        state.PauseTiming();
        nodes.assign(points, nullptr);
        prev.reset();
        fences.assign(points, nullptr);
        state.ResumeTiming();
    }
    check_no_splat(state);
}
BENCHMARK(chain_4096_enable_and_signal)->Arg(0)->Arg(1)->Unit(benchmark::kMicrosecond);

// Create an array over 64 fresh fences, enable it, signal the fences, drop everything.
void array_64_create_signal_release(benchmark::State& state) {
    constexpr int width = 64;
    set_validation(state);
    fencedep::spinlock ring_lock{"bench ring->lock"};
    const std::uint64_t context = fencedep::fence::allocate_contexts(1);
    std::vector<fencedep::fence*> leaves(width);
    for (auto _ : state) {
        std::vector<fencedep::fence_ref<>> children;
        children.reserve(width);
        for (int i = 0; i < width; ++i) {
            children.push_back(fencedep::make_fence<bench_fence>(ring_lock, context, i + 1));
            leaves[i] = children.back().get();
        }
        auto array = fencedep::fence_array::create(std::move(children),
                                                   fencedep::fence::allocate_contexts(1), 1);
        array->enable_sw_signaling();
        for (fencedep::fence* leaf : leaves)
            leaf->signal();
        benchmark::DoNotOptimize(array->test_signaled_flag());
    }
    check_no_splat(state);
}
BENCHMARK(array_64_create_signal_release)->Arg(0)->Arg(1)->Unit(benchmark::kMicrosecond);

// What each signalling annotation costs (README, "Waits and signalling"), next to the yardstick
// of one uncontended std::mutex lock/unlock pair.
void raw_mutex_pair(benchmark::State& state) {
    std::mutex m;
    for (auto _ : state) {
        m.lock();
        m.unlock();
    }
}
BENCHMARK(raw_mutex_pair);

// begin_signalling() + end_signalling(): a trylock-read of fence_signalling and its release.
void section(benchmark::State& state) {
    set_validation(state);
    for (auto _ : state) {
        fencedep::signalling_section s;
        benchmark::ClobberMemory();
    }
    check_no_splat(state);
}
BENCHMARK(section)->Arg(0)->Arg(1);

// might_wait_on_fence() outside a section: a write acquisition of fence_signalling and its release.
void might_wait(benchmark::State& state) {
    set_validation(state);
    for (auto _ : state)
        fencedep::might_wait_on_fence();
    check_no_splat(state);
}
BENCHMARK(might_wait)->Arg(0)->Arg(1);

// The same inside a section, which drops the section's read hold around the wait.
void might_wait_in_section(benchmark::State& state) {
    set_validation(state);
    fencedep::signalling_section s;
    for (auto _ : state)
        fencedep::might_wait_on_fence();
    check_no_splat(state);
}
BENCHMARK(might_wait_in_section)->Arg(0)->Arg(1);

// A reclaim_scope: a write acquisition of the reclaim pseudo-lock and its release.
void reclaim(benchmark::State& state) {
    set_validation(state);
    for (auto _ : state) {
        fencedep::reclaim_scope r;
        benchmark::ClobberMemory();
    }
    check_no_splat(state);
}
BENCHMARK(reclaim)->Arg(0)->Arg(1);

// wait() on a fence that is already signaled: the annotation, then the test of the flag.
void wait_signaled(benchmark::State& state) {
    set_validation(state);
    fencedep::spinlock ring_lock{"bench ring->lock"};
    bench_fence f(ring_lock, fencedep::fence::allocate_contexts(1), 1);
    f.signal();
    for (auto _ : state)
        f.wait();
    check_no_splat(state);
}
BENCHMARK(wait_signaled)->Arg(0)->Arg(1);

}  // namespace

int main(int argc, char** argv) {
    return bench::run_with_ratios(argc, argv, [](const bench::ratio_reporter& r) {
        for (const char* name : {"signal_with_callbacks<1>", "signal_with_callbacks<16>",
                                 "chain_4096_enable_and_signal", "array_64_create_signal_release"}) {
            const std::string label = std::string("ratio on/off ") + name;
            r.print_ratio(label.c_str(), std::string(name) + "/1", std::string(name) + "/0");
        }
        for (const char* name : {"section", "might_wait", "might_wait_in_section", "reclaim", "wait_signaled"}) {
            for (const char* arg : {"/0", "/1"}) {
                const std::string label = std::string("ratio ") + name + arg + "/raw mutex pair";
                r.print_ratio(label.c_str(), std::string(name) + arg, "raw_mutex_pair");
            }
        }
    });
}
