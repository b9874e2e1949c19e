// SPDX-License-Identifier: MIT
// The JSON form of the report layer's data, shared by every JSON rendering (the log's JSON Lines,
// SARIF, graph dumps) and by the readers of what they wrote (fencedep-graph).
#pragma once

#include <array>

#include <nlohmann/json.hpp>

#include <fencedep/report.h>

namespace fencedep::detail {

// One frame: {"function", "file", "line", "module", "module_offset", "offset", "size",
// "address", "inlined"}. Fields that are unknown (empty or zero) are left out, so a reader must
// treat a missing field as unknown.
nlohmann::json frame_json(const frame& f);
nlohmann::json stack_json(const std::vector<frame>& stack);

// Reads what frame_json wrote. A field of the wrong type throws nlohmann::json::type_error, whose
// what() names the type found; an object that is not one throws it too. Unknown fields are
// ignored, so that a newer writer's additions do not break an older reader.
frame frame_from_json(const nlohmann::json& j);
std::vector<frame> stack_from_json(const nlohmann::json& j);

// The same conversion from a frame's fields, each the value of the name at its place in
// frame_fields or nullptr if the frame has none: for a reader that has the fields as they stream
// by rather than the object (the graph dump reader). frame_from_json() calls it.
inline constexpr std::array<const char*, 9> frame_fields = {
    "address", "function", "offset", "size", "file", "line", "module", "module_offset", "inlined"};
frame frame_from_fields(const std::array<const nlohmann::json*, frame_fields.size()>& values);

// What every object of the JSON Lines log says it is; a reader checks it before anything else.
// The number goes up when a field changes meaning or goes away, not when one is added.
inline constexpr const char* report_schema = "fencedep-report/1";

// One report, every field of it (the README's "Machine-readable reports" lists them).
nlohmann::json report_json(const report& r);

// `j` as text. Names and paths are the program's bytes and need not be UTF-8, which JSON text
// must be: an invalid sequence becomes U+FFFD rather than an exception in the middle of a report.
std::string dump_json(const nlohmann::json& j, int indent = -1);

}  // namespace fencedep::detail
