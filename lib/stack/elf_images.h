// SPDX-License-Identifier: MIT
// The ELF and DWARF files the symbolizer reads, opened so that no descriptor stays open.
#pragma once

#include <elfutils/libdwfl.h>

namespace fencedep::detail {

// libdwfl keeps the descriptor of every file it opens for as long as the file's module lives,
// which for the symbolizer's session is the life of the process: a program that counts its
// descriptors would see one per object named in a report. These callbacks open each file
// themselves, close-on-exec, have libelf map or read all of it, and close the descriptor before
// libdwfl sees the image; libdwfl then owns a memory image only.

// Dwfl_Callbacks::find_elf for the objects mapped into this process. An object without DWARF of
// its own is given as its separate debug file, found by build ID under /usr/lib/debug/.build-id
// (where distributions install them) and checked to be the same build laid out at the same
// addresses: libdwfl takes a separate debug file only as a descriptor it keeps, but reads the
// symbol table and DWARF of the main image when that has them. Images that are not files (the
// vDSO, a file deleted since it was mapped) are read from memory by libdwfl's own callback.
int find_elf_image(Dwfl_Module* module, void** userdata, const char* module_name, Dwarf_Addr base,
                   char** file_name, Elf** elf);

// Dwfl_Callbacks::find_debuginfo: finds nothing, because find_elf_image has already handed over
// any separate debug file. So libdwfl neither opens one nor asks debuginfod (which would load
// libcurl into the program under test and, with DEBUGINFOD_URLS set, make a report wait on
// downloads).
int no_separate_debuginfo(Dwfl_Module* module, void** userdata, const char* module_name,
                          Dwarf_Addr base, const char* file_name, const char* debuglink_file,
                          GElf_Word debuglink_crc, char** debuginfo_file_name);

// A debug file made by dwz refers to a file of the DWARF that the objects of its package share;
// libdw opens that file on first need and keeps its descriptor. This gives it to the module's
// DWARF first, as an image read like the others and kept for the life of the process (one per
// package, shared by its modules). Call it before reading the module's DIEs. Requires: the
// symbolizer's lock.
void attach_shared_dwarf(Dwfl_Module* module);

}  // namespace fencedep::detail
