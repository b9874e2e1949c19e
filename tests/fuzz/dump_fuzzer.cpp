// SPDX-License-Identifier: MIT
// libFuzzer target for the dump reader: every input is accepted or refused with dump_error.
// Built when the compiler supports -fsanitize=fuzzer (clang); run it as
//   build-clang/tests/fuzz/dump_fuzzer -runs=1000000 -seed_inputs=tests/fuzz/dump_seed.json
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "report/graph_dump.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    try {
        fencedep::detail::parse_dump(std::string_view(reinterpret_cast<const char*>(data), size), "fuzz.json");
    } catch (const fencedep::detail::dump_error&) {
        // Refused, as it should be; anything else escapes and libFuzzer reports it.
    }
    return 0;
}
