#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# Runs one example with FENCEDEP=1 and checks what it promises in its header comment: the exit
# status, the titles of the reports in order, and for the circular one the classes of its
# "-> #N" links and the function named where the new lock is taken.
# Usage: examples_test.py PROGRAM STATUS TITLES LINKS FUNCTION
#   TITLES: the reports' titles joined by '|' ("" for none)
#   LINKS:  the circular report's link classes, #N first, joined by ', ' ("" for none)
#   FUNCTION: a function name that the "trying to acquire" line's at: must contain ("" for none)
import os
import re
import subprocess
import sys

program, status, titles, links, function = sys.argv[1:6]
env = dict(os.environ, FENCEDEP="1")
env.pop("FENCEDEP_OPTIONS", None)
run = subprocess.run([program], env=env, capture_output=True, text=True, timeout=120)
err = run.stderr
failures = []


def expect(what, got, wanted):
    if got != wanted:
        failures.append(f"{what}: got {got!r}, expected {wanted!r}")


expect("exit status", run.returncode, int(status))
expect("report titles", "|".join(re.findall(r"^WARNING: (.*)$", err, re.M)), titles)
expect("cycle links", ", ".join(re.findall(r"^-> #\d+ \((.*)\)\{[a-z ]+\}:$", err, re.M)), links)
if function:
    acquire = re.search(r"is trying to acquire lock:\n.*, at: (.*)$", err, re.M)
    if not acquire or function not in acquire.group(1):
        failures.append(f"the new lock's at: does not name {function!r}")
if failures:
    print(f"{os.path.basename(program)}:", *failures, sep="\n  ")
    print("stderr:\n" + err)
    sys.exit(1)
