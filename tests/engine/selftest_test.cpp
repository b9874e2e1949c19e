// SPDX-License-Identifier: MIT
// The kernel locking selftests (lockdep.md §5): the basic families (§5.3) for every column
// fencedep has, the read/write mixing table (§5.4) and the three-lock recursive-read cycles (§5.5).
#include <algorithm>
#include <array>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "capture.h"

using engine_test::capture;
using engine_test::classes_of;
using engine_test::lettered_locks;
using engine_test::lock_unlock_pairs;

namespace {

// LOCK(x) and UNLOCK(x) of the selftests' reader columns: lock_shared() and unlock_shared().
template <class Lock>
class reader {
public:
    explicit reader(const char* name, fencedep::source_location site = fencedep::source_location::current())
        : lock_(name, site) {}
    void lock() { lock_.lock_shared(); }
    void unlock() { lock_.unlock_shared(); }
    fencedep::lock_map& map() { return lock_.map(); }

private:
    Lock lock_;
};

// The columns of lockdep.md §5.3 that fencedep has (all but rtmutex): spin, mutex, wlock and
// wsem (the writers of rwlock and shared_mutex), rlock (rwlock's readers, recursive) and rsem
// (shared_mutex's readers, non-recursive).
using rlock = reader<fencedep::rwlock>;
using rsem = reader<fencedep::shared_mutex>;
#define SELFTEST_COLUMNS fencedep::spinlock, fencedep::mutex, fencedep::rwlock, rlock, fencedep::shared_mutex, rsem

// Expectation row "6R": every column reports the AA and cycle families but rlock, whose
// all-recursive-read versions are no deadlock (readers never block recursive readers).
template <class Lock>
constexpr bool reports_6R = !std::is_same_v<Lock, rlock>;

// One construction site for every lock it makes, so that they are instances of one class: the
// selftests' X1/X2 (lockdep.md §5.2).
template <class Lock>
std::unique_ptr<Lock> make_x() {
    return std::unique_ptr<Lock>(new Lock("X"));
}

// Releases a lock a second time. A std::mutex may not be unlocked when not locked, so the
// mutex column sends the second release to the validator only; the spinlock column does it for
// real, as the kernel selftest does.
template <class Lock>
void unlock_again(Lock& lock) {
    if constexpr (std::is_same_v<Lock, fencedep::spinlock>)
        lock.unlock();
    else
        lock.map().release();
}

// Takes a lock that is about to be destroyed. Destroying a locked std::mutex is undefined, so
// the mutex column holds it in the validator only; the destructor path checked is the same.
template <class Lock>
void hold_for_destruction(Lock& lock) {
    if constexpr (std::is_same_v<Lock, fencedep::spinlock>)
        lock.lock();
    else
        lock.map().acquire();
}

// A cycle family of the selftests, pairs of lock names standing for LU2: `order` is taken
// first; then the "closed" variant takes `closing` and must report the cycle `cycle`, and the
// "open" variant takes `open`, which agrees with the order, and must report nothing.
struct cycle_family {
    std::vector<std::string_view> order;
    std::string_view closing;
    const char* cycle;
    std::string_view open;
};

template <class Lock>
void check_cycle(const cycle_family& family) {
    capture cap;
    lettered_locks<Lock> l;
    lock_unlock_pairs(l, family.order);
    SUBCASE("closed (row 6R)") {
        lock_unlock_pairs(l, {family.closing});
        if (!reports_6R<Lock>) {
            CHECK(cap.kinds() == "");
            return;
        }
        REQUIRE(cap.kinds() == "circular_dependency");
        CHECK(classes_of(cap.at(0)) == family.cycle);
    }
    SUBCASE("open") {
        lock_unlock_pairs(l, {family.open});
        CHECK(cap.kinds() == "");
    }
}

// The selftests' explicit operations (lockdep.md §5.2) on the locks of §5.4 and §5.5, by their
// names: X1 and X2 are two instances of class X, Y1 and Z1 one each of Y and Z. The operation
// decides the type: L/U a spinlock (the plain exclusive lock of the rwlock column), WL/WU and
// RL/RU an rwlock's writer and (recursive) reader, ML/MU a mutex, WSL/WSU and RSL/RSU a
// shared_mutex's writer and (non-recursive) reader.
class operations {
public:
    // Runs `ops`, such as "RL(X1); L(Y1); U(Y1); RU(X1)", in order, on this thread.
    void run(std::string_view ops) {
        while (!ops.empty()) {
            const auto open = ops.find('(');
            const auto close = ops.find(')');
            REQUIRE(open < close);
            step(trimmed(ops.substr(0, open)), ops.substr(open + 1, close - open - 1));
            const auto next = ops.find(';', close);
            ops.remove_prefix(next == std::string_view::npos ? ops.size() : next + 1);
        }
    }

private:
    template <class Lock>
    using instances = std::map<std::string, std::unique_ptr<Lock>, std::less<>>;

    static std::string_view trimmed(std::string_view op) {
        op.remove_prefix(std::min(op.size(), op.find_first_not_of(' ')));
        return op;
    }

    // The class of an instance is its letter, given as a literal, and every instance of a type
    // is built on one line: so X1 and X2 are one class.
    template <class Lock>
    static Lock& get(instances<Lock>& made, std::string_view name) {
        auto& lock = made[std::string(name)];
        if (!lock) {
            const char* letter = name.starts_with('X') ? "X" : name.starts_with('Y') ? "Y" : "Z";
            lock.reset(new Lock(letter));
        }
        return *lock;
    }

    void step(std::string_view op, std::string_view name) {
        if (op == "L") return get(spin_, name).lock();
        if (op == "U") return get(spin_, name).unlock();
        if (op == "WL") return get(rw_, name).lock();
        if (op == "WU") return get(rw_, name).unlock();
        if (op == "RL") return get(rw_, name).lock_shared();
        if (op == "RU") return get(rw_, name).unlock_shared();
        if (op == "ML") return get(mutex_, name).lock();
        if (op == "MU") return get(mutex_, name).unlock();
        if (op == "WSL") return get(sem_, name).lock();
        if (op == "WSU") return get(sem_, name).unlock();
        // std::shared_mutex may not be read again by a thread that reads it already: that read,
        // and its release, go to the validator only (what is checked is the same).
        REQUIRE_MESSAGE((op == "RSL" || op == "RSU"), "unknown operation ", op);
        auto& sem = get(sem_, name);
        int& reads = sem_reads_[std::string(name)];
        if (op == "RSL" && ++reads > 1)
            sem.map().acquire_read();
        else if (op == "RSL")
            sem.lock_shared();
        else if (reads-- > 1)
            sem.map().release();
        else
            sem.unlock_shared();
    }

    instances<fencedep::spinlock> spin_;
    instances<fencedep::rwlock> rw_;
    instances<fencedep::mutex> mutex_;
    instances<fencedep::shared_mutex> sem_;
    std::map<std::string, int> sem_reads_;
};

// A row of lockdep.md §5.4 in one column: its operations, and the report they must make ("" for
// S) with the classes it names.
struct mixing_row {
    const char* name;
    const char* ops;
    const char* verdict;
    const char* classes;
};

void check_rows(const std::vector<mixing_row>& rows) {
    for (const auto& row : rows) {
        SUBCASE(row.name) {
            capture cap;
            INFO(row.ops);
            operations{}.run(row.ops);
            CHECK(cap.kinds() == std::string(row.verdict));
            if (cap.count() == 1)
                CHECK(classes_of(cap.at(0)) == std::string(row.classes));
        }
    }
}

// A row of lockdep.md §5.5: three events on the rwlocks X1, Y1 and Z1, each taking two of them
// (and releasing them in reverse), and whether any order of the three makes a report.
struct three_lock_row {
    const char* name;
    std::array<const char*, 3> events;
    bool reports;
};

// The instance letters of an event's two locks, in the order it takes them.
std::pair<char, char> letters_of(std::string_view event) {
    const auto first = event.find('(');
    const auto second = event.find('(', first + 1);
    return {event.at(first + 1), event.at(second + 1)};
}

void check_permutations(const three_lock_row& row) {
    std::array<int, 3> order = {0, 1, 2};
    do {
        std::string name = std::string(row.name) + " _";
        for (const int event : order)
            name += static_cast<char>('1' + event);
        SUBCASE(name.c_str()) {
            capture cap;
            operations ops;
            for (const int event : order)
                ops.run(row.events[event]);
            if (row.reports) {
                // Only the last event closes the cycle: it holds one lock and acquires another,
                // and the report names them with the third lock in between.
                CHECK(cap.kinds() == "circular_dependency");
                const auto [held, acquired] = letters_of(row.events[order[2]]);
                const char middle = static_cast<char>('X' + 'Y' + 'Z' - held - acquired);
                if (cap.count() == 1)
                    CHECK(classes_of(cap.at(0)) == std::string{held, ',', ' ', middle, ',', ' ', acquired});
            } else {
                CHECK(cap.kinds() == "");
            }
        }
    } while (std::next_permutation(order.begin(), order.end()));
}

}  // namespace

TYPE_TO_STRING_AS("spin", fencedep::spinlock);
TYPE_TO_STRING_AS("mutex", fencedep::mutex);
TYPE_TO_STRING_AS("wlock", fencedep::rwlock);
TYPE_TO_STRING_AS("rlock", rlock);
TYPE_TO_STRING_AS("wsem", fencedep::shared_mutex);
TYPE_TO_STRING_AS("rsem", rsem);

TEST_SUITE("engine") {

TEST_CASE_TEMPLATE("selftest AA: two instances of one class nest", Lock, SELFTEST_COLUMNS) {
    capture cap;
    auto x1 = make_x<Lock>();
    auto x2 = make_x<Lock>();

    SUBCASE("LOCK(X1); LOCK(X2) is recursive locking (row 6R)") {
        x1->lock();
        x2->lock();
        x2->unlock();
        x1->unlock();
        if (!reports_6R<Lock>) {
            CHECK(cap.kinds() == "");
            return;
        }
        REQUIRE(cap.kinds() == "recursive_locking");
        const auto r = cap.at(0);
        REQUIRE(!r.classes.empty());
        CHECK(r.classes.front() == "X");
    }
    SUBCASE("LOCK(X1); UNLOCK(X1); LOCK(X2); UNLOCK(X2) is fine") {
        x1->lock();
        x1->unlock();
        x2->lock();
        x2->unlock();
        CHECK(cap.kinds() == "");
    }
}

TEST_CASE_TEMPLATE("selftest ABBA", Lock, SELFTEST_COLUMNS) {
    check_cycle<Lock>({.order = {"AB"}, .closing = "BA", .cycle = "B, A", .open = "AB"});
}

TEST_CASE_TEMPLATE("selftest ABBCCA", Lock, SELFTEST_COLUMNS) {
    check_cycle<Lock>({.order = {"AB", "BC"}, .closing = "CA", .cycle = "C, B, A", .open = "AC"});
}

TEST_CASE_TEMPLATE("selftest ABCABC", Lock, SELFTEST_COLUMNS) {
    check_cycle<Lock>({.order = {"AB", "CA"}, .closing = "BC", .cycle = "B, A, C", .open = "CB"});
}

TEST_CASE_TEMPLATE("selftest ABBCCDDA", Lock, SELFTEST_COLUMNS) {
    check_cycle<Lock>(
        {.order = {"AB", "BC", "CD"}, .closing = "DA", .cycle = "D, C, B, A", .open = "AD"});
}

TEST_CASE_TEMPLATE("selftest ABCDBDDA", Lock, SELFTEST_COLUMNS) {
    check_cycle<Lock>(
        {.order = {"AB", "CD", "BD"}, .closing = "DA", .cycle = "D, B, A", .open = "AD"});
}

TEST_CASE_TEMPLATE("selftest ABCDBCDA", Lock, SELFTEST_COLUMNS) {
    check_cycle<Lock>(
        {.order = {"AB", "CD", "BC"}, .closing = "DA", .cycle = "D, C, B, A", .open = "AD"});
}

TEST_CASE_TEMPLATE("selftest double unlock", Lock, SELFTEST_COLUMNS) {
    capture cap;
    lettered_locks<Lock> l;
    l.a.lock();
    l.a.unlock();
    SUBCASE("UNLOCK(A) again is a bad unlock balance") {
        unlock_again(l.a);
        REQUIRE(cap.kinds() == "bad_unlock_balance");
        CHECK(classes_of(cap.at(0)) == "A");
    }
    SUBCASE("LOCK(A); UNLOCK(A) again is fine") {
        l.a.lock();
        l.a.unlock();
        CHECK(cap.kinds() == "");
    }
}

TEST_CASE_TEMPLATE("selftest init/destroy held", Lock, SELFTEST_COLUMNS) {
    capture cap;
    auto a = std::unique_ptr<Lock>(new Lock("A"));
    SUBCASE("destroying a held lock is a held lock freed") {
        hold_for_destruction(*a);
        a.reset();
        REQUIRE(cap.kinds() == "held_lock_freed");
        CHECK(classes_of(cap.at(0)) == "A");
    }
    SUBCASE("destroying a released lock is fine") {
        a->lock();
        a->unlock();
        a.reset();
        CHECK(cap.kinds() == "");
    }
}

TEST_CASE("selftest read/write mixing, rwlock column: fencedep::rwlock, L/U a spinlock") {
    check_rows({
        {"recursive read-lock", "RL(X1); RL(X1); RU(X1); RU(X1)", "", ""},
        {"recursive read-lock #2", "RL(X1); RL(X2); RU(X2); RU(X1)", "", ""},
        {"mixed read-write-lock", "RL(X1); WL(X2); WU(X2); RU(X1)", "recursive_locking", "X, X"},
        {"mixed write-read-lock", "WL(X1); RL(X2); RU(X2); WU(X1)", "recursive_locking", "X, X"},
        {"mixed read-lock/lock-write ABBA", "RL(X1); L(Y1); U(Y1); RU(X1); L(Y1); WL(X1); WU(X1); U(Y1)",
         "circular_dependency", "Y, X"},
        {"mixed read-lock/lock-read ABBA", "RL(X1); L(Y1); U(Y1); RU(X1); L(Y1); RL(X1); RU(X1); U(Y1)", "", ""},
        {"mixed write-lock/lock-write ABBA", "WL(X1); L(Y1); U(Y1); WU(X1); L(Y1); WL(X1); WU(X1); U(Y1)",
         "circular_dependency", "Y, X"},
        {"chain cached mixed R-L/L-W ABBA",
         "RL(X1); L(Y1); U(Y1); RU(X1); L(Y1); RL(X1); RU(X1); U(Y1); L(Y1); WL(X1); WU(X1); U(Y1)",
         "circular_dependency", "Y, X"},
    });
}

TEST_CASE("selftest read/write mixing, rwsem column: fencedep::shared_mutex, ML/MU a mutex") {
    check_rows({
        {"recursive read-lock", "RSL(X1); RSL(X1); RSU(X1); RSU(X1)", "recursive_locking", "X, X"},
        {"recursive read-lock #2", "RSL(X1); RSL(X2); RSU(X2); RSU(X1)", "recursive_locking", "X, X"},
        {"mixed read-write-lock", "RSL(X1); WSL(X2); WSU(X2); RSU(X1)", "recursive_locking", "X, X"},
        {"mixed write-read-lock", "WSL(X1); RSL(X2); RSU(X2); WSU(X1)", "recursive_locking", "X, X"},
        {"mixed read-lock/lock-write ABBA", "RSL(X1); ML(Y1); MU(Y1); RSU(X1); ML(Y1); WSL(X1); WSU(X1); MU(Y1)",
         "circular_dependency", "Y, X"},
        {"mixed read-lock/lock-read ABBA", "RSL(X1); ML(Y1); MU(Y1); RSU(X1); ML(Y1); RSL(X1); RSU(X1); MU(Y1)",
         "circular_dependency", "Y, X"},
        {"mixed write-lock/lock-write ABBA", "WSL(X1); ML(Y1); MU(Y1); WSU(X1); ML(Y1); WSL(X1); WSU(X1); MU(Y1)",
         "circular_dependency", "Y, X"},
    });
}

TEST_CASE("selftest three-lock recursive-read cycles, every order of the three events") {
    const three_lock_row rows[] = {
        {"W1R2/W2R3/W3R1",
         {"WL(X1); RL(Y1); RU(Y1); WU(X1)", "WL(Y1); RL(Z1); RU(Z1); WU(Y1)", "WL(Z1); RL(X1); RU(X1); WU(Z1)"},
         true},
        {"W1W2/R2R3/W3R1",
         {"WL(X1); WL(Y1); WU(Y1); WU(X1)", "RL(Y1); RL(Z1); RU(Z1); RU(Y1)", "WL(Z1); RL(X1); RU(X1); WU(Z1)"},
         true},
        {"W1W2/R2R3/R3W1",
         {"WL(X1); WL(Y1); WU(Y1); WU(X1)", "RL(Y1); RL(Z1); RU(Z1); RU(Y1)", "RL(Z1); WL(X1); WU(X1); RU(Z1)"},
         false},
        {"W1R2/R2R3/W3W1",
         {"WL(X1); RL(Y1); RU(Y1); WU(X1)", "RL(Y1); RL(Z1); RU(Z1); RU(Y1)", "WL(Z1); WL(X1); WU(X1); WU(Z1)"},
         false},
    };
    for (const auto& row : rows)
        check_permutations(row);
}

}  // TEST_SUITE
