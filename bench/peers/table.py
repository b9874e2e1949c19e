#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# Prints bench/peers/run's results (results.tsv: row, variant, kind, value) as one Markdown table
# of CPU-time ratios to native, with the limits the run hit in notes under it.
import argparse
import csv
import re
import sys

VARIANTS = [("native", "native"), ("off", "fencedep off"), ("on", "fencedep on"),
            ("tsan", "TSan"), ("absl", "absl"), ("helgrind", "Helgrind")]
CHECKERS = {"on", "tsan", "absl", "helgrind"}

TIMED = [
    ("nested-1", "1 lock, per lock/unlock pair"),
    ("nested-8", "8 nested locks, per pair"),
    ("nested-64", "64 nested locks, per pair"),
    ("nested-100", "100 nested locks, per pair"),
    ("threads-2", "2 threads, own 8 nested locks each, per pair"),
    ("graph-1000", "first-seen edge (2 pairs), 1,000 classes already ordered"),
    ("graph-10000", "first-seen edge (2 pairs), 10,000 classes already ordered"),
]
PROBES = [
    ("abba", "2-lock inversion reported"),
    ("invert-64", "inversion of the innermost 2 of 64 nested locks reported"),
    ("invert-100", "inversion of the innermost 2 of 100 nested locks reported"),
    ("invert-graph-10000", "inversion of the first edge of a 10,000-class chain reported"),
]

# Why a peer misses or fails where it does (research/peers.md), said only when the run shows it.
ABSL_HELD = ("absl::Mutex keeps 40 held locks per thread and silently drops the rest, so no edge "
             "from a lock past the 40th is ever recorded")
WHY = {
    ("absl", "invert-64"): ABSL_HELD,
    ("absl", "invert-100"): ABSL_HELD,
    ("tsan", "invert-100"): "TSan's deadlock detector holds at most 64 locks per thread",
    ("tsan", "nested-100"): "TSan's deadlock detector holds at most 64 locks per thread",
    ("tsan", "invert-graph-10000"): "TSan's deadlock detector keeps 4096 live locks; past that it "
                                    "flushes its graph and forgets the orders it had seen",
}


def ratio(value):
    if value < 10:
        return f"{value:.2f}x"
    if value < 100:
        return f"{value:.1f}x"
    return f"{value:,.0f}x"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("results")
    for field in ("date", "machine", "load", "niceness", "compilers", "seconds"):
        parser.add_argument(f"--{field}", required=True)
    args = parser.parse_args()

    results = {}
    with open(args.results, newline="") as f:
        for line, fields in enumerate(csv.reader(f, delimiter="\t"), 1):
            if len(fields) != 4:
                sys.exit(f"{args.results}, line {line}: expected 4 tab-separated fields "
                         f"(row, variant, kind, value), found {len(fields)}")
            row, variant, kind, value = fields
            results[row, variant] = (kind, value)

    notes = []

    # One number per distinct note: a limit hit by two rows is told once.
    def note(variant, row, text):
        why = WHY.get((variant, row))
        text = re.sub(r" \((tid|pid)=\d+\)", "", text)
        text = f"{dict(VARIANTS)[variant]}: {text}" + (f" ({why})" if why else "")
        if text not in notes:
            notes.append(text)
        return f"[{notes.index(text) + 1}]"

    def failed(row, variant, value):
        return "fails " + note(variant, row, value)

    def ns(row, variant):
        kind, value = results.get((row, variant), ("", ""))
        return float(value) if kind == "ns" else None

    print("CPU time per operation as a ratio to native (std::mutex, no checker) measured in the same "
          "run; each figure the median of 3 rounds, a round the median of 5 repetitions (Helgrind: "
          "one round); native's own time in ns.")
    print()
    print("| case | " + " | ".join(title for _, title in VARIANTS) + " |")
    print("|---|" + "---|" * len(VARIANTS))
    for row, label in TIMED:
        native = ns(row, "native")
        cells = [f"{native:.1f} ns"]
        for variant, _ in VARIANTS[1:]:
            kind, value = results[row, variant]
            cells.append(ratio(float(value) / native) if kind == "ns" else failed(row, variant, value))
        print(f"| {label} | " + " | ".join(cells) + " |")
        if row == "threads-2":
            cells = []
            for variant, _ in VARIANTS:
                one, two = ns("threads-1", variant), ns("threads-2", variant)
                cells.append(ratio(two / one) if one and two else "—")
            print("| the same, 2 threads ÷ 1 thread of each variant (1.00x: nothing shared) | "
                  + " | ".join(cells) + " |")
    for row, label in PROBES:
        cells = []
        for variant, _ in VARIANTS:
            if variant not in CHECKERS:
                cells.append("—")
                continue
            kind, value = results[row, variant]
            if kind == "found":
                cells.append("yes")
            elif kind == "missed":
                cells.append("**no** " + note(variant, row, "ran to the end without a report"))
            else:
                cells.append(failed(row, variant, value))
        print(f"| {label} | " + " | ".join(cells) + " |")

    print()
    for number, text in enumerate(notes, 1):
        print(f"[{number}] {text}")
    kind, value = results.get(("invert-64-defaults", "on"), ("", ""))
    print(f"fencedep on runs with FENCEDEP_OPTIONS=max_lock_depth=128:max_classes=32768 (defaults 48 "
          f"and 8192); with the defaults, at 64 held locks it says: {value}")
    print()
    print(f"{args.date}; {args.machine}; load average {args.load}; {args.compilers}; "
          f"run took {args.seconds} s at niceness {args.niceness}")


if __name__ == "__main__":
    main()
