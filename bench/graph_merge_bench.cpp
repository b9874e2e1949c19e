// SPDX-License-Identifier: MIT
// fencedep-graph merge at scale: a generator writes DUMPS dumps of 5,000 classes and 20,000
// edges each (test binaries of one code base: classes drawn from a pool of 6,000, edges from a
// pool of 60,000 that respects one lock order, plus one inversion split across two dumps), then
// the real tool merges 50, 100 and all of them. Prints the wall time and the tool's peak memory
// for each, so that the growth with the number of dumps shows.
// Usage: graph_merge_bench FENCEDEP_GRAPH [DUMPS]   (DUMPS defaults to 200; the target: < 10 s)
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "report/graph_dump.h"

namespace {

using fencedep::detail::graph_dump;

constexpr std::uint32_t pool_classes = 6000;
constexpr std::uint32_t dump_classes = 5000;
constexpr std::uint32_t dump_edges = 20000;
constexpr std::uint32_t pool_edges = 60000;
constexpr std::uint32_t stacks_per_dump = 400;

struct pool_edge {
    std::uint32_t from, to;  // pool class ranks, from < to: one lock order
};

std::vector<pool_edge> make_pool(std::mt19937_64& random) {
    std::vector<pool_edge> pool;
    while (pool.size() < pool_edges) {
        const auto a = static_cast<std::uint32_t>(random() % pool_classes);
        const auto b = static_cast<std::uint32_t>(random() % pool_classes);
        if (a != b)
            pool.push_back({std::min(a, b), std::max(a, b)});
    }
    std::ranges::sort(pool, {}, [](const pool_edge& e) { return std::uint64_t{e.from} << 32 | e.to; });
    pool.erase(std::unique(pool.begin(), pool.end(),
                           [](const pool_edge& x, const pool_edge& y) { return x.from == y.from && x.to == y.to; }),
               pool.end());
    return pool;
}

graph_dump make_dump(std::uint32_t index, std::uint32_t total, const std::vector<pool_edge>& pool) {
    std::mt19937_64 random(index + 1);
    graph_dump d;
    d.program = fmt::format("test_binary_{}", index);
    d.pid = 10000 + index;
    d.time = "2026-12-03T00:00:00Z";
    d.chains = 30000;
    // The classes this binary uses: the pool minus a random 1,000.
    std::vector<std::uint32_t> ranks(pool_classes);
    for (std::uint32_t i = 0; i < pool_classes; ++i)
        ranks[i] = i;
    std::ranges::shuffle(ranks, random);
    // Classes 1 and 2, the planted inversion's, are in every dump.
    for (std::uint32_t i = 0; i < 2; ++i)
        std::iter_swap(ranks.begin() + i, std::ranges::find(ranks, i + 1));
    ranks.resize(dump_classes);
    std::vector<std::uint32_t> local(pool_classes, UINT32_MAX);
    for (const std::uint32_t rank : ranks) {
        local[rank] = static_cast<std::uint32_t>(d.classes.size());
        d.classes.push_back({fmt::format("subsystem{}->lock", rank), "", fmt::format("src/sub{}.cpp:{} in init", rank % 97, rank)});
    }
    for (std::uint32_t s = 0; s < stacks_per_dump; ++s) {
        std::vector<fencedep::frame> stack(8);
        for (std::uint32_t f = 0; f < stack.size(); ++f) {
            stack[f].address = 0x400000 + random() % 0x100000;
            stack[f].function = fmt::format("ns::component{}::operation{}", (s + f) % 300, f);
            stack[f].offset = random() % 0x200;
            stack[f].size = 0x200;
            stack[f].file = fmt::format("src/component{}.cpp", (s + f) % 300);
            stack[f].line = static_cast<unsigned>(random() % 2000);
            stack[f].module = d.program;
        }
        d.stacks.push_back(std::move(stack));
    }
    const auto add = [&](std::uint32_t from, std::uint32_t to) {
        d.edges.push_back({local[from], local[to],
                           {{false, fencedep::lock_kind::write, static_cast<std::uint32_t>(random() % stacks_per_dump), ""}}});
    };
    // One inversion split across the first and the last dump: 1 -> 2, then 2 -> 1.
    if (index == 0)
        add(1, 2);
    if (index + 1 == total)
        add(2, 1);
    std::vector<char> used(pool.size(), 0);
    while (d.edges.size() < dump_edges) {
        const std::size_t at = random() % pool.size();
        const pool_edge& e = pool[at];
        const bool planted = (e.from == 1 && e.to == 2);
        if (used[at] || planted || local[e.from] == UINT32_MAX || local[e.to] == UINT32_MAX)
            continue;
        used[at] = 1;
        add(e.from, e.to);
    }
    return d;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 2) {
        std::fputs("usage: graph_merge_bench FENCEDEP_GRAPH [DUMPS]\n", stderr);
        return 2;
    }
    const std::uint32_t total = argc > 2 ? static_cast<std::uint32_t>(std::stoul(argv[2])) : 200;
    const std::filesystem::path dir = std::filesystem::temp_directory_path() / fmt::format("graph_merge_bench.{}", getpid());
    std::filesystem::create_directories(dir);
    std::mt19937_64 random(42);
    const std::vector<pool_edge> pool = make_pool(random);
    std::vector<std::string> files;
    std::uintmax_t bytes = 0;
    for (std::uint32_t i = 0; i < total; ++i) {
        files.push_back((dir / fmt::format("dump{:03}.json", i)).string());
        std::ofstream(files.back()) << fencedep::detail::dump_json(make_dump(i, total, pool));
        bytes += std::filesystem::file_size(files.back());
    }
    std::printf("generated %u dumps of %u classes and %u edges: %.0f MB\n", total, dump_classes, dump_edges,
                static_cast<double>(bytes) / 1e6);
    int status = 0;
    for (const std::uint32_t count : {total / 4, total / 2, total}) {
        std::vector<char*> args = {argv[1], const_cast<char*>("merge")};
        for (std::uint32_t i = 0; i < count; ++i)
            args.push_back(files[i].data());
        args.push_back(nullptr);
        std::fflush(stdout);
        const auto start = std::chrono::steady_clock::now();
        const pid_t child = fork();
        if (child == 0) {
            // The splat of the planted cycle is not of interest here, only the time.
            if (std::freopen("/dev/null", "w", stdout) == nullptr)
                _exit(126);
            execv(args[0], args.data());
            _exit(127);
        }
        int child_status = 0;
        rusage usage{};
        wait4(child, &child_status, 0, &usage);
        const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        const auto cpu = [](const timeval& t) { return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) / 1e6; };
        // CPU time beside the wall time: on a shared machine the wall time says more of the load.
        std::printf("merge of %3u dumps: %.2f s (%.2f s of CPU), peak memory %.0f MB (exit %d)\n", count, seconds,
                    cpu(usage.ru_utime) + cpu(usage.ru_stime), static_cast<double>(usage.ru_maxrss) / 1024,
                    WIFEXITED(child_status) ? WEXITSTATUS(child_status) : -1);
        // The planted inversion is complete only with the last dump: exit 66 then, 0 before.
        const int expected = count == total ? 66 : 0;
        if (!WIFEXITED(child_status) || WEXITSTATUS(child_status) != expected)
            status = 1;
    }
    if (!std::getenv("GRAPH_MERGE_BENCH_KEEP"))
        std::filesystem::remove_all(dir);
    return status;
}
