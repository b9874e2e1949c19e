#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Instructions per lock/unlock pair, counted by callgrind, which a busy machine does not disturb.

Each case runs twice, with ROUNDS and 2*ROUNDS pairs; the difference divided by ROUNDS is one
pair, free of start-up and of the first round (which takes the validator's slow path).
Usage: instructions.py PAIR_LOOP [PRELOAD_BENCH PRELOAD_LIB]
"""
import os
import re
import subprocess
import sys

ROUNDS = 100_000


def instructions(argv, env):
    run = subprocess.run(['valgrind', '--tool=callgrind', '--callgrind-out-file=/dev/null', *argv],
                         env={**os.environ, **env}, capture_output=True, text=True, check=False)
    found = re.search(r'Collected : (\d+)', run.stderr)
    if run.returncode != 0 or not found:
        sys.exit(f'instructions.py: {" ".join(argv)} failed (status {run.returncode}):\n{run.stderr[-2000:]}')
    return int(found.group(1))


def per_pair(argv_for, env, pairs_per_round=1):
    one = instructions(argv_for(ROUNDS), env)
    two = instructions(argv_for(2 * ROUNDS), env)
    return (two - one) / (ROUNDS * pairs_per_round)


def main():
    if len(sys.argv) not in (2, 4):
        sys.exit(__doc__)
    pair_loop = sys.argv[1]
    # Deep enough for depth 100; FENCEDEP itself is set by pair_loop's mode.
    env = {'FENCEDEP_OPTIONS': 'max_lock_depth=128', 'FENCEDEP': '0'}
    rows = []
    for depth in (1, 8, 100):
        raw = per_pair(lambda n: [pair_loop, 'raw', str(depth), str(n)], env)
        for mode in ('off', 'on'):
            count = per_pair(lambda n: [pair_loop, mode, str(depth), str(n)], env)
            rows.append((f'fencedep::mutex {mode}, depth {depth}', count, raw))
    if len(sys.argv) == 4:
        bench, preload = sys.argv[2], sys.argv[3]
        for depth in (1, 8):
            # preload_bench takes and releases DEPTH locks per round: DEPTH pairs.
            raw = per_pair(lambda n: [bench, str(depth), str(n)], {}, depth)
            for mode, on in (('off', '0'), ('on', '1')):
                count = per_pair(lambda n: [bench, str(depth), str(n)],
                                 {'LD_PRELOAD': preload, 'FENCEDEP': on}, depth)
                rows.append((f'pthread preload {mode}, depth {depth}', count, raw))
    print(f'{"case":<34} {"instructions":>12} {"native":>8} {"added":>8} {"ratio":>6}')
    for name, count, raw in rows:
        print(f'{name:<34} {count:>12.1f} {raw:>8.1f} {count - raw:>+8.1f} {count / raw:>5.2f}x')


main()
