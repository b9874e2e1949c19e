// SPDX-License-Identifier: MIT
// Plain C++ programs over the standard library's locks, built without fencedep (no fencedep
// header, no libfencedep), that preload_test runs through fencedep-run. Each case is chosen by
// its name on the command line.
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <thread>
#include <vector>

namespace {

struct account {
    std::mutex lock;
    long balance = 0;
};

// Heap objects' std::mutex members: never initialized through a call, so each takes the class of
// the place that first locks it.
void transfer(account& from, account& to, long amount) {
    const std::lock_guard from_guard(from.lock);
    const std::lock_guard to_guard(to.lock);
    from.balance -= amount;
    to.balance += amount;
}

void audit(account& first, account& second) {
    const std::lock_guard second_guard(second.lock);
    const std::lock_guard first_guard(first.lock);
    std::printf("total %ld\n", first.balance + second.balance);
}

int mutex_abba() {
    auto checking = std::make_unique<account>();
    auto savings = std::make_unique<account>();
    std::thread([&] { transfer(*checking, *savings, 10); }).join();
    std::thread([&] { audit(*checking, *savings); }).join();
    return 0;
}

int recursive_mutex() {
    std::recursive_mutex outer;
    std::mutex inner;
    for (int round = 0; round < 3; ++round) {
        const std::lock_guard first(outer);
        const std::lock_guard again(outer);
        if (!outer.try_lock())
            return 1;
        const std::lock_guard nested(inner);
        outer.unlock();
    }
    std::puts("recursive done");
    return 0;
}

int condition_variable() {
    std::mutex lock;
    std::condition_variable ready;
    std::vector<int> queue;
    bool done = false;
    std::thread producer([&] {
        for (int i = 1; i <= 1000; ++i) {
            const std::lock_guard guard(lock);
            queue.push_back(i);
            ready.notify_one();
        }
        const std::lock_guard guard(lock);
        done = true;
        ready.notify_one();
    });
    long sum = 0;
    std::unique_lock guard(lock);
    while (true) {
        ready.wait_for(guard, std::chrono::seconds(5), [&] { return !queue.empty() || done; });
        for (const int item : queue)
            sum += item;
        queue.clear();
        if (done)
            break;
        ready.wait(guard, [&] { return !queue.empty() || done; });
    }
    guard.unlock();
    producer.join();
    std::printf("sum %ld\n", sum);
    return 0;
}

// Readers of a shared_mutex in both orders with a mutex: no report. A writer inside the mutex
// while a reader took the mutex inside the shared_mutex: a cycle.
int shared_mutex(bool writer) {
    std::shared_mutex table;
    std::mutex log;
    std::thread([&] {
        const std::shared_lock read(table);
        const std::lock_guard write_log(log);
    }).join();
    const std::lock_guard write_log(log);
    if (writer) {
        const std::unique_lock write(table);
    } else {
        const std::shared_lock read(table);
    }
    std::puts("shared done");
    return 0;
}

int timed_mutex() {
    std::timed_mutex lock;
    std::thread holder;
    {
        std::unique_lock held(lock);
        std::thread([&] {
            std::printf("try_lock_for: %d\n", lock.try_lock_for(std::chrono::milliseconds(20)) ? 1 : 0);
        }).join();
    }
    return 0;
}

struct node {
    std::mutex lock;
};

void lock_pair(node& first, node& second) {
    const std::lock_guard outer(first.lock);
    const std::lock_guard inner(second.lock);
}

// std::mutex has no init and no destroy call: 4096 built where others lived, on the heap and on
// the stack, while the addresses swap roles. A lock that kept the identity of the one before it
// at its address would close a cycle.
int reuse() {
    for (int round = 0; round < 1024; ++round) {
        auto first = std::make_unique<node>();
        auto second = std::make_unique<node>();
        lock_pair(*first, *second);
    }
    for (int round = 0; round < 1024; ++round) {
        node pair[2];
        lock_pair(pair[round & 1], pair[!(round & 1)]);
    }
    std::puts("reused");
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    const char* name = argc > 1 ? argv[1] : "";
    if (std::strcmp(name, "mutex_abba") == 0)
        return mutex_abba();
    if (std::strcmp(name, "recursive_mutex") == 0)
        return recursive_mutex();
    if (std::strcmp(name, "condition_variable") == 0)
        return condition_variable();
    if (std::strcmp(name, "shared_readers") == 0)
        return shared_mutex(false);
    if (std::strcmp(name, "shared_writer") == 0)
        return shared_mutex(true);
    if (std::strcmp(name, "timed_mutex") == 0)
        return timed_mutex();
    if (std::strcmp(name, "reuse") == 0)
        return reuse();
    std::fprintf(stderr, "unknown case '%s'\n", name);
    return 2;
}
