"""Types of the compiled row codec ``trie_cache._rowcodec`` (built from ``ext/_rowcodec.pyx``).

The pure-Python twin ``trie_cache._rowcodec_py`` has the same signatures.
"""

from typing import Any, TypeVar

_T = TypeVar("_T")

def rows_from_map(payload: object, version: int, cls: type[_T], slow: Any) -> _T | None:
    """``cls`` built from a decoded map-form payload, or ``None`` for any other shape."""

def rows_from_table(
    payload: object, version: int, cls: type[_T], absent: object, slow: Any
) -> _T | None:
    """``cls`` built from a decoded table-form payload, or ``None`` for any other shape."""
