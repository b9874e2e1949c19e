/* SPDX-License-Identifier: MIT
 * Plain C pthread programs, built without fencedep, that preload_test runs through fencedep-run.
 * Each case is chosen by its name on the command line and prints what the program itself sees
 * (return values, errno), so that the test can check that the preload changed none of it. */
#define _GNU_SOURCE /* pthread_rwlockattr_setkind_np, RTLD_DEFAULT */
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static pthread_mutex_t config_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t stats_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t held_locks[310];

static void check(int result, const char* what) {
    if (result != 0) {
        fprintf(stderr, "%s: %s\n", what, strerror(result));
        exit(1);
    }
}

static void lock_pair(pthread_mutex_t* first, pthread_mutex_t* second) {
    check(pthread_mutex_lock(first), "lock first");
    check(pthread_mutex_lock(second), "lock second");
    check(pthread_mutex_unlock(second), "unlock second");
    check(pthread_mutex_unlock(first), "unlock first");
}

/* Two locks initialized at two lines of one function: two classes, named after those lines. */
static pthread_mutex_t* new_lock_a(void) {
    pthread_mutex_t* lock = malloc(sizeof *lock);
    check(pthread_mutex_init(lock, NULL), "init a");
    return lock;
}

static pthread_mutex_t* new_lock_b(void) {
    pthread_mutex_t* lock = malloc(sizeof *lock);
    check(pthread_mutex_init(lock, NULL), "init b");
    return lock;
}

static void delete_lock(pthread_mutex_t* lock) {
    check(pthread_mutex_destroy(lock), "destroy");
    free(lock);
}

struct two_locks {
    pthread_mutex_t* a;
    pthread_mutex_t* b;
    pthread_barrier_t* barrier;
};

static void* take_b_then_a(void* argument) {
    struct two_locks* locks = argument;
    pthread_barrier_wait(locks->barrier);
    lock_pair(locks->b, locks->a);
    return NULL;
}

/* The second thread takes the locks in the other order only after the first released them. */
static int abba_threads(void) {
    pthread_barrier_t barrier;
    pthread_barrier_init(&barrier, NULL, 2);
    struct two_locks locks = {new_lock_a(), new_lock_b(), &barrier};
    pthread_t thread;
    check(pthread_create(&thread, NULL, take_b_then_a, &locks), "create");
    lock_pair(locks.a, locks.b);
    pthread_barrier_wait(&barrier);
    pthread_join(thread, NULL);
    /* The addresses the program knows its locks by, which the report must print. */
    printf("a=%p b=%p\n", (void*)locks.a, (void*)locks.b);
    delete_lock(locks.a);
    delete_lock(locks.b);
    puts("abba done");
    return 0;
}

static void* deadlock_peer(void* argument) {
    struct two_locks* locks = argument;
    check(pthread_mutex_lock(locks->b), "peer lock b");
    pthread_barrier_wait(locks->barrier);
    check(pthread_mutex_lock(locks->a), "peer lock a");
    return NULL;
}

/* A real deadlock: each thread holds one lock and waits for the other's. */
static int deadlock(void) {
    pthread_barrier_t barrier;
    pthread_barrier_init(&barrier, NULL, 2);
    struct two_locks locks = {new_lock_a(), new_lock_b(), &barrier};
    pthread_t thread;
    check(pthread_create(&thread, NULL, deadlock_peer, &locks), "create");
    check(pthread_mutex_lock(locks.a), "lock a");
    pthread_barrier_wait(&barrier);
    puts("both threads hold their first lock");
    fflush(stdout);
    check(pthread_mutex_lock(locks.b), "lock b");
    puts("not reached");
    return 0;
}

static void* hold_a_while(void* argument) {
    struct two_locks* locks = argument;
    check(pthread_mutex_lock(locks->a), "holder lock a");
    pthread_barrier_wait(locks->barrier);
    pthread_barrier_wait(locks->barrier);
    check(pthread_mutex_unlock(locks->a), "holder unlock a");
    return NULL;
}

/* A trylock in the reverse order cannot deadlock: no report, whether it succeeds or not. */
static int trylock(void) {
    pthread_barrier_t barrier;
    pthread_barrier_init(&barrier, NULL, 2);
    struct two_locks locks = {new_lock_a(), new_lock_b(), &barrier};
    lock_pair(locks.a, locks.b);

    check(pthread_mutex_lock(locks.b), "lock b");
    printf("trylock a: %d\n", pthread_mutex_trylock(locks.a));
    check(pthread_mutex_unlock(locks.a), "unlock a");
    check(pthread_mutex_unlock(locks.b), "unlock b");

    pthread_t thread;
    check(pthread_create(&thread, NULL, hold_a_while, &locks), "create");
    pthread_barrier_wait(&barrier);
    check(pthread_mutex_lock(locks.b), "lock b");
    printf("trylock a, held elsewhere: %s\n", strerror(pthread_mutex_trylock(locks.a)));
    struct timespec soon;
    clock_gettime(CLOCK_REALTIME, &soon);
    soon.tv_nsec += 20 * 1000 * 1000;
    if (soon.tv_nsec >= 1000000000) {
        soon.tv_sec += 1;
        soon.tv_nsec -= 1000000000;
    }
    /* A timed lock that times out is undone without a report; this one is in the safe order. */
    check(pthread_mutex_unlock(locks.b), "unlock b");
    printf("timedlock a, held elsewhere: %s\n", strerror(pthread_mutex_timedlock(locks.a, &soon)));
    pthread_barrier_wait(&barrier);
    pthread_join(thread, NULL);
    delete_lock(locks.a);
    delete_lock(locks.b);
    return 0;
}

static void* unlock_elsewhere(void* argument) {
    printf("unlock from another thread: %s\n", strerror(pthread_mutex_unlock(argument)));
    return NULL;
}

/* An errorcheck mutex answers EDEADLK to its owner's relock and EPERM to an unlock by a thread
 * that does not own it; fencedep reports both, and the program still gets glibc's answers. */
static int errorcheck(void) {
    pthread_mutexattr_t attributes;
    pthread_mutexattr_init(&attributes);
    pthread_mutexattr_settype(&attributes, PTHREAD_MUTEX_ERRORCHECK);
    pthread_mutex_t lock;
    check(pthread_mutex_init(&lock, &attributes), "init");
    check(pthread_mutex_lock(&lock), "lock");
    errno = 4242;
    printf("relock: %s\n", strerror(pthread_mutex_lock(&lock)));
    printf("errno: %d\n", errno);
    pthread_t thread;
    check(pthread_create(&thread, NULL, unlock_elsewhere, &lock), "create");
    pthread_join(thread, NULL);
    check(pthread_mutex_unlock(&lock), "unlock");
    printf("unlock again: %s\n", strerror(pthread_mutex_unlock(&lock)));
    check(pthread_mutex_destroy(&lock), "destroy");
    return 0;
}

/* A recursive mutex retaken by its owner, with another lock inside: nothing to report. */
static int recursive(void) {
    pthread_mutexattr_t attributes;
    pthread_mutexattr_init(&attributes);
    pthread_mutexattr_settype(&attributes, PTHREAD_MUTEX_RECURSIVE);
    pthread_mutex_t outer;
    check(pthread_mutex_init(&outer, &attributes), "init");
    pthread_mutex_t* inner = new_lock_a();
    for (int round = 0; round < 3; ++round) {
        check(pthread_mutex_lock(&outer), "lock");
        check(pthread_mutex_lock(&outer), "relock");
        check(pthread_mutex_trylock(&outer), "trylock");
        check(pthread_mutex_lock(inner), "lock inner");
        check(pthread_mutex_unlock(inner), "unlock inner");
        check(pthread_mutex_unlock(&outer), "unlock 3");
        check(pthread_mutex_unlock(&outer), "unlock 2");
        check(pthread_mutex_unlock(&outer), "unlock 1");
    }
    printf("unlock unowned: %s\n", strerror(pthread_mutex_unlock(&outer)));
    check(pthread_mutex_destroy(&outer), "destroy");
    delete_lock(inner);
    return 0;
}

static void locks_in_reverse(void) {
    lock_pair(&config_lock, &stats_lock);
    lock_pair(&stats_lock, &config_lock);
}

/* Statically initialized locks are their own classes, named by their symbols. */
static int static_locks(void) {
    locks_in_reverse();
    return 0;
}

struct queue {
    pthread_mutex_t lock;
    pthread_cond_t not_empty;
    pthread_cond_t not_full;
    int items[8];
    int count;
};

static void* produce(void* argument) {
    struct queue* q = argument;
    for (int i = 1; i <= 1000; ++i) {
        check(pthread_mutex_lock(&q->lock), "producer lock");
        while (q->count == 8)
            check(pthread_cond_wait(&q->not_full, &q->lock), "wait not full");
        q->items[q->count++] = i;
        pthread_cond_signal(&q->not_empty);
        check(pthread_mutex_unlock(&q->lock), "producer unlock");
    }
    return NULL;
}

/* A producer and a consumer over condition variables: it works, and there is nothing to report. */
static int condvar(void) {
    struct queue q = {.count = 0};
    check(pthread_mutex_init(&q.lock, NULL), "init");
    pthread_cond_init(&q.not_empty, NULL);
    pthread_cond_init(&q.not_full, NULL);
    pthread_t thread;
    check(pthread_create(&thread, NULL, produce, &q), "create");
    long sum = 0;
    for (int taken = 0; taken < 1000; ++taken) {
        check(pthread_mutex_lock(&q.lock), "consumer lock");
        while (q.count == 0) {
            struct timespec later;
            clock_gettime(CLOCK_REALTIME, &later);
            later.tv_sec += 5;
            int waited = pthread_cond_timedwait(&q.not_empty, &q.lock, &later);
            if (waited != 0 && waited != ETIMEDOUT)
                check(waited, "timedwait");
        }
        sum += q.items[--q.count];
        pthread_cond_signal(&q.not_full);
        check(pthread_mutex_unlock(&q.lock), "consumer unlock");
    }
    pthread_join(thread, NULL);
    printf("sum: %ld\n", sum);
    return 0;
}

struct wakeup {
    pthread_mutex_t* mutex;
    pthread_cond_t cond;
    int ready;
};

static void* wake(void* argument) {
    struct wakeup* w = argument;
    check(pthread_mutex_lock(w->mutex), "waker lock");
    w->ready = 1;
    pthread_cond_signal(&w->cond);
    check(pthread_mutex_unlock(w->mutex), "waker unlock");
    return NULL;
}

/* A wait retakes its mutex with the locks taken after it still held: the waiter holds b and
 * waits for a, the dependency b -> a that closes a cycle with a -> b. */
static int condvar_cycle(void) {
    struct wakeup w = {new_lock_a(), PTHREAD_COND_INITIALIZER, 0};
    pthread_mutex_t* b = new_lock_b();
    check(pthread_mutex_lock(w.mutex), "lock a");
    check(pthread_mutex_lock(b), "lock b");
    pthread_t thread;
    check(pthread_create(&thread, NULL, wake, &w), "create");
    while (!w.ready)
        check(pthread_cond_wait(&w.cond, w.mutex), "wait");
    check(pthread_mutex_unlock(b), "unlock b");
    check(pthread_mutex_unlock(w.mutex), "unlock a");
    pthread_join(thread, NULL);
    delete_lock(w.mutex);
    delete_lock(b);
    puts("woken");
    return 0;
}

static void unlock_on_cancel(void* mutex) {
    check(pthread_mutex_unlock(mutex), "unlock on cancel");
}

static void* wait_for_ever(void* argument) {
    struct wakeup* w = argument;
    check(pthread_mutex_lock(w->mutex), "waiter lock");
    pthread_cleanup_push(unlock_on_cancel, w->mutex);
    w->ready = 1;
    pthread_cond_signal(&w->cond);
    for (;;)
        pthread_cond_wait(&w->cond, w->mutex);
    pthread_cleanup_pop(1);
    return NULL;
}

/* A wait cancelled with its mutex retaken, unlocked by the cancellation handler: no report. */
static int condvar_cancel(void) {
    struct wakeup w = {new_lock_a(), PTHREAD_COND_INITIALIZER, 0};
    pthread_t thread;
    check(pthread_create(&thread, NULL, wait_for_ever, &w), "create");
    check(pthread_mutex_lock(w.mutex), "lock");
    while (!w.ready)
        check(pthread_cond_wait(&w.cond, w.mutex), "wait");
    check(pthread_mutex_unlock(w.mutex), "unlock");
    check(pthread_cancel(thread), "cancel");
    void* result = NULL;
    pthread_join(thread, &result);
    delete_lock(w.mutex);
    puts(result == PTHREAD_CANCELED ? "cancelled" : "not cancelled");
    return 0;
}

/* 4096 locks initialized and destroyed where others were before, in the order first, second,
 * while the addresses swap roles: a lock that kept a destroyed lock's identity would close a
 * cycle. On the heap (malloc returns the last freed block first) and on the stack. */
static int reuse(void) {
    for (int round = 0; round < 1024; ++round) {
        pthread_mutex_t* first = malloc(sizeof *first);
        pthread_mutex_t* second = malloc(sizeof *second);
        check(pthread_mutex_init(first, NULL), "init first");
        check(pthread_mutex_init(second, NULL), "init second");
        lock_pair(first, second);
        check(pthread_mutex_destroy(first), "destroy first");
        check(pthread_mutex_destroy(second), "destroy second");
        free(first);
        free(second);
    }
    pthread_mutex_t pair[2];
    for (int round = 0; round < 1024; ++round) {
        pthread_mutex_t* first = &pair[round & 1];
        pthread_mutex_t* second = &pair[!(round & 1)];
        check(pthread_mutex_init(first, NULL), "init first");
        check(pthread_mutex_init(second, NULL), "init second");
        lock_pair(first, second);
        check(pthread_mutex_destroy(first), "destroy first");
        check(pthread_mutex_destroy(second), "destroy second");
    }
    puts("reused");
    return 0;
}

/* 310 locks held at once, each its own class (static locks). */
static int many_held(void) {
    for (int i = 0; i < 310; ++i)
        held_locks[i] = (pthread_mutex_t)PTHREAD_MUTEX_INITIALIZER;
    for (int i = 0; i < 310; ++i)
        check(pthread_mutex_lock(&held_locks[i]), "lock");
    for (int i = 310; i > 0; --i)
        check(pthread_mutex_unlock(&held_locks[i - 1]), "unlock");
    puts("held 310");
    return 0;
}

static void* read_then_lock(void* argument) {
    struct two_locks* locks = argument;
    pthread_rwlock_t* rwlock = (pthread_rwlock_t*)locks->a;
    check(pthread_rwlock_rdlock(rwlock), "rdlock");
    check(pthread_mutex_lock(locks->b), "lock");
    check(pthread_mutex_unlock(locks->b), "unlock");
    check(pthread_rwlock_unlock(rwlock), "unlock rw");
    return NULL;
}

/* Readers in both orders with a mutex do not deadlock (glibc prefers readers): no report. A
 * writer taken inside the mutex, while readers take the mutex inside the lock, can. */
static int rwlock(const char* writer) {
    pthread_rwlock_t rw;
    check(pthread_rwlock_init(&rw, NULL), "init rw");
    struct two_locks locks = {(pthread_mutex_t*)&rw, new_lock_b(), NULL};
    pthread_t thread;
    check(pthread_create(&thread, NULL, read_then_lock, &locks), "create");
    pthread_join(thread, NULL);
    check(pthread_mutex_lock(locks.b), "lock");
    check(pthread_rwlock_tryrdlock(&rw), "tryrdlock");
    check(pthread_rwlock_unlock(&rw), "unlock rw");
    check(pthread_rwlock_rdlock(&rw), "rdlock");
    check(pthread_rwlock_unlock(&rw), "unlock rw");
    if (writer)
        check(pthread_rwlock_wrlock(&rw), "wrlock");
    else
        check(pthread_rwlock_rdlock(&rw), "rdlock");
    check(pthread_rwlock_unlock(&rw), "unlock rw");
    check(pthread_mutex_unlock(locks.b), "unlock");
    check(pthread_rwlock_destroy(&rw), "destroy");
    delete_lock(locks.b);
    puts("rwlock done");
    return 0;
}

typedef int (*rwlock_take)(pthread_rwlock_t*);

static int read_until_later(pthread_rwlock_t* lock) {
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += 60;
    return pthread_rwlock_timedrdlock(lock, &deadline);
}

static void rwlock_pair(pthread_rwlock_t* outer, rwlock_take take_outer, pthread_rwlock_t* inner,
                        rwlock_take take_inner) {
    check(take_outer(outer), "take outer");
    check(take_inner(inner), "take inner");
    check(pthread_rwlock_unlock(inner), "unlock inner");
    check(pthread_rwlock_unlock(outer), "unlock outer");
}

/* Two rwlocks of glibc kind `kind`, each taken under the other, the outer one by `take_outer`
 * and the inner one by `take_inner`. */
static int rwlock_inversion(int kind, rwlock_take take_outer, rwlock_take take_inner) {
    pthread_rwlockattr_t attributes;
    check(pthread_rwlockattr_init(&attributes), "attr init");
    check(pthread_rwlockattr_setkind_np(&attributes, kind), "setkind");
    pthread_rwlock_t first;
    pthread_rwlock_t second;
    check(pthread_rwlock_init(&first, &attributes), "init first");
    check(pthread_rwlock_init(&second, &attributes), "init second");
    rwlock_pair(&first, take_outer, &second, take_inner);
    rwlock_pair(&second, take_outer, &first, take_inner);
    check(pthread_rwlock_destroy(&first), "destroy first");
    check(pthread_rwlock_destroy(&second), "destroy second");
    check(pthread_rwlockattr_destroy(&attributes), "attr destroy");
    puts("rwlock inversion done");
    return 0;
}

/* Spinlocks are validated as mutexes are. */
static int spinlocks(void) {
    pthread_spinlock_t first;
    pthread_spinlock_t second;
    check(pthread_spin_init(&first, PTHREAD_PROCESS_PRIVATE), "init first");
    check(pthread_spin_init(&second, PTHREAD_PROCESS_PRIVATE), "init second");
    for (int round = 0; round < 2; ++round) {
        pthread_spinlock_t* outer = round ? &second : &first;
        pthread_spinlock_t* inner = round ? &first : &second;
        check(pthread_spin_lock(outer), "lock outer");
        check(pthread_spin_lock(inner), "lock inner");
        check(pthread_spin_unlock(inner), "unlock inner");
        check(pthread_spin_unlock(outer), "unlock outer");
    }
    printf("trylock held: %s\n", strerror((pthread_spin_lock(&first), pthread_spin_trylock(&first))));
    check(pthread_spin_unlock(&first), "unlock");
    return 0;
}

/* Validation switched off and then on by the program itself, as a test binary that links fencedep
 * may do (here through the engine the preload loaded, fencedep::enable(bool)): the preload's routes
 * must follow the switch. An inversion while off is not seen; one after it is. */
static int switched(void) {
    void* symbol = dlsym(RTLD_DEFAULT, "_ZN8fencedep6enableEb");
    void (*enable)(_Bool);
    memcpy(&enable, &symbol, sizeof enable); /* a function pointer from dlsym's object pointer */
    if (!symbol) {
        fprintf(stderr, "fencedep::enable not found\n");
        return 1;
    }
    pthread_mutex_t* a = new_lock_a();
    pthread_mutex_t* b = new_lock_b();
    enable(0);
    lock_pair(a, b);
    lock_pair(b, a);
    enable(1);
    pthread_mutex_t* c = new_lock_a();
    pthread_mutex_t* d = new_lock_b();
    lock_pair(c, d);
    lock_pair(d, c);
    delete_lock(a);
    delete_lock(b);
    delete_lock(c);
    delete_lock(d);
    printf("switched done\n");
    return 0;
}

/* What fencedep-run handed the program: its variables, and an exit status of the program's own
 * for fencedep-run to forward. A program of the suite's build rather than /bin/sh, which under
 * clang's sanitizers (runtime linked into instrumented programs only) cannot load the preload. */
static int environment(void) {
    const char* enabled = getenv("FENCEDEP");
    const char* options = getenv("FENCEDEP_OPTIONS");
    const char* preload = getenv("LD_PRELOAD");
    const char* suffix = "/libfencedep_preload.so";
    printf("%s %s\n", enabled ? enabled : "", options ? options : "");
    if (preload && strlen(preload) >= strlen(suffix) && strcmp(preload + strlen(preload) - strlen(suffix), suffix) == 0)
        printf("preloaded\n");
    return 7;
}

int main(int argc, char** argv) {
    const char* name = argc > 1 ? argv[1] : "";
    if (strcmp(name, "abba_threads") == 0)
        return abba_threads();
    if (strcmp(name, "deadlock") == 0)
        return deadlock();
    if (strcmp(name, "trylock") == 0)
        return trylock();
    if (strcmp(name, "errorcheck") == 0)
        return errorcheck();
    if (strcmp(name, "recursive") == 0)
        return recursive();
    if (strcmp(name, "static_locks") == 0)
        return static_locks();
    if (strcmp(name, "condvar") == 0)
        return condvar();
    if (strcmp(name, "condvar_cycle") == 0)
        return condvar_cycle();
    if (strcmp(name, "condvar_cancel") == 0)
        return condvar_cancel();
    if (strcmp(name, "reuse") == 0)
        return reuse();
    if (strcmp(name, "many_held") == 0)
        return many_held();
    if (strcmp(name, "rwlock_readers") == 0)
        return rwlock(NULL);
    if (strcmp(name, "rwlock_writer") == 0)
        return rwlock("writer");
    /* Readers in both orders of a reader-preferring rwlock (glibc's default) cannot deadlock: each
     * waits only for a writer that holds the other. A reader then a writer, in both orders, can;
     * so can a writer then a reader (here a timed one, with time to wait). So can readers in both
     * orders of a rwlock whose readers queue behind a waiting writer. */
    if (strcmp(name, "rwlock_read_inversion") == 0)
        return rwlock_inversion(PTHREAD_RWLOCK_PREFER_READER_NP, pthread_rwlock_rdlock, pthread_rwlock_rdlock);
    if (strcmp(name, "rwlock_read_write_inversion") == 0)
        return rwlock_inversion(PTHREAD_RWLOCK_PREFER_READER_NP, pthread_rwlock_rdlock, pthread_rwlock_wrlock);
    if (strcmp(name, "rwlock_write_timed_read_inversion") == 0)
        return rwlock_inversion(PTHREAD_RWLOCK_PREFER_READER_NP, pthread_rwlock_wrlock, read_until_later);
    if (strcmp(name, "rwlock_nonrecursive_read_inversion") == 0)
        return rwlock_inversion(PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP, pthread_rwlock_rdlock,
                                pthread_rwlock_rdlock);
    if (strcmp(name, "spinlocks") == 0)
        return spinlocks();
    if (strcmp(name, "environment") == 0)
        return environment();
    if (strcmp(name, "switched") == 0)
        return switched();
    fprintf(stderr, "unknown case '%s'\n", name);
    return 2;
}
