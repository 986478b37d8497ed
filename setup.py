"""Build the compiled core: ``trie_cache._radix`` (the trie) and ``trie_cache._rowcodec``
(LmdbCache's payload decoders) from ``ext/``.

- ``TRIE_CACHE_NO_EXTENSIONS=1`` (or ``true``/``yes``) builds a pure-Python wheel: no compiler
  needed, ``trie_cache.CORE == "python"``. Interpreters other than CPython (PyPy) always get it.
- ``TRIE_CACHE_DEBUG_BUILD=1`` builds unoptimised, with symbols and assertions.
- Otherwise a missing compiler or Cython fails the build: the pure-Python twin is chosen at
  import time only, so a broken build is never hidden. Release builds carry no debug info.
"""

from __future__ import annotations

import os
import platform
import sys

from setuptools import Extension, setup
from setuptools.command.build_py import build_py

# Kept in step with trie_cache/_core.py: a pure build ships this file, so that importing the
# pure-Python core it asked for gives no warning.
PURE_BUILD_MARKER = "_pure_build.txt"

_TRUE_VALUES = {"1", "true", "yes"}


def _flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in _TRUE_VALUES


DEBUG = _flag("TRIE_CACHE_DEBUG_BUILD")
NO_EXTENSIONS = _flag("TRIE_CACHE_NO_EXTENSIONS")
IS_CPYTHON = platform.python_implementation() == "CPython"


def _extensions() -> list[Extension]:
    from Cython.Build import cythonize

    link_args: list[str] = []
    if sys.platform == "win32":
        compile_args = ["/Od", "/Zi"] if DEBUG else ["/O2"]
    else:
        # -g0 comes after the interpreter's own CFLAGS (which hold -g) and wins over them.
        compile_args = ["-O0", "-g3", "-UNDEBUG"] if DEBUG else ["-O3", "-DNDEBUG", "-g0"]
        compile_args += ["-Wall", "-Wno-unused-function", "-Wno-unreachable-code"]
        if not DEBUG and sys.platform.startswith("linux"):
            link_args = ["-s"]  # strip the symbol table too
    extensions = [
        Extension(
            f"trie_cache.{name}",
            [f"ext/{name}.pyx"],
            include_dirs=["ext"],
            depends=["ext/radix.pxd", "ext/radix_search.h"],
            extra_compile_args=compile_args,
            extra_link_args=link_args,
        )
        for name in ("_radix", "_rowcodec")
    ]
    return cythonize(
        extensions,
        compiler_directives={
            "language_level": 3,
            "embedsignature": True,
            "binding": False,
            "boundscheck": False,
            "wraparound": False,
            "cdivision": True,
            "initializedcheck": False,
        },
        include_path=["ext"],
        gdb_debug=DEBUG,
    )


class BuildPy(build_py):
    """``build_py`` that writes the pure-build marker into a pure build, and removes a stale one
    (``build/`` is reused between builds) from a compiled build."""

    def run(self) -> None:
        super().run()
        marker = os.path.join(self.build_lib, "trie_cache", PURE_BUILD_MARKER)
        if PURE_BUILD:
            with open(marker, "w", encoding="utf-8") as file:
                file.write("Built with TRIE_CACHE_NO_EXTENSIONS=1 (or not on CPython).\n")
        elif os.path.exists(marker):
            os.remove(marker)


PURE_BUILD = NO_EXTENSIONS or not IS_CPYTHON

if PURE_BUILD:
    why = "TRIE_CACHE_NO_EXTENSIONS is set" if NO_EXTENSIONS else platform.python_implementation()
    print(f"*** trie_cache: pure-Python build ({why}): CORE will be 'python' ***")
    setup(ext_modules=[], cmdclass={"build_py": BuildPy})
else:
    print(f"*** trie_cache: building the compiled core ({'debug' if DEBUG else 'release'}) ***")
    setup(ext_modules=_extensions(), cmdclass={"build_py": BuildPy})
