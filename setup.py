"""Build the compiled core: ``trie_cache._radix`` (the trie) and ``trie_cache._rowcodec``
(LmdbCache's payload decoders) from ``ext/``.

Set ``TRIE_CACHE_DEBUG_BUILD=1`` for an unoptimised build with symbols and assertions.
A missing compiler or Cython fails the build: the pure-Python twin is chosen at import
time only, so a broken build is never hidden.
"""

import os
import sys

from Cython.Build import cythonize
from setuptools import Extension, setup

DEBUG = os.environ.get("TRIE_CACHE_DEBUG_BUILD", "").lower() in {"1", "true", "yes"}

if sys.platform == "win32":
    CFLAGS = ["/Od", "/Zi"] if DEBUG else ["/O2"]
else:
    CFLAGS = ["-O0", "-g3", "-UNDEBUG"] if DEBUG else ["-O3", "-DNDEBUG"]
    CFLAGS += ["-Wall", "-Wno-unused-function", "-Wno-unreachable-code"]

extensions = [
    Extension(
        f"trie_cache.{name}",
        [f"ext/{name}.pyx"],
        include_dirs=["ext"],
        depends=["ext/radix.pxd", "ext/radix_search.h"],
        extra_compile_args=CFLAGS,
    )
    for name in ("_radix", "_rowcodec")
]

print(f"*** trie_cache: building the compiled core ({'debug' if DEBUG else 'release'}) ***")

setup(
    ext_modules=cythonize(
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
    ),
)
