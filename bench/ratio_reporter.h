// SPDX-License-Identifier: MIT
// A benchmark reporter that also prints ratios between benchmarks of the same run.
#pragma once

#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstdio>
#include <map>
#include <string>
#include <thread>
#include <vector>

namespace bench {

// Prints as usual, and keeps each benchmark's fastest real and CPU time per iteration so that
// ratios can be taken between benchmarks of the same run (the only fair comparison on a shared
// machine). Both are printed: on a loaded machine real time includes waiting for a core, which
// CPU time leaves out.
class ratio_reporter : public benchmark::ConsoleReporter {
public:
    ratio_reporter() : benchmark::ConsoleReporter(OO_Tabular) {}

    void ReportRuns(const std::vector<Run>& runs) override {
        for (const auto& run : runs) {
            if (run.run_type != Run::RT_Iteration || run.error_occurred)
                continue;
            const double scale = time_unit_to_ns(run.time_unit);
            const timing t{run.GetAdjustedRealTime() * scale, run.GetAdjustedCPUTime() * scale};
            auto [it, inserted] = best_.emplace(run.benchmark_name(), t);
            if (!inserted) {
                it->second.real_ns = std::min(it->second.real_ns, t.real_ns);
                it->second.cpu_ns = std::min(it->second.cpu_ns, t.cpu_ns);
            }
        }
        benchmark::ConsoleReporter::ReportRuns(runs);
    }

    // Prints "<label>: <a/b real>, <a/b CPU> (<a> ns real, <a> ns CPU)<note>", or nothing if
    // either benchmark did not run (a filter).
    void print_ratio(const char* label, const std::string& a, const std::string& b, const char* note = "") const {
        const auto top = best_.find(a);
        const auto bottom = best_.find(b);
        if (top == best_.end() || bottom == best_.end() || bottom->second.real_ns <= 0 || bottom->second.cpu_ns <= 0)
            return;
        std::printf("%s: %.2f real, %.2f CPU (%.2f ns real, %.2f ns CPU)%s\n", label,
                    top->second.real_ns / bottom->second.real_ns, top->second.cpu_ns / bottom->second.cpu_ns,
                    top->second.real_ns, top->second.cpu_ns, note);
    }

    // For a benchmark run with ->Threads(1) and ->Threads(n) and ->UseRealTime(): prints
    // "<name>, <n> threads: <throughput against 1 thread> (ideal <min(n, cores)>)". Google
    // Benchmark divides a multithreaded run's wall time by the iterations of all its threads, so
    // the time per iteration is the inverse of the throughput.
    void print_scaling(const std::string& name, unsigned threads) const {
        const auto one = best_.find(name + "/real_time/threads:1");
        const auto many = best_.find(name + "/real_time/threads:" + std::to_string(threads));
        if (one == best_.end() || many == best_.end() || many->second.real_ns <= 0)
            return;
        const unsigned cores = std::max(1u, std::thread::hardware_concurrency());
        std::printf("%s, %u threads: %.2fx the throughput of 1 thread (ideal %u)\n", name.c_str(), threads,
                    one->second.real_ns / many->second.real_ns, std::min(threads, cores));
    }

private:
    struct timing {
        double real_ns;
        double cpu_ns;
    };

    static double time_unit_to_ns(benchmark::TimeUnit unit) {
        switch (unit) {
        case benchmark::kNanosecond: return 1;
        case benchmark::kMicrosecond: return 1e3;
        case benchmark::kMillisecond: return 1e6;
        case benchmark::kSecond: return 1e9;
        }
        return 1;
    }

    std::map<std::string, timing> best_;
};

// Runs the registered benchmarks with a ratio_reporter, then `ratios(reporter)`.
template <class Ratios>
int run_with_ratios(int argc, char** argv, Ratios ratios) {
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv))
        return 1;
    ratio_reporter reporter;
    benchmark::RunSpecifiedBenchmarks(&reporter);
    std::printf("\n");
    ratios(reporter);
    benchmark::Shutdown();
    return 0;
}

}  // namespace bench
