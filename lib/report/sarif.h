// SPDX-License-Identifier: MIT
// The SARIF 2.1.0 log of a run's reports, for code-scanning tools.
#pragma once

#include <span>
#include <string>

#include <fencedep/report.h>

#include "report/suppressions.h"

namespace fencedep::detail {

// A report for the SARIF log and, if a rule of the suppressions file held it back, that rule.
struct sarif_entry {
    report r;
    const suppression_rule* suppression = nullptr;  // loaded rules live until the process exits
};

// A SARIF 2.1.0 log of one run with one result per report, in the order given: the rule is the
// report's kind, the primary location its `location`, and each of its stacks a code flow. A
// suppressed report's result has a `suppressions` entry (kind "external", status "accepted")
// naming the rule and where it is, suppressions_file() and the rule's line, so that viewers hide it
// and an audit still finds it.
std::string sarif_log(std::span<const sarif_entry> entries);

}  // namespace fencedep::detail
