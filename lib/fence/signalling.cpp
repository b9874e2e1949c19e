// SPDX-License-Identifier: MIT
// Fence signalling sections, fence waits and memory reclaim as pseudo-locks, and the start-up
// priming of the order the rules of fences allow (signalling.h).
#include <utility>

#include <fencedep/resv.h>
#include <fencedep/signalling.h>

#include "engine/engine.h"

namespace fencedep {

namespace detail {

namespace {

lock_class_key signalling_key;
lock_class_key reclaim_key;

// Never destroyed: other threads may still signal fences while the process exits.
lock_map& signalling_map() {
    static lock_map* map = new lock_map(signalling_lock_name, signalling_key);
    return *map;
}

lock_map& reclaim_map() {
    static lock_map* map = new lock_map("reclaim", reclaim_key);
    return *map;
}

// The frame that names a section begun by the user (sections do not nest: an inner begin is a
// no-op, so one per thread is enough). Constant-initialized and trivially destructible, so that
// reaching it is one load from the thread pointer, with no TLS wrapper or exit registration.
struct section_frame {
    context_frame frame;
    frame_pushed pushed;
};
[[gnu::tls_model("initial-exec")]] constinit thread_local section_frame section{{.op = fence_op::signalling},
                                                                                 frame_pushed::no};

// Records the hierarchy resv_acquire_context -> resv_lock -> reclaim -> fence_signalling
// (write), as the kernel's dma_resv_lockdep() does at boot, under a context frame that says so.
void prime() noexcept {
    static const context_frame frame{fence_op::priming, "", "", "", 0, 0};
    const context_scope scope(frame);
    resv_acquire_context ctx;
    resv_lock resv;
    resv.lock_slow(ctx);
    {
        const reclaim_scope reclaim;
        might_wait_on_fence();
    }
    resv.unlock();
}

[[gnu::constructor]] void register_primer() { set_primer(prime); }

}  // namespace

bool begin_signalling(const char* file, unsigned line) noexcept {
    lock_map& map = signalling_map();
    if (map.held_kind() == lock_kind::read)
        return true;
    if (file) {
        section.frame = context_frame{.op = fence_op::signalling, .file = file, .line = line};
        section.pushed = push_frame(section.frame);
    }
    map.try_acquire_read();
    return false;
}

void end_signalling() noexcept {
    signalling_map().release();
    pop_frame(std::exchange(section.pushed, frame_pushed::no));
}

void might_wait_on_fence() noexcept {
    lock_map& map = signalling_map();
    const bool in_section = map.held_kind() == lock_kind::read;
    if (in_section)
        map.release();
    map.acquire();
    map.release();
    if (in_section)
        map.try_acquire_read();
}

void reclaim_acquire() noexcept { reclaim_map().acquire(); }

void reclaim_release() noexcept { reclaim_map().release(); }

}  // namespace detail

}  // namespace fencedep
