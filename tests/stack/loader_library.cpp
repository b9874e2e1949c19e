// SPDX-License-Identifier: MIT
// A library that tests/stack/loader_test.cpp dlopens: its constructor calls back into the test
// while the dynamic linker holds its lock, and it runs callbacks from a frame of its own. The
// empty asm statements after the calls keep them from being tail calls, which would take these
// frames off the stack.
extern "C" [[gnu::weak]] void stack_loader_constructor_hook();
extern "C" [[gnu::visibility("default")]] unsigned stack_loader_call(unsigned (*callback)());

[[gnu::constructor]] static void on_load() {
    if (stack_loader_constructor_hook != nullptr)
        stack_loader_constructor_hook();
    asm volatile("" ::: "memory");
}

extern "C" [[gnu::visibility("default"), gnu::noinline]] unsigned stack_loader_call(
    unsigned (*callback)()) {
    const unsigned result = callback();
    asm volatile("" ::: "memory");
    return result;
}
