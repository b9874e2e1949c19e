// SPDX-License-Identifier: MIT
// Renders a pending report as a fencedep::report (structured fields plus the kernel-layout text).
#pragma once

#include <fencedep/report.h>

#include "report/pending.h"

namespace fencedep::detail {

// Symbolizes the report's stacks (unless the symbolize option is 0) and renders its text.
report render(const pending_report& pending);

}  // namespace fencedep::detail
