#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# Runs an adapter program (doctest_cases.cpp or gtest_cases.cpp) three to five times and checks what its
# framework says: which cases fail and with which messages, which pass, and the exit status.
#   1. every case: the splats fail their cases, the expected one passes, and none reaches stderr
#      (a warning does);
#   2. the clean case alone: the run succeeds;
#   3. the clean case, with a splat made while the program starts: the splat is on stderr and the
#      exit status is fencedep's 66, while the case still passes;
#   4. (env only) the expected splat with FENCEDEP unset: the check says fencedep is off;
#   5. (doctest only) a splat made after doctest's verdict on its case: on stderr, exit status 66.
# Usage: adapters_test.py doctest|gtest env|code PROGRAM
#   env: the program is switched on by FENCEDEP=1; code: it calls fencedep::enable(true) itself.
import os
import re
import subprocess
import sys

framework, mode, program = sys.argv[1:4]
header = "WARNING: possible circular locking dependency detected"


def unexpected(held, taken):
    """The failure message of an unclaimed ABBA splat: its first line, and lines of the splat."""
    return [f"fencedep reported a circular_dependency splat between {held} and {taken} during this test case:",
            header, f"-> #1 ({held}){{write}}:", f"-> #0 ({taken}){{write}}:"]


# (doctest name, gtest name; None where the framework has no such case, as gtest has no subcases):
# None if the case passes, else the lines each of its failure messages must contain, one list per
# message, in the order the failures were made.
cases = {
    ("abba", "Adapter.Abba"): [unexpected("b", "a")],
    ("abba on a thread", "Adapter.AbbaOnAThread"): [unexpected("b", "a")],
    ("clean", "Adapter.Clean"): None,
    ("the other order in a case of its own", "Adapter.TheOtherOrderInATestOfItsOwn"): None,
    ("expected splat", "Adapter.ExpectedSplat"): None,
    ("a warning", "Adapter.AWarning"): None,
    ("a splat then a failure that ends the case", "Adapter.ASplatThenAFailureThatEndsTheTest"):
        [unexpected("b", "a"), ["stop"]],
    ("expected splat on a thread", "Adapter.ExpectedSplatOnAThread"): None,
    ("an expectation that ends by a failure", "Adapter.AnExpectationThatEndsByAFailure"):
        [["stop"], unexpected("c", "a")],
    ("subcase paths each start afresh", None): None,
    ("a splat in the second subcase path", None): [unexpected("b", "a")],
    ("expected splat that does not happen", "Adapter.ExpectedSplatThatDoesNotHappen"):
        [["expected a circular_dependency splat between a and b; none was reported"]],
    ("expected splat between other classes", "Adapter.ExpectedSplatBetweenOtherClasses"):
        [["expected a circular_dependency splat between a and b; got a circular_dependency splat between c and a"],
         unexpected("c", "a")],
}
name = {pair: pair[0] if framework == "doctest" else pair[1] for pair in cases}
cases = {pair: wanted for pair, wanted in cases.items() if name[pair] is not None}
clean = name[("clean", "Adapter.Clean")]
failures = []


def run(only=None, static_splat=False, switched_on=True, extra=()):
    env = dict(os.environ)
    for variable in ("FENCEDEP", "FENCEDEP_OPTIONS", "ADAPTER_STATIC_SPLAT"):
        env.pop(variable, None)
    if mode == "env" and switched_on:
        env["FENCEDEP"] = "1"
    if static_splat:
        env["ADAPTER_STATIC_SPLAT"] = "1"
    if framework == "doctest":
        # --duration lists every case that ran, passed or failed.
        args = ["--no-colors=true", "--duration=true", *extra] + ([f"--test-case={only}"] if only else [])
    else:
        args = ["--gtest_color=no"] + ([f"--gtest_filter={only}"] if only else [])
    return subprocess.run([program] + args, env=env, capture_output=True, text=True, timeout=120)


def verdicts(out):
    """{case name: list of failure messages} for every case that ran; [] for a pass."""
    found = {}
    if framework == "doctest":
        for ran in re.findall(r"^[0-9.]+ s: (.*)$", out, re.M):
            found[ran] = []
        # A case with subcases may have a block per subcase path.
        for block in re.split(r"^={70,}$", out, flags=re.M):
            case = re.search(r"^TEST CASE:  (.*)$", block, re.M)
            if case:
                found.setdefault(case.group(1), []).extend(
                    re.split(r"^\S+:\d+: (?:FATAL )?ERROR: ", block, flags=re.M)[1:])
    else:
        for case, body in re.findall(r"^\[ RUN      \] (.*)$\n(.*?)^\[  (?:FAILED |     OK) \] \1", out, re.M | re.S):
            found[case] = re.split(r"^\S+:\d+: Failure\nFailed\n", body, flags=re.M)[1:]
    return found


def check(what, got, wanted):
    if got != wanted:
        failures.append(f"{what}: got {got!r}, expected {wanted!r}")


# 1. Every case.
full = run()
check("exit status of the whole run", full.returncode, 1)
check("splats on stderr", full.stderr.count(header), 0)
check("warnings on stderr", full.stderr.count("WARNING: fence container nested in a container"), 1)
found = verdicts(full.stdout)
for pair, wanted in cases.items():
    messages = found.get(name[pair])
    if messages is None:
        failures.append(f"{name[pair]}: the framework does not say it ran")
        continue
    check(f"{name[pair]}: number of failure messages", len(messages), len(wanted or []))
    for message, lines in zip(messages, wanted or []):
        for line in lines:
            if line not in message.splitlines():
                failures.append(f"{name[pair]}: no line {line!r} in its failure message:\n{message}")

# 2. The clean case alone.
alone = run(only=clean)
check("exit status of the clean case alone", alone.returncode, 0)
check("cases run alone", verdicts(alone.stdout), {clean: []})

# 3. The clean case after a splat made while the program started.
started = run(only=clean, static_splat=True)
check("exit status after a splat at start-up", started.returncode, 66)
check("splats on stderr after a splat at start-up", started.stderr.count(header), 1)
for line in ("-> #1 (c){write}:", "-> #0 (b){write}:"):
    if line not in started.stderr.splitlines():
        failures.append(f"the start-up splat on stderr has no line {line!r}")
check("cases run after a splat at start-up", verdicts(started.stdout), {clean: []})

# 4. A program that did not switch fencedep on, and expects a splat.
runs = [("whole run", full), ("clean case alone", alone), ("start-up splat", started)]
if mode == "env":
    expected = name[("expected splat", "Adapter.ExpectedSplat")]
    off = run(only=expected, switched_on=False)
    runs.append(("fencedep off", off))
    check("exit status with fencedep off", off.returncode, 1)
    check("cases run with fencedep off", [m.splitlines()[0] for m in verdicts(off.stdout).get(expected, [])],
          ["expected a circular_dependency splat between a and b; none was reported "
           "(fencedep is off: set FENCEDEP=1 or call fencedep::enable(true))"])

# 5. (doctest only) A splat made between doctest's verdict and the end of the case: shown under
#    the case, which doctest counts as passed, and written to the log, so the exit status is 66.
if framework == "doctest":
    late_case = "a splat after the verdict"
    late = run(only=late_case, extra=["--no-skip=true"])
    runs.append(("splat after the verdict", late))
    check("exit status after a splat after the verdict", late.returncode, 66)
    check("splats on stderr after a splat after the verdict", late.stderr.count(header), 1)
    check("[doctest] line after a splat after the verdict",
          "[doctest] test cases: 1 | 1 passed | 0 failed" in late.stdout, True)
    shown = verdicts(late.stdout).get(late_case, [])
    check("failures shown after a splat after the verdict", len(shown), 1)
    for line in unexpected("b", "a"):
        if shown and line not in shown[0].splitlines():
            failures.append(f"{late_case}: no line {line!r} in its failure message:\n{shown[0]}")

if failures:
    print(f"{framework} ({mode}):", *failures, sep="\n  ")
    for what, result in runs:
        print(f"--- {what}: stdout:\n{result.stdout}\n--- stderr:\n{result.stderr}")
    sys.exit(1)
