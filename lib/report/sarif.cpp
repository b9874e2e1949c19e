// SPDX-License-Identifier: MIT
// The SARIF rendering: what code-scanning services (and editors' SARIF viewers) read. Built from
// fencedep::report objects, as every rendering is; the frames' fields follow lib/report/json.h.
#include "report/sarif.h"

#include <array>
#include <string_view>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <fencedep/version.h>

#include "report/json.h"

namespace fencedep::detail {

namespace {

using nlohmann::json;

constexpr std::array all_kinds{
    report_kind::circular_dependency,    report_kind::recursive_locking,
    report_kind::bad_unlock_balance,     report_kind::held_lock_freed,
    report_kind::lock_held_at_thread_exit, report_kind::table_exhausted,
    report_kind::lock_depth_exceeded,    report_kind::invalid_subclass,
    report_kind::fence_container_nesting, report_kind::nest_lock_not_held,
};

// Every kind is a rule, whether or not this run reported it, so a rule's index is the same in
// every log and a viewer can list what fencedep checks.
json rules() {
    json out = json::array();
    for (const report_kind kind : all_kinds)
        out.push_back({{"id", report_kind_name(kind)}, {"shortDescription", {{"text", report_title(kind)}}}});
    return out;
}

// SARIF locations are URIs: a path's bytes outside the unreserved set are percent-encoded (a ':'
// in a relative path's first segment would read as a scheme), and an absolute path is a file URI.
std::string file_uri(std::string_view path) {
    std::string out = path.starts_with('/') ? "file://" : "";
    for (const char c : path) {
        const auto byte = static_cast<unsigned char>(c);
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
            c == '_' || c == '~' || c == '/')
            out += c;
        else
            out += fmt::format("%{:02X}", byte);
    }
    return out;
}

// What a frame is called where it has no function name: the sanitizers' "module+0xoffset".
std::string frame_name(const frame& f) {
    if (!f.function.empty())
        return f.function;
    if (!f.module.empty())
        return fmt::format("{}+{:#x}", f.module, f.module_offset);
    return fmt::format("{:#x}", f.address);
}

// A frame as a SARIF location: its source line where debug info gave one, else its module and
// offset (what addr2line needs), and its function as the logical location.
json location(const frame& f) {
    json out = json::object();
    if (!f.file.empty()) {
        out["physicalLocation"]["artifactLocation"]["uri"] = file_uri(f.file);
        if (f.line)
            out["physicalLocation"]["region"]["startLine"] = f.line;
    } else if (!f.module.empty()) {
        out["physicalLocation"]["artifactLocation"]["uri"] = file_uri(f.module);
        out["physicalLocation"]["address"]["relativeAddress"] = f.module_offset;
    }
    if (!f.function.empty())
        out["logicalLocations"] = json::array({{{"fullyQualifiedName", f.function}, {"kind", "function"}}});
    return out;
}

std::string joined(const std::vector<std::string>& names) {
    return fmt::format("{}", fmt::join(names, ", "));
}

// Stack `i` of `r` as a code flow. Where the stacks are the classes' own (a cycle's links, the
// locks a thread exited with) its message names that class, else all of the report's classes;
// then the fence context the stack was recorded under.
json code_flow(const report& r, std::size_t i) {
    const bool per_class = r.classes.size() == r.stacks.size();
    std::string message;
    if (r.kind == report_kind::circular_dependency)
        message = fmt::format("-> #{} ({})", r.stacks.size() - 1 - i, r.classes[i]);
    else if (per_class)
        message = fmt::format("({})", r.classes[i]);
    else
        message = r.classes.empty() ? r.title : fmt::format("({})", joined(r.classes));
    if (i < r.contexts.size() && !r.contexts[i].empty())
        message += ": " + r.contexts[i];
    // A thread flow lists what ran in the order it ran, outermost call first; a stack lists the
    // innermost frame first.
    json steps = json::array();
    const std::vector<frame>& stack = r.stacks[i];
    for (auto f = stack.rbegin(); f != stack.rend(); ++f) {
        json step = location(*f);
        step["message"]["text"] = frame_name(*f);
        steps.push_back({{"location", std::move(step)}});
    }
    if (steps.empty())
        steps.push_back({{"location", {{"message", {{"text", "no stack was captured"}}}}}});
    return {{"message", {{"text", message}}},
            {"threadFlows", json::array({{{"message", {{"text", message}}}, {"locations", std::move(steps)}}})}};
}

// SARIF's suppression object (§3.35): the rule is in a file beside the code, not in it.
json suppression(const suppression_rule& rule) {
    const std::string& file = suppressions_file();
    return {
        {"kind", "external"},
        {"status", "accepted"},
        {"justification", fmt::format("suppressed by rule {}:{} of {}, line {}", rule.type, rule.pattern, file, rule.line)},
        {"location",
         {{"physicalLocation", {{"artifactLocation", {{"uri", file_uri(file)}}}, {"region", {{"startLine", rule.line}}}}}}},
    };
}

json result(const report& r) {
    json out = {
        {"ruleId", report_kind_name(r.kind)},
        {"ruleIndex", static_cast<int>(r.kind)},
        {"level", r.is_splat ? "error" : "warning"},
        {"message", {{"text", r.classes.empty() ? r.title : fmt::format("{}: {}", r.title, joined(r.classes))}}},
        {"partialFingerprints", {{"fencedepId/v1", r.id}}},
        {"properties", {{"thread", r.thread}, {"classes", r.classes}, {"contexts", r.contexts}}},
    };
    json primary = location(r.location);
    if (!primary.empty())
        out["locations"] = json::array({std::move(primary)});
    json flows = json::array();
    for (std::size_t i = 0; i < r.stacks.size(); ++i)
        flows.push_back(code_flow(r, i));
    if (!flows.empty())
        out["codeFlows"] = std::move(flows);
    return out;
}

}  // namespace

std::string sarif_log(std::span<const sarif_entry> entries) {
    json results = json::array();
    for (const sarif_entry& e : entries) {
        json out = result(e.r);
        if (e.suppression)
            out["suppressions"] = json::array({suppression(*e.suppression)});
        results.push_back(std::move(out));
    }
    const json log = {
        {"$schema", "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"},
        {"version", "2.1.0"},
        {"runs", json::array({{
            {"tool", {{"driver", {{"name", "fencedep"}, {"version", FENCEDEP_VERSION}, {"rules", rules()}}}}},
            {"results", std::move(results)},
        }})},
    };
    return dump_json(log, 2) + '\n';
}

}  // namespace fencedep::detail
