// SPDX-License-Identifier: MIT
// The module table: which object was loaded where, rebuilt when the dynamic linker's counters move.
#include "stack/modules.h"

#include <link.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <climits>
#include <cstddef>
#include <limits>
#include <mutex>

#include "stack/never_destroyed.h"

namespace fencedep::detail {
namespace {

struct loader_counters {
    unsigned long long adds = 0;
    unsigned long long subs = 0;
};

bool has_counters(std::size_t size) noexcept {
    return size >= offsetof(dl_phdr_info, dlpi_subs) + sizeof(dl_phdr_info::dlpi_subs);
}

int read_counters(dl_phdr_info* info, std::size_t size, void* data) noexcept {
    if (has_counters(size))
        *static_cast<loader_counters*>(data) = {info->dlpi_adds, info->dlpi_subs};
    return 1;  // the counters are the same in every entry: one is enough
}

std::string executable_path() {
    std::array<char, PATH_MAX> buffer{};
    const ssize_t length = readlink("/proc/self/exe", buffer.data(), buffer.size() - 1);
    return length > 0 ? std::string(buffer.data(), static_cast<std::size_t>(length))
                      : std::string();
}

struct build_state {
    const module_table* previous;
    module_table* table;
};

// Records are reused from the previous table when the same object is still loaded at the same
// place, so that a trace's module can be told to be still loaded by comparing pointers.
const loaded_module* record_for(const module_table* previous, loaded_module&& module) {
    if (previous != nullptr) {
        for (const loaded_module* old : previous->modules)
            if (old->base == module.base && old->low == module.low && old->high == module.high &&
                old->path == module.path)
                return old;
    }
    return new loaded_module(std::move(module));
}

int add_module(dl_phdr_info* info, std::size_t size, void* data) {
    auto& state = *static_cast<build_state*>(data);
    if (has_counters(size)) {
        state.table->adds = info->dlpi_adds;
        state.table->subs = info->dlpi_subs;
    }
    loaded_module module;
    module.base = info->dlpi_addr;
    module.low = std::numeric_limits<std::uintptr_t>::max();
    for (ElfW(Half) i = 0; i < info->dlpi_phnum; ++i) {
        const ElfW(Phdr)& segment = info->dlpi_phdr[i];
        if (segment.p_type != PT_LOAD)
            continue;
        const std::uintptr_t low = info->dlpi_addr + segment.p_vaddr;
        const std::uintptr_t high = low + segment.p_memsz;
        module.low = std::min(module.low, low);
        module.high = std::max(module.high, high);
        if ((segment.p_flags & PF_W) == 0)
            module.read_only.emplace_back(low, high);
    }
    if (module.high == 0)
        return 0;
    // The dynamic linker lists the executable first, without a name.
    module.main_program = state.table->modules.empty() && info->dlpi_name[0] == '\0';
    module.path = module.main_program ? executable_path() : std::string(info->dlpi_name);
    state.table->modules.push_back(record_for(state.previous, std::move(module)));
    return 0;
}

class module_registry {
public:
    const module_table& current() {
        loader_counters counters;
        dl_iterate_phdr(read_counters, &counters);
        const module_table* table = current_.load(std::memory_order_acquire);
        if (table != nullptr && table->adds == counters.adds && table->subs == counters.subs)
            return *table;
        const std::lock_guard lock(mutex_);
        table = current_.load(std::memory_order_relaxed);
        if (table != nullptr && table->adds == counters.adds && table->subs == counters.subs)
            return *table;
        auto* const rebuilt = new module_table;
        rebuilt->previous = table;
        build_state state{table, rebuilt};
        dl_iterate_phdr(add_module, &state);
        std::sort(rebuilt->modules.begin(), rebuilt->modules.end(),
                  [](const loaded_module* a, const loaded_module* b) { return a->low < b->low; });
        current_.store(rebuilt, std::memory_order_release);
        return *rebuilt;
    }

    std::mutex& mutex() noexcept { return mutex_; }

private:
    std::mutex mutex_;
    std::atomic<const module_table*> current_{nullptr};
};

constinit never_destroyed<module_registry> the_registry;

}  // namespace

const loaded_module* module_table::find(std::uintptr_t address) const noexcept {
    const auto after = std::upper_bound(
        modules.begin(), modules.end(), address,
        [](std::uintptr_t a, const loaded_module* module) { return a < module->low; });
    if (after == modules.begin())
        return nullptr;
    const loaded_module* const module = *(after - 1);
    return address < module->high ? module : nullptr;
}

bool module_table::holds(const loaded_module* module) const noexcept {
    return module != nullptr && find(module->low) == module;
}

namespace {
enum class image_part { none, read_only, writable };

image_part part_of_image(const void* address) {
    const auto a = reinterpret_cast<std::uintptr_t>(address);
    const loaded_module* module = current_modules().find(a);
    if (module == nullptr)
        return image_part::none;
    return std::any_of(module->read_only.begin(), module->read_only.end(),
                       [a](const auto& segment) { return a >= segment.first && a < segment.second; })
               ? image_part::read_only
               : image_part::writable;
}
}  // namespace

bool in_read_only_image(const void* address) {
    return part_of_image(address) == image_part::read_only;
}

bool in_writable_image(const void* address) {
    return part_of_image(address) == image_part::writable;
}

bool in_loaded_image(const void* address) {
    return part_of_image(address) != image_part::none;
}

const module_table& current_modules() {
    return the_registry.value.current();
}

void hold_module_lock(bool held) noexcept {
    if (held)
        the_registry.value.mutex().lock();
    else
        the_registry.value.mutex().unlock();
}

}  // namespace fencedep::detail
