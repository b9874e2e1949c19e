// SPDX-License-Identifier: MIT
// The SARIF 2.1.0 log of a run's reports, for code-scanning tools.
#pragma once

#include <span>
#include <string>

#include <fencedep/report.h>

namespace fencedep::detail {

// A SARIF 2.1.0 log of one run with one result per report, in the order given: the rule is the
// report's kind, the primary location its `location`, and each of its stacks a code flow.
std::string sarif_log(std::span<const report> reports);

}  // namespace fencedep::detail
