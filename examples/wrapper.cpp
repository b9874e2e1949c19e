// SPDX-License-Identifier: MIT
// A codebase's own mutex wrapper, instrumented with one line: its constructor forwards the site
// where the wrapper is built, so each place that builds a port::Mutex gets a lock class of its
// own. Without that line every wrapper would share the class of the member inside it, and the
// first time two of them nest, fencedep would report "possible recursive locking" instead of
// the ABBA below. With FENCEDEP=1 this prints the circular splat between db.mutex and
// cache.mutex, named by the lines that built them.
#include <mutex>
#include <string>

#include <fencedep/fencedep.h>

namespace port {

class Mutex {
public:
    // The one line: forward the caller's site (a name, if the codebase has one, goes first).
    explicit Mutex(fencedep::source_location site = fencedep::source_location::current()) : mu_(nullptr, site) {}
    Mutex(const Mutex&) = delete;
    Mutex& operator=(const Mutex&) = delete;
    void Lock() { mu_.lock(); }
    void Unlock() { mu_.unlock(); }
    // Lockable too, so that std::lock_guard works as with std::mutex.
    void lock() { mu_.lock(); }
    void unlock() { mu_.unlock(); }

private:
    fencedep::mutex mu_;
};

}  // namespace port

namespace {

struct Cache {
    port::Mutex mutex;  // every Cache's lock: one class, named "wrapper.cpp:LINE in Cache::Cache"
    std::string last;
};

struct Database {
    port::Mutex mutex;
    Cache cache;
    int writes = 0;

    // Path 1: a write refreshes the cache while holding the database lock.
    [[gnu::noinline]] void Write(const std::string& value) {
        std::lock_guard<port::Mutex> db(mutex);
        ++writes;
        std::lock_guard<port::Mutex> c(cache.mutex);
        cache.last = value;
    }

    // Path 2: a cache report reads the write count while holding the cache lock.
    [[gnu::noinline]] int CacheReport() {
        std::lock_guard<port::Mutex> c(cache.mutex);
        std::lock_guard<port::Mutex> db(mutex);
        return writes + static_cast<int>(cache.last.size());
    }
};

}  // namespace

int main() {
    Database db;
    db.Write("x");           // records db.mutex -> cache.mutex
    return db.CacheReport() > 0 ? 0 : 1;  // cache.mutex -> db.mutex closes the cycle: splat
}
