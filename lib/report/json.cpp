// SPDX-License-Identifier: MIT
#include "report/json.h"

#include <cstdint>
#include <limits>
#include <type_traits>

#include <fmt/format.h>

namespace fencedep::detail {

nlohmann::json frame_json(const frame& f) {
    nlohmann::json j = nlohmann::json::object();
    if (f.address)
        j["address"] = f.address;
    if (!f.function.empty())
        j["function"] = f.function;
    if (f.offset)
        j["offset"] = f.offset;
    if (f.size)
        j["size"] = f.size;
    if (!f.file.empty())
        j["file"] = f.file;
    if (f.line)
        j["line"] = f.line;
    if (!f.module.empty())
        j["module"] = f.module;
    if (f.module_offset)
        j["module_offset"] = f.module_offset;
    if (f.inlined)
        j["inlined"] = true;
    return j;
}

nlohmann::json stack_json(const std::vector<frame>& stack) {
    nlohmann::json j = nlohmann::json::array();
    for (const frame& f : stack)
        j.push_back(frame_json(f));
    return j;
}

namespace {
// An integer field takes only an integer that fits it: nlohmann's get<> would cast 4e22 or -1.5
// into an unsigned field, which is undefined behaviour, not an error.
template <class T>
T checked_integer(const nlohmann::json& value, const char* name) {
    using limits = std::numeric_limits<T>;
    const bool fits =
        value.is_number_unsigned() ? value.get<std::uint64_t>() <= static_cast<std::uint64_t>(limits::max())
        : value.is_number_integer() ? limits::is_signed && value.get<std::int64_t>() >= static_cast<std::int64_t>(limits::min())
                                          && value.get<std::int64_t>() <= static_cast<std::int64_t>(limits::max())
                                    : false;
    if (!fits)
        throw nlohmann::json::type_error::create(
            302, fmt::format("\"{}\" must be an integer from {} to {}, not {}", name, limits::min(), limits::max(), value.dump()),
            &value);
    return value.get<T>();
}

// Field `at` of frame_fields, if the frame has it.
template <class T>
void read_field(const std::array<const nlohmann::json*, frame_fields.size()>& values, std::size_t at, T& out) {
    const nlohmann::json* value = values[at];
    if (value == nullptr)
        return;
    if constexpr (std::is_integral_v<T> && !std::is_same_v<T, bool>)
        out = checked_integer<T>(*value, frame_fields[at]);
    else
        out = value->get<T>();
}
}  // namespace

frame frame_from_fields(const std::array<const nlohmann::json*, frame_fields.size()>& values) {
    frame f;
    read_field(values, 0, f.address);
    read_field(values, 1, f.function);
    read_field(values, 2, f.offset);
    read_field(values, 3, f.size);
    read_field(values, 4, f.file);
    read_field(values, 5, f.line);
    read_field(values, 6, f.module);
    read_field(values, 7, f.module_offset);
    read_field(values, 8, f.inlined);
    return f;
}

frame frame_from_json(const nlohmann::json& j) {
    if (!j.is_object())
        throw nlohmann::json::type_error::create(302, std::string("a frame must be an object, not ") + j.type_name(), &j);
    std::array<const nlohmann::json*, frame_fields.size()> values{};
    for (std::size_t at = 0; at < frame_fields.size(); ++at)
        if (const auto it = j.find(frame_fields[at]); it != j.end())
            values[at] = &*it;
    return frame_from_fields(values);
}

std::vector<frame> stack_from_json(const nlohmann::json& j) {
    if (!j.is_array())
        throw nlohmann::json::type_error::create(302, std::string("a stack must be an array, not ") + j.type_name(), &j);
    std::vector<frame> stack;
    stack.reserve(j.size());
    for (const nlohmann::json& f : j)
        stack.push_back(frame_from_json(f));
    return stack;
}

nlohmann::json report_json(const report& r) {
    nlohmann::json stacks = nlohmann::json::array();
    for (const std::vector<frame>& stack : r.stacks)
        stacks.push_back(stack_json(stack));
    return {
        {"schema", report_schema},
        {"id", r.id},
        {"kind", report_kind_name(r.kind)},
        {"title", r.title},
        {"is_splat", r.is_splat},
        {"thread", r.thread},
        {"classes", r.classes},
        {"stacks", std::move(stacks)},
        {"contexts", r.contexts},
        {"location", frame_json(r.location)},
        {"text", r.text},
    };
}

std::string dump_json(const nlohmann::json& j, int indent) {
    return j.dump(indent, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace fencedep::detail
