// SPDX-License-Identifier: MIT
// The stack walk. libgcc's _Unwind_Backtrace finds each frame's FDE and runs its CFA program for
// every frame of every walk: about 3,000 instructions a frame, which made a new dependency's
// stack most of what recording it costs. On x86-64 this walk runs each return address's CFA
// program once, keeps the resulting rule (where the caller's stack pointer, frame pointer and
// return address are), and from then on unwinds a frame with a cache probe and two loads, as
// libunwind's per-address trace cache does, without libunwind's descriptors (README,
// "Symbolization"). Anything the rule cannot express is walked by _Unwind_Backtrace, so the result
// is always the one libgcc gives.
#include "stack/unwind.h"

#include "stack/word_cache.h"

#include <unwind.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <limits>

namespace fencedep::detail {
namespace {

struct walk {
    std::span<std::uintptr_t> frames;
    std::size_t depth = 0;
};

_Unwind_Reason_Code record_frame(_Unwind_Context* context, void* data) noexcept {
    auto& w = *static_cast<walk*>(data);
    if (w.depth == w.frames.size())
        return _URC_END_OF_STACK;
    // The outermost frame of a thread may have no return address left.
    if (const _Unwind_Ptr address = _Unwind_GetIP(context); address != 0)
        w.frames[w.depth++] = address;
    return _URC_NO_REASON;
}

// libgcc's walk. Always inlined, so that its first frame lies in the function that calls it, as
// the cached walk's does.
[[gnu::always_inline]] inline std::size_t backtrace(std::span<std::uintptr_t> frames) noexcept {
    walk w{frames};
    _Unwind_Backtrace(record_frame, &w);
    return w.depth;
}

}  // namespace

[[gnu::noinline]] std::size_t walk_stack_uncached(std::span<std::uintptr_t> frames) noexcept {
    return backtrace(frames);
}

}  // namespace fencedep::detail

#if defined(__x86_64__)

// libgcc's FDE lookup (exported since GCC 3.0; the declaration is in a header it does not install).
struct dwarf_eh_bases {
    void* tbase;
    void* dbase;
    void* func;
};
extern "C" const void* _Unwind_Find_FDE(void* pc, dwarf_eh_bases* bases);

// The registers a walk starts from, as they are at the call in the caller: its frame pointer, its
// stack pointer once the call has returned, and the return address. Written in assembly because
// no compiler builtin gives the frame pointer of a function that may not keep one.
extern "C" void fencedep_read_registers(std::uintptr_t* registers) noexcept;
asm(R"(
    .text
    .p2align 4
    .type fencedep_read_registers, @function
fencedep_read_registers:
    movq %rbp, 0(%rdi)
    leaq 8(%rsp), %rax
    movq %rax, 8(%rdi)
    movq (%rsp), %rax
    movq %rax, 16(%rdi)
    ret
    .size fencedep_read_registers, .-fencedep_read_registers
)");

namespace fencedep::detail {
namespace {

// DWARF register numbers on x86-64.
constexpr std::uint64_t reg_rbp = 6;
constexpr std::uint64_t reg_rsp = 7;
constexpr std::uint64_t reg_return_address = 16;

// How to step from a frame to its caller, as the CFA program gives it at one return address.
// Eight bytes, so that a cache slot holds it in one atomic word.
struct frame_rule {
    enum kind_t : std::uint8_t {
        step,         // the caller is found with the fields below
        outermost,    // no FDE, or the return address is undefined: the walk ends here
        unsupported,  // a signal frame, or a CFA or frame pointer the fields cannot express
    };
    enum rbp_t : std::uint8_t {
        rbp_kept,   // the caller's frame pointer is the frame's
        rbp_saved,  // at CFA + rbp_offset
        rbp_lost,   // undefined in the caller
    };
    std::int32_t cfa_offset = 0;
    std::int16_t rbp_offset = 0;
    std::int8_t return_address_offset = 0;
    std::uint8_t kind : 2 = unsupported;
    std::uint8_t cfa_from_rbp : 1 = 0;  // else from the stack pointer
    std::uint8_t rbp : 2 = rbp_kept;
};
static_assert(sizeof(frame_rule) == sizeof(std::uint64_t));

// ---- The CFA program of one FDE (DWARF 5 §6.4.2, with the .eh_frame encodings of the LSB) ----

class reader {
public:
    reader(const std::uint8_t* p, const std::uint8_t* end) : p_(p), end_(end) {}

    bool more() const { return p_ < end_ && ok_; }
    bool ok() const { return ok_; }
    const std::uint8_t* position() const { return p_; }

    template <class T>
    T fixed() {
        T value{};
        if (end_ - p_ < static_cast<std::ptrdiff_t>(sizeof(T))) {
            ok_ = false;
            return value;
        }
        std::memcpy(&value, p_, sizeof(T));
        p_ += sizeof(T);
        return value;
    }
    std::uint64_t uleb() {
        std::uint64_t value = 0;
        for (unsigned shift = 0; p_ < end_ && shift < 64; shift += 7) {
            const std::uint8_t byte = *p_++;
            value |= std::uint64_t{byte & 0x7fu} << shift;
            if ((byte & 0x80) == 0)
                return value;
        }
        ok_ = false;
        return value;
    }
    std::int64_t sleb() {
        std::uint64_t value = 0;
        for (unsigned shift = 0; p_ < end_ && shift < 64;) {
            const std::uint8_t byte = *p_++;
            value |= std::uint64_t{byte & 0x7fu} << shift;
            shift += 7;
            if ((byte & 0x80) == 0) {
                if (shift < 64 && (byte & 0x40) != 0)
                    value |= ~std::uint64_t{0} << shift;
                return static_cast<std::int64_t>(value);
            }
        }
        ok_ = false;
        return 0;
    }
    // Skips an encoded pointer (DW_EH_PE_*); its value is never needed here.
    void skip_encoded(std::uint8_t encoding) {
        if (encoding == 0xff)  // DW_EH_PE_omit
            return;
        switch (encoding & 0x0f) {
        case 0x00: skip(8); break;                   // absptr
        case 0x01: uleb(); break;                    // uleb128
        case 0x09: sleb(); break;                    // sleb128
        case 0x02: case 0x0a: skip(2); break;        // (s)data2
        case 0x03: case 0x0b: skip(4); break;        // (s)data4
        case 0x04: case 0x0c: skip(8); break;        // (s)data8
        default: ok_ = false;
        }
    }
    void skip(std::uint64_t bytes) {
        if (static_cast<std::uint64_t>(end_ - p_) < bytes)
            ok_ = false;
        else
            p_ += bytes;
    }
    void fail() { ok_ = false; }

private:
    const std::uint8_t* p_;
    const std::uint8_t* end_;
    bool ok_ = true;
};

// The rules that matter for a walk: the CFA, and the two registers it needs of the caller.
struct register_rule {
    enum how_t : std::uint8_t { same, at_offset, undefined, other } how = same;
    std::int64_t offset = 0;
};
struct cfa_row {
    bool cfa_by_expression = false;
    std::uint64_t cfa_register = reg_rsp;
    std::int64_t cfa_offset = 0;
    register_rule rbp;
    register_rule return_address;
    // A rule for the stack pointer itself (stack-switching code): the caller's is not the CFA.
    bool rsp_ruled = false;

    void set(std::uint64_t reg, register_rule rule) {
        if (reg == reg_rbp)
            rbp = rule;
        else if (reg == reg_return_address)
            return_address = rule;
        else if (reg == reg_rsp)
            rsp_ruled = rule.how != register_rule::same;
    }
};

struct cie_info {
    std::uint64_t code_alignment = 1;
    std::int64_t data_alignment = 1;
    std::uint8_t fde_encoding = 0;  // DW_EH_PE_absptr unless 'R' says otherwise
    bool augmented = false;         // 'z': FDEs carry an augmentation length
    const std::uint8_t* program = nullptr;
    const std::uint8_t* end = nullptr;
};

// The length of a CIE or FDE at `p` and where its contents start; 64-bit lengths are not produced
// for .eh_frame by any toolchain in use, so they count as unreadable.
bool entry_bounds(const std::uint8_t* p, const std::uint8_t*& contents, const std::uint8_t*& end) {
    std::uint32_t length;
    std::memcpy(&length, p, sizeof length);
    if (length == 0 || length == 0xffffffffu)
        return false;
    contents = p + sizeof length;
    end = contents + length;
    return true;
}

bool read_cie(const std::uint8_t* p, cie_info& cie) {
    const std::uint8_t* contents;
    if (!entry_bounds(p, contents, cie.end))
        return false;
    reader r(contents, cie.end);
    if (r.fixed<std::uint32_t>() != 0)  // a CIE's id in .eh_frame
        return false;
    const auto version = r.fixed<std::uint8_t>();
    if (version != 1 && version != 3)
        return false;
    const auto* augmentation = reinterpret_cast<const char*>(r.position());
    const std::size_t augmentation_length =
        strnlen(augmentation, static_cast<std::size_t>(cie.end - r.position()));
    r.skip(augmentation_length + 1);
    cie.code_alignment = r.uleb();
    cie.data_alignment = r.sleb();
    const std::uint64_t return_column = version == 1 ? r.fixed<std::uint8_t>() : r.uleb();
    if (return_column != reg_return_address)
        return false;
    if (augmentation[0] == 'z') {
        cie.augmented = true;
        const std::uint64_t length = r.uleb();
        const std::uint8_t* const data_end = r.position() + length;
        for (const char* c = augmentation + 1; *c != '\0' && r.ok(); ++c) {
            switch (*c) {
            case 'R': cie.fde_encoding = r.fixed<std::uint8_t>(); break;
            case 'P': r.skip_encoded(r.fixed<std::uint8_t>()); break;
            case 'L': r.skip(1); break;
            case 'S': return false;  // a signal frame: the next frame's address is no return address
            default: return false;   // an augmentation this reader cannot step over
            }
        }
        if (!r.ok() || r.position() > data_end)
            return false;
        r = reader(data_end, cie.end);
    } else if (augmentation[0] != '\0') {
        return false;
    }
    cie.program = r.position();
    return r.ok();
}

// Runs a CFA program into `row`, up to (not including) the instructions that apply from address
// `stop` on. `initial` is the row after the CIE's program (DW_CFA_restore returns to it).
bool run_cfa_program(reader r, const cie_info& cie, std::uintptr_t location, std::uintptr_t stop,
                     const cfa_row& initial, cfa_row& row) {
    constexpr std::size_t max_remembered = 8;
    std::array<cfa_row, max_remembered> remembered;
    std::size_t remembered_count = 0;
    const auto offset_rule = [](std::int64_t offset) {
        return register_rule{register_rule::at_offset, offset};
    };
    const auto restore = [&](std::uint64_t reg) {
        if (reg == reg_rbp)
            row.rbp = initial.rbp;
        else if (reg == reg_return_address)
            row.return_address = initial.return_address;
        else if (reg == reg_rsp)
            row.rsp_ruled = initial.rsp_ruled;
    };
    while (r.more() && location < stop) {
        const auto op = r.fixed<std::uint8_t>();
        const std::uint8_t low = op & 0x3f;
        switch (op & 0xc0) {
        case 0x40:  // DW_CFA_advance_loc
            location += low * cie.code_alignment;
            continue;
        case 0x80:  // DW_CFA_offset
            row.set(low, offset_rule(static_cast<std::int64_t>(r.uleb()) * cie.data_alignment));
            continue;
        case 0xc0:  // DW_CFA_restore
            restore(low);
            continue;
        default:
            break;
        }
        switch (op) {
        case 0x00:  // DW_CFA_nop
            break;
        case 0x02:  // DW_CFA_advance_loc1
            location += r.fixed<std::uint8_t>() * cie.code_alignment;
            break;
        case 0x03:  // DW_CFA_advance_loc2
            location += r.fixed<std::uint16_t>() * cie.code_alignment;
            break;
        case 0x04:  // DW_CFA_advance_loc4
            location += r.fixed<std::uint32_t>() * cie.code_alignment;
            break;
        case 0x05: {  // DW_CFA_offset_extended
            const std::uint64_t reg = r.uleb();
            row.set(reg, offset_rule(static_cast<std::int64_t>(r.uleb()) * cie.data_alignment));
            break;
        }
        case 0x06:  // DW_CFA_restore_extended
            restore(r.uleb());
            break;
        case 0x07:  // DW_CFA_undefined
            row.set(r.uleb(), {register_rule::undefined, 0});
            break;
        case 0x08:  // DW_CFA_same_value
            row.set(r.uleb(), {register_rule::same, 0});
            break;
        case 0x09: {  // DW_CFA_register
            const std::uint64_t reg = r.uleb();
            r.uleb();
            row.set(reg, {register_rule::other, 0});
            break;
        }
        case 0x0a:  // DW_CFA_remember_state
            if (remembered_count == max_remembered)
                return false;
            remembered[remembered_count++] = row;
            break;
        case 0x0b:  // DW_CFA_restore_state
            if (remembered_count == 0)
                return false;
            row = remembered[--remembered_count];
            break;
        case 0x0c:  // DW_CFA_def_cfa
            row.cfa_register = r.uleb();
            row.cfa_offset = static_cast<std::int64_t>(r.uleb());
            row.cfa_by_expression = false;
            break;
        case 0x0d:  // DW_CFA_def_cfa_register
            row.cfa_register = r.uleb();
            row.cfa_by_expression = false;
            break;
        case 0x0e:  // DW_CFA_def_cfa_offset (keeps how the CFA is computed, as libgcc does)
            row.cfa_offset = static_cast<std::int64_t>(r.uleb());
            break;
        case 0x0f:  // DW_CFA_def_cfa_expression
            r.skip(r.uleb());
            row.cfa_by_expression = true;
            break;
        case 0x10:    // DW_CFA_expression
        case 0x16: {  // DW_CFA_val_expression
            const std::uint64_t reg = r.uleb();
            r.skip(r.uleb());
            row.set(reg, {register_rule::other, 0});
            break;
        }
        case 0x11: {  // DW_CFA_offset_extended_sf
            const std::uint64_t reg = r.uleb();
            row.set(reg, offset_rule(r.sleb() * cie.data_alignment));
            break;
        }
        case 0x12:  // DW_CFA_def_cfa_sf
            row.cfa_register = r.uleb();
            row.cfa_offset = r.sleb() * cie.data_alignment;
            row.cfa_by_expression = false;
            break;
        case 0x13:  // DW_CFA_def_cfa_offset_sf
            row.cfa_offset = r.sleb() * cie.data_alignment;
            break;
        case 0x14: {  // DW_CFA_val_offset
            const std::uint64_t reg = r.uleb();
            r.uleb();
            row.set(reg, {register_rule::other, 0});
            break;
        }
        case 0x15: {  // DW_CFA_val_offset_sf
            const std::uint64_t reg = r.uleb();
            r.sleb();
            row.set(reg, {register_rule::other, 0});
            break;
        }
        case 0x2e:  // DW_CFA_GNU_args_size: matters to landing pads, not to a walk
            r.uleb();
            break;
        case 0x2f: {  // DW_CFA_GNU_negative_offset_extended
            const std::uint64_t reg = r.uleb();
            row.set(reg, offset_rule(-static_cast<std::int64_t>(r.uleb()) * cie.data_alignment));
            break;
        }
        default:  // DW_CFA_set_loc and anything newer
            return false;
        }
    }
    return r.ok();
}

template <class T>
bool fits(std::int64_t value) {
    return value >= std::numeric_limits<T>::min() && value <= std::numeric_limits<T>::max();
}

frame_rule unsupported_rule() { return {}; }

frame_rule outermost_rule() {
    frame_rule rule;
    rule.kind = frame_rule::outermost;
    return rule;
}

// The rule at return address `ip`, from its FDE, for the code that lies there now.
frame_rule compute_rule(std::uintptr_t ip) {
    dwarf_eh_bases bases{};
    const auto* const fde =
        static_cast<const std::uint8_t*>(_Unwind_Find_FDE(reinterpret_cast<void*>(ip - 1), &bases));
    // libgcc ends a walk at a frame without an FDE too.
    if (fde == nullptr)
        return outermost_rule();
    const std::uint8_t* contents;
    const std::uint8_t* fde_end;
    if (!entry_bounds(fde, contents, fde_end))
        return unsupported_rule();
    reader r(contents, fde_end);
    const auto cie_pointer = r.fixed<std::uint32_t>();
    cie_info cie;
    if (!read_cie(contents - cie_pointer, cie))
        return unsupported_rule();
    r.skip_encoded(cie.fde_encoding);                    // pc_begin (libgcc gave it: bases.func)
    r.skip_encoded(cie.fde_encoding & 0x0f);             // pc_range
    if (cie.augmented)
        r.skip(r.uleb());
    if (!r.ok())
        return unsupported_rule();

    cfa_row initial;
    if (!run_cfa_program(reader(cie.program, cie.end), cie, 0,
                         std::numeric_limits<std::uintptr_t>::max(), initial, initial))
        return unsupported_rule();
    cfa_row row = initial;
    if (!run_cfa_program(r, cie, reinterpret_cast<std::uintptr_t>(bases.func), ip, initial, row))
        return unsupported_rule();

    if (row.return_address.how == register_rule::undefined)
        return outermost_rule();
    frame_rule rule;
    if (row.cfa_by_expression || row.rsp_ruled || (row.cfa_register != reg_rsp && row.cfa_register != reg_rbp) ||
        row.return_address.how != register_rule::at_offset ||
        !fits<std::int32_t>(row.cfa_offset) || !fits<std::int8_t>(row.return_address.offset))
        return rule;
    switch (row.rbp.how) {
    case register_rule::same: rule.rbp = frame_rule::rbp_kept; break;
    case register_rule::undefined: rule.rbp = frame_rule::rbp_lost; break;
    case register_rule::at_offset:
        if (!fits<std::int16_t>(row.rbp.offset))
            return rule;
        rule.rbp = frame_rule::rbp_saved;
        rule.rbp_offset = static_cast<std::int16_t>(row.rbp.offset);
        break;
    case register_rule::other: return rule;
    }
    rule.kind = frame_rule::step;
    rule.cfa_from_rbp = row.cfa_register == reg_rbp;
    rule.cfa_offset = static_cast<std::int32_t>(row.cfa_offset);
    rule.return_address_offset = static_cast<std::int8_t>(row.return_address.offset);
    return rule;
}

// ---- The rule cache ----
//
// Shared by all threads without a lock. A rule is valid for the code loaded at its address, so
// the key holds the unload count it was computed under: an unload turns every older entry into a
// miss without clearing anything. 8,192 slots of 32 bytes in .bss: only the pages that a
// program's return addresses hash to are ever touched.
struct rule_key {
    std::uintptr_t ip;
    std::uint64_t unloads;
};
constinit word_cache<rule_key, frame_rule, 13> rule_cache;

frame_rule rule_for(std::uintptr_t ip, std::uint64_t unloads) noexcept {
    const rule_key key{ip, unloads};
    frame_rule rule;
    if (rule_cache.find(key, ip, rule))
        return rule;
    rule = compute_rule(ip);
    rule_cache.insert(key, ip, rule);
    return rule;
}

}  // namespace

// The stack is read only where libgcc would read it, by the same rules; sanitizers would see
// loads from other functions' frames, which is what a walk is.
[[gnu::noinline]] [[gnu::no_sanitize_address]] std::size_t walk_stack(
    std::span<std::uintptr_t> frames, unsigned long long unloads) noexcept {
    std::uintptr_t registers[3];
    fencedep_read_registers(registers);
    std::uintptr_t rbp = registers[0];
    std::uintptr_t rsp = registers[1];
    std::uintptr_t ip = registers[2];
    bool rbp_known = true;
    std::size_t depth = 0;
    while (depth < frames.size() && ip != 0) {
        frames[depth++] = ip;
        if (depth == frames.size())
            break;
        const frame_rule rule = rule_for(ip, unloads);
        if (rule.kind == frame_rule::outermost)
            break;
        if (rule.kind == frame_rule::unsupported || (rule.cfa_from_rbp && !rbp_known))
            return backtrace(frames);
        const std::uintptr_t cfa = (rule.cfa_from_rbp ? rbp : rsp) + rule.cfa_offset;
        // The caller's frame lies above this one; anything else is a stack no unwind table
        // describes, and the walk stops rather than read it.
        if (cfa <= rsp || cfa % alignof(std::uintptr_t) != 0)
            break;
        if (rule.rbp == frame_rule::rbp_saved)
            rbp = *reinterpret_cast<const std::uintptr_t*>(cfa + rule.rbp_offset);
        else if (rule.rbp == frame_rule::rbp_lost)
            rbp_known = false;
        ip = *reinterpret_cast<const std::uintptr_t*>(cfa + rule.return_address_offset);
        rsp = cfa;
    }
    return depth;
}

}  // namespace fencedep::detail

#else

namespace fencedep::detail {

std::size_t walk_stack(std::span<std::uintptr_t> frames, unsigned long long) noexcept {
    return walk_stack_uncached(frames);
}

}  // namespace fencedep::detail

#endif
