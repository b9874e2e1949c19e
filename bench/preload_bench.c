/* SPDX-License-Identifier: MIT
 * A plain pthread program for preload_ratios: takes DEPTH nested mutexes in a fixed order and
 * releases them, ROUNDS times, and prints the CPU time of one lock/unlock pair in nanoseconds.
 * Built without fencedep: it is the program fencedep-run runs. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

/* Static locks: each its own class under the preload, as eight distinct locks should be. */
static pthread_mutex_t locks[8] = {
    PTHREAD_MUTEX_INITIALIZER, PTHREAD_MUTEX_INITIALIZER, PTHREAD_MUTEX_INITIALIZER, PTHREAD_MUTEX_INITIALIZER,
    PTHREAD_MUTEX_INITIALIZER, PTHREAD_MUTEX_INITIALIZER, PTHREAD_MUTEX_INITIALIZER, PTHREAD_MUTEX_INITIALIZER,
};

static void round_trip(int depth) {
    for (int i = 0; i < depth; ++i)
        pthread_mutex_lock(&locks[i]);
    for (int i = depth; i > 0; --i)
        pthread_mutex_unlock(&locks[i - 1]);
}

static double cpu_ns(void) {
    struct timespec now;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &now);
    return (double)now.tv_sec * 1e9 + (double)now.tv_nsec;
}

int main(int argc, char** argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: preload_bench DEPTH(1-8) ROUNDS\n");
        return 2;
    }
    const int depth = atoi(argv[1]);
    const long rounds = atol(argv[2]);
    if (depth < 1 || depth > 8 || rounds < 1) {
        fprintf(stderr, "preload_bench: DEPTH is 1 to 8, ROUNDS at least 1\n");
        return 2;
    }
    /* The first round meets every lock and chain for the first time: the validator's slow path,
     * which a long-running program pays once. */
    round_trip(depth);
    const double start = cpu_ns();
    for (long r = 0; r < rounds; ++r)
        round_trip(depth);
    printf("%.3f\n", (cpu_ns() - start) / ((double)rounds * depth));
    return 0;
}
