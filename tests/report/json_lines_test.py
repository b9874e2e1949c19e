#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# log_format=json, read as a consumer of JSON Lines reads it: one report per line through
# Python's json. The probe's "kinds" mode makes two ABBA cycles, a recursive locking and a fence
# container warning; the test checks their fields, frames and ids, that the ids are the same in
# another run (and when the cycle is closed at its other edge), and that log_format=text prints
# what the JSON's text fields hold.
# Usage: json_lines_test.py PROBE
import json
import os
import re
import subprocess
import sys
import unittest

PROBE = sys.argv.pop(1)


def run(*args, options="log_format=json"):
    env = dict(os.environ, FENCEDEP="1", FENCEDEP_OPTIONS=options)
    return subprocess.run([PROBE, *args], env=env, capture_output=True, text=True, timeout=60)


def reports(*args):
    result = run(*args)
    lines = result.stderr.splitlines()
    return result, [json.loads(line) for line in lines]


def functions(stack):
    return [frame.get("function", "") for frame in stack]


class JsonLines(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.result, cls.reports = reports("kinds")

    def test_one_object_per_report(self):
        self.assertEqual(self.result.returncode, 66, self.result.stderr)
        self.assertEqual(self.result.stdout, "probe: done\n")
        self.assertEqual([r["kind"] for r in self.reports],
                         ["circular_dependency", "circular_dependency", "recursive_locking",
                          "fence_container_nesting"])
        for r in self.reports:
            self.assertEqual(r["schema"], "fencedep-report/1")
            self.assertRegex(r["id"], r"^[0-9a-f]{16}$")
            self.assertRegex(r["thread"], r"^report_probe/\d+$")
            self.assertEqual(set(r), {"schema", "id", "kind", "title", "is_splat", "thread", "classes",
                                      "stacks", "contexts", "location", "text"})
        self.assertEqual([r["is_splat"] for r in self.reports], [True, True, True, False])
        self.assertEqual([r["title"] for r in self.reports],
                         ["WARNING: possible circular locking dependency detected"] * 2 +
                         ["WARNING: possible recursive locking detected",
                          "WARNING: fence container nested in a container"])

    def test_cycles(self):
        first, second = self.reports[0], self.reports[1]
        # Held lock (#1) first, the lock being acquired (#0) last, as the text prints them.
        self.assertEqual(first["classes"], ["kinds_b", "kinds_a"])
        self.assertEqual(second["classes"], ["kinds_d", "kinds_c"])
        self.assertEqual(first["contexts"], ["", ""])
        # Each link's stack starts at the user's function that took the lock.
        for r in (first, second):
            self.assertEqual(len(r["stacks"]), 2)
            for stack in r["stacks"]:
                self.assertIn("abba", functions(stack)[0], stack)
                self.assertIn("main", functions(stack)[1:], stack)
                self.assertTrue(stack[0]["file"].endswith("probe.cpp"), stack[0])
                self.assertGreater(stack[0]["line"], 0)
                self.assertIn("report_probe", stack[0]["module"])
            self.assertIn("abba", r["location"]["function"])
        self.assertNotEqual(first["id"], second["id"])
        self.assertIn("-> #1 (kinds_b){write}:", first["text"])

    def test_recursive_and_container(self):
        recursive, container = self.reports[2], self.reports[3]
        self.assertEqual(recursive["classes"], ["twice", "twice"])
        self.assertIn("lock_twice", functions(recursive["stacks"][0])[0])
        self.assertIn("lock_twice", recursive["location"]["function"])
        self.assertEqual(container["classes"], [])
        self.assertIn("nest_container", container["location"]["function"])
        self.assertIn("nest_container", functions(container["stacks"][0])[0])
        self.assertIn("was given fence_chain", container["text"])

    def test_ids_are_stable_across_runs(self):
        _, again = reports("kinds")
        self.assertEqual([r["id"] for r in again], [r["id"] for r in self.reports])

    def test_a_cycle_closed_at_its_other_edge_has_the_same_id(self):
        _, reversed_run = reports("kinds", "reversed")
        self.assertEqual(reversed_run[0]["classes"], ["kinds_a", "kinds_b"])
        self.assertEqual(reversed_run[0]["id"], self.reports[0]["id"])
        self.assertEqual([r["id"] for r in reversed_run[1:]], [r["id"] for r in self.reports[1:]])

    def test_different_cycles_get_different_ids(self):
        _, many = reports("abba", "5")
        ids = [r["id"] for r in many]
        self.assertEqual(len(ids), 5)
        self.assertEqual(len(set(ids)), 5)
        self.assertFalse(set(ids) & {r["id"] for r in self.reports})

    def test_text_is_the_default_and_the_json_holds_it(self):
        def normalized(text):
            text = re.sub(r"0x[0-9a-f]+", "0x?", text)
            text = re.sub(r"report_probe\[\d+\]", "report_probe[?]", text)
            return re.sub(r"report_probe/\d+", "report_probe/?", text)

        default = run("kinds", options="")
        text = run("kinds", options="log_format=text")
        self.assertEqual(default.returncode, 66)
        self.assertEqual(normalized(default.stderr), normalized(text.stderr))
        self.assertEqual(normalized(text.stderr), normalized("".join(r["text"] for r in self.reports)))

    def test_a_throwing_handler_is_named_in_the_report_it_threw_on(self):
        result, lines = reports("throw-std")
        self.assertEqual(result.returncode, 66, result.stderr)
        self.assertEqual([r["classes"] for r in lines], [["throw_b1", "throw_a1"], ["throw_b2", "throw_a2"]])
        for r in lines:
            self.assertEqual(r["handler_error"], "fencedep: error: the report handler threw "
                             "(FAIL: lock order\\n(from the test)); the report follows")


if __name__ == "__main__":
    unittest.main(verbosity=2)
