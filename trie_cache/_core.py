"""Pick the compiled modules or their pure-Python twins: the compiled ones unless told otherwise.

``CORE`` (re-exported as ``trie_cache.CORE``) names the pick: ``"cython"`` or ``"python"``.

Two modules come in both forms: the radix trie (``_radix`` / ``_radix_py``) and the decoders of
LmdbCache's stored payloads (``_rowcodec`` / ``_rowcodec_py``). One switch picks both.

``TRIE_CACHE_PURE_PYTHON`` set to ``1``, ``true`` or ``yes`` (any case) forces the
pure-Python twin; any other value, ``0`` included, leaves the choice to availability.
Interpreters other than CPython always get the twin.

If the compiled modules fail to import on CPython while the twin was not asked for, the twin is
used and a ``RuntimeWarning`` names the import error: the twin is 20-25x slower, and that must
never go unnoticed. A pure-Python build (``TRIE_CACHE_NO_EXTENSIONS=1 pip install .``) asks for
the twin: it ships the marker file ``_pure_build.txt`` and imports without a warning.
"""

from __future__ import annotations

import os
import platform
import warnings
from typing import TYPE_CHECKING

__all__ = [
    "CORE",
    "PURE_BUILD_MARKER",
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

# Shipped only by a pure-Python build (setup.py writes it), which asked for the twin.
PURE_BUILD_MARKER = "_pure_build.txt"

#: Which trie is in use: ``"cython"`` (compiled) or ``"python"`` (the pure-Python twin).
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
    except ImportError as error:
        if not os.path.exists(os.path.join(os.path.dirname(__file__), PURE_BUILD_MARKER)):
            warnings.warn(
                f"trie_cache: the compiled core failed to import ({type(error).__name__}: "
                f"{error}); using the pure-Python core, about 20-25x slower. Reinstall "
                "trie_cache to rebuild it, or set TRIE_CACHE_PURE_PYTHON=1 to choose the "
                "pure-Python core without this warning.",
                RuntimeWarning,
                stacklevel=2,
            )
        from ._radix_py import RadixTrie
        from ._rowcodec_py import rows_from_map, rows_from_table

        CORE = "python"
    else:
        CORE = "cython"
