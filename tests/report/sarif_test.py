#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# sarif_path: the SARIF log a run leaves, validated against the SARIF 2.1.0 JSON schema and read
# as a code-scanning service reads it (rules, results, primary locations, code flows). Also: it
# is written when the report layer changes the exit status, holds the reports of every thread,
# those a report handler took and, marked with their suppression, those a suppressions file held
# back; it is written before abort_on_splat's abort, and a path it cannot be written to is named
# on stderr.
# Usage: sarif_test.py PROBE SCHEMA
import json
import os
import subprocess
import sys
import tempfile
import unittest

import jsonschema

PROBE = sys.argv.pop(1)
with open(sys.argv.pop(1), encoding="utf-8") as schema_file:
    VALIDATOR = jsonschema.Draft4Validator(json.load(schema_file))

TITLES = {
    "circular_dependency": "possible circular locking dependency detected",
    "recursive_locking": "possible recursive locking detected",
    "fence_container_nesting": "fence container nested in a container",
}


class Sarif(unittest.TestCase):
    def run_probe(self, *args, options=""):
        """Runs the probe with sarif_path=DIR/fd.%p.sarif; returns the run and the parsed log."""
        with tempfile.TemporaryDirectory() as directory:
            path = os.path.join(directory, "fd.%p.sarif")
            env = dict(os.environ, FENCEDEP="1", FENCEDEP_OPTIONS=f"sarif_path={path} {options}")
            process = subprocess.Popen([PROBE, *args], env=env, stdout=subprocess.PIPE,
                                       stderr=subprocess.PIPE, text=True)
            out, err = process.communicate(timeout=60)
            result = subprocess.CompletedProcess(process.args, process.returncode, out, err)
            written = path.replace("%p", str(process.pid))
            self.assertEqual(os.listdir(directory), [os.path.basename(written)], err)
            with open(written, encoding="utf-8") as f:
                log = json.load(f)
        errors = sorted(VALIDATOR.iter_errors(log), key=str)
        self.assertEqual([], [f"{list(e.absolute_path)}: {e.message}" for e in errors])
        return result, log

    def test_kinds(self):
        result, log = self.run_probe("kinds", options="log_format=json")
        self.assertEqual(result.returncode, 66, result.stderr)
        self.assertEqual(log["version"], "2.1.0")
        (run,) = log["runs"]
        driver = run["tool"]["driver"]
        self.assertEqual(driver["name"], "fencedep")
        rules = driver["rules"]
        for rule in rules:
            if rule["id"] in TITLES:
                self.assertEqual(rule["shortDescription"]["text"], TITLES[rule["id"]])
        results = run["results"]
        self.assertEqual([r["ruleId"] for r in results],
                         ["circular_dependency", "circular_dependency", "recursive_locking",
                          "fence_container_nesting"])
        self.assertEqual([r["level"] for r in results], ["error", "error", "error", "warning"])
        for r in results:
            self.assertEqual(rules[r["ruleIndex"]]["id"], r["ruleId"])
        # The fingerprint is the JSON Lines id of the same report.
        lines = [json.loads(line) for line in result.stderr.splitlines()]
        self.assertEqual([r["partialFingerprints"]["fencedepId/v1"] for r in results],
                         [line["id"] for line in lines])

        def primary(r):
            (location,) = r["locations"]
            physical = location["physicalLocation"]
            self.assertTrue(physical["artifactLocation"]["uri"].endswith("probe.cpp"), physical)
            self.assertGreater(physical["region"]["startLine"], 0)
            return location["logicalLocations"][0]["fullyQualifiedName"]

        self.assertIn("abba", primary(results[0]))
        self.assertIn("lock_twice", primary(results[2]))
        self.assertIn("nest_container", primary(results[3]))
        self.assertEqual(results[0]["message"]["text"],
                         "WARNING: possible circular locking dependency detected: kinds_b, kinds_a")

        # A cycle's links are its code flows, #N first; a flow runs outermost call first, so it
        # ends at the user's function that took the link's lock.
        flows = results[0]["codeFlows"]
        self.assertEqual([f["message"]["text"] for f in flows], ["-> #1 (kinds_b)", "-> #0 (kinds_a)"])
        for flow in flows:
            (thread_flow,) = flow["threadFlows"]
            steps = [step["location"]["message"]["text"] for step in thread_flow["locations"]]
            self.assertIn("abba", steps[-1])
            self.assertIn("main", steps[:-1])
        recursive_flow = results[2]["codeFlows"][0]
        self.assertEqual(recursive_flow["message"]["text"], "(twice, twice)")

    def test_reports_a_handler_took_are_in_it(self):
        result, log = self.run_probe("handler")
        # A handler's reports leave the exit status alone.
        self.assertEqual(result.returncode, 0, result.stderr)
        (r,) = log["runs"][0]["results"]
        # The handler sees the id and the location the SARIF log has.
        function = r["locations"][0]["logicalLocations"][0]["fullyQualifiedName"]
        self.assertIn("abba", function)
        self.assertEqual(result.stdout,
                         f"handled {r['partialFingerprints']['fencedepId/v1']} at {function}\nprobe: done\n")
        self.assertEqual(r["properties"]["classes"], ["handled_b", "handled_a"])

    def test_every_threads_reports_are_in_it(self):
        result, log = self.run_probe("concurrent", "4")
        self.assertEqual(result.returncode, 66)
        results = log["runs"][0]["results"]
        self.assertEqual(len(results), 4)
        tags = sorted(r["properties"]["classes"][0][:9] for r in results)
        self.assertEqual(tags, [f"<thread{t}>" for t in range(4)])
        self.assertEqual(len({r["partialFingerprints"]["fencedepId/v1"] for r in results}), 4)

    def test_written_before_abort_on_splat_aborts(self):
        result, log = self.run_probe("abba", "3", options="abort_on_splat=1")
        self.assertEqual(result.returncode, -6)
        (r,) = log["runs"][0]["results"]
        self.assertEqual(r["properties"]["classes"], ["abba_b0", "abba_a0"])

    def test_unsymbolized_frames_are_module_and_offset(self):
        result, log = self.run_probe("abba", options="symbolize=0")
        self.assertEqual(result.returncode, 66)
        (r,) = log["runs"][0]["results"]
        location = r["locations"][0]["physicalLocation"]
        self.assertTrue(location["artifactLocation"]["uri"].endswith("report_probe"), location)
        self.assertGreater(location["address"]["relativeAddress"], 0)

    def test_a_suppressed_report_stays_in_it_with_its_suppression(self):
        with tempfile.TemporaryDirectory() as directory:
            rules = os.path.join(directory, "fencedep.supp")
            with open(rules, "w", encoding="utf-8") as f:
                f.write("# the probe locks twice on purpose\nrecursive:^twice$\n")
            result, log = self.run_probe("kinds", options=f"suppressions={rules}")
        # The cycles still fail the run; the suppressed report is counted in the summary only.
        self.assertEqual(result.returncode, 66, result.stderr)
        self.assertTrue(result.stderr.endswith("\nfencedep: 1 report suppressed by 1 rule\n"), result.stderr[-300:])
        self.assertNotIn("recursive locking", result.stderr)
        results = log["runs"][0]["results"]
        self.assertEqual([r["ruleId"] for r in results],
                         ["circular_dependency", "circular_dependency", "recursive_locking",
                          "fence_container_nesting"])
        self.assertEqual(results[2]["suppressions"], [{
            "kind": "external",
            "status": "accepted",
            "justification": f"suppressed by rule recursive:^twice$ of {rules}, line 2",
            "location": {"physicalLocation": {"artifactLocation": {"uri": "file://" + rules},
                                              "region": {"startLine": 2}}},
        }])
        for r in results[:2] + results[3:]:
            self.assertNotIn("suppressions", r)

    def test_a_run_without_reports_has_an_empty_log(self):
        result, log = self.run_probe("clean")
        self.assertEqual(result.returncode, 0)
        self.assertEqual(log["runs"][0]["results"], [])

    def test_a_path_that_cannot_be_written_is_named(self):
        env = dict(os.environ, FENCEDEP="1", FENCEDEP_OPTIONS="sarif_path=/nonexistent/fd.sarif")
        result = subprocess.run([PROBE, "abba"], env=env, capture_output=True, text=True, timeout=60)
        self.assertEqual(result.returncode, 66)
        self.assertTrue(result.stderr.endswith(
            "fencedep: error: cannot write sarif_path '/nonexistent/fd.sarif': No such file or directory; "
            "no SARIF log\n"), result.stderr[-300:])


if __name__ == "__main__":
    unittest.main(verbosity=2)
