#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# The split suite as a CI job runs it: each test binary with FENCEDEP=1 and a graph dump per
# process, each clean on its own; then fencedep-graph merge over both dumps must find the
# array/chain cycle (exit 66) and name, under each link, the run and dump that recorded it.
# Also: a program whose splat sets exit status 66 (abba) still writes its dump at exit, and it
# holds no cycle (the engine never records the edge that closes one).
# Usage: split_suite_test.py FENCEDEP_GRAPH TIMELINE_TEST WAIT_ANY_TEST ABBA
import os
import re
import subprocess
import sys
import tempfile

tool, timeline, wait_any, abba = (os.path.abspath(p) for p in sys.argv[1:5])
failures = []


def expect(what, got, wanted):
    if got != wanted:
        failures.append(f"{what}: got {got!r}, expected {wanted!r}")


with tempfile.TemporaryDirectory() as directory:
    runs = {}
    for program, options in ((timeline, "graph_path=timeline.%p.json"),
                             (wait_any, "graph_path=wait_any.%p.json:container_rules=off")):
        env = dict(os.environ, FENCEDEP="1", FENCEDEP_OPTIONS=options)
        run = subprocess.run([program], env=env, cwd=directory, capture_output=True, text=True, timeout=120)
        name = os.path.basename(program)
        expect(f"{name} exit status", run.returncode, 0)
        expect(f"{name} reports", run.stderr, "")
        dumps = [f for f in os.listdir(directory) if f.startswith(options.split("=")[1].split(".")[0])]
        expect(f"{name} dumps", len(dumps), 1)
        if dumps:
            runs[name] = (dumps[0], dumps[0].split(".")[1])
    for name, (dump, _) in runs.items():
        alone = subprocess.run([tool, "merge", dump], cwd=directory, capture_output=True, text=True, timeout=120)
        expect(f"merge of {name}'s dump alone: exit status", alone.returncode, 0)
    merged = subprocess.run([tool, "merge"] + sorted(d for d, _ in runs.values()), cwd=directory,
                            capture_output=True, text=True, timeout=120)
    out = merged.stdout
    expect("merge exit status", merged.returncode, 66)
    expect("merge stderr", merged.stderr, "")
    expect("titles", re.findall(r"^WARNING: (.*)$", out, re.M), ["possible circular locking dependency detected"])
    expect("cycle links", re.findall(r"^-> #\d+ \((.*)\)\{[a-z ]+\}:$", out, re.M),
           ["fence_array->lock", "fence_chain->lock"])
    # Link #1 (the array taken under the chain) comes from the timeline binary, #0 from wait-any.
    expected_runs = [f"recorded by run {name}[{pid}] (dump {dump})"
                     for name, (dump, pid) in sorted(runs.items())]
    expect("link runs", re.findall(r"^      (recorded by run .*)$", out, re.M), expected_runs)
    for function in ("publish_merged_point", "wait_for_any"):
        if not re.search(rf"^      \(anonymous namespace\)::{function}\(", out, re.M):
            failures.append(f"no link stack names {function}")
    expect("summary", out.splitlines()[-1], "fencedep-graph: 1 cycle in 2 dumps (7 classes, 8 edges)")

with tempfile.TemporaryDirectory() as directory:
    env = dict(os.environ, FENCEDEP="1", FENCEDEP_OPTIONS="graph_path=abba.json")
    run = subprocess.run([abba], env=env, cwd=directory, capture_output=True, text=True, timeout=120)
    expect("abba exit status", run.returncode, 66)
    stats = subprocess.run([tool, "stats", "abba.json"], cwd=directory, capture_output=True, text=True, timeout=120)
    expect("abba dump stats exit status", stats.returncode, 0)
    expect("abba dump classes", re.findall(r"^ lock-classes: +(\d+)$", stats.stdout, re.M), ["6"])
    expect("abba dump cycles", re.findall(r"^ cycles: +(\d+)$", stats.stdout, re.M), ["0"])

# Bad input, as the tool's user meets it: exit status 2 and one line naming the file and position.
with tempfile.TemporaryDirectory() as directory:
    with open(os.path.join(directory, "cut.json"), "w") as f:
        f.write('{"format":"fencedep-graph/1","pid":')
    for args, status, line in (
            (["merge", "cut.json"], 2, "fencedep-graph: error: cut.json: at byte 36: not valid JSON: "),
            (["merge", "missing.json"], 2,
             "fencedep-graph: error: missing.json: cannot open: No such file or directory"),
            (["dot", "cut.json", "--cycle", "0"], 2, "fencedep-graph: --cycle '0': expected a cycle number from 1"),
            (["frobnicate"], 2, "fencedep-graph: unknown subcommand 'frobnicate'; expected merge, dot or stats")):
        run = subprocess.run([tool] + args, cwd=directory, capture_output=True, text=True, timeout=120)
        expect(f"{args} exit status", run.returncode, status)
        if not run.stderr.startswith(line):
            failures.append(f"{args}: stderr {run.stderr!r} does not start with {line!r}")

if failures:
    print(*failures, sep="\n")
    print("merge output:\n" + out)
    sys.exit(1)
