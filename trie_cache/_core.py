"""Pick the compiled modules or their pure-Python twins: the compiled ones unless told otherwise.

Two modules come in both forms: the radix trie (``_radix`` / ``_radix_py``) and the decoders of
LmdbCache's stored payloads (``_rowcodec`` / ``_rowcodec_py``). One switch picks both.

``TRIE_CACHE_PURE_PYTHON`` set to ``1``, ``true`` or ``yes`` (any case) forces the
pure-Python twin; any other value, ``0`` included, leaves the choice to availability.
Interpreters other than CPython always get the twin.
"""

from __future__ import annotations

import os
import platform
from typing import TYPE_CHECKING

__all__ = [
    "CORE",
    "PURE_PYTHON_REQUESTED",
    "RadixTrie",
    "rows_from_map",
    "rows_from_table",
]

_TRUE_VALUES = frozenset({"1", "true", "yes"})

PURE_PYTHON_REQUESTED: bool = (
    os.environ.get("TRIE_CACHE_PURE_PYTHON", "").strip().lower() in _TRUE_VALUES
    or platform.python_implementation() != "CPython"
)

CORE: str

if TYPE_CHECKING:
    # Both cores have the same interface; the stubs of the compiled modules describe it.
    from ._radix import RadixTrie
    from ._rowcodec import rows_from_map, rows_from_table
elif PURE_PYTHON_REQUESTED:
    from ._radix_py import RadixTrie
    from ._rowcodec_py import rows_from_map, rows_from_table

    CORE = "python"
else:
    try:
        from ._radix import RadixTrie
        from ._rowcodec import rows_from_map, rows_from_table
    except ImportError:
        from ._radix_py import RadixTrie
        from ._rowcodec_py import rows_from_map, rows_from_table

        CORE = "python"
    else:
        CORE = "cython"
