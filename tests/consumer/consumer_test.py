#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# Builds consumer.cpp against fencedep from outside fencedep's build, as users do, in a temporary
# directory, and runs it.
#   installed:  `meson install --destdir` of this build, then a C++17 consumer of each installed
#               header (one #error, fencedep's), a CMake consumer (find_package) and a pkg-config
#               consumer. One install serves all three: concurrent installs from one build
#               directory would share its install log.
#   subproject: a meson parent project with fencedep in subprojects/: by default only the library
#               is built and none of fencedep's tests reach the parent; asked for, they do.
import argparse
import json
import os
import pathlib
import shlex
import shutil
import subprocess
import sys
import tempfile

HERE = pathlib.Path(__file__).resolve().parent
CXX17_ERROR = ("fencedep's headers need C++20: compile with -std=c++20 "
               "(CMake: target_link_libraries(... fencedep::fencedep) carries it)")
SPLAT = "WARNING: possible circular locking dependency detected"


def step(what):
    print(f"consumer: {what}", flush=True)


def run(command, env=None):
    result = subprocess.run(command, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    if result.returncode != 0:
        sys.exit(f"{shlex.join(map(str, command))} failed ({result.returncode}):\n{result.stdout}")
    return result.stdout


def check_consumer(program, version, env=None):
    """consumer.cpp names the version it was built against and whether fencedep is on; on, its
    ABBA is a splat, and a splat makes the exit status 66."""
    base = dict(os.environ if env is None else env)
    base.pop("FENCEDEP", None)
    off = subprocess.run([program], env=base, capture_output=True, text=True)
    expected = f"fencedep {version} disabled\n"
    if off.returncode != 0 or off.stdout != expected or SPLAT in off.stderr:
        sys.exit(f"{program} without FENCEDEP: status {off.returncode}, stdout {off.stdout!r} "
                 f"(expected 0 and {expected!r}), stderr:\n{off.stderr}")
    on = subprocess.run([program], env=dict(base, FENCEDEP="1"), capture_output=True, text=True)
    expected = f"fencedep {version} enabled\n"
    if on.returncode != 66 or on.stdout != expected or SPLAT not in on.stderr:
        sys.exit(f"{program} with FENCEDEP=1: status {on.returncode}, stdout {on.stdout!r} "
                 f"(expected 66, {expected!r} and the splat), stderr:\n{on.stderr}")


def check_cxx17(cxx, flags, header, work):
    source = work / "cxx17.cpp"
    source.write_text(f"#include <fencedep/{header}>\n")
    result = subprocess.run(cxx + ["-std=c++17", "-fsyntax-only", *flags, str(source)],
                            capture_output=True, text=True)
    errors = [line for line in result.stderr.splitlines() if "error:" in line]
    if result.returncode == 0 or len(errors) != 1 or CXX17_ERROR not in errors[0]:
        sys.exit(f"C++17 consumer of fencedep/{header}: expected exactly one error, the #error "
                 f"{CXX17_ERROR!r}; the compiler said (status {result.returncode}):\n"
                 f"{result.stderr}")


def installed(args):
    # meson test points LD_LIBRARY_PATH at the build tree's libfencedep; the consumers must load
    # the installed one.
    os.environ.pop("LD_LIBRARY_PATH", None)
    cxx = shlex.split(args.cxx)
    sanitize = shlex.split(args.sanitize)
    with tempfile.TemporaryDirectory(prefix="fencedep-consumer-") as tmp:
        work = pathlib.Path(tmp)
        destdir = work / "destdir"
        # The prefix and libdir are absolute, so the destdir is prepended, not joined.
        prefix = pathlib.Path(str(destdir) + args.prefix)
        libdir = pathlib.Path(str(destdir) + args.libdir)
        step(f"meson install --destdir {destdir}")
        run(["meson", "install", "-C", args.build_root, "--no-rebuild", "--quiet",
             "--destdir", destdir])

        pkg_env = dict(os.environ, PKG_CONFIG_PATH=str(libdir / "pkgconfig"))
        pkg_config = ["pkg-config", f"--define-variable=prefix={prefix}", "fencedep"]
        cflags = shlex.split(run(pkg_config + ["--cflags"], env=pkg_env))
        libs = shlex.split(run(pkg_config + ["--libs"], env=pkg_env))

        # version.h holds only a macro, which any language can read.
        headers = sorted(p.name for p in (prefix / "include" / "fencedep").glob("*.h")
                         if p.name != "version.h")
        step(f"C++17 consumers of {', '.join(headers)}: one #error each")
        for header in headers:
            check_cxx17(cxx, cflags, header, work)

        step("pkg-config consumer, -std=c++20")
        program = work / "consumer-pkg-config"
        run(cxx + ["-std=c++20", *sanitize, *cflags, str(HERE / "consumer.cpp"), "-o", program,
                   *libs])
        check_consumer(program, args.version, dict(os.environ, LD_LIBRARY_PATH=str(libdir)))

        # The CMake project sets no C++ standard, and the compilers' default is older than
        # C++20: it builds only if fencedep::fencedep carries cxx_std_20.
        step("CMake consumer, find_package(fencedep 0.1 CONFIG)")
        cmake_build = work / "cmake-build"
        cmake_env = dict(os.environ, CXX=args.cxx, CXXFLAGS=args.sanitize, LDFLAGS=args.sanitize)
        run(["cmake", "-G", "Ninja", "-S", HERE / "cmake", "-B", cmake_build,
             f"-DCMAKE_PREFIX_PATH={prefix}"], env=cmake_env)
        cache = (cmake_build / "CMakeCache.txt").read_text()
        found = f"fencedep_DIR:PATH={libdir}/cmake/fencedep\n"
        if found not in cache:
            sys.exit(f"find_package did not find the installed package ({found!r} not in the cache)")
        run(["cmake", "--build", cmake_build], env=cmake_env)
        check_consumer(cmake_build / "consumer", args.version)


def introspect(build, what):
    return json.loads(run(["meson", "introspect", build, f"--{what}"]))


def subproject(args):
    env = dict(os.environ, CXX=args.cxx)
    with tempfile.TemporaryDirectory(prefix="fencedep-parent-") as tmp:
        work = pathlib.Path(tmp)
        parent = work / "parent"
        shutil.copytree(HERE / "meson-parent", parent)
        shutil.copy(HERE / "consumer.cpp", parent)
        (parent / "subprojects").mkdir()
        (parent / "subprojects" / "fencedep").symlink_to(args.source_root)

        step("meson setup of a parent project with subprojects/fencedep")
        build = work / "build"
        # No optimization and no debug info: the parent only needs the library built quickly.
        # A fencedep installed on this machine must not stand in for the subproject.
        run(["meson", "setup", build, parent, "-Dbuildtype=plain", "--force-fallback-for=fencedep"],
            env=env)
        ours = sorted(t["name"] for t in introspect(build, "targets")
                      if t["subproject"] == "fencedep")
        if ours != ["fencedep"]:
            sys.exit(f"fencedep as a subproject defines the targets {ours}, expected only the library")
        tests = sorted(t["name"] for t in introspect(build, "tests"))
        if tests != ["parent-consumer"]:
            sys.exit(f"the parent's meson test would run {tests}, expected only its own test")
        benchmarks = [t["name"] for t in introspect(build, "benchmarks")]
        if benchmarks:
            sys.exit(f"fencedep as a subproject defines the benchmarks {benchmarks}")

        step("building the library and a program linked with dependency('fencedep')")
        run(["ninja", "-C", build], env=env)
        check_consumer(build / "consumer", args.version)

        step("a parent that asks for fencedep's tests and examples gets them")
        asked = work / "build-asked"
        run(["meson", "setup", asked, parent, "-Dfencedep_programs=true",
             "--force-fallback-for=fencedep"], env=env)
        ours = {t["name"] for t in introspect(asked, "targets") if t["subproject"] == "fencedep"}
        if "array_chain_cycle" not in ours or "doctest_main" not in ours:
            sys.exit(f"asked for tests and examples, fencedep defines only {sorted(ours)}")
        suites = {suite for t in introspect(asked, "tests") for suite in t["suite"]}
        if "fencedep:engine" not in suites:
            sys.exit(f"asked for tests, the parent's meson test has only the suites {sorted(suites)}")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--cxx", required=True, help="the compiler command of this build")
    parser.add_argument("--version", required=True, help="fencedep's version")
    commands = parser.add_subparsers(dest="command", required=True)
    install_parser = commands.add_parser("installed")
    install_parser.add_argument("--build-root", required=True)
    install_parser.add_argument("--prefix", required=True)
    install_parser.add_argument("--libdir", required=True, help="absolute")
    install_parser.add_argument("--sanitize", default="",
                                help="the -fsanitize flag the library was built with, if any")
    install_parser.set_defaults(run=installed)
    subproject_parser = commands.add_parser("subproject")
    subproject_parser.add_argument("--source-root", required=True)
    subproject_parser.set_defaults(run=subproject)
    args = parser.parse_args()
    args.run(args)


if __name__ == "__main__":
    main()
