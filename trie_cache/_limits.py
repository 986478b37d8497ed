"""The check of a size limit (``max_entries``, ``max_weight``, ``max_bytes``), shared by the
pure-Python trie and ``MemCache`` so both refuse the same values with the same words."""

from __future__ import annotations

__all__ = ["check_limit"]


def check_limit(value: object, name: str) -> int | None:
    """``None`` or a positive ``int`` (not a ``bool``); ``TypeError``/``ValueError`` naming
    ``name`` otherwise."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be a positive int or None, not {type(value).__name__}")
    if value <= 0:
        raise ValueError(f"{name} must be a positive int, not {value!r}")
    return value
