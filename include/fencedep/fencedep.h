// SPDX-License-Identifier: MIT
// Umbrella header: everything fencedep offers to a test binary.
#pragma once

#include <fencedep/condition_variable.h>
#include <fencedep/fence.h>
#include <fencedep/fence_array.h>
#include <fencedep/fence_chain.h>
#include <fencedep/fence_unwrap.h>
#include <fencedep/lockdep.h>
#include <fencedep/mutex.h>
#include <fencedep/report.h>
#include <fencedep/resv.h>
#include <fencedep/signalling.h>
#include <fencedep/version.h>
