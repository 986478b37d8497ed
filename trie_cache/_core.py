"""Pick the radix trie core: the compiled one unless told otherwise.

``TRIE_CACHE_PURE_PYTHON`` set to ``1``, ``true`` or ``yes`` (any case) forces the
pure-Python twin; any other value, ``0`` included, leaves the choice to availability.
Interpreters other than CPython always get the twin.
"""

from __future__ import annotations

import os
import platform

_TRUE_VALUES = frozenset({"1", "true", "yes"})

PURE_PYTHON_REQUESTED: bool = (
    os.environ.get("TRIE_CACHE_PURE_PYTHON", "").strip().lower() in _TRUE_VALUES
    or platform.python_implementation() != "CPython"
)

if not PURE_PYTHON_REQUESTED:
    try:
        from ._radix import RadixTrie
    except ImportError:
        from ._radix_py import RadixTrie

        CORE = "python"
    else:
        CORE = "cython"
else:
    from ._radix_py import RadixTrie

    CORE = "python"

__all__ = ["CORE", "RadixTrie"]
