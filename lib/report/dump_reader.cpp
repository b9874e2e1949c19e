// SPDX-License-Identifier: MIT
// Reads a graph dump back, checking every field: dumps come from many runs and machines, and a
// truncated or hostile file must end in one clear line, never in a crash or a wrong graph.
//
// fencedep-graph reads hundreds of dumps of tens of thousands of edges, so the text is read as a
// stream of SAX events rather than into one JSON document: the rows of "edges" become numbers,
// and the objects of "classes" and the frames of "stacks" are converted as their fields go by.
// Only what is not of that shape (and the root's other members) is built as a document, for the
// error it is. The checks and their order are those of reading the whole document first: a
// syntax error anywhere wins, then the first error in the order of read().
#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <type_traits>
#include <vector>

#include <fmt/format.h>

#include "config/escape.h"
#include "report/graph_dump.h"
#include "report/json.h"

namespace fencedep::detail {

using nlohmann::json;

namespace {

// The arrays a dump is made of, read one element at a time.
enum section : std::size_t { classes_section, stacks_section, edges_section, sections };
constexpr std::array<const char*, sections> section_names = {"classes", "stacks", "edges"};

// An element of "edges" that is an array: [from, to, held, taken, stack] or, recorded inside a
// fence operation, [from, to, held, taken, stack, context], as numbers and a string. Its first
// element of another type is kept as JSON (`odd`), for the error it is.
struct edge_row {
    std::array<std::uint64_t, 5> numbers{};
    std::string context;
    std::size_t size = 0;  // elements counted, also beyond six
    std::size_t odd_at = no_odd;
    json odd;

    static constexpr std::size_t no_odd = SIZE_MAX;
    void add_odd(json&& value) {
        if (odd_at == no_odd && size < 6) {
            odd_at = size;
            odd = std::move(value);
        }
        ++size;
    }
};

// The checks of a dump; `where` is the JSON pointer of the value being read, for the errors.
class checks {
public:
    explicit checks(const std::string& source) : source_(source) {}

protected:
    [[noreturn]] void fail(const std::string& where, const std::string& what) const {
        throw dump_error(fmt::format("{}: at {}: {}", escape(source_), where.empty() ? "/" : where, what));
    }
    json& field(json& object, const std::string& where, const char* name) const {
        const auto it = object.find(name);
        if (it == object.end())
            fail(where, fmt::format("missing field \"{}\"", name));
        return *it;
    }
    void expect_array(json& object, const char* name) const {
        const json& value = field(object, "", name);
        if (!value.is_array())
            fail(fmt::format("/{}", name), fmt::format("expected an array, found {}", value.type_name()));
    }
    void expect_object(const json& value, const std::string& where) const {
        if (!value.is_object())
            fail(where, fmt::format("expected an object, found {}", value.type_name()));
    }
    // A field `name` of an object at `where`, of the JSON type `found` (nullptr: absent): refused
    // unless it is a string, or absent and not `required`.
    void expect_string(const char* found, const std::string& where, const char* name, bool required) const {
        if (found == nullptr) {
            if (required)
                fail(where, fmt::format("missing field \"{}\"", name));
        } else if (!is_string(found)) {
            fail(where + "/" + name, fmt::format("expected a string, found {}", found));
        }
    }
    static bool is_string(const char* found) { return std::string_view(found) == "string"; }
    // The string, escaped; taken out of `object`, which is read once.
    std::string string(json& object, const std::string& where, const char* name, bool required) const {
        const auto it = object.find(name);
        expect_string(it == object.end() ? nullptr : it->type_name(), where, name, required);
        if (it == object.end())
            return {};
        std::string text = std::move(it->get_ref<std::string&>());
        escape_in_place(text);
        return text;
    }
    // An unsigned integer below `limit`; `what` says what it counts or indexes.
    std::uint64_t number(json& object, const std::string& where, const char* name, std::uint64_t limit,
                         const char* what) const {
        const json& value = field(object, where, name);
        if (!value.is_number_unsigned() || value.get<std::uint64_t>() >= limit)
            fail(where + "/" + name, fmt::format("expected {} from 0 to {}, found {}", what, limit - 1, value.dump()));
        return value.get<std::uint64_t>();
    }
    // Element `at` of edge row `i`, an unsigned integer below `limit`. (The row's pointer is
    // formatted only for an error: a dump has tens of thousands of rows.)
    std::uint32_t element(const edge_row& row, std::size_t i, std::size_t at, std::uint64_t limit,
                          const char* what) const {
        const bool odd = row.odd_at == at;
        if (odd || row.numbers[at] >= limit)
            fail(fmt::format("/edges/{}/{}", i, at), fmt::format("expected {} from 0 to {}, found {}", what, limit - 1,
                                                                 odd ? row.odd.dump() : fmt::format("{}", row.numbers[at])));
        return static_cast<std::uint32_t>(row.numbers[at]);
    }
    [[noreturn]] void fail_row(std::size_t i, const std::string& found) const {
        fail(fmt::format("/edges/{}", i),
             fmt::format("expected an array [from, to, held, taken, stack] or [from, to, held, taken, stack, context], "
                         "found {}",
                         found));
    }

    const std::string& source_;
};

// An element of "classes" that is an object, as read: the text of its fields and their JSON
// types (nullptr: absent). A later field of the same name replaces an earlier one.
struct class_fields {
    static constexpr std::array<const char*, 3> names = {"name", "key", "site"};  // "name" required
    std::array<std::string, 3> text;
    std::array<const char*, 3> found{};
    std::size_t at = names.size();  // the field being read; names.size(): one of no interest

    void read(const char* type) {
        if (at < names.size())
            found[at] = type;
    }
};

// A frame object of a stack, as read: its fields' values at their places in frame_fields, and
// which of them it has.
struct frame_read {
    std::array<json, frame_fields.size()> values;
    std::array<const json*, frame_fields.size()> found{};
    std::size_t at = frame_fields.size();  // the field being read; frame_fields.size(): another

    void read(json&& value) {
        if (at < values.size()) {
            values[at] = std::move(value);
            found[at] = &values[at];
        }
    }
};

// The SAX handler that nlohmann::json::sax_parse drives (its interface: json_sax), then read().
class reader : checks {
public:
    using checks::checks;

    bool null() { return scalar(nullptr); }
    bool boolean(bool value) { return scalar(value); }
    bool number_integer(json::number_integer_t value) { return scalar(value); }
    bool number_unsigned(json::number_unsigned_t value) {
        if (where_ != at::row || row_.size >= 5)
            return scalar(value);
        row_.numbers[row_.size++] = value;
        return true;
    }
    bool number_float(json::number_float_t value, const json::string_t&) { return scalar(value); }
    bool string(json::string_t& value) {
        if (where_ == at::klass && class_.at < class_.names.size()) {
            class_.text[class_.at] = std::move(value);
            class_.read("string");
            return true;
        }
        if (where_ != at::row || row_.size != 5)
            return scalar(std::move(value));
        row_.context = std::move(value);
        ++row_.size;
        return true;
    }
    bool binary(json::binary_t& value) { return scalar(std::move(value)); }
    bool start_object(std::size_t) { return open(true); }
    bool start_array(std::size_t) { return open(false); }
    bool key(json::string_t& name);
    bool end_object() { return close(); }
    bool end_array() { return close(); }
    // The JSON parser raises two errors: parse_error, which has the offset, and out_of_range for a
    // number beyond a double's range (1e400), whose message names the token instead.
    template <class error>
    bool parse_error(std::size_t, const std::string&, const error& e) {
        if constexpr (std::is_same_v<error, json::parse_error>)
            syntax_error_ = fmt::format("{}: at byte {}: not valid JSON: {}", escape(source_), e.byte, escape(e.what()));
        else
            syntax_error_ = fmt::format("{}: at a number out of range: {}", escape(source_), escape(e.what()));
        return false;
    }

    const std::string& syntax_error() const { return syntax_error_; }
    // Checks what was read, in the order of the fields, and returns it. Throws dump_error.
    graph_dump read();

private:
    // Where the stream is: before the document, between the members of the root object, between
    // the elements of a section, inside an edge row, a class object, a stack or a frame, or
    // building a value into value_ (which goes where it was met, from_, when it is complete).
    enum class at { top, root, section, row, klass, stack, frame, building, end };

    using checks::string;

    bool scalar(json&& value);
    bool open(bool object);
    bool close();
    void begin() {
        from_ = where_;
        where_ = at::building;
    }
    json* put(json&& value);
    void complete();
    void start_section(section s);
    void take_element();
    void end_row();
    void end_class();
    void end_stack();
    // Runs the checks of an element of `s`, which throw dump_error; keeps the section's first
    // error for read(), and says whether there was none.
    template <class checks_of>
    bool checked(section s, checks_of&& run) {
        try {
            run();
            return true;
        } catch (const dump_error& e) {
            errors_[s] = e.what();
            return false;
        }
    }
    // Adds the frame `convert` returns to the stack being read, or keeps its error, the first.
    template <class conversion>
    void add_frame(conversion&& convert) {
        if (!stack_error_.empty())
            return;
        try {
            stack_.push_back(convert());
        } catch (const json::exception& e) {
            stack_error_ = e.what();
        }
    }
    // A section's element checks the order of read() would reach it in; the first error is kept.
    void convert(std::size_t i, json& element);

    std::string syntax_error_;
    at where_ = at::top;
    at from_ = at::top;
    json root_;                 // the root object's members, but for the sections (empty arrays)
    std::string key_;           // the root member being read
    json value_;                // the value being built
    std::vector<json*> open_;  // its open arrays and objects, innermost last
    json* slot_ = nullptr;      // the member of the innermost object the next value goes to
    section section_ = sections;
    std::array<std::size_t, sections> count_{};    // elements seen of each section
    std::array<std::string, sections> errors_{};  // the first error of each section's elements
    edge_row row_;
    class_fields class_;
    // The stack being read: its frames, the error of its first faulty frame (a json::exception's
    // what()), and the fields of the frame being read (frame_fields' order).
    std::vector<frame> stack_;
    std::string stack_error_;
    frame_read frame_;
    std::vector<edge_row> rows_;
    graph_dump out_;
};

bool reader::scalar(json&& value) {
    switch (where_) {
    case at::row:
        row_.add_odd(std::move(value));
        return true;
    case at::klass:
        class_.read(value.type_name());
        return true;
    case at::frame:
        frame_.read(std::move(value));
        return true;
    case at::building:
        break;
    default:
        begin();
    }
    put(std::move(value));
    if (open_.empty())
        complete();
    return true;
}

bool reader::open(bool object) {
    if (where_ == at::top && object) {
        root_ = json::object();
        where_ = at::root;
    } else if (where_ == at::root && !object && std::ranges::find(section_names, key_) != section_names.end()) {
        start_section(static_cast<section>(std::ranges::find(section_names, key_) - section_names.begin()));
    } else if (where_ == at::section && !object && section_ == edges_section) {
        // The elements read from the stream itself rather than built: edge rows, class objects,
        // stacks and their frames.
        row_.size = 0;
        row_.odd_at = edge_row::no_odd;
        where_ = at::row;
    } else if (where_ == at::section && object && section_ == classes_section) {
        class_.found = {};
        class_.at = class_.names.size();
        where_ = at::klass;
    } else if (where_ == at::section && !object && section_ == stacks_section) {
        stack_.clear();
        stack_error_.clear();
        where_ = at::stack;
    } else if (where_ == at::stack && object) {
        frame_.found = {};
        frame_.at = frame_fields.size();
        where_ = at::frame;
    } else {
        if (where_ != at::building)
            begin();
        open_.push_back(put(object ? json::object() : json::array()));
    }
    return true;
}

bool reader::key(json::string_t& name) {
    if (where_ == at::root)
        key_ = std::move(name);
    else if (where_ == at::klass)
        class_.at = static_cast<std::size_t>(std::ranges::find(class_.names, name) - class_.names.begin());
    else if (where_ == at::frame)
        frame_.at = static_cast<std::size_t>(std::ranges::find(frame_fields, name) - frame_fields.begin());
    else
        slot_ = &(*open_.back())[std::move(name)];
    return true;
}

bool reader::close() {
    switch (where_) {
    case at::building:
        open_.pop_back();
        if (open_.empty())
            complete();
        return true;
    case at::frame:
        add_frame([&] { return frame_from_fields(frame_.found); });
        where_ = at::stack;
        return true;
    case at::row:
        end_row();
        break;
    case at::klass:
        end_class();
        break;
    case at::stack:
        end_stack();
        break;
    default:
        // A section ends, or the root object.
        where_ = where_ == at::section ? at::root : at::end;
        return true;
    }
    // An element of a section ends.
    where_ = at::section;
    return true;
}

// Adds `value` to the innermost open container, or makes it the value built.
json* reader::put(json&& value) {
    if (open_.empty()) {
        value_ = std::move(value);
        return &value_;
    }
    json& parent = *open_.back();
    if (!parent.is_array()) {
        *slot_ = std::move(value);
        return slot_;
    }
    parent.push_back(std::move(value));
    return &parent.back();
}

// value_ is complete: it goes where it was met.
void reader::complete() {
    where_ = from_;
    switch (from_) {
    case at::top:
        root_ = std::move(value_);
        where_ = at::end;
        break;
    case at::root:
        // A later member of the same name replaces an earlier one, as in a parsed document.
        root_[key_] = std::move(value_);
        break;
    case at::section:
        take_element();
        break;
    case at::row:
        row_.add_odd(std::move(value_));
        break;
    case at::klass:
        class_.read(value_.type_name());
        break;
    case at::stack:
        // Not an object: frame_from_json() refuses it.
        add_frame([&] { return frame_from_json(value_); });
        break;
    case at::frame:
        frame_.read(std::move(value_));
        break;
    default:
        break;
    }
}

void reader::start_section(section s) {
    root_[section_names[s]] = json::array();
    section_ = s;
    count_[s] = 0;
    errors_[s].clear();
    if (s == classes_section)
        out_.classes.clear();
    else if (s == stacks_section)
        out_.stacks.clear();
    else
        rows_.clear();
    where_ = at::section;
}

void reader::take_element() {
    const std::size_t i = count_[section_]++;
    if (!errors_[section_].empty())
        return;
    checked(section_, [&] { convert(i, value_); });
}

void reader::convert(std::size_t i, json& element) {
    if (section_ == classes_section) {
        // An object is read by end_class(); anything else is refused.
        expect_object(element, fmt::format("/classes/{}", i));
    } else if (section_ == stacks_section) {
        // An array is read by end_stack(); stack_from_json() refuses anything else.
        try {
            stack_from_json(element);
        } catch (const json::exception& e) {
            fail(fmt::format("/stacks/{}", i), e.what());
        }
    } else {
        // An array is an edge_row (end_row()); anything else is refused.
        fail_row(i, element.type_name());
    }
}

void reader::end_class() {
    const std::size_t i = count_[classes_section]++;
    if (!errors_[classes_section].empty())
        return;
    const auto& names = class_fields::names;
    for (std::size_t f = 0; f < names.size(); ++f) {
        const char* found = class_.found[f];
        if (found == nullptr ? f == 0 : !is_string(found)) {
            // The pointer is formatted only for an error: a dump has thousands of classes.
            checked(classes_section, [&] {
                for (std::size_t g = 0; g < names.size(); ++g)
                    expect_string(class_.found[g], fmt::format("/classes/{}", i), names[g], g == 0);
            });
            return;
        }
        if (found == nullptr)
            class_.text[f].clear();
        else
            escape_in_place(class_.text[f]);
    }
    out_.classes.push_back({std::move(class_.text[0]), std::move(class_.text[1]), std::move(class_.text[2])});
}

void reader::end_stack() {
    const std::size_t i = count_[stacks_section]++;
    if (!errors_[stacks_section].empty())
        return;
    if (!checked(stacks_section, [&] {
            if (!stack_error_.empty())
                fail(fmt::format("/stacks/{}", i), stack_error_);
        }))
        return;
    for (frame& f : stack_) {
        escape_in_place(f.function);
        escape_in_place(f.file);
        escape_in_place(f.module);
    }
    out_.stacks.push_back(std::move(stack_));
}

void reader::end_row() {
    const std::size_t i = count_[edges_section]++;
    // A row with an odd element is refused by read(), at that element or before: the rows after
    // it are not looked at.
    if (!errors_[edges_section].empty() || (!rows_.empty() && rows_.back().odd_at != edge_row::no_odd))
        return;
    if (checked(edges_section, [&] {
            if (row_.size < 5 || row_.size > 6)
                fail_row(i, fmt::format("an array of {}", row_.size));
        }))
        rows_.push_back(std::move(row_));
}

graph_dump reader::read() {
    expect_object(root_, "");
    const json& format = field(root_, "", "format");
    if (format != graph_format)
        fail("/format", fmt::format("not a fencedep graph dump: expected \"{}\", found {}", graph_format,
                                    escape(format.dump())));
    graph_dump out = std::move(out_);
    out.program = string(root_, "", "program", true);
    out.pid = static_cast<std::int64_t>(number(root_, "", "pid", std::uint64_t{1} << 62, "a process id"));
    out.time = string(root_, "", "time", true);
    out.chains = number(root_, "", "chains", std::uint64_t{1} << 62, "a count");
    for (std::size_t s = 0; s < sections; ++s) {
        expect_array(root_, section_names[s]);
        if (s == edges_section)
            break;
        if (!errors_[s].empty())
            throw dump_error(errors_[s]);
    }
    // One row per dependency kind of an edge: [from, to, held, taken, stack] or, recorded inside
    // a fence operation, [from, to, held, taken, stack, context]. Rows of one edge are adjacent.
    out.edges.reserve(rows_.size());
    for (std::size_t i = 0; i < rows_.size(); ++i) {
        edge_row& row = rows_[i];
        const std::uint32_t from = element(row, i, 0, out.classes.size(), "a class index");
        const std::uint32_t to = element(row, i, 1, out.classes.size(), "a class index");
        if (from == to)
            fail(fmt::format("/edges/{}", i), "an edge from a class to itself");
        graph_dump::dependency d;
        d.shared_held = element(row, i, 2, 2, "a held kind (0 write, 1 read)") == 1;
        d.taken = static_cast<lock_kind>(element(row, i, 3, 3, "a taken kind (0 write, 1 read, 2 recursive read)"));
        d.stack = element(row, i, 4, out.stacks.size(), "a stack index");
        if (row.size == 6) {
            if (row.odd_at == 5)
                fail(fmt::format("/edges/{}/5", i), fmt::format("expected a context string, found {}", row.odd.type_name()));
            d.context = std::move(row.context);
            escape_in_place(d.context);
        }
        if (out.edges.empty() || out.edges.back().from != from || out.edges.back().to != to)
            out.edges.push_back({from, to, {}});
        out.edges.back().dependencies.push_back(std::move(d));
    }
    if (!errors_[edges_section].empty())
        throw dump_error(errors_[edges_section]);
    return out;
}

}  // namespace

graph_dump parse_dump(std::string_view text, const std::string& source) {
    reader r(source);
    if (!json::sax_parse(text, &r))
        throw dump_error(r.syntax_error());
    return r.read();
}

graph_dump read_dump(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in)
        throw dump_error(fmt::format("{}: cannot open: {}", escape(path), std::strerror(errno)));
    // In blocks rather than through istreambuf_iterator, a byte at a time; not by the file's size,
    // which a pipe (merge <(zcat dump.json.gz)) does not have.
    std::string text;
    std::array<char, 1 << 16> block;
    while (in.read(block.data(), block.size()) || in.gcount() > 0)
        text.append(block.data(), static_cast<std::size_t>(in.gcount()));
    if (in.bad())
        throw dump_error(fmt::format("{}: cannot read: {}", escape(path), std::strerror(errno)));
    return parse_dump(text, path);
}

}  // namespace fencedep::detail
