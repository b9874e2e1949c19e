// SPDX-License-Identifier: MIT
// Which class a lock gets and what reports call it: wrappers, members built by one constructor,
// locks built inside the standard library, names made at run time, code sites.
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "capture.h"

using engine_test::capture;
using engine_test::contains;
using engine_test::lock_unlock_2;

namespace {

// A codebase's own wrapper, as most have, with the one line fencedep asks for: the constructor
// forwards the site where the wrapper is built.
class port_mutex {
public:
    explicit port_mutex(fencedep::source_location site = fencedep::source_location::current()) : mu_(nullptr, site) {}
    void lock() { mu_.lock(); }
    void unlock() { mu_.unlock(); }

private:
    fencedep::mutex mu_;
};

// The same wrapper without that line: every wrapper built anywhere shares the site of mu_, which
// C++ places at the wrapper's (implicit) constructor.
constexpr unsigned naive_line = __LINE__ + 1;
class naive_mutex {
public:
    void lock() { mu_.lock(); }
    void unlock() { mu_.unlock(); }

private:
    fencedep::mutex mu_;
};

// Two unnamed members: one constructor builds both, so they share its site and class.
struct two_members {
    two_members() {}
    fencedep::mutex first;
    fencedep::mutex second;
};
constexpr unsigned two_members_line = __LINE__ - 4;

// Two members named by literals in one constructor: two classes.
struct two_named_members {
    two_named_members() {}
    fencedep::mutex first{"two_named_members::first"};
    fencedep::mutex second{"two_named_members::second"};
};

}  // namespace

// Stand-ins for statically initialized locks: their addresses are their classes.
int classes_test_static_lock;
int classes_test_reused_lock;

namespace {

std::string file_line(unsigned line) { return "classes_test.cpp:" + std::to_string(line); }

}  // namespace

TEST_SUITE("engine") {

TEST_CASE("a wrapper that forwards its construction site gets one class per site of the wrapper") {
    capture cap;
    port_mutex a; const unsigned a_line = __LINE__;
    port_mutex b; const unsigned b_line = __LINE__;
    lock_unlock_2(a, b);
    lock_unlock_2(b, a);
    REQUIRE(cap.kinds() == "circular_dependency");
    const auto r = cap.at(0);
    INFO(engine_test::classes_of(r));
    REQUIRE(r.classes.size() == 2);
    CHECK(r.classes[0].starts_with(file_line(b_line) + " in "));
    CHECK(r.classes[1].starts_with(file_line(a_line) + " in "));
    CHECK(contains(r.classes[0], "DOCTEST_ANON_FUNC_"));  // the test case's function
}

TEST_CASE("a wrapper that does not forward its site gives every wrapper one class") {
    capture cap;
    naive_mutex a;
    naive_mutex b;
    lock_unlock_2(a, b);
    REQUIRE(cap.kinds() == "recursive_locking");
    // The function is the constructor: qualified by g++, plain with clang 14's builtins.
    const auto r = cap.at(0);
    INFO(engine_test::classes_of(r));
    CHECK(r.classes[0].starts_with(file_line(naive_line) + " in "));
    CHECK(r.classes[0].ends_with("naive_mutex"));
    CHECK(r.classes[1] == r.classes[0]);
}

TEST_CASE("two members built by one constructor and nested: the report says they are two instances of one site") {
    capture cap;
    two_members object;
    lock_unlock_2(object.first, object.second);
    REQUIRE(cap.kinds() == "recursive_locking");
    const auto r = cap.at(0);
    INFO(r.text);
    const std::string site = r.classes[0];
    CHECK(site.starts_with(file_line(two_members_line) + " in "));
    CHECK(site.ends_with("two_members"));
    CHECK(r.classes[1] == site);
    CHECK(contains(r.text, "the two are different instances, "));
    CHECK(contains(r.text, ", of one class: both were built at " + site + "\n"));
    CHECK(contains(r.text, "give them different string-literal names or lock_class_keys; if one is taken inside the "
                           "other by design, take the inner one with lock_nested(1)"));
}

TEST_CASE("the same instance taken twice is said to be one") {
    capture cap;
    fencedep::lock_map map{"self"};
    map.acquire();
    map.acquire();
    map.release();
    map.release();
    REQUIRE(cap.kinds() == "recursive_locking");
    CHECK(contains(cap.at(0).text, "the held lock is this very instance ("));
    CHECK(!contains(cap.at(0).text, "different instances"));
}

TEST_CASE("two instances of one keyed class: the report names the key") {
    capture cap;
    static fencedep::lock_class_key shared_key;
    fencedep::mutex a{"keyed", shared_key};
    fencedep::mutex b{"keyed", shared_key};
    lock_unlock_2(a, b);
    REQUIRE(cap.kinds() == "recursive_locking");
    CHECK(contains(cap.at(0).text, ", of one class: they share the lock_class_key of keyed\n"));
    CHECK(contains(cap.at(0).text, "give them different keys"));
}

TEST_CASE("members named by literals in one constructor are two classes") {
    capture cap;
    two_named_members object;
    lock_unlock_2(object.first, object.second);
    lock_unlock_2(object.second, object.first);
    REQUIRE(cap.kinds() == "circular_dependency");
    CHECK(cap.at(0).classes == std::vector<std::string>{"two_named_members::second", "two_named_members::first"});
}

TEST_CASE("locks built at one line with names made at run time share the line's class") {
    capture cap;
    std::vector<std::string> names;
    std::vector<std::unique_ptr<fencedep::lock_map>> conns;
    for (int i = 17; i < 20; ++i)
        names.push_back("conn-" + std::to_string(i));
    unsigned line = 0;
    for (const std::string& name : names) {
        conns.push_back(std::unique_ptr<fencedep::lock_map>(new fencedep::lock_map(name.c_str()))); line = __LINE__;
    }
    conns[0]->acquire();
    conns[1]->acquire();
    conns[1]->release();
    conns[0]->release();
    REQUIRE(cap.kinds() == "recursive_locking");
    const auto r = cap.at(0);
    INFO(engine_test::classes_of(r));
    REQUIRE(r.classes.size() == 2);
    CHECK(r.classes[0].starts_with(file_line(line) + " in "));
    CHECK(contains(r.classes[0], "DOCTEST_ANON_FUNC_"));
    CHECK(r.classes[1] == r.classes[0]);
    INFO(r.text);
    // Each instance keeps its own name beside the class's.
    CHECK(contains(r.text, "){write} \"conn-17\", at: "));
    CHECK(contains(r.text, "){write} \"conn-18\", at: "));
    CHECK(contains(r.text, "the two are different instances, "));
    CHECK(contains(r.text, " \"conn-17\" and "));

    // However many objects are built there, across resets, the class stays one and keeps its
    // name (a second class of the same name would print as "name#2").
    for (int round = 0; round < 3; ++round) {
        fencedep::reset();
        fencedep::enable(true);
        for (int i = 0; i < 50; ++i) {
            const std::string name = "conn-" + std::to_string(100 * round + i);
            fencedep::lock_map conn{name.c_str()};
            fencedep::lock_map other{"other"};
            other.acquire();
            conn.acquire();
            conn.release();
            other.release();
        }
        fencedep::lock_map late{"late"};
        conns[2]->acquire();
        late.acquire();
        late.release();
        conns[2]->release();
        late.acquire();
        conns[2]->acquire();
        conns[2]->release();
        late.release();
    }
    REQUIRE(cap.count() == 4);
    for (std::size_t i = 1; i < 4; ++i) {
        CHECK(cap.at(i).kind == fencedep::report_kind::circular_dependency);
        CHECK(cap.at(i).classes[0] == "late");
        CHECK(cap.at(i).classes[1] == r.classes[0]);
    }
}

TEST_CASE("a lock built inside the standard library takes the class of the user's line") {
    capture cap;
    auto a = std::make_unique<fencedep::mutex>(); const unsigned a_line = __LINE__;
    auto b = std::make_unique<fencedep::mutex>(); const unsigned b_line = __LINE__;
    std::vector<fencedep::mutex> c(1); const unsigned c_line = __LINE__;
    std::optional<fencedep::mutex> d;
    d.emplace(); const unsigned d_line = __LINE__;
    std::vector<std::unique_ptr<fencedep::spinlock>> e;
    e.push_back(std::make_unique<fencedep::spinlock>()); const unsigned e_line = __LINE__;
    // Nested in one order, then in the other: distinct classes give one cycle per pair and no
    // recursion report.
    a->lock();
    b->lock();
    c[0].lock();
    d->lock();
    e[0]->lock();
    e[0]->unlock();
    d->unlock();
    c[0].unlock();
    b->unlock();
    a->unlock();
    e[0]->lock();
    a->lock();
    a->unlock();
    e[0]->unlock();
    // The only path back from e's class to a's runs through all five: five classes, five lines.
    REQUIRE(cap.kinds() == "circular_dependency");
    const auto r = cap.at(0);
    INFO(r.text);
    REQUIRE(r.classes.size() == 5);
    const unsigned lines[] = {e_line, d_line, c_line, b_line, a_line};
    for (std::size_t i = 0; i < 5; ++i)
        CHECK(r.classes[i].starts_with(file_line(lines[i]) + " in "));
    CHECK(!contains(r.text, "unique_ptr.h"));
    CHECK(!contains(r.text, "stl_construct.h"));
}

TEST_CASE("each of make_unique, vector and optional gives the user's line, not the header's") {
    capture cap;
    auto a = std::make_unique<fencedep::mutex>(); const unsigned a_line = __LINE__;
    std::vector<fencedep::mutex> b(1); const unsigned b_line = __LINE__;
    std::optional<fencedep::mutex> c;
    c.emplace(); const unsigned c_line = __LINE__;
    const auto class_of = [&](fencedep::mutex& m) {
        fencedep::lock_map probe{"probe"};
        probe.acquire();
        m.lock();
        m.unlock();
        probe.release();
        m.lock();
        probe.acquire();
        probe.release();
        m.unlock();
        const auto r = cap.at(cap.count() - 1);
        return r.classes[0];
    };
    CHECK(class_of(*a).starts_with(file_line(a_line) + " in "));
    CHECK(class_of(b[0]).starts_with(file_line(b_line) + " in "));
    CHECK(class_of(*c).starts_with(file_line(c_line) + " in "));
    CHECK(cap.count() == 3);
}

TEST_CASE("a lock built inside the standard library while fencedep was off takes the class of its first taking") {
    capture cap;
    fencedep::enable(false);
    auto a = std::make_unique<fencedep::mutex>();
    auto b = std::make_unique<fencedep::mutex>();
    fencedep::enable(true);
    a->lock(); const unsigned a_line = __LINE__;
    b->lock(); const unsigned b_line = __LINE__;
    b->unlock();
    a->unlock();
    b->lock();
    a->lock();
    a->unlock();
    b->unlock();
    REQUIRE(cap.kinds() == "circular_dependency");
    CHECK(cap.at(0).classes[0].starts_with(file_line(b_line) + " in "));
    CHECK(cap.at(0).classes[1].starts_with(file_line(a_line) + " in "));
}

TEST_CASE("lock_maps made with one code_site share a class named after the user's frame there") {
    capture cap;
    const void* site = nullptr;
    const auto init_site = [&]() __attribute__((noinline)) { site = __builtin_return_address(0); };
    init_site(); const unsigned line = __LINE__;
    fencedep::lock_map a{nullptr, fencedep::code_site{site}};
    const std::string b_name = "made at run time";
    fencedep::lock_map b{b_name.c_str(), fencedep::code_site{site}};
    a.acquire();
    b.acquire();
    b.release();
    a.release();
    REQUIRE(cap.kinds() == "recursive_locking");
    const auto r = cap.at(0);
    CHECK(r.classes[0].starts_with(file_line(line) + " in "));
    CHECK(r.classes[1] == r.classes[0]);
    CHECK(contains(r.text, "\"made at run time\""));
}

TEST_CASE("lock_maps made with one data_site share a class named by the symbol there") {
    capture cap;
    fencedep::lock_map a{nullptr, fencedep::data_site{&classes_test_static_lock}};
    fencedep::lock_map b{nullptr, fencedep::data_site{&classes_test_static_lock}};
    a.acquire();
    b.acquire();
    b.release();
    a.release();
    REQUIRE(cap.kinds() == "recursive_locking");
    CHECK(cap.at(0).classes == std::vector<std::string>{"classes_test_static_lock", "classes_test_static_lock"});
}

TEST_CASE("a forgotten data_site gives the next lock at that address a class of its own") {
    capture cap;
    fencedep::lock_map other{"other"};
    const auto reversed_order = [&] {
        // The lock that lives at the address now is taken inside `other`.
        fencedep::lock_map reused{nullptr, fencedep::data_site{&classes_test_reused_lock}};
        other.acquire();
        reused.acquire();
        reused.release();
        other.release();
    };
    {
        fencedep::lock_map first{nullptr, fencedep::data_site{&classes_test_reused_lock}};
        first.acquire();
        other.acquire();
        other.release();
        first.release();
    }
    fencedep::forget_data_site(&classes_test_reused_lock);
    reversed_order();
    CHECK(cap.kinds() == "");  // a new lock at a reused address: no dependency inherited

    // Without forgetting, the address keeps its class, and the reversed order is a cycle.
    reversed_order();
    fencedep::lock_map again{nullptr, fencedep::data_site{&classes_test_reused_lock}};
    again.acquire();
    other.acquire();
    other.release();
    again.release();
    REQUIRE(cap.kinds() == "circular_dependency");
    // The new class goes by the same symbol, so it prints as its second version.
    CHECK(cap.at(0).classes == std::vector<std::string>{"classes_test_reused_lock#2", "other"});
}

}  // TEST_SUITE
